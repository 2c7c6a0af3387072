import assert from "node:assert/strict";
import { createNodeApp } from "./app.ts";
import { type AgentPreset, AGENTS, renderShell } from "./agent-presets.ts";
import { fakeService } from "../tests/support/fake-service.ts";

const ORIGIN = "http://localhost:9337";
const KEY = "sk-grove-1";
const auth = { authorization: `Bearer ${KEY}` };

function keyedApp() {
  return createNodeApp({
    service: fakeService({
      models: [{ id: "stories260K", name: "Stories 260K", contextLength: 512 }],
    }),
    apiKey: KEY,
  });
}

async function preset(app: ReturnType<typeof createNodeApp>, agent: string) {
  const res = await app.fetch(
    new Request(`${ORIGIN}/api/agent-preset?agent=${agent}`, { headers: auth }),
  );
  assert.equal(res.status, 200, agent);
  return await res.json() as AgentPreset;
}

/** Every http(s) URL a preset hands out, in its env, files and command. */
function urlsOf(p: AgentPreset): string[] {
  const text = [...Object.values(p.env), ...p.files.map((f) => f.content), p.command].join("\n");
  return [...text.matchAll(/https?:\/\/[^\s"'`]+/g)].map((m) => m[0])
    .filter((u) => !u.startsWith("https://opencode.ai/")); // opencode's schema, not an endpoint
}

Deno.test("agent presets: every agent answers the preset shape, its URLs on this node, its key", async () => {
  const app = keyedApp();
  for (const agent of AGENTS) {
    const p = await preset(app, agent);
    assert.equal(p.agent, agent);
    assert.equal(p.model, "stories260K");
    assert.equal(typeof p.command, "string");
    assert.ok(p.notes.length > 40, `${agent}: notes`);
    assert.ok(Array.isArray(p.files));
    for (const f of p.files) assert.ok(typeof f.path === "string" && f.content.length > 0);
    for (const v of Object.values(p.env)) assert.equal(typeof v, "string");
    const urls = urlsOf(p);
    assert.ok(urls.length > 0, `${agent} hands out no URL`);
    for (const u of urls) assert.ok(u.startsWith(ORIGIN), `${agent}: ${u} is not this node`);
    const everything = JSON.stringify(p);
    assert.ok(everything.includes(KEY), `${agent} does not hand out the node's key`);
    assert.match(p.notes, /--api-key/);
  }
});

Deno.test("agent presets: each agent's endpoint answers on this node with its key", async () => {
  const app = keyedApp();
  const send = (url: string, headers: Record<string, string>, body: unknown) =>
    app.fetch(
      new Request(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      }),
    );
  const chat = { model: "stories260K", messages: [{ role: "user", content: "hi" }] };

  const openai = (await preset(app, "openai")).env;
  let res = await send(`${openai.OPENAI_BASE_URL}/chat/completions`, {
    authorization: `Bearer ${openai.OPENAI_API_KEY}`,
  }, { ...chat, model: openai.OPENAI_MODEL });
  assert.equal(res.status, 200);

  // Claude Code appends /v1/messages to ANTHROPIC_BASE_URL and sends the token as a bearer.
  const claude = (await preset(app, "claude-code")).env;
  assert.equal(claude.ANTHROPIC_BASE_URL, ORIGIN);
  assert.equal(claude.ANTHROPIC_API_KEY, "");
  for (const v of ["MODEL", "SMALL_FAST_MODEL", "DEFAULT_HAIKU_MODEL"]) {
    assert.equal(claude[`ANTHROPIC_${v}`], "stories260K");
  }
  res = await send(`${claude.ANTHROPIC_BASE_URL}/v1/messages`, {
    authorization: `Bearer ${claude.ANTHROPIC_AUTH_TOKEN}`,
  }, { ...chat, model: claude.ANTHROPIC_MODEL, max_tokens: 8 });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).type, "message");

  // Codex: base_url + /responses, the key from the env var env_key names.
  const codex = await preset(app, "codex");
  assert.equal(codex.files[0].path, "~/.codex/config.toml");
  const toml = codex.files[0].content;
  const field = (key: string) => JSON.parse(toml.match(new RegExp(`^${key} = (.+)$`, "m"))![1]);
  assert.equal(field("model"), "stories260K");
  assert.equal(field("model_provider"), "grove");
  assert.match(toml, /^\[model_providers\.grove\]$/m);
  assert.equal(field("wire_api"), "responses");
  assert.ok(toml.indexOf("model_provider =") < toml.indexOf("[model_providers"), "root keys first");
  res = await send(`${field("base_url")}/responses`, {
    authorization: `Bearer ${codex.env[field("env_key")]}`,
  }, { model: field("model"), input: "hi", max_output_tokens: 8 });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).object, "response");

  // Goose: OPENAI_HOST + "/" + OPENAI_BASE_PATH.
  const goose = (await preset(app, "goose")).env;
  assert.equal(goose.GOOSE_PROVIDER, "openai");
  assert.equal(goose.OPENAI_HOST, ORIGIN);
  assert.equal(goose.OPENAI_BASE_PATH, "v1/chat/completions");
  res = await send(`${goose.OPENAI_HOST}/${goose.OPENAI_BASE_PATH}`, {
    authorization: `Bearer ${goose.OPENAI_API_KEY}`,
  }, { ...chat, model: goose.GOOSE_MODEL });
  assert.equal(res.status, 200);

  // opencode: a provider through @ai-sdk/openai-compatible, its key from {env:…}.
  const opencode = await preset(app, "opencode");
  const config = JSON.parse(opencode.files[0].content);
  const grove = config.provider.grove;
  assert.equal(opencode.files[0].path, "opencode.json");
  assert.equal(grove.npm, "@ai-sdk/openai-compatible");
  assert.equal(config.model, "grove/stories260K");
  assert.deepEqual(grove.models["stories260K"], {
    name: "Stories 260K",
    limit: { context: 512, output: 512 },
  });
  const keyVar = grove.options.apiKey.match(/^\{env:(\w+)\}$/)[1];
  res = await send(`${grove.options.baseURL}/chat/completions`, {
    authorization: `Bearer ${opencode.env[keyVar]}`,
  }, chat);
  assert.equal(res.status, 200);

  // Continue's YAML: JSON-quoted scalars are YAML's double-quoted ones.
  const cont = (await preset(app, "continue")).files[0];
  assert.equal(cont.path, "~/.continue/config.yaml");
  const yaml = (key: string) =>
    JSON.parse(cont.content.match(new RegExp(`^ +${key}: (.+)$`, "m"))![1]);
  assert.match(cont.content, /^ +provider: openai$/m);
  res = await send(`${yaml("apiBase")}/chat/completions`, {
    authorization: `Bearer ${yaml("apiKey")}`,
  }, { ...chat, model: yaml("model") });
  assert.equal(res.status, 200);

  const webui = await preset(app, "open-webui");
  assert.match(webui.command, /^docker run .*--network=host/);
  assert.ok(webui.command.includes(`-e OPENAI_API_BASE_URL='${ORIGIN}/v1'`));
  assert.ok(webui.command.includes(`-e OPENAI_API_KEY='${KEY}'`));
});

