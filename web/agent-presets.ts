/**
 * Agent presets (docs/http-api.md#agent-presets): for each common agent, the environment, the
 * config file and the command a user copies to point it at this node. Plain data in, plain data
 * out; the node API picks the model and the key, `renderShell` turns a preset into lines to paste.
 *
 * The keys each agent reads are the ones its own documentation names (checked when this was
 * written; a preset's `notes` say where something could not be confirmed). Values are written
 * with JSON.stringify, which is also a valid TOML basic string and YAML double-quoted scalar.
 */

export interface PresetInput {
  /** The model id agents ask for, and its name and context when known. */
  model: { id: string; name: string; contextLength?: number };
  /** The node's OpenAI base URL, ending in /v1 (`http://127.0.0.1:9337/v1`). */
  apiBaseUrl: string;
  /** The node's --api-key, or a placeholder the node accepts when it has none. */
  apiKey: string;
  /** Whether the node checks a key at all. */
  keyed: boolean;
}

export interface PresetFile {
  /** Where the agent reads it; `~/` is the user's home. */
  path: string;
  content: string;
}

export interface AgentPreset {
  agent: string;
  model: string;
  env: Record<string, string>;
  files: PresetFile[];
  /** What to run once the env is set and the files are written ("" when a library reads the env). */
  command: string;
  notes: string;
}

type Build = (input: PresetInput) => Omit<AgentPreset, "agent" | "model">;

/** The env var that carries this node's key where an agent lets us name one. */
const KEY_VAR = "GROVE_API_KEY";

const q = (v: string) => JSON.stringify(v);

/** The node's root (no /v1): Anthropic's clients and Goose add the API's path themselves. */
function nodeRoot(apiBaseUrl: string): string {
  return apiBaseUrl.replace(/\/+$/, "").replace(/\/v1$/, "");
}

function keyNote(input: PresetInput): string {
  return input.keyed
    ? "The key is this node's --api-key."
    : `This node takes no key; "${input.apiKey}" stands in for clients that refuse an empty one.`;
}

const PRESETS: Record<string, Build> = {
  openai: (i) => ({
    env: { OPENAI_BASE_URL: i.apiBaseUrl, OPENAI_API_KEY: i.apiKey, OPENAI_MODEL: i.model.id },
    files: [],
    command: "",
    notes: "Read by the OpenAI SDKs (OPENAI_BASE_URL, OPENAI_API_KEY) and by most tools that " +
      `speak OpenAI's API; OPENAI_MODEL names the model for those that read it. ${keyNote(i)}`,
  }),

  "claude-code": (i) => {
    const m = i.model.id;
    return {
      env: {
        ANTHROPIC_BASE_URL: nodeRoot(i.apiBaseUrl),
        ANTHROPIC_AUTH_TOKEN: i.apiKey,
        // Any value here would be sent instead of the token (and could be a real Anthropic key).
        ANTHROPIC_API_KEY: "",
        ANTHROPIC_MODEL: m,
        // Background tasks ask for the small model: older releases read the first, newer ones the
        // per-alias defaults.
        ANTHROPIC_SMALL_FAST_MODEL: m,
        ANTHROPIC_DEFAULT_HAIKU_MODEL: m,
        ANTHROPIC_DEFAULT_SONNET_MODEL: m,
        ANTHROPIC_DEFAULT_OPUS_MODEL: m,
      },
      files: [],
      command: "claude",
      notes: "Claude Code speaks Anthropic's Messages API (/v1/messages), which this node " +
        "answers; ANTHROPIC_BASE_URL is the node without /v1 (Claude Code adds it). The token " +
        "goes as Authorization: Bearer; ANTHROPIC_API_KEY is emptied so a key in your shell is " +
        `not sent instead. ${keyNote(i)}`,
    };
  },

  codex: (i) => ({
    env: { [KEY_VAR]: i.apiKey },
    files: [{
      path: "~/.codex/config.toml",
      content: [
        `model = ${q(i.model.id)}`,
        `model_provider = "grove"`,
        "",
        "[model_providers.grove]",
        `name = "Grove"`,
        `base_url = ${q(i.apiBaseUrl)}`,
        `env_key = ${q(KEY_VAR)}`,
        `wire_api = "responses"`,
        "",
      ].join("\n"),
    }],
    command: "codex",
    notes: "Codex reads ~/.codex/config.toml (keys from Codex's docs/config.md: model, " +
      "model_provider, [model_providers.ID] with name, base_url, env_key, wire_api). It posts to " +
      'base_url + /responses, which this node answers (wire_api "chat" works with it too, but ' +
      'recent Codex releases accept only "responses"). Merge into an existing config.toml: the ' +
      "two top-level keys must come before any table. Codex does not know this model's " +
      `context or reasoning settings and may warn about it. ${keyNote(i)}`,
  }),

  goose: (i) => {
    const base = new URL(i.apiBaseUrl);
    const path = `${base.pathname.replace(/\/+$/, "")}/chat/completions`.replace(/^\/+/, "");
    return {
      env: {
        GOOSE_PROVIDER: "openai",
        GOOSE_MODEL: i.model.id,
        OPENAI_HOST: base.origin,
        OPENAI_BASE_PATH: path,
        OPENAI_API_KEY: i.apiKey,
      },
      files: [],
      command: "goose session",
      notes: "Goose's OpenAI provider splits the endpoint into OPENAI_HOST (scheme, host and " +
        "port only) and OPENAI_BASE_PATH (default v1/chat/completions); GOOSE_PROVIDER and " +
        "GOOSE_MODEL override its saved configuration. Keys as Goose's provider docs name them " +
        `(read through mirrors of its documentation, not its own site). ${keyNote(i)}`,
    };
  },

  opencode: (i) => {
    const model: Record<string, unknown> = { name: i.model.name };
    const ctx = i.model.contextLength;
    // No output cap beyond the context: the node stops a generation there.
    if (ctx !== undefined) model.limit = { context: ctx, output: ctx };
    const config = {
      $schema: "https://opencode.ai/config.json",
      model: `grove/${i.model.id}`,
      provider: {
        grove: {
          npm: "@ai-sdk/openai-compatible",
          name: "Grove",
          options: { baseURL: i.apiBaseUrl, apiKey: `{env:${KEY_VAR}}` },
          models: { [i.model.id]: model },
        },
      },
    };
    return {
      env: { [KEY_VAR]: i.apiKey },
      files: [{ path: "opencode.json", content: JSON.stringify(config, null, 2) + "\n" }],
      command: "opencode",
      notes: "opencode.json in the project (or ~/.config/opencode/opencode.json for every " +
        "project): a custom provider through @ai-sdk/openai-compatible (chat completions), as " +
        "opencode's provider docs show, with the key read from the environment ({env:…}). " +
        keyNote(i),
    };
  },

  continue: (i) => ({
    env: {},
    files: [{
      path: "~/.continue/config.yaml",
      content: [
        `name: Grove`,
        `version: 0.0.1`,
        `schema: v1`,
        `models:`,
        `  - name: ${q(`Grove ${i.model.name}`)}`,
        `    provider: openai`,
        `    model: ${q(i.model.id)}`,
        `    apiBase: ${q(i.apiBaseUrl)}`,
        `    apiKey: ${q(i.apiKey)}`,
        "",
      ].join("\n"),
    }],
    command: "",
    notes: "Continue (VS Code / JetBrains) reads ~/.continue/config.yaml; an OpenAI-compatible " +
      "server is provider openai with apiBase, as Continue's OpenAI provider docs show. Add the " +
      "model entry to your own config's models if you have one. " + keyNote(i),
  }),

  "open-webui": (i) => {
    // In a container 127.0.0.1 is the container's own: the host network keeps it this node's.
    const command = [
      "docker run -d --network=host -v open-webui:/app/backend/data",
      `-e OPENAI_API_BASE_URL=${shellQuote(i.apiBaseUrl)}`,
      `-e OPENAI_API_KEY=${shellQuote(i.apiKey)}`,
      "--name open-webui ghcr.io/open-webui/open-webui:main",
    ].join(" ");
    return {
      env: { OPENAI_API_BASE_URL: i.apiBaseUrl, OPENAI_API_KEY: i.apiKey },
      files: [],
      command,
      notes: "Open WebUI takes an OpenAI connection from OPENAI_API_BASE_URL and OPENAI_API_KEY " +
        "(or in Admin Settings → Connections: the same URL and key). With --network=host it " +
        "listens on http://localhost:8080 and reaches this node on the host's loopback (the " +
        "port is from Open WebUI's README as known, not confirmed offline). Without the host " +
        "network, start this node with --host and --allow-host for the address the container " +
        `uses. ${keyNote(i)}`,
    };
  },
};

