/**
 * Fused weights presented as the separate matrices the engines compute with. phi3 GGUFs (and
 * others) may store Q, K and V as one `attn_qkv` matrix and the gate and up projections as one
 * `ffn_up` of twice the hidden width; llama.cpp multiplies by the fused matrix and views the
 * result's rows (llama-graph.cpp build_qkv: Q rows first, then K, then V; ggml_swiglu on
 * `ffn_up`: the gate is the first half, up the second). A matrix's rows are contiguous in the
 * file, so each part is a plain tensor entry over a byte range of the fused one: both engines
 * load, check and count it like any other tensor.
 */
import { byteLengthOf } from "./ggml-type.ts";
import type { GgufFile, GgufTensorInfo } from "./gguf.ts";

/** Rows [start, start + rows) of `info`, named `name`. */
function rowsOf(info: GgufTensorInfo, name: string, start: number, rows: number): GgufTensorInfo {
  const rowBytes = byteLengthOf(info.type, info.dims[0]);
  return {
    name,
    dims: [info.dims[0], rows],
    type: info.type,
    offset: info.offset + start * rowBytes,
    byteLength: rows * rowBytes,
  };
}

/** A matrix's row count, or an error naming it when it is not 2-D. */
function rowCount(info: GgufTensorInfo): number {
  if (info.dims.length !== 2) {
    throw new Error(`tensor "${info.name}" should be 2-D, has dims ${info.dims}`);
  }
  return info.dims[1];
}

/**
 * The part of a fused tensor that `name` stands for, or undefined when `name` is no such part
 * (the file holds it as is, or not at all). Widths come from the file itself: Q is as wide as
 * attn_output's input (heads · head width; phi3 has no separate value width), K and V share
 * the rest; a fused gate+up has twice ffn_down's input width.
 */
export function fusedPart(file: GgufFile, name: string): GgufTensorInfo | undefined {
  const m = /^(blk\.\d+\.)(attn_q|attn_k|attn_v|ffn_gate|ffn_up)\.weight$/.exec(name);
  if (!m) return undefined;
  const [, p, part] = m;
  if (part.startsWith("attn_")) {
    const qkv = file.tensor(`${p}attn_qkv.weight`);
    if (!qkv || file.tensor(name)) return undefined;
    const out = file.tensor(`${p}attn_output.weight`);
    const q = out?.dims[0] ?? 0;
    const kv = (rowCount(qkv) - q) / 2;
    if (!out || !Number.isInteger(kv) || kv < 1) {
      throw new Error(
        `tensor "${qkv.name}" (${rowCount(qkv)} rows) does not split into Q of ${q} rows ` +
          `and K, V of equal rows`,
      );
    }
    const start = part === "attn_q" ? 0 : part === "attn_k" ? q : q + kv;
    return rowsOf(qkv, name, start, part === "attn_q" ? q : kv);
  }
  const up = file.tensor(`${p}ffn_up.weight`);
  const down = file.tensor(`${p}ffn_down.weight`);
  if (!up || !down || file.tensor(`${p}ffn_gate.weight`)) return undefined;
  const ffn = down.dims[0];
  if (rowCount(up) !== 2 * ffn) return undefined;
  return rowsOf(up, name, part === "ffn_gate" ? 0 : ffn, ffn);
}
