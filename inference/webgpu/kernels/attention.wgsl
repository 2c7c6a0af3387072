// Causal multi-head attention over a KV cache on the device. Two ops:
//
// KV_WRITE   copies new key rows and value rows into the cache (one
//            invocation per value).
//
// (default)  causal GQA attention: query head h reads kv head
//            h / (heads / kv_heads); scores scaled by `scale`. One workgroup
//            per (query, head): decode is one per head. The positions go by
//            in tiles of WG, one per invocation: scores, a tree reduction for
//            the tile's max, then an online softmax (the running sum and the
//            value accumulator are rescaled whenever the max grows, so no
//            score buffer the size of the context is needed and the
//            exponentials never overflow). Each invocation owns value dims
//            d = lid, lid + WG, ... of the accumulator. A `window` > 0 (gemma3's
//            local layers) leaves only the last `window` positions, the query's
//            own included. SINKS (gpt-oss): each head's softmax also counts a
//            logit sinks[h] that holds no value (ggml_soft_max_ext's sinks): the
//            running max starts at it and the running sum at exp(0) = 1.
//
// and two ways to address the rows:
//
// (default)  one sequence: n rows at positions pos0 .. pos0 + n - 1, read from
//            and written to strided views (offset, stride) of q / out / k / v;
//            query t sees cache positions 0 .. pos0 + t.
//
// ROWS       stacked rows of several sequences, each row t with its own cache
//            slot rows[2t] and position rows[2t + 1], packed q / out / k / v.
//            A layer's cache holds every slot: slot s owns cache rows
//            s * ctx .. (s + 1) * ctx - 1; row t sees positions 0 .. pos of
//            its slot and writes its key and value at slot * ctx + pos.
//
// A `ring` > 0 (a sliding-window layer's cache, inference/swa-cache.ts) holds
// position p at row p % ring: a ring of the window and the most rows one step
// adds keeps every position the step's rows see.

#define WG 64
#define MAX_HEAD_DIM 256
#define MAX_VALUE_DIM 256

// The cache row of position p: p itself, or p % ring in a ring layer's cache.
fn cache_row_of(p: u32) -> u32 {
  return select(p, p % max(params.ring, 1u), params.ring > 0u);
}

