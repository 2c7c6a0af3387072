/// <reference lib="dom" />
/**
 * The node's state at a glance: the header's state and health badges, the #status list (mode,
 * model, relay, membership, npub) and the denial banner. When the relay refuses this node the
 * banner says so in the node's own words, and the panels that need the mesh disable themselves
 * from the same snapshot, so nothing on the page pretends to work.
 */
import { badge, el, replace } from "./dom.ts";
import {
  MESH_DENIED_MESSAGE,
  type NodeStatus,
  type Panel,
  type PanelContext,
  type Snapshot,
} from "./types.ts";
import { copyText, NODE_STATE_CHANGED } from "./widgets.ts";

type Tone = "ok" | "warn" | "bad" | "none";

const STATE_TONE: Record<string, Tone> = {
  running: "ok",
  starting: "warn",
  stopping: "warn",
  failed: "bad",
  off: "none",
};

function setBadge(id: string, text: string, tone: Tone): void {
  const node = document.getElementById(id)!;
  node.textContent = text;
  node.className = tone === "none" ? "badge" : `badge ${tone}`;
}

/** "ok", "degraded: loading the model", "failed: <the error>". */
export function healthText(health: NodeStatus["health"]): { text: string; tone: Tone } {
  const reason = health.reason ? `: ${health.reason}` : "";
  if (health.status === "ok") return { text: "ok", tone: "ok" };
  if (health.status === "failed") return { text: `failed${reason}`, tone: "bad" };
  return { text: `${health.status}${reason}`, tone: "warn" };
}

export function createStatusPanel(ctx: PanelContext): Panel {
  const list = el("dl", { class: "facts" });
  // One <dd> per fact, kept across polls, so focus (the Copy button) survives a refresh.
  const fact = (name: string, id: string) => {
    const dd = el("dd", { id });
    list.append(el("dt", {}, name), dd);
    return dd;
  };
  const state = fact("State", "status-state");
  const health = fact("Health", "status-health");
  const mode = fact("Mode", "status-mode");
  const model = fact("Model", "status-model");
  const relay = fact("Relay", "status-relay");
  const membership = fact("Membership", "status-membership");
  const key = fact("Node key", "status-key");
  const npub = el("code", { id: "status-npub", class: "npub" });
  const copied = el("span", { class: "muted", "aria-live": "polite" });
  const copy = el("button", { type: "button", id: "copy-npub" }, "Copy");
  copy.addEventListener("click", async () => {
    copied.textContent = await copyText(npub.textContent ?? "", npub);
  });
  key.append(npub, " ", copy, " ", copied);
  ctx.root.append(list);
  // The state a start or stop answered with, until the next poll says more.
  document.addEventListener(NODE_STATE_CHANGED, (e) => {
    const state = String((e as CustomEvent).detail);
    setBadge("state-badge", state, STATE_TONE[state] ?? "none");
  });

  return {
    update(snapshot: Snapshot) {
      const denied = document.getElementById("denied")!;
      denied.hidden = !snapshot.denied;
      denied.textContent = snapshot.denied ? MESH_DENIED_MESSAGE : "";
      const s = snapshot.status;
      if (!s) {
        setBadge("state-badge", "unreachable", "bad");
        setBadge("health-badge", "no answer", "bad");
        return;
      }
      const tone = STATE_TONE[s.state] ?? "none";
      setBadge("state-badge", s.state, tone);
      const h = healthText(s.health);
      setBadge("health-badge", h.text, h.tone);
      replace(state, badge(s.state, tone));
      replace(health, badge(h.text, h.tone));
      mode.textContent = s.mode;
      model.textContent = s.modelName ?? s.modelId ?? "none";
      if (s.relay) {
        replace(
          relay,
          badge(
            s.relay.connected ? "connected" : "not connected",
            s.relay.connected ? "ok" : "bad",
          ),
          " ",
          el("span", { class: "muted" }, s.relay.url),
        );
      } else replace(relay, el("span", { class: "muted" }, "—"));
      const admitted = s.admission?.admitted ?? snapshot.availability?.admitted;
      replace(
        membership,
        snapshot.denied
          ? badge("denied", "bad")
          : admitted === undefined
          ? badge("unknown", "none")
          : badge(admitted ? "admitted" : "not admitted", admitted ? "ok" : "warn"),
        s.inMemberList === undefined ? null : el(
          "span",
          { class: "muted" },
          s.inMemberList ? " · in the member list" : " · not in the member list",
        ),
      );
      if (npub.textContent !== (s.npub ?? "")) {
        npub.textContent = s.npub ?? "";
        copied.textContent = "";
      }
      key.hidden = (key.previousElementSibling as HTMLElement).hidden = !s.npub;
    },
  };
}
