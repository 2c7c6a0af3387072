/**
 * What one whole node answers a request with: the same service code (scheduler, template,
 * sampler) a serving node runs, in process. Split tests compare the mesh's answers with it.
 */
import { createBatchedCpuEngine } from "../../inference/mod.ts";
import { createLocalService, type InferRequest } from "../../mesh/mod.ts";

export interface OneNodeAnswer {
  text: string;
  ids: number[];
  logprobs: number[];
}

export async function oneNode(
  path: string,
  model: string,
  req: Omit<InferRequest, "model">,
  ctxSize: number,
): Promise<OneNodeAnswer> {
  const { engine, batch } = await createBatchedCpuEngine({ path, ctxSize });
  const service = createLocalService({ engine, batch, id: model });
  const out: OneNodeAnswer = { text: "", ids: [], logprobs: [] };
  try {
    for await (const e of service.infer({ ...req, model }, new AbortController().signal)) {
      if (e.type === "token") {
        out.ids.push(e.id);
        out.logprobs.push(e.logprob ?? NaN);
        out.text += e.text;
      }
      if (e.type === "done") out.text += e.tail ?? "";
      if (e.type === "error") throw new Error(e.message);
    }
  } finally {
    service.close();
  }
  return out;
}
