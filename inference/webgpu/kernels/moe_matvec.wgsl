// mul_mat_id: the matvec of each (row, choice) pair of a step with the expert its router chose,
// reading the expert from IDS on the device (no readback). Appended by moe-matvec.ts to
// matvec.wgsl's declarations and unit_dot (all of that file before its `fn finish`), so every
// weight type matvec reads is read here the same way. The weights are the experts stacked,
// expert e's rows at [e · expert_rows, (e + 1) · expert_rows) of the whole stack; a buffer holds
// whole experts [first_expert, first_expert + part_experts).
// Pair p reads x row p / x_pair_div (x_stride vec4s each) and writes y[p · expert_rows + r].

struct MoeParams {
  expert_rows: u32,
  first_expert: u32,
  part_experts: u32,
  x_pair_div: u32,
  x_stride: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

@group(0) @binding(5) var<uniform> M: MoeParams;
@group(0) @binding(6) var<storage, read> IDS: array<u32>;

// The first byte of row r of pair p's expert in this buffer, or 0xffffffff when the expert
// lives in another buffer.
fn pair_row_byte(p: u32, r: u32) -> u32 {
  let e = IDS[p];
  if (e < M.first_expert || e >= M.first_expert + M.part_experts) {
    return 0xffffffffu;
  }
  return ((e - M.first_expert) * M.expert_rows + r) * P.row_bytes;
}

#ifdef ROW_PER_THREAD
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  let p = gid.y;
  if (r >= M.expert_rows) {
    return;
  }
  let rb = pair_row_byte(p, r);
  if (rb == 0xffffffffu) {
    return;
  }
  let xv = P.x_offset + (p / M.x_pair_div) * M.x_stride;
  var acc = 0.0;
  for (var u = 0u; u < P.units; u++) {
    acc += unit_dot(rb, u, xv);
  }
  Y[P.y_offset + p * M.expert_rows + r] = acc;
}
#else
#ifdef SUBGROUP
// The default's layout, reduced with subgroup operations (matvec.wgsl's workgroup_sum).
@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(subgroup_invocation_id) sid: u32,
  @builtin(subgroup_size) width: u32,
) {
  let r = wid.x;
  let p = wid.y;
  let rb = pair_row_byte(p, r);
  if (r >= M.expert_rows || rb == 0xffffffffu) {
    return; // uniform across the workgroup
  }
  let xv = P.x_offset + (p / M.x_pair_div) * M.x_stride;
  var acc = 0.0;
  for (var u = lid; u < P.units; u += {{WG}}u) {
    acc += unit_dot(rb, u, xv);
  }
  let total = workgroup_sum(acc, lid, sid, width);
  if (lid == 0u) {
    Y[P.y_offset + p * M.expert_rows + r] = total;
  }
}
#else
var<workgroup> partial: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x;
  let p = wid.y;
  // r, p and the expert are uniform across the workgroup, so the early returns keep
  // barriers uniform.
  let rb = pair_row_byte(p, r);
  if (r >= M.expert_rows || rb == 0xffffffffu) {
    return;
  }
  let xv = P.x_offset + (p / M.x_pair_div) * M.x_stride;
  var acc = 0.0;
  for (var u = lid; u < P.units; u += {{WG}}u) {
    acc += unit_dot(rb, u, xv);
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = {{WG}}u / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    Y[P.y_offset + p * M.expert_rows + r] = partial[0];
  }
}
#endif
#endif
