/**
 * Agent libraries, each unchanged, against a client node over a real mesh (relay, two serving
 * nodes and the client as processes): the `openai` SDK, `@anthropic-ai/sdk`, the Vercel AI SDK
 * and LangChain, on stories260K (no template: the generic tool format) and on a generated model
 * whose chat template has tools (Qwen 2.5's: Hermes `<tool_call>`s). Every answer and stream
 * event the libraries read is checked against the API's published shape (support/api-shapes.ts),
 * every call's arguments and every structured answer validate against their schemas (the
 * content is a weak model's nonsense), and no library reaches past loopback.
 */
import assert from "node:assert/strict";
import { newKey, servingAndClient, startMesh, waitForAvailability } from "./mesh-harness.ts";
import { loopbackOnly, TOOLS_MODEL, writeToolsModel } from "./sdk-agents/kit.ts";
import { openaiSteps } from "./sdk-agents/openai.ts";
import { anthropicSteps } from "./sdk-agents/anthropic.ts";
import { vercelSteps } from "./sdk-agents/vercel-ai.ts";
import { langchainSteps } from "./sdk-agents/langchain.ts";

const LIBRARIES = [
  ["openai", openaiSteps],
  ["anthropic", anthropicSteps],
  ["vercel ai", vercelSteps],
  ["langchain", langchainSteps],
] as const;

Deno.test("agent SDKs against a client node over the mesh", async (t) => {
  const net = loopbackOnly();
  const mesh = await startMesh();
  try {
    const started = performance.now();
    const toolsPath = await writeToolsModel(mesh.root);
    const toolsKey = newKey();
    await mesh.addMember(toolsKey.pubkey);
    const ctx = ["--ctx-size", "2048"];
    const [{ client }, toolsNode] = await Promise.all([
      servingAndClient(mesh, { serveArgs: ctx }),
      mesh.serve("node-b", toolsKey, ["--model", toolsPath, ...ctx]),
    ]);
    await waitForAvailability(client.url, (a) => a.models.some((m) => m.id === TOOLS_MODEL));
    const props = await (await fetch(`${toolsNode.url}/props`)).json();
    assert.match(
      props.chat_template,
      /<tool_call>/,
      "the tools model renders with Qwen's template",
    );
    console.log(`mesh up in ${(performance.now() - started).toFixed(0)} ms`);
    for (const model of ["stories260K", TOOLS_MODEL]) {
      for (const [name, steps] of LIBRARIES) {
        const at = performance.now();
        await steps(t, client.url, model);
        console.log(`${name} on ${model}: ${(performance.now() - at).toFixed(0)} ms`);
      }
    }
    assert.deepEqual(net.outbound(), [], "no library reached past loopback");
  } finally {
    net.restore();
    await mesh.close();
  }
});
