/**
 * The reference entry of a generated test model: random weights, so its prompt is token ids,
 * and llama.cpp's top 10 over 40 greedy steps is what the engines are held to.
 */
import type { ReferenceModel } from "./reference-models.ts";

/**
 * `name`'s reference, its file written by `write` to <dir>/<name>.gguf; `extra` overrides the
 * prompt or sets the KV cache type.
 */
export function generatedReference(
  name: string,
  write: (path: string) => Promise<void>,
  extra: Partial<Pick<ReferenceModel, "prompts" | "kvCache">> = {},
): ReferenceModel {
  return {
    name,
    build: async (dir) => {
      const out = `${dir}/${name}.gguf`;
      await write(out);
      return out;
    },
    prompts: [{ name: "ids", text: "(token ids, random weights)", promptTokens: [1, 7, 42] }],
    steps: 40,
    topN: 10,
    ...extra,
  };
}
