/**
 * The bytes of a GGUF one pipeline stage reads: the header and the tensors `planTensors` names
 * for its layers, so a stage of a model that is not on disk can fetch just those
 * (models/partial-model.ts) before `loadStageBatch` reads them.
 */
import type { GgufFile } from "./gguf.ts";
import type { ModelConfig } from "./model-config.ts";
import { needTensor, planTensors } from "./weights.ts";

/** Byte offsets [start, end) in a file. */
export type ByteRange = [number, number];

/**
 * The header [0, dataOffset) and the tensors of the layers [layerStart, layerEnd) (with the
 * embedding or head at the ends), sorted; ranges only alignment padding apart are merged.
 */
export function stageByteRanges(
  file: GgufFile,
  config: ModelConfig,
  layerStart: number,
  layerEnd: number,
): ByteRange[] {
  const ranges: ByteRange[] = [[0, file.dataOffset]];
  for (const { name } of planTensors(file, config, layerStart, layerEnd)) {
    const info = needTensor(file, name);
    ranges.push([info.offset, info.offset + info.byteLength]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: ByteRange[] = [];
  for (const [start, end] of ranges) {
    const last = merged.at(-1);
    // Padding is under one alignment: a separate request for it would cost more than its bytes.
    if (last && start - last[1] < file.alignment) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}
