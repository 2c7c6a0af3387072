/** What many tests share: where the fixtures are, and running Grove as a process. */
import { fileURLToPath as fromFileUrl } from "node:url";
import { MODEL_PATH } from "./support/fixtures.ts";

export { fixturePath, MODEL_PATH, MODELS_DIR, STORIES } from "./support/fixtures.ts";

export const REPO_ROOT = fromFileUrl(new URL("../", import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main.ts` with the given arguments in a child Deno process. */
export async function runGrove(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}main.ts`, ...args],
    cwd: REPO_ROOT,
    env: { GROVE_MODEL_PATH: MODEL_PATH, NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
