/**
 * The import graph against the rules docs/architecture.md writes down. The rules are read from
 * that page's `rules` and `faces` blocks, never copied here, so the page and this test cannot
 * drift: changing what may import what means changing the page.
 *
 * Walked: every .ts file outside tests/, node_modules/ and dot folders, that is product files and
 * their colocated tests, main.ts and cli/ included. Read: the relative specifiers of static
 * imports and re-exports (`import … from`, `import "…"`, `export … from`) and of dynamic
 * `import("…")`. deno fmt puts every static import and re-export at the start of a line, which is
 * what keeps this parser small; its own test below pins what it catches.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DOC = "docs/architecture.md";

/** The folder a repository path belongs to: its first segment; main.ts is cli's face. */
function folderOf(path: string): string {
  return path === "main.ts" ? "cli" : path.split("/")[0];
}

const isTest = (path: string) => path.endsWith(".test.ts");

// --- The rules, from the page ---

interface Rule {
  /** A folder, or "product": every file that is not a test. */
  from: string;
  to: string[];
  line: string;
}

/** The lines of the page's fenced block whose info string is `name`. */
function fencedBlock(markdown: string, name: string): string[] {
  const match = new RegExp("^```" + name + "\\s*\\n([\\s\\S]*?)^```", "m").exec(markdown);
  if (!match) throw new Error(`${DOC} has no \`\`\`${name} block`);
  return match[1].split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

export function parseRules(markdown: string): Rule[] {
  return fencedBlock(markdown, "rules").map((line) => {
    const m = /^([\w-]+)\s*↛\s*(.+)$/.exec(line);
    if (!m) throw new Error(`${DOC}: a rule reads "FOLDER ↛ FOLDER, FOLDER", not "${line}"`);
    return { from: m[1], to: m[2].split(",").map((s) => s.trim()), line };
  });
}

/** Paths (a trailing `/*` covers a folder) other folders may import besides a `mod.ts`. */
export function parseFaces(markdown: string): string[] {
  return fencedBlock(markdown, "faces").map((line) => line.split(/\s+/)[0]);
}

// --- The imports, from the files ---

const STATIC_IMPORT = /^import\s[^;'"]*?\bfrom\s*(["'])([^"'\n]+)\1/gm;
const BARE_IMPORT = /^import\s*(["'])([^"'\n]+)\1/gm;
const RE_EXPORT = /^export\s+(?:type\s+)?[*{][^;'"]*?\bfrom\s*(["'])([^"'\n]+)\1/gm;
const DYNAMIC_IMPORT = /\bimport\s*\(\s*(["'])([^"'\n]+)\1\s*\)/g;
/** Whole-line comments: a dynamic import named in a comment is no edge. */
const COMMENT_LINE = /^\s*(\/\/|\/\*|\*).*$/gm;

/** The relative specifiers a source file imports, in order of appearance per kind. */
export function relativeImports(source: string): string[] {
  const code = source.replace(COMMENT_LINE, "");
  const found: string[] = [];
  for (const pattern of [STATIC_IMPORT, BARE_IMPORT, RE_EXPORT, DYNAMIC_IMPORT]) {
    for (const m of code.matchAll(pattern)) {
      if (m[2].startsWith("./") || m[2].startsWith("../")) found.push(m[2]);
    }
  }
  return found;
}

interface Edge {
  from: string;
  to: string;
}

async function sourceFiles(dir = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(join(ROOT, dir))) {
    const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory) {
      if (entry.name.startsWith(".") || path === "node_modules" || path === "tests") continue;
      files.push(...await sourceFiles(path));
    } else if (entry.isFile && entry.name.endsWith(".ts")) {
      files.push(path);
    }
  }
  return files.sort();
}

async function importGraph(): Promise<{ files: string[]; edges: Edge[] }> {
  const files = await sourceFiles();
  const edges: Edge[] = [];
  for (const file of files) {
    for (const spec of relativeImports(await Deno.readTextFile(join(ROOT, file)))) {
      const to = normalize(join(dirname(file), spec)).split("\\").join("/");
      if (to.startsWith("..")) throw new Error(`${file} imports ${spec}, outside the repository`);
      edges.push({ from: file, to });
    }
  }
  return { files, edges };
}

const doc = await Deno.readTextFile(join(ROOT, DOC));
const graph = await importGraph();
const crossing = graph.edges.filter((e) => folderOf(e.from) !== folderOf(e.to));
const folders = [...new Set(graph.files.map(folderOf))];

// --- The tests ---

Deno.test("architecture: the import parser reads every form of import and skips comments", () => {
  const source = [
    'import assert from "node:assert/strict";',
    'import { a, type B } from "./a.ts";',
    "import {",
    "  c,",
    "  d,",
    '} from "../c/mod.ts";',
    'import type { E } from "../e/mod.ts";',
    'import * as f from "./f.ts";',
    'import "./side-effect.ts";',
    'export { g } from "./g.ts";',
    'export type { H } from "../h/mod.ts";',
    'export * from "./star.ts";',
    "export {",
    "  i,",
    '} from "./i.ts";',
    "// the relay's module (relay/mod.ts) is loaded on demand:",
    '// const old = await import("../commented/out.ts");',
    ' * import { j } from "./in-a-doc-comment.ts";',
    'const relay = await (await import("./cli/relay.ts")).relayCommand(rest);',
    'const note = "data from the relay";',
    'export function k() { return "from \\"./not-an-import.ts\\""; }',
  ].join("\n");
  assert.deepEqual(relativeImports(source), [
    "./a.ts",
    "../c/mod.ts",
    "../e/mod.ts",
    "./f.ts",
    "./side-effect.ts",
    "./g.ts",
    "../h/mod.ts",
    "./star.ts",
    "./i.ts",
    "./cli/relay.ts",
  ]);
});

Deno.test("architecture: the rules name folders that exist, and the walk sees the whole program", () => {
  const rules = parseRules(doc);
  assert.ok(rules.length >= 6, `${DOC} has ${rules.length} rules`);
  const known = new Set([...folders, "tests", "product"]);
  for (const rule of rules) {
    for (const name of [rule.from, ...rule.to]) {
      assert.ok(known.has(name), `${DOC}: "${rule.line}" names ${name}, which is no folder`);
    }
  }
  for (const face of parseFaces(doc)) {
    const path = face.replace(/\/\*$/, "");
    assert.ok(
      graph.files.includes(path) || Deno.statSync(join(ROOT, path)).isDirectory,
      `${DOC}: the face ${face} does not exist`,
    );
  }
  for (const folder of ["cli", "relay", "mesh", "web", "inference", "models", "protocol"]) {
    assert.ok(folders.includes(folder), `the walk found no file in ${folder}/`);
  }
  assert.ok(graph.files.includes("main.ts"), "the walk did not see main.ts");
  // main.ts → cli/ (dynamic imports included), cli/ → every folder: a parser that reads
  // nothing would pass every rule; this one must see the program's real edges.
  assert.ok(graph.edges.some((e) => e.from === "main.ts" && e.to === "cli/relay-command.ts"));
  assert.ok(crossing.length > 50, `only ${crossing.length} imports cross folders`);
});

Deno.test("architecture: no file imports across an edge the rules forbid", () => {
  const rules = parseRules(doc);
  const broken: string[] = [];
  for (const edge of crossing) {
    for (const rule of rules) {
      const applies = rule.from === "product"
        ? !isTest(edge.from)
        : rule.from === folderOf(edge.from);
      if (applies && rule.to.includes(folderOf(edge.to))) {
        broken.push(`${edge.from} imports ${edge.to}, against "${rule.line}"`);
      }
    }
  }
  assert.deepEqual(
    broken,
    [],
    `forbidden imports (the rules are in ${DOC}):\n${broken.join("\n")}`,
  );
});

Deno.test("architecture: other folders import a folder only through its faces", () => {
  const faces = parseFaces(doc);
  const isFace = (path: string) =>
    /^[^/]+\/mod\.ts$/.test(path) ||
    faces.some((f) => f.endsWith("/*") ? path.startsWith(f.slice(0, -1)) : path === f);
  const broken = crossing
    .filter((e) => !isFace(e.to))
    .map((e) => `${e.from} imports ${e.to}: not ${folderOf(e.to)}/mod.ts nor a face in ${DOC}`);
  assert.deepEqual(broken, [], `imports past a folder's face:\n${broken.join("\n")}`);
});

Deno.test("architecture: the folders' import graph has no cycle", () => {
  const deps = new Map<string, Set<string>>();
  for (const e of crossing) {
    if (!deps.has(folderOf(e.from))) deps.set(folderOf(e.from), new Set());
    deps.get(folderOf(e.from))!.add(folderOf(e.to));
  }
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (folder: string, path: string[]) => {
    if (state.get(folder) === "done") return;
    if (state.get(folder) === "open") {
      cycles.push([...path.slice(path.indexOf(folder)), folder].join(" → "));
      return;
    }
    state.set(folder, "open");
    for (const next of deps.get(folder) ?? []) visit(next, [...path, folder]);
    state.set(folder, "done");
  };
  for (const folder of deps.keys()) visit(folder, []);
  assert.deepEqual(cycles, [], `folders import each other in a circle:\n${cycles.join("\n")}`);
});