#ifdef KV_WRITE
#ifdef ROWS
struct Params {
  n: u32,     // rows
  k_dim: u32, // kv_heads * head_dim: one cache row of keys
  v_dim: u32, // kv_heads * value_dim
  ctx: u32,   // cache rows per slot
  ring: u32,  // 0, or the rows a ring layer's slot holds (its position p at p % ring)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> k_new: array<f32>; // (n, k_dim)
@group(0) @binding(3) var<storage, read> v_new: array<f32>; // (n, v_dim)
@group(0) @binding(4) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<f32>;
#else
struct Params {
  n: u32,         // new positions
  k_dim: u32,     // kv_heads * head_dim: one cache row of keys
  v_dim: u32,     // kv_heads * value_dim
  pos0: u32,
  k_offset: u32,  // element offset of the first new key row
  k_stride: u32,  // elements between new key rows
  v_offset: u32,
  v_stride: u32,
  ring: u32,      // 0, or the rows a ring layer holds (position p at row p % ring)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> k_new: array<f32>;
@group(0) @binding(2) var<storage, read> v_new: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;
#endif

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  let row_len = max(params.k_dim, params.v_dim);
  if (i >= params.n * row_len) {
    return;
  }
  let t = i / row_len;
  let j = i % row_len;
#ifdef ROWS
  let cache_row = rows[2u * t] * params.ctx + cache_row_of(rows[2u * t + 1u]);
  let k_src = t * params.k_dim;
  let v_src = t * params.v_dim;
#else
  let cache_row = cache_row_of(params.pos0 + t);
  let k_src = params.k_offset + t * params.k_stride;
  let v_src = params.v_offset + t * params.v_stride;
#endif
  if (j < params.k_dim) {
    k_cache[cache_row * params.k_dim + j] = k_new[k_src + j];
  }
  if (j < params.v_dim) {
    v_cache[cache_row * params.v_dim + j] = v_new[v_src + j];
  }
}

#else

#ifdef ROWS
struct Params {
  n: u32, // rows
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  value_dim: u32,
  ctx: u32, // cache rows per slot
  scale: f32,
  window: u32, // 0: every position; else the last `window` (sliding-window attention)
  ring: u32,   // 0, or the rows a ring layer holds (position p at row p % ring)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<f32>; // (n, heads * head_dim)
@group(0) @binding(3) var<storage, read> k_cache: array<vec4<f32>>; // (slots * ctx, kv_heads * head_dim)
@group(0) @binding(4) var<storage, read> v_cache: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>; // (n, heads * value_dim)
#ifdef SINKS
@group(0) @binding(6) var<storage, read> sinks: array<f32>; // (heads)
#endif
#else
struct Params {
  n: u32,          // query positions
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  value_dim: u32,
  pos0: u32,       // position of query 0; the cache holds 0 .. pos0 + n - 1
  q_offset: u32,   // element offset of query 0, head 0
  q_stride: u32,   // elements between queries
  out_offset: u32,
  out_stride: u32, // elements between output rows (heads * value_dim when packed)
  scale: f32,
  window: u32, // 0: every position; else the last `window` (sliding-window attention)
  ring: u32,   // 0, or the rows a ring layer holds (position p at row p % ring)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<vec4<f32>>; // (ctx, kv_heads * head_dim)
@group(0) @binding(3) var<storage, read> v_cache: array<vec4<f32>>; // (ctx, kv_heads * value_dim)
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#ifdef SINKS
@group(0) @binding(5) var<storage, read> sinks: array<f32>; // (heads)
#endif
#endif


const NONE = -3.0e38; // below any score; stands in for -inf

// The row after `row` in the layer's cache: a ring wraps to its first row.
fn next_row(row: u32) -> u32 {
  let next = row + 1u;
  return select(next, 0u, next == params.ring);
}

// Where query row t, head h reads and writes: its kv head, its first cache row,
// the positions it sees (lo .. len - 1), and its q and out offsets (elements).
struct Item {
  kvh: u32,
  first: u32,
  lo: u32,
  len: u32,
  qb: u32,
  ob: u32,
}

fn item_at(t: u32, h: u32) -> Item {
  let kvh = h / (params.heads / params.kv_heads);
  let hd = params.head_dim;
  let vd = params.value_dim;
#ifdef ROWS
  let first = rows[2u * t] * params.ctx; // the slot's cache row 0
  let len = rows[2u * t + 1u] + 1u;      // causal: positions 0 .. pos
  let qb = t * params.heads * hd + h * hd;
  let ob = t * params.heads * vd + h * vd;
#else
  let first = 0u;
  let len = params.pos0 + t + 1u; // causal: positions 0 .. pos0 + t
  let qb = params.q_offset + t * params.q_stride + h * hd;
  let ob = params.out_offset + t * params.out_stride + h * vd;
#endif
  var lo = 0u;
  if (params.window > 0u && len > params.window) {
    lo = len - params.window;
  }
  return Item(kvh, first, lo, len, qb, ob);
}

// Keys, values, the query and the accumulator go by vec4 (head and value dims
// are multiples of 4): on llvmpipe each storage load is a loop over the SIMD
// lanes, so a vec4 load costs about what a scalar one does.
#ifdef LANE
// One invocation per (query row, GH query heads that share a kv head), positions
// in order with an online softmax: no workgroup memory and no barriers. For
// llvmpipe, whose SIMD lanes are invocations and whose barriers switch between
// them: there the workgroup-per-head form spends most of its time in the
// reductions. What the host writes out (attention.ts laneCode), and why:
//   - the loops over head and value dims: a private array indexed by a loop
//     variable is a per-lane gather / scatter on llvmpipe, and a loop of 32
//     vec4s (head dim 128) is not unrolled there; written out, the query and
//     the accumulators are registers (or plain stack slots);
//   - GH > 1 (grouped-query attention, several rows' worth of lanes): each key
//     and value vec4 is loaded once for the GH heads that read it. Storage loads
//     are per-lane loops on llvmpipe and were most of the kernel's time.
// Each head's sums run in the same order whatever GH is: the outputs do not
// change with it.
@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let index = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  let groups = params.heads / {{GH}}u;
  if (index >= params.n * groups) {
    return;
  }
  let h0 = (index % groups) * {{GH}}u;
  let it = item_at(index / groups, h0);
  let k_row4 = params.kv_heads * {{HD4}}u;
  let v_row4 = params.kv_heads * {{VD4}}u;
  let hd = params.head_dim;
  let vd = params.value_dim;
  {{LANE_START}}
  var row = cache_row_of(it.lo);
  for (var p = it.lo; p < it.len; p++) {
    let kb = (it.first + row) * k_row4 + it.kvh * {{HD4}}u;
    let vb = (it.first + row) * v_row4 + it.kvh * {{VD4}}u;
    {{LANE_POSITION}}
    row = next_row(row);
  }
  {{LANE_END}}
}
#else
var<workgroup> q_sh: array<vec4<f32>, {{MAX_HEAD_DIM}} / 4>;
var<workgroup> acc: array<vec4<f32>, {{MAX_VALUE_DIM}} / 4>;
var<workgroup> weight: array<f32, {{WG}}>;
var<workgroup> red: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let item = wid.x + wid.y * nwg.x;
  if (item >= params.n * params.heads) {
    return;
  }
  let it = item_at(item / params.heads, item % params.heads);
  let kvh = it.kvh;
  let first = it.first;
  let len = it.len;
  let qb = it.qb;
  let ob = it.ob;
  let hd = params.head_dim;
  let vd = params.value_dim;
  let k_row = params.kv_heads * hd;
  let v_row = params.kv_heads * vd;
  let hd4 = hd / 4u;
  let vd4 = vd / 4u;
  for (var i = lid; i < hd4; i += {{WG}}u) {
    let b = qb + 4u * i;
    q_sh[i] = vec4<f32>(q[b], q[b + 1u], q[b + 2u], q[b + 3u]);
  }
  for (var d = lid; d < vd4; d += {{WG}}u) {
    acc[d] = vec4<f32>(0.0);
  }
  workgroupBarrier();

#ifdef SINKS
  var m = sinks[item % params.heads]; // running max, from the sink's logit
  var l = 1.0;                        // running sum of exp(score - m), the sink's included
#else
  var m = NONE; // running max
  var l = 0.0;  // running sum of exp(score - m)
#endif
  for (var start = it.lo; start < len; start += {{WG}}u) {
    let p = start + lid;
    var s = NONE;
    if (p < len) {
      let kb = ((first + cache_row_of(p)) * k_row + kvh * hd) / 4u;
      var sum = 0.0;
      for (var i = 0u; i < hd4; i++) {
        sum += dot(q_sh[i], k_cache[kb + i]);
      }
      s = sum * params.scale;
    }
    red[lid] = s;
    workgroupBarrier();
    for (var w = {{WG}}u / 2u; w > 0u; w >>= 1u) {
      if (lid < w) {
        red[lid] = max(red[lid], red[lid + w]);
      }
      workgroupBarrier();
    }
    let m_new = max(m, red[0]);
    workgroupBarrier(); // everyone has read red[0] before it is reused

    let e = select(0.0, exp(s - m_new), p < len);
    weight[lid] = e;
    red[lid] = e;
    workgroupBarrier();
    for (var w = {{WG}}u / 2u; w > 0u; w >>= 1u) {
      if (lid < w) {
        red[lid] += red[lid + w];
      }
      workgroupBarrier();
    }
    let corr = exp(m - m_new); // 0 on the first tile
    l = l * corr + red[0];
    m = m_new;

    let count = min({{WG}}u, len - start);
    for (var d = lid; d < vd4; d += {{WG}}u) {
      var a = acc[d] * corr;
      var row = cache_row_of(start);
      for (var j = 0u; j < count; j++) {
        a += weight[j] * v_cache[((first + row) * v_row + kvh * vd) / 4u + d];
        row = next_row(row);
      }
      acc[d] = a;
    }
    workgroupBarrier(); // weight and red are rewritten by the next tile
  }

  for (var d = lid; d < vd4; d += {{WG}}u) {
    let o = acc[d] / l;
    let b = ob + 4u * d;
    out[b] = o.x;
    out[b + 1u] = o.y;
    out[b + 2u] = o.z;
    out[b + 3u] = o.w;
  }
}
#endif // LANE
#endif
