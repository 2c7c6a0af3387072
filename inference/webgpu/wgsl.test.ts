import assert from "node:assert/strict";
import { definesKey, loadWgslSync, preprocessWgsl } from "./wgsl.ts";

Deno.test("wgsl: #ifdef / #else / #define and {{NAME}}, host defines win, lines kept", () => {
  const src = [
    "#define WG 64",
    "#ifdef FAST",
    "fast {{WG}}",
    "#else",
    "slow {{WG}}",
    "#endif",
    "#ifndef FAST",
    "not fast",
    "#endif",
  ].join("\n");
  const slow = preprocessWgsl(src).split("\n");
  assert.equal(slow.length, 9); // directives become blank lines: shader errors keep their line
  assert.deepEqual(slow.filter((l) => l !== ""), ["slow 64", "not fast"]);
  const fast = preprocessWgsl(src, { FAST: true, WG: 8 }).split("\n").filter((l) => l !== "");
  assert.deepEqual(fast, ["fast 8"]);
  // false / null / undefined count as not defined
  assert.deepEqual(preprocessWgsl(src, { FAST: false }).split("\n").filter((l) => l), [
    "slow 64",
    "not fast",
  ]);
});

Deno.test("wgsl: clear errors for unbalanced blocks, unknown directives and names", () => {
  assert.throws(() => preprocessWgsl("#ifdef A\nx", {}, "k.wgsl"), /k.wgsl: 1 unclosed #ifdef/);
  assert.throws(() => preprocessWgsl("#endif", {}, "k.wgsl"), /k.wgsl:1: #endif without #ifdef/);
  assert.throws(() => preprocessWgsl("#pragma x", {}, "k.wgsl"), /k.wgsl:1: unknown directive/);
  assert.throws(() => preprocessWgsl("{{NOPE}}", {}, "k.wgsl"), /\{\{NOPE\}\} has no define/);
});

Deno.test("wgsl: #include splices a file from beside the including one, cycles are refused", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/common.wgsl`, "fn helper() -> u32 { return {{N}}u; }");
    Deno.writeTextFileSync(`${dir}/main.wgsl`, '#include "common.wgsl"\nfn main() {}');
    Deno.writeTextFileSync(`${dir}/a.wgsl`, '#include "b.wgsl"');
    Deno.writeTextFileSync(`${dir}/b.wgsl`, '#include "a.wgsl"');
    const out = loadWgslSync(new URL(`file://${dir}/main.wgsl`), { N: 3 });
    assert.equal(out, "fn helper() -> u32 { return 3u; }\nfn main() {}");
    assert.throws(
      () => loadWgslSync(new URL(`file://${dir}/a.wgsl`)),
      /#include cycle: .*a.wgsl -> .*b.wgsl -> .*a.wgsl/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("wgsl: definesKey is stable and drops what is not defined", () => {
  assert.equal(definesKey({ WG: 64, F16: true, X: false }), "F16=1,WG=64");
  assert.equal(definesKey({ F16: true, WG: 64 }), definesKey({ WG: 64, F16: true }));
});
