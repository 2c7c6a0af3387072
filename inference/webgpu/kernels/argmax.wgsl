// Greedy and top-k selection over a logits row, so decode reads back a few
// bytes instead of the whole vocabulary. One workgroup; order is by value,
// then by lower index (ties go to the lowest index, as the CPU sampler does).
//
// (default)  ARGMAX: ids[out_offset] = index of the largest logit.
// TOP_K      ids[out_offset + r], vals[out_offset + r] for r < k: the k best in
//            order. Each invocation keeps a sorted list of its own k best (its
//            strided share of the row), then k rounds of a tree reduction over
//            the invocations' list heads merge them; the winner pops its head.
// NaN logits are never chosen over numbers (a NaN compares false).
// SUBGROUP (with ARGMAX): the reduction in subgroupMax / subgroupMin instead of a
// barrier per halving (adapters with the subgroups feature); SUBGROUP_ENABLE adds the
// `enable subgroups;` browsers' compilers require (Deno's Naga does not parse it yet).

#ifdef SUBGROUP_ENABLE
enable subgroups;
#endif

#define WG 256
#define MAX_K 64

struct Params {
  n: u32,          // logits
  k: u32,          // TOP_K: how many (1 .. MAX_K)
  offset: u32,     // element offset of logit 0
  out_offset: u32, // slot of the first result in ids / vals
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
#ifdef TOP_K
@group(0) @binding(3) var<storage, read_write> vals: array<f32>;
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
      ids[params.out_offset + r] = win;
      vals[params.out_offset + r] = red_v[0];
    }
    if (head < count && best_i[head] == win) {
      head++;
    }
    workgroupBarrier(); // slot 0 is read by all before the next round writes
  }
}

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
