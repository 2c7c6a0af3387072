import assert from "node:assert/strict";
import { openGguf, tokenizerFromMetadata } from "../inference/mod.ts";
import { fixturePath, STORIES } from "../tests/support/fixtures.ts";
import { encodePrompt, type PromptModel } from "./prompt.ts";
import { createPromptEncoder } from "./prompt-encoder.ts";
import { type InferRequest, ServiceError } from "./service.ts";

async function fixture(path: string, ctxSize: number) {
  const metadata = (await openGguf(path)).metadata;
  const model: PromptModel = {
    tokenizer: tokenizerFromMetadata(metadata),
    template: undefined,
    ctxSize,
  };
  return { metadata, model };
}

const prompt = (text: string): InferRequest => ({ model: "m", prompt: text, params: {} });

Deno.test("a prompt far beyond the context is refused by its length at once", async () => {
  const { metadata, model } = await fixture(STORIES, 256);
  const prompts = createPromptEncoder({ model, metadata });
  try {
    const started = performance.now();
    const err = await prompts.tokens(prompt("a".repeat(4 << 20))).catch((e) => e);
    const ms = performance.now() - started;
    assert.ok(err instanceof ServiceError, String(err));
    assert.equal(err.code, "context_length_exceeded");
    assert.match(err.message, /maximum context length is 256 tokens.*at least 599187 tokens/);
    assert.ok(ms < 200, `took ${ms} ms`);
    // Under the bound: tokenized, and judged by its real count.
    const fits = await prompts.tokens(prompt("Once upon a time. ".repeat(10)));
    assert.ok(fits.length > 10 && fits.length < 256);
    const over = await prompts.tokens(prompt("Once upon a time. ".repeat(90))).catch((e) => e);
    assert.match(over.message, /maximum context length is 256 tokens.*resulted in 452 tokens/);
  } finally {
    prompts.close();
  }
});

Deno.test("a long prompt is tokenized in a worker while the event loop keeps turning", async () => {
  const { metadata, model } = await fixture(fixturePath("vocab/ggml-vocab-llama-spm.gguf"), 1e6);
  const text = Deno.readTextFileSync(fixturePath("vocab/ggml-vocab-llama-spm.gguf.inp"))
    .repeat(40).slice(0, 256 * 1024);
  let started = performance.now();
  const inline = encodePrompt(model, prompt(text));
  const inlineMs = performance.now() - started;

  const prompts = createPromptEncoder({ model, metadata });
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  try {
    await prompts.tokens(prompt("warm up the worker: ".repeat(300)));
    [last, maxGap, started] = [performance.now(), 0, performance.now()];
    const viaWorker = await prompts.tokens(prompt(text));
    const workerMs = performance.now() - started;
    console.log(
      `256 KiB prompt: ${inlineMs.toFixed(0)} ms on the event loop; in the worker ` +
        `${workerMs.toFixed(0)} ms with the loop's longest pause ${maxGap.toFixed(0)} ms`,
    );
    assert.deepEqual(viaWorker, inline);
    // Tokenized on the loop, the pause would be the whole inline time; on a loaded machine (CI runs
    // files in parallel on two cores) the loop's own hiccups grow with it, so the bound does too.
    const bound = Math.max(150, inlineMs / 2);
    assert.ok(maxGap < bound, `the event loop paused ${maxGap} ms (bound ${bound} ms)`);
  } finally {
    clearInterval(tick);
    prompts.close();
  }
});

Deno.test("chats go through the worker too, rendered and tokenized as in process", async () => {
  const { metadata, model } = await fixture(STORIES, 2048);
  const prompts = createPromptEncoder({ model, metadata, inlineWeight: 0 });
  try {
    const req: InferRequest = {
      model: "m",
      messages: [
        { role: "system", content: "Tell short stories." },
        { role: "user", content: [{ type: "text", text: "Once upon a time" }] },
      ],
      params: {},
    };
    assert.deepEqual(await prompts.tokens(req), encodePrompt(model, req));
    const bad = await prompts.tokens({ ...req, messages: [{ role: "wizard", content: "x" }] })
      .catch((e) => e);
    assert.ok(bad instanceof ServiceError && bad.code === "invalid_request", String(bad));
    const long = await prompts.tokens({
      ...req,
      messages: [{ role: "user", content: "ab ".repeat(9000) }],
    })
      .catch((e) => e);
    assert.ok(
      long instanceof ServiceError && long.code === "context_length_exceeded",
      String(long),
    );
  } finally {
    prompts.close();
  }
});

Deno.test("close() rejects the prompts still in the worker; the next one starts a new worker", async () => {
  const { metadata, model } = await fixture(STORIES, 2048);
  const prompts = createPromptEncoder({ model, metadata, inlineWeight: 0 });
  try {
    const pending = prompts.tokens(prompt("Once upon a time"));
    prompts.close();
    const err = await pending.catch((e) => e);
    assert.ok(err instanceof ServiceError && err.code === "unavailable", String(err));
    assert.deepEqual(
      await prompts.tokens(prompt("Once upon a time")),
      encodePrompt(model, prompt("Once upon a time")),
    );
  } finally {
    prompts.close();
  }
});
