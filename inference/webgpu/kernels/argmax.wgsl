// Greedy and top-k selection over a logits row, so decode reads back a few
// bytes instead of the whole vocabulary. One workgroup; order is by value,
// then by lower index (ties go to the lowest index, as the CPU sampler does).
//
// (default)  ARGMAX: ids[out_offset] = index of the largest logit.
// TOP_K      ids[out_offset + r], vals[out_offset + r] for r < k: the k best in
//            order. Each invocation keeps a sorted list of its own k best (its
//            strided share of the row), then k rounds of a tree reduction over
//            the invocations' list heads merge them; the winner pops its head.
// SAMPLE     (with TOP_K) ids[out_offset] = a token drawn as inference/sampler.ts draws
//            one: the top k, then top-p, min-p and temperature over them, and a uniform
//            draw from draws[]. Like the sampler, a draw is used only where more than one
//            candidate is left: drawn[out_offset] counts those used, so the step after a
//            sure pick takes the same draw the sampler's generator would give next.
//            The sums run in f32 where the sampler's run in f64: a pick near a boundary may
//            differ, and whoever reads the logits back checks each pick (scheduler-loop.ts).
// PENALIZE   work[offset + t] = logits[offset + t] with sampler.ts's penalties, for each token t
//            of the row's recent tokens (a ring in `recent`, its start and length in `ring`):
//            the repeat penalty divides a positive logit and multiplies a negative one, then
//            the frequency penalty once per occurrence and the presence penalty once. The
//            other entries of `work` are a copy of the logits (the host copies them first).
// APPEND     the row's pick ids[row] joins its ring of recent tokens, the oldest leaving once
//            `window` are held.
// NaN logits are never chosen over numbers (a NaN compares false).
// SUBGROUP (with ARGMAX): the reduction in subgroupMax / subgroupMin instead of a
// barrier per halving (adapters with the subgroups feature); SUBGROUP_ENABLE adds the
// `enable subgroups;` browsers' compilers require (Deno's Naga does not parse it yet).

#ifdef SUBGROUP_ENABLE
enable subgroups;
#endif

