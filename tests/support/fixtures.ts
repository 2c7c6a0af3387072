/**
 * Where the shared model fixtures are (stories260K.gguf, vocab/…; never committed): every folder
 * of GROVE_MODEL_PATH in order, read as a node reads it (models/resolve.ts's modelPathDirs), else
 * ../shared/models beside the repository.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { modelPathDirs } from "../../models/mod.ts";

const fromEnv = modelPathDirs(undefined);

/** The fixture folders, in the order they are searched. */
export const MODEL_DIRS: readonly string[] = fromEnv.length > 0
  ? fromEnv
  : [fileURLToPath(new URL("../../../shared/models", import.meta.url))];

/** GROVE_MODEL_PATH for a child process: every fixture folder. */
export const MODEL_PATH = MODEL_DIRS.join(":");

/**
 * The fixture `name` (a file or folder, e.g. "vocab/ggml-vocab-gpt-2.gguf") in the first folder
 * that has it; in the first folder when none has, so a missing fixture fails naming a real place.
 */
export function fixturePath(name: string): string {
  return findIn(MODEL_DIRS, name);
}

/** `name` in the first of `dirs` that has it, else in the first of `dirs`. */
export function findIn(dirs: readonly string[], name: string): string {
  const dir = dirs.find((d) => existsSync(join(d, name))) ?? dirs[0];
  return join(dir, name);
}

export const STORIES = fixturePath("stories260K.gguf");

/** The folder that holds stories260K.gguf, for tests that hand a model folder to the code. */
export const MODELS_DIR = dirname(STORIES);
