// Embedding lookup: out[t, j] = value j of row ids[t] of the token embedding,
// decoded from its ggml type, one value per invocation. The weight may be
// split by rows over several buffers (weights.ts): each dispatch binds one
// part and writes only the tokens whose row falls in [row_start, row_end).
// One weight type per variant, by define:
//   W_F32, W_F16, W_BF16, W_Q8_0, W_Q4_0, W_Q4_K, W_Q5_K, W_Q6_K,
//   W_Q5_0, W_Q5_1, W_IQ4_NL, W_MXFP4, W_Q2_K, W_Q3_K, W_IQ4_XS
// Each value is decoded with the same f32 operations, in the same order, as
// dequantizeRow in inference/quant (so the results are bit-identical).

#define WG 256

struct Params {
  n: u32,          // tokens
  cols: u32,       // values per row
  row_bytes: u32,  // encoded bytes per row
  row_start: u32,  // first row held by this weight buffer
  row_end: u32,    // one past its last row
  out_offset: u32, // element offset of token 0's row in out
  out_stride: u32, // elements between output rows
  ids_offset: u32, // index of token 0 in ids
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// The byte at b.
fn b8(b: u32) -> u32 {
  return (W[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// The byte at b as a signed int.
fn s8(b: u32) -> i32 {
  return (i32(b8(b)) << 24u) >> 24u;
}

// The 16 bits at b (b even: never straddles a word).
fn h16(b: u32) -> u32 {
  return (W[b >> 2u] >> ((b & 2u) * 8u)) & 0xffffu;
}

// IEEE half to f32, bit by bit: exact for subnormals, infinities and NaNs,
// which unpack2x16float may flush.
fn half_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    return bitcast<f32>(sign | bitcast<u32>(f32(m) * 5.9604644775390625e-8));
  }
  if (e == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (m << 13u));
  }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

#include "ggml_tables.wgsl"

// Q5_0 / Q5_1: the 5-bit value l (< 32) of the block whose qh word is at h and
// nibbles at qs.
fn q5(h: u32, qs: u32, l: u32) -> u32 {
  let nib = (b8(qs + l % 16u) >> (4u * (l / 16u))) & 0xfu;
  return nib | (((b8(h + l / 8u) >> (l % 8u)) & 1u) << 4u);
}

// K-quant 6-bit (scale, min) of sub-block j from the 12 bytes at s.
fn scale_min_k4(s: u32, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(b8(s + j) & 63u, b8(s + j + 4u) & 63u);
  }
  let sc = (b8(s + j + 4u) & 0xfu) | ((b8(s + j - 4u) >> 6u) << 4u);
  let m = (b8(s + j + 4u) >> 4u) | ((b8(s + j) >> 6u) << 4u);
  return vec2<u32>(sc, m);
}

// Value j of the row starting at byte rb.
fn value(rb: u32, j: u32) -> f32 {
#ifdef W_F32
  return bitcast<f32>(W[(rb >> 2u) + j]);
#endif
#ifdef W_F16
  return half_to_f32(h16(rb + 2u * j));
#endif
#ifdef W_BF16
  return bitcast<f32>(h16(rb + 2u * j) << 16u);
#endif
#ifdef W_Q8_0
  // 34 bytes: d (f16), 32 int8
  let o = rb + (j / 32u) * 34u;
  return f32(s8(o + 2u + j % 32u)) * half_to_f32(h16(o));
#endif
#ifdef W_Q4_0
  // 18 bytes: d (f16), 16 bytes; byte l holds value l (low nibble) and l + 16 (high)
  let o = rb + (j / 32u) * 18u;
  let l = j % 32u;
  let q = (b8(o + 2u + l % 16u) >> (4u * (l / 16u))) & 0xfu;
  return f32(i32(q) - 8) * half_to_f32(h16(o));
#endif
#ifdef W_Q4_K
  // 144 bytes: d, dmin, scales[12], qs[128]; chunk c of 64 values uses qs[32c..32c+32]:
  // low nibbles are sub-block 2c, high nibbles sub-block 2c + 1
  let o = rb + (j / 256u) * 144u;
  let c = (j % 256u) / 64u;
  let hi = (j % 64u) / 32u;
  let l = j % 32u;
  let sm = scale_min_k4(o + 4u, 2u * c + hi);
  let d = half_to_f32(h16(o)) * f32(sm.x);
  let m = half_to_f32(h16(o + 2u)) * f32(sm.y);
  let q = (b8(o + 16u + 32u * c + l) >> (4u * hi)) & 0xfu;
  return d * f32(q) - m;
#endif
#ifdef W_Q5_K
  // 176 bytes: d, dmin, scales[12], qh[32], qs[128]; as Q4_K plus a fifth bit:
  // bit 2c + hi of qh[l]
  let o = rb + (j / 256u) * 176u;
  let c = (j % 256u) / 64u;
  let hi = (j % 64u) / 32u;
  let l = j % 32u;
  let sm = scale_min_k4(o + 4u, 2u * c + hi);
  let d = half_to_f32(h16(o)) * f32(sm.x);
  let m = half_to_f32(h16(o + 2u)) * f32(sm.y);
  let q = ((b8(o + 48u + 32u * c + l) >> (4u * hi)) & 0xfu) |
    (((b8(o + 16u + l) >> (2u * c + hi)) & 1u) << 4u);
  return d * f32(q) - m;
#endif
#ifdef W_Q6_K
  // 210 bytes: ql[128], qh[64], scales int8[16], d (f16). Per 128-value half,
  // quarter r of 32 values: low 4 bits from ql[l + 32 (r & 1)] (nibble r / 2),
  // high 2 bits from qh[l] bits 2r; scale index l / 16 + 2r
  let o = rb + (j / 256u) * 210u;
  let hf = (j % 256u) / 128u;
  let r = (j % 128u) / 32u;
  let l = j % 32u;
  let ql = (b8(o + 64u * hf + l + 32u * (r & 1u)) >> (4u * (r >> 1u))) & 0xfu;
  let qh = (b8(o + 128u + 32u * hf + l) >> (2u * r)) & 3u;
  let q = i32(ql | (qh << 4u)) - 32;
  let sc = s8(o + 192u + 8u * hf + l / 16u + 2u * r);
  return (half_to_f32(h16(o + 208u)) * f32(sc)) * f32(q);
#endif
#ifdef W_Q5_0
  // 22 bytes: d (f16), qh (fifth bits), 16 bytes of nibbles as in Q4_0
  let o = rb + (j / 32u) * 22u;
  return f32(i32(q5(o + 2u, o + 6u, j % 32u)) - 16) * half_to_f32(h16(o));
#endif
#ifdef W_Q5_1
  // 24 bytes: d, m (f16), qh, 16 bytes of nibbles
  let o = rb + (j / 32u) * 24u;
  return f32(q5(o + 4u, o + 8u, j % 32u)) * half_to_f32(h16(o)) + half_to_f32(h16(o + 2u));
#endif
#ifdef W_IQ4_NL
  // 18 bytes as Q4_0, the nibbles indexing KVALUES_IQ4NL
  let o = rb + (j / 32u) * 18u;
  let l = j % 32u;
  let q = (b8(o + 2u + l % 16u) >> (4u * (l / 16u))) & 0xfu;
  return half_to_f32(h16(o)) * KVALUES_IQ4NL[q];
#endif
#ifdef W_MXFP4
  // 17 bytes (rows and blocks may start on odd bytes): e8m0 exponent, 16
  // bytes of nibbles indexing KVALUES_MXFP4
  let o = rb + (j / 32u) * 17u;
  let l = j % 32u;
  let q = (b8(o + 1u + l % 16u) >> (4u * (l / 16u))) & 0xfu;
  return KVALUES_MXFP4[q] * e8m0_half(b8(o));
#endif
#ifdef W_Q2_K
  // 84 bytes: scales[16], qs[64], d, dmin (f16). Value 128n + 32c + l: bits 2c
  // of qs[32n + l], scale byte 8n + 2c + l / 16 (low nibble scale, high min)
  let o = rb + (j / 256u) * 84u;
  let n = (j % 256u) / 128u;
  let c = (j % 128u) / 32u;
  let l = j % 32u;
  let sc = b8(o + 8u * n + 2u * c + l / 16u);
  let dl = half_to_f32(h16(o + 80u)) * f32(sc & 0xfu);
  let ml = half_to_f32(h16(o + 82u)) * f32(sc >> 4u);
  let q = (b8(o + 16u + 32u * n + l) >> (2u * c)) & 3u;
  return dl * f32(q) - ml;
#endif
#ifdef W_Q3_K
  // 110 bytes: hmask[32], qs[64], scales[12], d (f16). Value 128n + 32c + l:
  // bits 2c of qs[32n + l], minus 4 unless bit 4n + c of hmask[l] is set;
  // 6-bit scale is = 8n + 2c + l / 16: low 4 bits in byte is % 8 (nibble is / 8),
  // high 2 in byte 8 + is % 4 (bits 2 (is / 4))
  let o = rb + (j / 256u) * 110u;
  let n = (j % 256u) / 128u;
  let c = (j % 128u) / 32u;
  let l = j % 32u;
  let is = 8u * n + 2u * c + l / 16u;
  let lo = (b8(o + 96u + is % 8u) >> (4u * (is / 8u))) & 0xfu;
  let hi = (b8(o + 104u + is % 4u) >> (2u * (is / 4u))) & 3u;
  let dl = half_to_f32(h16(o + 108u)) * f32(i32(lo | (hi << 4u)) - 32);
  let q = i32((b8(o + 32u + 32u * n + l) >> (2u * c)) & 3u);
  let h = (b8(o + l) >> (4u * n + c)) & 1u;
  return dl * f32(q - select(4, 0, h == 1u));
#endif
#ifdef W_IQ4_XS
  // 136 bytes: d (f16), scales_h (u16), scales_l[4], qs[128]; sub-block ib of
  // 32: 6-bit scale from nibble ib of scales_l and bits 2 ib of scales_h;
  // qs[16 ib + l] holds value l (low nibble) and l + 16 (high)
  let o = rb + (j / 256u) * 136u;
  let ib = (j % 256u) / 32u;
  let l = j % 32u;
  let ls = ((b8(o + 4u + ib / 2u) >> (4u * (ib % 2u))) & 0xfu) |
    (((h16(o + 2u) >> (2u * ib)) & 3u) << 4u);
  let dl = half_to_f32(h16(o)) * f32(i32(ls) - 32);
  let q = (b8(o + 8u + 16u * ib + l % 16u) >> (4u * (l / 16u))) & 0xfu;
  return dl * KVALUES_IQ4NL[q];
#endif
}

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  if (i >= params.n * params.cols) {
    return;
  }
  let t = i / params.cols;
  let j = i % params.cols;
  let id = ids[params.ids_offset + t];
  if (id < params.row_start || id >= params.row_end) {
    return;
  }
  let rb = (id - params.row_start) * params.row_bytes;
  out[params.out_offset + t * params.out_stride + j] = value(rb, j);
}
