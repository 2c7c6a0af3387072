/**
 * Converts a GGUF's weight matrices to another type, tensor by tensor: the
 * output is streamed, so memory holds one tensor (as f32) at a time.
 *
 * Which tensors change: every tensor of 2 or more dimensions whose name ends
 * in ".weight" (token_embd and output included); 1-D tensors (norms, biases)
 * are left as they are. A matrix whose row length does not fill whole blocks
 * of the target type falls back to a type with blocks of 32: Q2_K and Q3_K to
 * Q4_0 and IQ4_XS to IQ4_NL, as llama.cpp's quantizer does; Q4_K/Q5_K/Q6_K
 * to Q8_0 (llama.cpp picks Q5_0/Q5_1/Q8_0; these files predate Grove's
 * Q5_0/Q5_1, and their references name the bytes). A row that still does not
 * fit (not a multiple of 32) keeps F32, which is exact (llama.cpp would pick
 * F16 or refuse).
 *
 * CLI: deno run -A tests/support/quantize-gguf.ts IN.gguf OUT.gguf Q4_K
 */
import {
  blockGeometry,
  GgmlType,
  ggmlTypeName,
  SUPPORTED_WEIGHT_TYPES,
} from "../../inference/mod.ts";
import { type GgufTensorInfo, openGguf, readTensorData } from "../../inference/mod.ts";
import { dequantize, quantize } from "../../inference/mod.ts";
import { type TensorSpec, typedMetadata, u32, writeGguf } from "./gguf-writer.ts";

/** The target types, as `general.file_type` names them. */
export const QUANTIZE_TYPES = SUPPORTED_WEIGHT_TYPES;

/**
 * llama.cpp's `llama_ftype` for a file whose matrices are all `type`. Files
 * made here use one type throughout, so the K-quants map to the "_S" mixes.
 */
const FILE_TYPES: Partial<Record<GgmlType, number>> = {
  [GgmlType.F32]: 0, // LLAMA_FTYPE_ALL_F32
  [GgmlType.F16]: 1, // MOSTLY_F16
  [GgmlType.Q4_0]: 2, // MOSTLY_Q4_0
  [GgmlType.Q8_0]: 7, // MOSTLY_Q8_0
  [GgmlType.Q4_K]: 14, // MOSTLY_Q4_K_S
  [GgmlType.Q5_K]: 16, // MOSTLY_Q5_K_S
  [GgmlType.Q6_K]: 18, // MOSTLY_Q6_K
  [GgmlType.BF16]: 32, // MOSTLY_BF16
  [GgmlType.Q5_0]: 8, // MOSTLY_Q5_0
  [GgmlType.Q5_1]: 9, // MOSTLY_Q5_1
  [GgmlType.Q2_K]: 10, // MOSTLY_Q2_K
  [GgmlType.Q3_K]: 11, // MOSTLY_Q3_K_S
  [GgmlType.IQ4_NL]: 25, // MOSTLY_IQ4_NL
  [GgmlType.IQ4_XS]: 30, // MOSTLY_IQ4_XS
  [GgmlType.MXFP4]: 38, // MOSTLY_MXFP4_MOE
};

/** The block-of-32 type a 256-block type falls back to (see the header). */
const FALLBACK: Partial<Record<GgmlType, GgmlType>> = {
  [GgmlType.Q2_K]: GgmlType.Q4_0,
  [GgmlType.Q3_K]: GgmlType.Q4_0,
  [GgmlType.Q4_K]: GgmlType.Q8_0,
  [GgmlType.Q5_K]: GgmlType.Q8_0,
  [GgmlType.Q6_K]: GgmlType.Q8_0,
  [GgmlType.IQ4_XS]: GgmlType.IQ4_NL,
};

/** llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_K_M: the file type of the test models' Q4_K_M mixes. */
export const LLAMA_FTYPE_MOSTLY_Q4_K_M = 15;

/**
 * llama.cpp's use_more_bits (src/llama-quant.cpp, integer division): the layers whose attn_v /
 * ffn_down its Q4_K_M mix raises to Q6_K.
 */
export function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= Math.floor(7 * layers / 8) || (layer - eighth) % 3 === 2;
}

export function llamaFileType(type: GgmlType): number {
  const ftype = FILE_TYPES[type];
  if (ftype === undefined) throw new Error(`no llama.cpp file type for ${ggmlTypeName(type)}`);
  return ftype;
}

/** True for the types that carry a quantization (block) layout. */
export function isQuantized(type: GgmlType): boolean {
  return (blockGeometry(type)?.blockSize ?? 1) > 1;
}

/** The type a matrix with rows of `rowLength` gets when `type` is asked for. */
export function targetTypeFor(type: GgmlType, rowLength: number): GgmlType {
  const fits = (t: GgmlType) => rowLength % (blockGeometry(t)?.blockSize ?? 1) === 0;
  if (fits(type)) return type;
  const fallback = FALLBACK[type];
  return fallback !== undefined && fits(fallback) ? fallback : GgmlType.F32;
}

export interface QuantizedTensor {
  name: string;
  from: GgmlType;
  to: GgmlType;
}

function parseType(name: string): GgmlType {
  const type = GgmlType[name.toUpperCase() as keyof typeof GgmlType];
  if (type === undefined || !QUANTIZE_TYPES.includes(type)) {
    const names = QUANTIZE_TYPES.map((t) => ggmlTypeName(t)).join(", ");
    throw new Error(`unknown target type "${name}"; choose one of ${names}`);
  }
  return type;
}

function isMatrix(t: GgufTensorInfo): boolean {
  return t.dims.length >= 2 && t.name.endsWith(".weight");
}

/**
 * Writes `outPath`: `inPath` with its weight matrices converted to `type`.
 * Returns what happened to each tensor (fallbacks show as `to !== type`).
 */
export async function quantizeGguf(
  inPath: string,
  outPath: string,
  type: GgmlType | string,
): Promise<QuantizedTensor[]> {
  const target = typeof type === "string" ? parseType(type) : type;
  llamaFileType(target);
  const src = await openGguf(inPath);
  const report: QuantizedTensor[] = [];
  const tensors: TensorSpec[] = src.tensors.map((t) => {
    const to = isMatrix(t) ? targetTypeFor(target, t.dims[0]) : t.type;
    report.push({ name: t.name, from: t.type, to });
    const data = async () => {
      const raw = await readTensorData(src, t);
      if (to === t.type) return raw;
      const n = t.dims.reduce((a, b) => a * b, 1);
      return quantize(to, dequantize(t.type, raw, n), t.dims[0]);
    };
    return { name: t.name, dims: t.dims, type: to, data };
  });
  const metadata = typedMetadata(src);
  metadata["general.file_type"] = u32(llamaFileType(target));
  if (isQuantized(target)) metadata["general.quantization_version"] = u32(2);
  await writeGguf(outPath, { metadata, tensors });
  return report;
}

if (import.meta.main) {
  const [inPath, outPath, type] = Deno.args;
  if (!inPath || !outPath || !type) {
    console.error("usage: deno run -A tests/support/quantize-gguf.ts IN.gguf OUT.gguf TYPE");
    Deno.exit(2);
  }
  const report = await quantizeGguf(inPath, outPath, type);
  for (const r of report.filter((r) => r.from !== r.to)) {
    console.log(`${r.name}: ${ggmlTypeName(r.from)} -> ${ggmlTypeName(r.to)}`);
  }
  const kept = report.filter((r) => r.from === r.to).length;
  console.log(`wrote ${outPath} (${kept} of ${report.length} tensors kept their type)`);
}
