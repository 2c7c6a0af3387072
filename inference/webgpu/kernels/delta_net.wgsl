// qwen35moe's linear-attention (gated delta net) layer after its projections, on the GPU;
// inference/delta-net.ts is the reference, step for step. Three variants:
// CONV:  the causal conv of each channel over the step's rows in order, then silu; one
//        invocation per channel, its state (the last KERNEL-1 inputs) per slot.
// GATES: per row and value head, beta <- sigmoid(beta) and alpha <- softplus(alpha + dt) * a.
// DELTA: the delta rule of one value head per workgroup, one invocation per value index j (it
//        owns row j of the head's state M, M[j * D + i] = S[i][j]), rows in order; then the
//        gated norm rmsNorm(o) * silu(z) written over z.
// ROWS:  row t's state slot is rows[2t] (batch-forward.ts's (slot, position) table); else 0.

struct Params {
  n: u32,        // rows in the step
  conv_dim: u32, // CONV: channels (q, k and v stacked)
  kernel: u32,   // CONV: taps
  k_heads: u32,
  v_heads: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;

#ifdef CONV
@group(0) @binding(1) var<storage, read> conv_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> qkv: array<f32>;
#ifdef ROWS
@group(0) @binding(4) var<storage, read> rows: array<u32>;
#endif
#endif

#ifdef GATES
@group(0) @binding(1) var<storage, read_write> beta: array<f32>;
@group(0) @binding(2) var<storage, read_write> alpha: array<f32>;
@group(0) @binding(3) var<storage, read> dt_bias: array<f32>;
@group(0) @binding(4) var<storage, read> a: array<f32>;
#endif

#ifdef DELTA
#define WG 64
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;  // sigmoid'ed (GATES)
@group(0) @binding(3) var<storage, read> gate: array<f32>;  // g (GATES, in the alpha buffer)
@group(0) @binding(4) var<storage, read> norm_w: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;
@group(0) @binding(6) var<storage, read_write> z: array<f32>; // in: z; out: the gated output
#ifdef ROWS
@group(0) @binding(7) var<storage, read> rows: array<u32>;
#endif
var<workgroup> q_sh: array<f32, {{D}}>;
var<workgroup> k_sh: array<f32, {{D}}>;
var<workgroup> red: array<f32, {{WG}}>;
#endif

fn slot_of(t: u32) -> u32 {
#ifdef ROWS
  return rows[2u * t];
#else
  return 0u;
#endif
}

fn silu(x: f32) -> f32 {
  return x / (1.0 + exp(-x));
}

#ifdef CONV
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * 64u;
  if (c >= params.conv_dim) {
    return;
  }
  let k = params.kernel;
  let keep = k - 1u;
  for (var t = 0u; t < params.n; t++) {
    let so = (slot_of(t) * params.conv_dim + c) * keep;
    let xi = t * params.conv_dim + c;
    let x = qkv[xi];
    var sum = 0.0;
    for (var i = 0u; i < keep; i++) {
      sum += state[so + i] * conv_w[c * k + i];
    }
    sum += x * conv_w[c * k + keep];
    for (var i = 0u; i + 1u < keep; i++) {
      state[so + i] = state[so + i + 1u];
    }
    if (keep > 0u) {
      state[so + keep - 1u] = x;
    }
    qkv[xi] = silu(sum);
  }
}
#endif

#ifdef GATES
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= params.n * params.v_heads) {
    return;
  }
  let h = i % params.v_heads;
  beta[i] = 1.0 / (1.0 + exp(-beta[i]));
  let x = alpha[i] + dt_bias[h];
  // ggml's softplus: x itself above 20
  let sp = select(log(1.0 + exp(x)), x, x > 20.0);
  alpha[i] = sp * a[h];
}
#endif

#ifdef DELTA
// The sum of `v` over the workgroup (every invocation gets it).
fn reduce(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  red[lid] = v;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let d = {{D}}u;
  let j = lid;
  let live = j < d;
  let kh = h % params.k_heads;
  let key_dim = params.k_heads * d;
  let conv_dim = 2u * key_dim + params.v_heads * d;
  let value_dim = params.v_heads * d;
  let scale = 1.0 / sqrt(f32(d));
  for (var t = 0u; t < params.n; t++) {
    let xo = t * conv_dim;
    var qj = 0.0;
    var kj = 0.0;
    if (live) {
      qj = qkv[xo + kh * d + j];
      kj = qkv[xo + key_dim + kh * d + j];
    }
    // ggml_l2_norm: x / max(|x|, eps)
    let qn = 1.0 / max(sqrt(reduce(qj * qj, lid)), params.eps);
    let kn = 1.0 / max(sqrt(reduce(kj * kj, lid)), params.eps);
    if (live) {
      q_sh[j] = qj * qn;
      k_sh[j] = kj * kn;
    }
    workgroupBarrier();
    var o = 0.0;
    if (live) {
      let vh = t * params.v_heads + h;
      let decay = exp(gate[vh]);
      let b = beta[vh];
      let row = (slot_of(t) * params.v_heads + h) * d * d + j * d;
      var sk = 0.0;
      for (var i = 0u; i < d; i++) {
        let m = state[row + i] * decay;
        state[row + i] = m;
        sk += m * k_sh[i];
      }
      let delta = (qkv[xo + 2u * key_dim + h * d + j] - sk) * b;
      var sq = 0.0;
      for (var i = 0u; i < d; i++) {
        let m = state[row + i] + k_sh[i] * delta;
        state[row + i] = m;
        sq += m * q_sh[i];
      }
      o = sq * scale;
    }
    // the gated norm: rmsNorm(o over the head) * w * silu(z)
    let ms = reduce(o * o, lid) / f32(d);
    if (live) {
      let zi = t * value_dim + h * d + j;
      z[zi] = o / sqrt(ms + params.eps) * norm_w[j] * silu(z[zi]);
    }
  }
}
#endif