Deno.test("agent presets: openai keeps its flat env, agent=openai adds the preset beside it", async () => {
  const app = keyedApp();
  const flat = await (await app.fetch(new Request(`${ORIGIN}/api/agent-preset`, { headers: auth })))
    .json();
  const env = {
    OPENAI_BASE_URL: `${ORIGIN}/v1`,
    OPENAI_API_KEY: KEY,
    OPENAI_MODEL: "stories260K",
  };
  assert.deepEqual(flat, env);
  const full = await preset(app, "openai");
  assert.deepEqual(full.env, env);
  for (const [k, v] of Object.entries(env)) {
    assert.equal((full as unknown as Record<string, string>)[k], v);
  }
  assert.deepEqual(full.files, []);
});

Deno.test("agent presets: a keyless node hands out a placeholder; an unknown agent is a 400", async () => {
  const app = createNodeApp({ service: fakeService() });
  const p = await preset(app, "claude-code");
  assert.equal(p.env.ANTHROPIC_AUTH_TOKEN, "grove");
  assert.match(p.notes, /takes no key/);
  const bad = await app.fetch(new Request(`${ORIGIN}/api/agent-preset?agent=cursor`));
  assert.equal(bad.status, 400);
  const err = (await bad.json()).error;
  assert.equal(err.param, "agent");
  assert.match(err.message, /claude-code/);
  const proto = await app.fetch(new Request(`${ORIGIN}/api/agent-preset?agent=toString`));
  assert.equal(proto.status, 400);
  const missing = await app.fetch(
    new Request(`${ORIGIN}/api/agent-preset?agent=codex&model=gpt-9`),
  );
  assert.equal(missing.status, 404);
});

Deno.test("agent presets: the shell form exports, writes a missing file once, then only shows it", async () => {
  const app = keyedApp();
  const codex = await preset(app, "codex");
  const shell = await (await app.fetch(
    new Request(`${ORIGIN}/api/agent-preset?agent=codex&format=shell`, { headers: auth }),
  )).text();
  assert.equal(shell, renderShell(codex));
  assert.ok(shell.endsWith("\ncodex\n"));

  const home = await Deno.makeTempDir();
  try {
    // The same lines with the agent's command swapped for one that shows the exported key.
    const script = renderShell({ ...codex, command: "printenv GROVE_API_KEY" });
    const run = async () => {
      const out = await new Deno.Command("sh", {
        args: ["-c", script],
        env: { HOME: home },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout);
    };
    assert.equal(await run(), `${KEY}\n`);
    const path = `${home}/.codex/config.toml`;
    assert.equal(await Deno.readTextFile(path), codex.files[0].content);
    await Deno.writeTextFile(path, 'model = "mine"\n');
    const second = await run();
    assert.match(second, /~\/\.codex\/config\.toml exists: merge this in by hand/);
    assert.ok(second.includes("[model_providers.grove]"));
    assert.equal(await Deno.readTextFile(path), 'model = "mine"\n', "left as it was");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
