// mul_mat_id for a prefill step: for each expert, the (row, choice) pairs routed to it (moe.wgsl
// GROUP's COUNTS and LISTS) in tiles of TILE, so each of the expert's weight units is read and
// decoded once per tile instead of once per pair. Appended by moe-matvec.ts to matmul.wgsl's
// declarations and decode_unit (all of that file before its entry point). The grid's z is the
// expert within this buffer (first_expert + z), y the tile of its pairs, x its row.
// Pair p reads x row p / x_pair_div (x_stride vec4s each) and writes y[p · expert_rows + r].

struct MoeParams {
  expert_rows: u32,
  first_expert: u32,
  part_experts: u32,
  x_pair_div: u32,
  x_stride: u32,
  list_stride: u32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(5) var<uniform> M: MoeParams;
@group(0) @binding(6) var<storage, read> COUNTS: array<u32>;
@group(0) @binding(7) var<storage, read> LISTS: array<u32>;

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  let e = M.first_expert + gid.z;
  let count = COUNTS[e];
  let t0 = gid.y * {{TILE}}u;
  if (r >= M.expert_rows || t0 >= count) {
    return;
  }
  let list = e * M.list_stride;
  // Pairs past the count reuse the last one's x so loads stay in bounds; their sums are dropped.
  var xrow: array<u32, {{TILE}}>;
  for (var k = 0u; k < {{TILE}}u; k++) {
    xrow[k] = (LISTS[list + min(t0 + k, count - 1u)] / M.x_pair_div) * M.x_stride;
  }
  var acc: array<f32, {{TILE}}>;
  let rb = (gid.z * M.expert_rows + r) * P.row_bytes;
  for (var u = 0u; u < P.units; u++) {
    decode_unit(rb, u);
    let xu = u * {{UNIT_VEC4}}u;
    for (var k = 0u; k < {{TILE}}u; k++) {
      var s = 0.0;
      for (var i = 0u; i < {{UNIT_VEC4}}u; i++) {
        s += dot(dq[i], X[xrow[k] + xu + i]);
      }
      acc[k] += s;
    }
  }
  for (var k = 0u; k < {{TILE}}u; k++) {
    if (t0 + k < count) {
      Y[LISTS[list + t0 + k] * M.expert_rows + r] = acc[k];
    }
  }
}
