/** A process's memory as Linux reports it in /proc/PID/status, in KiB. */
export function memoryKiB(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
  if (kib === undefined) throw new Error(`no ${field} for process ${pid}`);
  return Number(kib);
}

/** The process ids of `pid` and all its descendants (children of every thread), `pid` first. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[];
    try {
      tasks = [...Deno.readDirSync(`/proc/${out[i]}/task`)].map((e) => e.name);
    } catch {
      continue; // it ended meanwhile
    }
    for (const tid of tasks) {
      let children = "";
      try {
        children = Deno.readTextFileSync(`/proc/${out[i]}/task/${tid}/children`);
      } catch {
        continue;
      }
      for (const c of children.trim().split(/\s+/)) if (c) out.push(Number(c));
    }
  }
  return out;
}

/** `field` summed over `pid` and its descendants (a process that ended meanwhile counts 0). */
export function treeMemoryKiB(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      sum += memoryKiB(p, field);
    } catch {
      // ended between the listing and the read
    }
  }
  return sum;
}
