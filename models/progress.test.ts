import assert from "node:assert/strict";
import type { DownloadProgress } from "./download.ts";
import {
  createProgressReporter,
  formatDuration,
  formatMiB,
  formatProgressLine,
  renderBar,
} from "./progress.ts";

const MIB = 1024 * 1024;
const URL_ = "https://example.test/m.gguf";
const at = (received: number, done = false, resumedFrom = 0): DownloadProgress => ({
  url: URL_,
  received,
  total: 100 * MIB,
  resumedFrom,
  done,
});

function fakeClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("progress: formatting of sizes, durations and the line", () => {
  assert.equal(formatMiB(1.5 * MIB), "1.5 MiB");
  assert.equal(formatDuration(65), "1:05");
  assert.equal(formatDuration(3723), "1:02:03");
  assert.equal(formatDuration(Infinity), "--:--");
  assert.equal(
    formatProgressLine(25 * MIB, 100 * MIB, 5 * MIB),
    "25% 25.0/100.0 MiB 5.0 MiB/s ETA 0:15",
  );
  assert.equal(formatProgressLine(3 * MIB, undefined, 1 * MIB), "3.0 MiB 1.0 MiB/s");
  assert.equal(renderBar(at(50 * MIB), 10), "[#####-----]");
});

Deno.test("progress: without a terminal, plain lines every few seconds", () => {
  const clock = fakeClock();
  const out: string[] = [];
  const report = createProgressReporter({
    label: "m.gguf",
    isTty: false,
    write: (s) => out.push(s),
    now: clock.now,
  });
  report(at(0));
  clock.advance(1000);
  report(at(10 * MIB)); // too soon for another line
  clock.advance(4000);
  report(at(50 * MIB)); // 5 s in: 10 MiB/s, 5 s to go
  clock.advance(5000);
  report(at(100 * MIB, true));
  report(at(100 * MIB, true)); // nothing after done
  assert.deepEqual(out, [
    `m.gguf: downloading (100.0 MiB) from ${URL_}\n`,
    "m.gguf: 50% 50.0/100.0 MiB 10.0 MiB/s ETA 0:05\n",
    "m.gguf: done, 100.0 MiB in 0:10\n",
  ]);
  assert.ok(out.every((line) => !line.includes("\r")));
});

Deno.test("progress: the speed ignores bytes resumed from an earlier try", () => {
  const clock = fakeClock();
  const out: string[] = [];
  const report = createProgressReporter({
    label: "m",
    isTty: false,
    write: (s) => out.push(s),
    now: clock.now,
  });
  report(at(80 * MIB, false, 80 * MIB));
  clock.advance(5000);
  report(at(90 * MIB, false, 80 * MIB));
  assert.match(out[0], /resuming at 80\.0 MiB/);
  assert.equal(out[1], "m: 90% 90.0/100.0 MiB 2.0 MiB/s ETA 0:05\n");
});

Deno.test("progress: on a terminal, a redrawn bar ending with a newline", () => {
  const clock = fakeClock();
  const out: string[] = [];
  const report = createProgressReporter({
    label: "m",
    isTty: true,
    write: (s) => out.push(s),
    now: clock.now,
    barWidth: 10,
  });
  report(at(0));
  clock.advance(50);
  report(at(1 * MIB)); // within the redraw interval: skipped
  clock.advance(950);
  report(at(20 * MIB));
  report(at(100 * MIB, true));
  assert.equal(out.length, 3);
  assert.ok(out.every((s) => s.startsWith("\r\x1b[2Km [")));
  assert.ok(out[1].includes("[##--------] 20% 20.0/100.0 MiB 20.0 MiB/s ETA 0:04"), out[1]);
  assert.ok(out[2].includes("[##########] 100%") && out[2].endsWith("\n"), out[2]);
  assert.ok(!out[1].endsWith("\n"));
});
