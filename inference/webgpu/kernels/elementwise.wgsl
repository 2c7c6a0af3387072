// Element-wise ops on f32, one value per invocation, in place on `a`:
//   ADD       a[i] += b[i]                      residual add (n values)
//   ADD_BIAS  a[i] += b[i % width]              a bias on each row of width values
//   SWIGLU    a[i] = silu(a[i]) * b[i]          gate a, up b: silu(g) * u
//   GEGLU     a[i] = gelu(a[i]) * b[i]          gemma3: ggml's CPU GELU, whose f16 table
//                                               takes the input and gives the result in f16
//   SCALE     a[i] *= s                         gemma3's embedding scale
//   SOFTCAP   a[i] = s * tanh(a[i] / s)         final logit soft-capping at s
// Offsets let the rows live inside wider buffers (e.g. gate and up in one).
// VEC4: every count and offset is in vec4s (the host checks they divide by 4):
// on llvmpipe each storage access is a loop over the SIMD lanes, so a vec4 costs
// about what one f32 does.

#define WG 256
#ifdef VEC4
alias V = vec4<f32>;
#else
alias V = f32;
#endif

struct Params {
  n: u32,        // values to update
  width: u32,    // bias length (ADD_BIAS)
  a_offset: u32, // elements
  b_offset: u32, // elements
  s: f32,        // SCALE, SOFTCAP
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> a: array<V>;
@group(0) @binding(2) var<storage, read> b: array<V>;

#ifdef GEGLU
// f16 rounding; below the smallest normal half (2^-14) quantizeToF16 may flush to 0 where
// ggml keeps a subnormal, so tiny values stay as they are (within 2^-25 of ggml's).
fn to_f16(x: V) -> V {
  return select(quantizeToF16(x), x, abs(x) < V(6.103515625e-5));
}
#endif

@compute @workgroup_size({{WG}})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * {{WG}}u + lid;
  if (i >= params.n) {
    return;
  }
  let ai = params.a_offset + i;
#ifdef ADD
  a[ai] = a[ai] + b[params.b_offset + i];
#endif
#ifdef ADD_BIAS
  a[ai] = a[ai] + b[params.b_offset + i % params.width];
#endif
#ifdef SWIGLU
  let g = a[ai];
  a[ai] = g / (1.0 + exp(-g)) * b[params.b_offset + i];
#endif
#ifdef GEGLU
  let x = a[ai];
  let xh = to_f16(clamp(x, V(-10.0), V(10.0)));
  let t = tanh(0.79788456080286535587989211986876 * xh * (1.0 + 0.044715 * xh * xh));
  let gelu = to_f16(0.5 * xh * (1.0 + t));
  // At or past ±10 ggml skips the table: 0 below, the input itself above.
  let y = select(gelu, x, x >= V(10.0)) * b[params.b_offset + i];
  a[ai] = select(y, V(0.0), x <= V(-10.0));
#endif
#ifdef SCALE
  a[ai] = a[ai] * params.s;
#endif
#ifdef SOFTCAP
  a[ai] = params.s * tanh(a[ai] * (1.0 / params.s));
#endif
}
