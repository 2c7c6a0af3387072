/**
 * The lane layout of attention.wgsl (llvmpipe): its per-position code written out for one head
 * shape, and how many query heads one invocation takes. With grouped-query attention the heads
 * of a kv head read the same keys and values; one invocation for all of them loads each once.
 * On llvmpipe, where every storage load is a loop over the SIMD lanes, that (with the code
 * written out) took the 1.1B model's attention (16 heads over 4 kv heads, head dim 128) from
 * 1.6–2.5 ms to 0.47–0.52 ms a layer for 16 rows at 37 positions, the outputs bit for bit the
 * same. It needs lanes to spare: a single row's 4 kv heads would leave one SIMD register half
 * empty and the other core idle, so below GROUP_FROM_LANES it runs a head per invocation.
 */
import type { BoundKernel } from "./bound-kernel.ts";

/** Invocations per workgroup: one llvmpipe SIMD register of lanes. */
export const LANE_WG = 8;
/** Invocations from which one takes a whole GQA group: two SIMD registers, one per core here. */
const GROUP_FROM_LANES = 16;
/** The most query heads × head-dim vec4s one invocation holds (its registers and code size). */
const MAX_GROUP_VEC4 = 256;

export interface LaneShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  valueDim: number;
}

/** Query heads per invocation when grouped: the GQA group, or 1 where that is too large. */
export function laneGroup(s: LaneShape): number {
  const group = s.heads / s.kvHeads;
  return group > 1 && group * (s.headDim / 4) <= MAX_GROUP_VEC4 ? group : 1;
}

/** Query heads per invocation for `n` rows: the group once its invocations fill the lanes. */
export function laneHeadsFor(s: LaneShape, n: number): number {
  const group = laneGroup(s);
  return group > 1 && n * s.kvHeads >= GROUP_FROM_LANES ? group : 1;
}

function lines<T>(count: number, line: (i: number) => T): T[] {
  return Array.from({ length: count }, (_, i) => line(i));
}

/**
 * The written-out parts of the lane kernel for `gh` heads per invocation (head h0 + g, its
 * query at q[it.qb + g * hd ..]): LANE_START (queries, accumulators, softmax state),
 * LANE_POSITION (one cache position: scores and the online softmax per head, then the values)
 * and LANE_END (the outputs). Each head's arithmetic is in the order the loops had.
 */
export function laneCode(gh: number, s: Pick<LaneShape, "headDim" | "valueDim">, sinks: boolean) {
  const hd4 = s.headDim / 4, vd4 = s.valueDim / 4;
  const heads = lines(gh, (g) => g);
  // element c of head h0 + g's query
  const q = (g: number, c: number) => `q[it.qb + ${g}u * hd + ${c}u]`;
  const start = heads.flatMap((g) => [
    ...lines(hd4, (i) => {
      const parts = [0, 1, 2, 3].map((c) => q(g, 4 * i + c));
      return `let q${g}_${i} = vec4<f32>(${parts.join(", ")});`;
    }),
    ...lines(vd4, (d) => `var a${g}_${d} = vec4<f32>(0.0);`),
    // the running max and sum; a sink (gpt-oss) starts them at its logit and exp(0)
    sinks ? `var m${g} = sinks[h0 + ${g}u];` : `var m${g} = NONE;`,
    sinks ? `var l${g} = 1.0;` : `var l${g} = 0.0;`,
  ]);
  const position = [
    ...lines(hd4, (i) => `let k${i} = k_cache[kb + ${i}u];`),
    ...heads.flatMap((g) => [
      `var dot${g} = 0.0;`,
      ...lines(hd4, (i) => `dot${g} += dot(q${g}_${i}, k${i});`),
      `let s${g} = dot${g} * params.scale;`,
      `let m_new${g} = max(m${g}, s${g});`,
      `let corr${g} = exp(m${g} - m_new${g}); // 0 at the first position`,
      `let e${g} = exp(s${g} - m_new${g});`,
      `l${g} = l${g} * corr${g} + e${g};`,
      `m${g} = m_new${g};`,
    ]),
    ...lines(vd4, (d) =>
      [
        `{`,
        `  let v = v_cache[vb + ${d}u];`,
        ...heads.map((g) => `  a${g}_${d} = a${g}_${d} * corr${g} + e${g} * v;`),
        `}`,
      ].join("\n    ")),
  ];
  const end = heads.flatMap((g) =>
    lines(vd4, (d) =>
      `{ let o = a${g}_${d} / l${g}; let b = it.ob + ${g}u * vd + ${4 * d}u; ` +
      `out[b] = o.x; out[b + 1u] = o.y; out[b + 2u] = o.z; out[b + 3u] = o.w; }`)
  );
  return {
    GH: gh,
    LANE_START: start.join("\n  "),
    LANE_POSITION: position.join("\n    "),
    LANE_END: end.join("\n  "),
  };
}

/** The code strings are generated from the other defines: keep them out of pipeline keys. */
export const LANE_GENERATED = { LANE_START: false, LANE_POSITION: false, LANE_END: false };

/**
 * A lane kernel bound twice, a head per invocation and a GQA group per invocation (where the
 * shape has one), each dispatch taking the one `laneHeadsFor` picks for its row count.
 */
export function bindLaneChoice<P extends LaneShape & { n: number }>(
  bind: (gh: number) => BoundKernel<P>,
  params: P,
): BoundKernel<P> {
  const perHead = bind(1);
  const group = laneGroup(params);
  const grouped = group > 1 ? bind(group) : undefined;
  const pick = (p: P) => (laneHeadsFor(p, p.n) > 1 && grouped) || perHead;
  let current = pick(params);
  return {
    encode: (pass) => current.encode(pass),
    update(p) {
      current = pick(p);
      current.update(p);
    },
    destroy() {
      perHead.destroy();
      grouped?.destroy();
    },
  };
}
