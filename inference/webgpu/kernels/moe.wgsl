// Mixture-of-experts routing and combination (inference/moe.ts on the GPU), chosen by define:
//   ROUTE    one invocation per row: the router's logits of the row → gating (softmax over
//            all experts) → the top `used` experts (ties to the lower index, as ggml's argsort
//            of few experts) → optional normalization of the k weights (ggml clamps their sum
//            to the smallest normal f16) and scale. With SHARED also the shared expert's gate,
//            sigmoid(x · gate_inp), of the row.
//   COMBINE  one invocation per (row, value): hidden += Σ_k w_k · down_k (top-k order), plus
//            scale · shared (SHARED).
//   GROUP    one invocation per expert: the (row, choice) pairs routed to it, in order, and
//            their count, for the grouped products of a prefill step (moe_matmul.wgsl).
// Defines: WG, ROUTE, COMBINE or GROUP, optional SHARED.

struct Params {
  n: u32,         // rows
  experts: u32,
  used: u32,
  dim: u32,
  normalize: u32, // 1: divide the k weights by their sum
  gating: u32,    // 0 softmax, 1 sigmoid, 2 softmax over the k chosen
  scale: f32,     // the k weights' factor
  grid_x: u32,    // workgroups along x (rows fold back as x + y * grid_x)
  list_stride: u32, // GROUP: room for pairs per expert in LISTS (the most rows of a step)
}

@group(0) @binding(0) var<uniform> P: Params;

#ifdef ROUTE
@group(0) @binding(1) var<storage, read> LOGITS: array<f32>; // (n, experts)
@group(0) @binding(2) var<storage, read_write> IDS: array<u32>; // (n, used)
@group(0) @binding(3) var<storage, read_write> WEIGHTS: array<f32>; // (n, used)
#ifdef SHARED
@group(0) @binding(4) var<storage, read> XB: array<f32>; // (n, dim) the normed rows
@group(0) @binding(5) var<storage, read> GATE_INP: array<f32>; // (dim)
@group(0) @binding(6) var<storage, read_write> SHARED_SCALE: array<f32>; // (n)
#endif

// The gating of expert e of row t, computed the same way each time it is asked for.
fn prob(t: u32, e: u32, mx: f32, inv_sum: f32) -> f32 {
  let l = LOGITS[t * P.experts + e];
  if (P.gating == 0u) {
    return exp(l - mx) * inv_sum;
  }
  if (P.gating == 1u) {
    return 1.0 / (1.0 + exp(-l));
  }
  return l;
}

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * P.grid_x * {{WG}}u;
  if (t >= P.n) {
    return;
  }
  let base = t * P.experts;
  var mx = LOGITS[base];
  for (var e = 1u; e < P.experts; e++) {
    mx = max(mx, LOGITS[base + e]);
  }
  var sum = 0.0;
  for (var e = 0u; e < P.experts; e++) {
    sum += exp(LOGITS[base + e] - mx);
  }
  let inv_sum = 1.0 / sum;
  let out = t * P.used;
  var total = 0.0;
  for (var k = 0u; k < P.used; k++) {
    var best = 0xffffffffu;
    var best_p = 0.0;
    for (var e = 0u; e < P.experts; e++) {
      var taken = false;
      for (var j = 0u; j < k; j++) {
        taken = taken || IDS[out + j] == e;
      }
      let p = prob(t, e, mx, inv_sum);
      // Strictly greater: the lower index keeps a tie.
      if (!taken && (best == 0xffffffffu || p > best_p)) {
        best = e;
        best_p = p;
      }
    }
    IDS[out + k] = best;
    WEIGHTS[out + k] = best_p;
    total += best_p;
  }
  if (P.gating == 2u) {
    // softmax over the chosen: the first is the largest logit
    let m = WEIGHTS[out];
    var s = 0.0;
    for (var k = 0u; k < P.used; k++) {
      s += exp(WEIGHTS[out + k] - m);
    }
    for (var k = 0u; k < P.used; k++) {
      WEIGHTS[out + k] = exp(WEIGHTS[out + k] - m) / s;
    }
    total = 1.0;
  }
  let div = select(1.0, max(total, 6.103515625e-5), P.normalize == 1u);
  for (var k = 0u; k < P.used; k++) {
    WEIGHTS[out + k] = WEIGHTS[out + k] / div * P.scale;
  }
#ifdef SHARED
  var dot = 0.0;
  for (var i = 0u; i < P.dim; i++) {
    dot += XB[t * P.dim + i] * GATE_INP[i];
  }
  SHARED_SCALE[t] = 1.0 / (1.0 + exp(-dot));
#endif
}
#endif

#ifdef COMBINE
@group(0) @binding(1) var<storage, read_write> HIDDEN: array<f32>; // (n, dim)
@group(0) @binding(2) var<storage, read> WEIGHTS: array<f32>; // (n, used)
@group(0) @binding(3) var<storage, read> DOWN: array<f32>; // (n, used, dim)
#ifdef SHARED
@group(0) @binding(4) var<storage, read> SHARED_SCALE: array<f32>; // (n)
@group(0) @binding(5) var<storage, read> SHARED_OUT: array<f32>; // (n, dim)
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * P.grid_x * {{WG}}u;
  if (idx >= P.n * P.dim) {
    return;
  }
  let t = idx / P.dim;
  let i = idx % P.dim;
  var acc = 0.0;
  for (var k = 0u; k < P.used; k++) {
    let pair = t * P.used + k;
    acc += WEIGHTS[pair] * DOWN[pair * P.dim + i];
  }
#ifdef SHARED
  acc += SHARED_SCALE[t] * SHARED_OUT[idx];
#endif
  HIDDEN[idx] += acc;
}
#endif

#ifdef GROUP
@group(0) @binding(1) var<storage, read> IDS: array<u32>; // (n, used)
@group(0) @binding(2) var<storage, read_write> COUNTS: array<u32>; // (experts)
@group(0) @binding(3) var<storage, read_write> LISTS: array<u32>; // (experts, list_stride)

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x + gid.y * P.grid_x * {{WG}}u;
  if (e >= P.experts) {
    return;
  }
  // A row chooses an expert at most once, so an expert's pairs fit n <= list_stride slots.
  var count = 0u;
  for (var p = 0u; p < P.n * P.used; p++) {
    if (IDS[p] == e) {
      LISTS[e * P.list_stride + count] = p;
      count++;
    }
  }
  COUNTS[e] = count;
}
#endif
