/// <reference lib="dom" />
/**
 * The dashboard's entry: mounts every panel into its <section> of index.html, then polls the
 * node every two seconds and hands each panel the same snapshot. A panel that acts (start,
 * pull, delete …) asks for a poll at once, so the page follows the node without waiting.
 */
import { api, takeKeyFromFragment } from "./api.ts";
import {
  type Availability,
  MESH_DENIED_MESSAGE,
  type NodeStatus,
  type Panel,
  type Snapshot,
} from "./types.ts";
import { createStatusPanel } from "./status-panel.ts";
import { createSharePanel } from "./share-panel.ts";
import { createMeshPanel } from "./mesh-panel.ts";
import { createChatPanel } from "./chat-panel.ts";
import { createModelsPanel } from "./models-panel.ts";
import { createPresetsPanel } from "./presets-panel.ts";
import { createMembersPanel } from "./members-panel.ts";

const POLL_MS = 2000;

function section(id: string): HTMLElement {
  return document.getElementById(id) as HTMLElement;
}

function boot(): void {
  takeKeyFromFragment();
  const panels: Panel[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let polling = false;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(poll, 0);
  };
  const mounts: [string, (ctx: { root: HTMLElement; refresh(): void }) => Panel][] = [
    ["status", createStatusPanel],
    ["share", createSharePanel],
    ["mesh", createMeshPanel],
    ["chat", createChatPanel],
    ["models", createModelsPanel],
    ["agents", createPresetsPanel],
    ["members", createMembersPanel],
  ];
  for (const [id, create] of mounts) panels.push(create({ root: section(id), refresh }));

  async function poll(): Promise<void> {
    if (polling) return;
    polling = true;
    const snapshot: Snapshot = { status: null, availability: null, error: null, denied: false };
    try {
      [snapshot.status, snapshot.availability] = await Promise.all([
        api.get<NodeStatus>("/api/status"),
        api.get<Availability>("/api/availability"),
      ]);
      snapshot.denied = snapshot.status.admission?.denied === true ||
        snapshot.availability.reason === MESH_DENIED_MESSAGE;
    } catch (err) {
      snapshot.error = err instanceof Error ? err.message : String(err);
    }
    const banner = section("error");
    banner.hidden = snapshot.error === null;
    banner.textContent = snapshot.error === null ? "" : `Cannot read the node: ${snapshot.error}`;
    section("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    for (const panel of panels) {
      try {
        panel.update(snapshot);
      } catch (err) {
        console.error("a dashboard panel failed to render", err);
      }
    }
    polling = false;
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }
  void poll();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
