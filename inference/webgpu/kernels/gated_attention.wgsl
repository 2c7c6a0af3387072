// qwen35moe's gated full attention (inference/gated-attention.ts is the reference):
// SPLIT: W_q's rows hold each head's query and gate side by side, [q_h, gate_h]: copy them
//        apart into q and gate (n rows of heads · head_dim each).
// GATE:  att <- att · sigmoid(gate), before W_o.

struct Params {
  count: u32,    // n · heads · head_dim
  head_dim: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
#ifdef SPLIT
@group(0) @binding(1) var<storage, read> qg: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> gate: array<f32>;
#else
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read_write> att: array<f32>;
#endif

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= params.count) {
    return;
  }
#ifdef SPLIT
  let head = i / params.head_dim; // over all rows: row t's head h is t · heads + h
  let e = i % params.head_dim;
  let src = head * 2u * params.head_dim + e;
  q[i] = qg[src];
  gate[i] = qg[src + params.head_dim];
#else
  att[i] = att[i] / (1.0 + exp(-gate[i]));
#endif
}
