// RoPE for stacked rows of several sequences: as rope.wgsl, but each row
// (token) t turns by its own position rows[2t + 1] (rows[2t] is its slot,
// unused here), so one dispatch covers rows of sequences at any positions.

#define WG 64

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

  let p = f32(rows[2u * t + 1u]) * params.freq_scale;
  let theta = p * inv_freq[i];
  let c = cos(theta);
  let s = sin(theta);

  let base = t * params.token_stride + h * params.head_dim;
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
