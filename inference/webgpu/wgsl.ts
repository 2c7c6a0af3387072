/**
 * A tiny WGSL preprocessor so one .wgsl file serves all variants of an op:
 *   #define NAME [value]       (a define in the file itself)
 *   #ifdef NAME / #ifndef NAME / #else / #endif   (nestable)
 *   {{NAME}}                   replaced by the define's value
 *   #include "other.wgsl"      (loadWgsl only) that file's text, from beside this one
 * Defines passed by the host win over those in the file. A define whose
 * value is `false`, null or undefined counts as not defined.
 */

export type DefineValue = string | number | boolean | null | undefined;
export type Defines = Record<string, DefineValue>;

function isDefined(defines: Map<string, string>, name: string): boolean {
  return defines.has(name);
}

function normalize(defines: Defines): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of Object.entries(defines)) {
    if (value === false || value === null || value === undefined) continue;
    out.set(name, value === true ? "1" : String(value));
  }
  return out;
}

/** Expands the directives in `source` for `defines`; throws on unbalanced or unknown names. */
export function preprocessWgsl(source: string, defines: Defines = {}, label = "wgsl"): string {
  const env = normalize(defines);
  const hostNames = new Set(env.keys());
  const out: string[] = [];
  // Each frame: is this branch active, was the parent active, has #else been seen.
  const stack: { active: boolean; parent: boolean; sawElse: boolean }[] = [];
  const active = () => stack.length === 0 || stack[stack.length - 1].active;
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const m = /^\s*#(\w+)\s*(.*?)\s*$/.exec(line);
    if (!m) {
      if (active()) out.push(line);
      else out.push(""); // keep line numbers so shader errors point at the file
      continue;
    }
    const [, directive, rest] = m;
    const where = `${label}:${i + 1}`;
    switch (directive) {
      case "define": {
        const dm = /^(\w+)(?:\s+(.*))?$/.exec(rest);
        if (!dm) throw new Error(`${where}: bad #define "${rest}"`);
        if (active() && !hostNames.has(dm[1])) env.set(dm[1], dm[2] ?? "1");
        break;
      }
      case "ifdef":
      case "ifndef": {
        const has = isDefined(env, rest);
        const cond = directive === "ifdef" ? has : !has;
        const parent = active();
        stack.push({ active: parent && cond, parent, sawElse: false });
        break;
      }
      case "else": {
        const top = stack[stack.length - 1];
        if (!top || top.sawElse) throw new Error(`${where}: #else without #ifdef`);
        top.sawElse = true;
        top.active = top.parent && !top.active;
        break;
      }
      case "endif":
        if (!stack.pop()) throw new Error(`${where}: #endif without #ifdef`);
        break;
      default:
        throw new Error(`${where}: unknown directive #${directive}`);
    }
    out.push("");
  }
  if (stack.length > 0) throw new Error(`${label}: ${stack.length} unclosed #ifdef`);
  return out.join("\n").replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = env.get(name);
    if (value === undefined) throw new Error(`${label}: {{${name}}} has no define`);
    return value;
  });
}

const sources = new Map<string, string>();
const INCLUDE = /^\s*#include\s+"([\w.-]+)"\s*$/;

/**
 * The text of a .wgsl file (cached by URL), its `#include` lines replaced by
 * the files they name, which sit in the same folder and may include others.
 */
export function wgslSource(url: URL | string, from: string[] = []): string {
  const key = String(url);
  if (from.includes(key)) throw new Error(`#include cycle: ${[...from, key].join(" -> ")}`);
  const cached = sources.get(key);
  if (cached !== undefined) return cached;
  const text = Deno.readTextFileSync(url).split("\n").map((line) => {
    const m = INCLUDE.exec(line);
    return m ? wgslSource(new URL(m[1], url), [...from, key]) : line;
  }).join("\n");
  sources.set(key, text);
  return text;
}

function fileName(url: URL | string): string {
  const key = String(url);
  return key.slice(key.lastIndexOf("/") + 1);
}

/** Reads a .wgsl file and preprocesses it with `defines`. */
export function loadWgsl(url: URL | string, defines: Defines = {}): Promise<string> {
  return Promise.resolve().then(() => loadWgslSync(url, defines));
}

/** Synchronous twin of loadWgsl, for dispatchers that compile pipelines on first use. */
export function loadWgslSync(url: URL | string, defines: Defines = {}): string {
  return preprocessWgsl(wgslSource(url), defines, fileName(url));
}

/** A stable cache-key fragment for a define set, e.g. "F16=1,WG=64". */
export function definesKey(defines: Defines): string {
  return [...normalize(defines)].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([k, v]) => `${k}=${v}`).join(",");
}