#ifdef PENALIZE
struct Params {
  offset: u32,  // element offset of the row's logits
  row: u32,     // its ring: recent[row * max_window ..], ring[2 * row] (start, length)
  max_window: u32,
  window: u32,  // how many recent tokens count (repeat_last_n)
  repeat: f32,
  frequency: f32,
  presence: f32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;
@group(0) @binding(3) var<storage, read> recent: array<u32>;
@group(0) @binding(4) var<storage, read> ring: array<u32>;

fn recent_at(k: u32) -> u32 {
  let start = ring[2u * params.row];
  return recent[params.row * params.max_window + (start + k) % params.window];
}

// One invocation: a window holds at most 64 tokens, each counted once.
@compute @workgroup_size(1)
fn main() {
  let len = ring[2u * params.row + 1u];
  for (var k = 0u; k < len; k++) {
    let t = recent_at(k);
    var seen = false;
    for (var e = 0u; e < k; e++) {
      if (recent_at(e) == t) {
        seen = true;
        break;
      }
    }
    if (seen) {
      continue;
    }
    var count = 1u;
    for (var e = k + 1u; e < len; e++) {
      if (recent_at(e) == t) {
        count++;
      }
    }
    let v = logits[params.offset + t];
    let scaled = select(v * params.repeat, v / params.repeat, v > 0.0);
    work[params.offset + t] = scaled - f32(count) * params.frequency - params.presence;
  }
}
#else
#ifdef APPEND
struct Params {
  row: u32,
  max_window: u32,
  window: u32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> recent: array<u32>;
@group(0) @binding(3) var<storage, read_write> ring: array<u32>;

@compute @workgroup_size(1)
fn main() {
  let start = ring[2u * params.row];
  let len = ring[2u * params.row + 1u];
  let base = params.row * params.max_window;
  if (len < params.window) {
    recent[base + (start + len) % params.window] = ids[params.row];
    ring[2u * params.row + 1u] = len + 1u;
  } else {
    recent[base + start] = ids[params.row];
    ring[2u * params.row] = (start + 1u) % params.window;
  }
}
#else

#define WG 256
#define MAX_K 64

struct Params {
  n: u32,          // logits
  k: u32,          // TOP_K: how many (1 .. MAX_K)
  offset: u32,     // element offset of logit 0
  out_offset: u32, // slot of the first result in ids / vals
#ifdef SAMPLE
  temperature: f32, // > 0
  top_p: f32,       // 1: off
  min_p: f32,       // 0: off
  first_draw: u32,  // draws[first_draw + drawn[out_offset]] is the next draw
#endif
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
#ifdef SAMPLE
@group(0) @binding(3) var<storage, read> draws: array<f32>;
@group(0) @binding(4) var<storage, read_write> drawn: array<u32>;
// The top k, best first (lid 0 writes and reads them)
var<workgroup> cand_v: array<f32, {{MAX_K}}>;
var<workgroup> cand_i: array<u32, {{MAX_K}}>;
#else
#ifdef TOP_K
@group(0) @binding(3) var<storage, read_write> vals: array<f32>;
#endif
#endif

const NO_ID = 0xffffffffu;

var<workgroup> red_v: array<f32, {{WG}}>;
var<workgroup> red_i: array<u32, {{WG}}>;

// Is (av, ai) ahead of (bv, bi)? An empty slot (NO_ID) is behind everything.
fn ahead(av: f32, ai: u32, bv: f32, bi: u32) -> bool {
  if (ai == NO_ID) {
    return false;
  }
  if (bi == NO_ID) {
    return true;
  }
  return av > bv || (av == bv && ai < bi);
}

// Leaves the best of every invocation's (red_v, red_i) in slot 0.
fn reduce_best(lid: u32) {
  workgroupBarrier();
  for (var w = {{WG}}u / 2u; w > 0u; w >>= 1u) {
    if (lid < w && ahead(red_v[lid + w], red_i[lid + w], red_v[lid], red_i[lid])) {
      red_v[lid] = red_v[lid + w];
      red_i[lid] = red_i[lid + w];
    }
    workgroupBarrier();
  }
}

#ifdef TOP_K
@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_index) lid: u32) {
  let k = min(params.k, {{MAX_K}}u);
  var best_v: array<f32, {{MAX_K}}>;
  var best_i: array<u32, {{MAX_K}}>;
  var count = 0u;
  // Indices rise, so an equal value never displaces an earlier one.
  for (var i = lid; i < params.n; i += {{WG}}u) {
    let v = logits[params.offset + i];
    if (v != v) {
      continue; // NaN
    }
    if (count == k && !(v > best_v[k - 1u])) {
      continue;
    }
    var j = min(count, k - 1u);
    while (j > 0u && best_v[j - 1u] < v) {
      best_v[j] = best_v[j - 1u];
      best_i[j] = best_i[j - 1u];
      j--;
    }
    best_v[j] = v;
    best_i[j] = i;
    count = min(count + 1u, k);
  }

  var head = 0u;
  for (var r = 0u; r < k; r++) {
    if (head < count) {
      red_v[lid] = best_v[head];
      red_i[lid] = best_i[head];
    } else {
      red_v[lid] = 0.0;
      red_i[lid] = NO_ID;
    }
    reduce_best(lid);
    let win = red_i[0];
    if (lid == 0u) {
#ifdef SAMPLE
      cand_v[r] = red_v[0];
      cand_i[r] = win;
#else
      ids[params.out_offset + r] = win;
      vals[params.out_offset + r] = red_v[0];
#endif
    }
    if (head < count && best_i[head] == win) {
      head++;
    }
    workgroupBarrier(); // slot 0 is read by all before the next round writes
  }
#ifdef SAMPLE
  if (lid == 0u) {
    ids[params.out_offset] = draw_pick(k);
  }
#endif
}

#ifdef SAMPLE
// exp((v - max) / t), a candidate's weight in the draw (t = 1: in top-p)
fn weight(v: f32, max: f32, t: f32) -> f32 {
  return exp((v - max) / t);
}

// The sampler's truncate + draw over cand_v / cand_i [0, k) (sorted, NO_ID past the row).
fn draw_pick(k: u32) -> u32 {
  var n = 0u;
  while (n < k && cand_i[n] != NO_ID) {
    n++;
  }
  if (n == 0u) {
    return 0u;
  }
  let max = cand_v[0];
  if (params.top_p < 1.0) {
    // the shortest prefix whose softmax (over the top k) reaches top_p
    var sum = 0.0;
    for (var i = 0u; i < n; i++) {
      sum += weight(cand_v[i], max, 1.0);
    }
    var cum = 0.0;
    for (var i = 0u; i < n; i++) {
      cum += weight(cand_v[i], max, 1.0) / sum;
      if (cum >= params.top_p) {
        n = i + 1u;
        break;
      }
    }
  }
  if (params.min_p > 0.0) {
    // p >= min_p * p_max, i.e. logit >= max + ln(min_p): a prefix, the candidates being sorted
    let cut = max + log(params.min_p);
    var keep = 0u;
    for (var i = 0u; i < n; i++) {
      if (cand_v[i] >= cut) {
        keep = i + 1u;
      }
    }
    n = keep;
  }
  if (n == 1u) {
    return cand_i[0]; // a sure pick takes no draw
  }
  let t = params.temperature;
  var sum = 0.0;
  for (var i = 0u; i < n; i++) {
    sum += weight(cand_v[i], max, t);
  }
  let used = drawn[params.out_offset];
  drawn[params.out_offset] = used + 1u;
  var u = draws[params.first_draw + used] * sum;
  for (var i = 0u; i < n; i++) {
    u -= weight(cand_v[i], max, t);
    if (u < 0.0) {
      return cand_i[i];
    }
  }
  // Rounding left a sliver past the end: the last candidate with weight.
  for (var i = n; i > 0u; i--) {
    if (weight(cand_v[i - 1u], max, t) > 0.0) {
      return cand_i[i - 1u];
    }
  }
  return cand_i[0];
}
#endif

#else
#ifdef SUBGROUP
// (value, index) of the subgroup's best: the largest value, then the lowest index holding
// it; an empty lane holds (-inf, NO_ID), behind every number.
fn subgroup_best(v: f32, i: u32) -> vec2<u32> {
  let m = subgroupMax(v);
  return vec2<u32>(bitcast<u32>(m), subgroupMin(select(NO_ID, i, v == m)));
}

// Which invocations share a subgroup, and its size, are the implementation's choice: each
// subgroup leaves its best in its first lane's slot (the others empty), then every subgroup
// takes the best of all slots, each lane those a subgroup's width apart from its own index.
@compute @workgroup_size({{WG}})
fn main(
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_invocation_id) sid: u32,
  @builtin(subgroup_size) width: u32,
) {
  var inf_bits = 0xff800000u; // a var: WGSL refuses -inf as a constant
  let empty = bitcast<f32>(inf_bits); // -inf
  var bv = empty;
  var bi = NO_ID;
  for (var i = lid; i < params.n; i += {{WG}}u) {
    let v = logits[params.offset + i];
    if (ahead(v, i, bv, bi) && v == v) {
      bv = v;
      bi = i;
    }
  }
  let mine = subgroup_best(bv, bi);
  red_v[lid] = select(empty, bitcast<f32>(mine.x), sid == 0u);
  red_i[lid] = select(NO_ID, mine.y, sid == 0u);
  workgroupBarrier();
  var tv = empty;
  var ti = NO_ID;
  for (var j = sid; j < {{WG}}u; j += width) {
    if (ahead(red_v[j], red_i[j], tv, ti)) {
      tv = red_v[j];
      ti = red_i[j];
    }
  }
  let all = subgroup_best(tv, ti);
  if (lid == 0u) {
    ids[params.out_offset] = select(all.y, 0u, all.y == NO_ID);
  }
}
#else
@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_index) lid: u32) {
  var bv = 0.0;
  var bi = NO_ID;
  for (var i = lid; i < params.n; i += {{WG}}u) {
    let v = logits[params.offset + i];
    if (ahead(v, i, bv, bi) && v == v) {
      bv = v;
      bi = i;
    }
  }
  red_v[lid] = bv;
  red_i[lid] = bi;
  reduce_best(lid);
  if (lid == 0u) {
    ids[params.out_offset] = select(red_i[0], 0u, red_i[0] == NO_ID);
  }
}
#endif
#endif
#endif
#endif