/** The agents this node has presets for, `openai` first (the default). */
export const AGENTS: readonly string[] = Object.keys(PRESETS);

export function isAgent(name: string): boolean {
  return Object.hasOwn(PRESETS, name);
}

export function agentPreset(agent: string, input: PresetInput): AgentPreset {
  if (!isAgent(agent)) throw new Error(`no preset for agent ${agent}`);
  return { agent, model: input.model.id, ...PRESETS[agent](input) };
}

/**
 * Lines to paste into a POSIX shell: the exports, each file written where none is yet (an
 * existing one is left for the user to merge, with a message), then the command.
 */
export function renderShell(preset: Pick<AgentPreset, "env" | "files" | "command">): string {
  const lines = Object.entries(preset.env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  for (const file of preset.files) {
    const path = shellPath(file.path);
    const slash = file.path.lastIndexOf("/");
    const mkdir = slash > 0 ? `mkdir -p ${shellPath(file.path.slice(0, slash))} && ` : "";
    const eof = heredocMarker(file.content);
    lines.push(
      `${mkdir}if [ -e ${path} ]; then echo ${
        shellQuote(`${file.path} exists: merge this in by hand:`)
      }; ` +
        `cat; else cat > ${path}; fi <<'${eof}'`,
      ...file.content.replace(/\n$/, "").split("\n"),
      eof,
    );
  }
  if (preset.command !== "") lines.push(preset.command);
  return lines.join("\n") + "\n";
}

/** A path for the shell: `~/x` as "$HOME/x" (a tilde does not expand inside quotes). */
function shellPath(path: string): string {
  return path.startsWith("~/") ? `"$HOME"/${shellQuote(path.slice(2))}` : shellQuote(path);
}

/** A here-document end marker that no line of `content` equals. */
function heredocMarker(content: string): string {
  const lines = new Set(content.split("\n"));
  let marker = "GROVE_EOF";
  while (lines.has(marker)) marker += "_";
  return marker;
}

export function shellQuote(v: string): string {
  return `'${v.replaceAll("'", `'\\''`)}'`;
}
