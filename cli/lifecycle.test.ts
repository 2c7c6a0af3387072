import assert from "node:assert/strict";
import { createLineWriter, findLaunchers, isLauncher, type ProcessInfo } from "./lifecycle.ts";

Deno.test("lifecycle: launchers are deno task and npm's exec, not shells or plain programs", () => {
  assert.ok(isLauncher(["deno", "task", "serve"]));
  assert.ok(isLauncher(["/work/node_modules/.bin/deno", "task", "serve", "--gpu"]));
  assert.ok(isLauncher(["npm exec deno task serve"])); // npm rewrites its title
  assert.ok(isLauncher(["node", "/usr/lib/node_modules/npm/bin/npx-cli.js", "deno", "task"]));
  assert.ok(!isLauncher(["bash"]));
  assert.ok(!isLauncher(["/usr/bin/deno", "run", "-A", "main.ts", "serve"]));
  assert.ok(!isLauncher(["systemd", "--user"]));
});

Deno.test("lifecycle: the launcher chain runs up through shells and stops at the first other", () => {
  const table: Record<number, ProcessInfo> = {
    10: { pid: 10, ppid: 9, state: "S", startTime: "1", cmdline: ["deno", "task", "serve"] },
    9: {
      pid: 9,
      ppid: 8,
      state: "S",
      startTime: "1",
      cmdline: ["sh", "-c", "npx deno task serve"],
    },
    8: { pid: 8, ppid: 7, state: "S", startTime: "1", cmdline: ["npm exec deno task serve"] },
    7: { pid: 7, ppid: 1, state: "S", startTime: "1", cmdline: ["bash"] },
    20: { pid: 20, ppid: 7, state: "S", startTime: "1", cmdline: ["sh", "-c", "deno run main.ts"] },
  };
  assert.deepEqual(findLaunchers(10, (pid) => table[pid]).map((p) => p.pid), [10, 9, 8]);
  // A shell alone is not a launcher: a node started from a terminal is not tied to it.
  assert.deepEqual(findLaunchers(20, (pid) => table[pid]), []);
  assert.deepEqual(findLaunchers(7, (pid) => table[pid]), []);
});

Deno.test("lifecycle: a line writer whose sink never finishes queues a bounded amount", async () => {
  const written: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const sink = {
    async write(p: Uint8Array) {
      await gate;
      written.push(new TextDecoder().decode(p));
      return p.length;
    },
  };
  const w = createLineWriter(sink, 100);
  for (let i = 0; i < 50; i++) w.write(`line ${i}`); // returns at once every time
  release();
  await w.flush(1000);
  const text = written.join("");
  assert.match(text, /^line 0\n/);
  // The first line went to the sink at once; the queue held about 100 bytes of the rest.
  assert.ok(text.split("\n").filter((l) => l.startsWith("line")).length < 20, text);
  assert.match(text, /\(\d+ log lines dropped: the log reader fell behind\)\n$/);
});

Deno.test("lifecycle: a broken sink (no reader) ends writing without throwing", async () => {
  let calls = 0;
  const w = createLineWriter({
    write() {
      calls++;
      return Promise.reject(new Error("Broken pipe"));
    },
  });
  w.write("a");
  await w.flush(100);
  w.write("b");
  await w.flush(100);
  assert.equal(calls, 1);
});
