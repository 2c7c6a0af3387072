/**
 * A bench part measured in its own Deno process (a clean heap, and a crash or hang cannot take
 * the bench down): runs `script` with `args`, `input` on its stdin if given, and returns the
 * JSON its last stdout line holds; a failure throws its stderr's last lines (table-safe).
 */
export async function runChildJson<T>(
  script: string,
  args: string[],
  input?: string,
  timeoutMs = 600_000,
): Promise<T> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).spawn();
  if (input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
    throw new Error(err.replace(/\|/g, "/").slice(0, 200));
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  return JSON.parse(text.split("\n").pop()!) as T;
}
