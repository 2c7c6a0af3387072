// Rotary position embedding, in place, for n tokens × heads. Pair i
// (< ropeDim / 2) of each head turns by theta = (pos * freq_scale) * inv_freq[i];
// dims past ropeDim stay as they are. Pairs are adjacent (2i, 2i + 1), ggml's
// "normal" (llama), or halves (i, i + ropeDim / 2) with NEOX (qwen). inv_freq
// holds base^(-2i/ropeDim), already divided by any per-pair freq factors and
// times YaRN's per-pair mix, computed once on the host in f64 so the angle
// loses nothing to an f32 pow; inv_freq[ropeDim / 2] is what cos and sin are
// scaled by (YaRN's mscale, else 1).
//
// Where the positions come from:
// (default)  one sequence: token t at pos0 + t, rows of a strided view (offset,
//            token_stride) of v;
// ROWS       stacked rows of several sequences: row t at its own position
//            rows[2t + 1] (rows[2t] is its slot, unused here), so one dispatch
//            covers rows of sequences at any positions.

#define WG 64

#ifdef ROWS
struct Params {
  n: u32,            // rows
  heads: u32,
  head_dim: u32,
  rope_dim: u32,
  token_stride: u32, // elements from one row to the next
  freq_scale: f32,   // 1 / linear rope scale
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<u32>; // (n, 2): slot, position
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

fn position(t: u32) -> u32 {
  return rows[2u * t + 1u];
}

fn row_start(t: u32) -> u32 {
  return t * params.token_stride;
}
#else
struct Params {
  n: u32,            // tokens
  heads: u32,
  head_dim: u32,
  rope_dim: u32,
  pos0: u32,
  offset: u32,       // element offset of token 0, head 0
  token_stride: u32, // elements from one token's row to the next
  freq_scale: f32,   // 1 / linear rope scale
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

fn position(t: u32) -> u32 {
  return params.pos0 + t;
}

fn row_start(t: u32) -> u32 {
  return params.offset + t * params.token_stride;
}
#endif

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let half = params.rope_dim / 2u;
  let id = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  if (id >= params.n * params.heads * half) {
    return;
  }
  let i = id % half;
  let h = (id / half) % params.heads;
  let t = id / (half * params.heads);

  let p = f32(position(t)) * params.freq_scale;
  let theta = p * inv_freq[i];
  let mscale = inv_freq[half];
  let c = cos(theta) * mscale;
  let s = sin(theta) * mscale;

  let base = row_start(t) + h * params.head_dim;
#ifdef NEOX
  let a = base + i;
  let b = a + half;
#else
  let a = base + 2u * i;
  let b = a + 1u;
#endif
  let x0 = v[a];
  let x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
}
