/// <reference lib="dom" />
/**
 * The relay's members, on the node of the relay's owner or an admin: list, add by npub, remove
 * after an inline confirm, each signed by the node over NIP-86 (`/api/members`). The section
 * stays hidden on every other node: `canManage` false, or a node without the routes.
 */
import { api } from "./api.ts";
import { badge, el, replace } from "./dom.ts";
import type { Panel, PanelContext, Snapshot } from "./types.ts";
import { confirmButton, errorText } from "./widgets.ts";

interface Member {
  pubkey: string;
  npub: string;
  role: "owner" | "admin" | "member";
}

interface MemberList {
  canManage: boolean;
  reason: string | null;
  members: Member[];
}

export function createMembersPanel(ctx: PanelContext): Panel {
  const list = el("div", { id: "members-list" });
  const error = el("p", { id: "members-error", class: "error", role: "alert", hidden: true });
  const npub = el("input", {
    id: "member-npub",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "npub1…",
    required: true,
  });
  const role = el(
    "select",
    { id: "member-role" },
    el("option", { value: "member" }, "member"),
    el("option", { value: "admin" }, "admin"),
  );
  const add = el("button", { type: "submit", id: "member-add", class: "primary" }, "Add");
  const form = el(
    "form",
    { id: "member-form", class: "row" },
    el("label", { for: "member-npub", class: "sr-only" }, "Member's npub"),
    npub,
    el("label", { for: "member-role", class: "sr-only" }, "Role"),
    role,
    add,
  );
  ctx.root.append(list, form, error);

  const showError = (text: string | null) => {
    error.hidden = text === null;
    error.textContent = text ?? "";
  };

  async function load(): Promise<void> {
    let answer: MemberList;
    try {
      answer = await api.get<MemberList>("/api/members");
    } catch (err) {
      // A node without the routes, or whose relay cannot be reached, shows no members panel:
      // only a node that can manage the list has one.
      console.info("members:", errorText(err, "Managing members"));
      ctx.root.hidden = true;
      ctx.root.dataset.state = "unavailable";
      return;
    }
    ctx.root.hidden = !answer.canManage;
    // What the page learnt (tests and the curious read it): the list, or why there is none.
    ctx.root.dataset.state = answer.canManage ? "managing" : "not-managing";
    if (!answer.canManage) return;
    replace(
      list,
      answer.members.length === 0 ? el("p", { class: "muted" }, "The list is empty.") : el(
        "table",
        { class: "members" },
        el("thead", {}, el("tr", {}, el("th", {}, "npub"), el("th", {}, "Role"), el("th", {}))),
        el(
          "tbody",
          {},
          ...answer.members.map((m) =>
            el(
              "tr",
              { "data-npub": m.npub },
              el("td", {}, el("code", { class: "npub" }, m.npub)),
              el("td", {}, badge(m.role, m.role === "member" ? "none" : "ok")),
              el(
                "td",
                {},
                m.role === "owner" ? null : confirmButton("remove", "Remove?", async () => {
                  showError(null);
                  try {
                    await api.del(`/api/members/${encodeURIComponent(m.npub)}`);
                  } catch (err) {
                    showError(errorText(err, "Removing members"));
                  }
                  await load();
                }, { class: "remove-member", "aria-label": `Remove ${m.npub}` }),
              ),
            )
          ),
        ),
      ),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const typed = npub.value.trim();
    if (typed === "") return;
    add.disabled = true;
    showError(null);
    try {
      await api.post("/api/members", { npub: typed, role: role.value });
      npub.value = "";
      await load();
    } catch (err) {
      showError(errorText(err, "Adding members"));
    } finally {
      add.disabled = false;
    }
  });
  void load();

  return {
    update(_snapshot: Snapshot) {},
  };
}
