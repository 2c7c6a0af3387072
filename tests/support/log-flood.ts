/**
 * Logs 10 MB through the command line's logger while its stderr is a pipe nobody reads, and
 * prints on stdout how often a 10 ms timer fired meanwhile: the event loop must keep turning
 * (a synchronous console.error blocks it once the 64 KiB pipe buffer is full).
 */
import { createLogger } from "../../cli/log.ts";

const log = createLogger("json");
let ticks = 0;
const ticker = setInterval(() => ticks++, 10);
const line = "x".repeat(1000);
const flood = setInterval(() => {
  for (let i = 0; i < 100; i++) log.info(line);
}, 10);
setTimeout(() => {
  clearInterval(ticker);
  clearInterval(flood);
  console.log(JSON.stringify({ ticks }));
  Deno.exit(0);
}, 1000);
