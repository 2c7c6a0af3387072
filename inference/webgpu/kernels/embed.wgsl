// Embedding lookup: out[t, j] = value j of row ids[t] of the token embedding,
// decoded from its ggml type, one value per invocation. The weight may be
// split by rows over several buffers (weights.ts): each dispatch binds one
// part and writes only the tokens whose row falls in [row_start, row_end).
// One weight type per variant, by define:
//   W_F32, W_F16, W_BF16, W_Q8_0, W_Q4_0, W_Q4_K, W_Q5_K, W_Q6_K
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
