// The relay's data folder holds its secret key (in relay.sqlite, and in the -wal until a
// checkpoint), so only its user may read it: the folder 0700, the files 0600. Looser modes
// found at start (an older Grove made 0644 files in a 0755 folder) are tightened, with a
// warning, as the node identity is (mesh/node-identity.ts). SQLite gives -wal and -shm the mode of
// the database file, so a 0600 database keeps them 0600 as they come and go.
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../protocol/mod.ts";

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** Makes `dir` (0700) and an empty `file` in it (0600) if missing; tightens what is looser. */
export function secureDataDir(dir: string, file: string, log?: Logger): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const path = join(dir, file);
  try {
    // Created here rather than by SQLite, which would apply the umask (usually 0644).
    closeSync(openSync(path, "wx", FILE_MODE));
  } catch (err) {
    if ((err as { code?: string }).code !== "EEXIST") throw err;
  }
  if (Deno.build.os === "windows") return;
  tighten(dir, DIR_MODE, "the relay's data folder", log);
  tightenFiles(path, log);
}

/** The database file and its -wal and -shm (when present) to 0600. */
export function tightenFiles(dbPath: string, log?: Logger): void {
  if (Deno.build.os === "windows") return;
  for (const path of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
    tighten(path, FILE_MODE, "a relay database file", log);
  }
}

function tighten(path: string, mode: number, what: string, log?: Logger): void {
  let found;
  try {
    found = statSync(path);
  } catch {
    return; // -wal and -shm exist only while the database is open
  }
  const perms = found.mode & 0o777;
  if ((perms & ~mode) === 0) return;
  // A folder that is not ours (e.g. --data /tmp) is not ours to change: say so instead.
  if (found.uid !== Deno.uid() || (found.mode & 0o1000) !== 0) {
    log?.warn(
      `${what} ${path} is readable by others (mode ${perms.toString(8)}) and is not this ` +
        "user's own folder to change; give --data a folder of your own",
    );
    return;
  }
  chmodSync(path, mode);
  log?.warn(
    `${what} was open to others (mode ${perms.toString(8)}); set it to ` +
      `${mode.toString(8)}: it holds the relay's secret key — consider the key exposed if ` +
      "others use this machine",
    { path },
  );
}
