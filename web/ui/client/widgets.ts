/// <reference lib="dom" />
/**
 * Small pieces the dashboard engineer's panels share: an inline "are you sure" (never
 * confirm(), which a page can loop), copying to the clipboard with a fallback, and the words for
 * an error, where a route this node does not have reads "not available on this node".
 */
import { ApiError } from "./api.ts";
import { el, replace } from "./dom.ts";

/** Dispatched on document when the installed models change (a pull or a delete). */
export const MODELS_CHANGED = "grove:models-changed";

/**
 * Dispatched on document (a CustomEvent whose detail is the state) when the node answers a start
 * or stop with the state it moved to: a client node restarts faster than the status poll, and
 * its "starting" would otherwise never show.
 */
export const NODE_STATE_CHANGED = "grove:node-state";

/** What to show for a failed call; a 404/501 route means this node lacks the feature. */
export function errorText(err: unknown, what: string): string {
  if (err instanceof ApiError && (err.status === 501 || err.code === "not_found")) {
    return `${what} is not available on this node.`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * A button that asks inline before it acts: the first press swaps it for "Remove X? [Yes]
 * [Cancel]"; Yes runs `act`, Cancel puts the button back.
 */
export function confirmButton(
  label: string,
  question: string,
  act: () => Promise<void>,
  attrs: Record<string, string> = {},
): HTMLElement {
  const box = el("span", { class: "confirm" });
  const ask = el("button", { type: "button", ...attrs }, label);
  const reset = () => replace(box, ask);
  ask.addEventListener("click", () => {
    const yes = el("button", { type: "button", class: "danger confirm-yes" }, `Yes, ${label}`);
    const no = el("button", { type: "button", class: "confirm-no" }, "Cancel");
    yes.addEventListener("click", async () => {
      yes.disabled = no.disabled = true;
      try {
        await act();
      } finally {
        if (box.isConnected) reset();
      }
    });
    no.addEventListener("click", () => {
      reset();
      ask.focus();
    });
    replace(box, el("span", { class: "muted" }, question), " ", yes, " ", no);
    no.focus();
  });
  reset();
  return box;
}

/**
 * Copies `text`; where the Clipboard API is refused (plain http on a LAN name is no secure
 * context) it selects `source`'s text so the user can press Ctrl+C. Answers what happened.
 */
export async function copyText(text: string, source: HTMLElement): Promise<string> {
  try {
    await navigator.clipboard.writeText(text);
    return "Copied.";
  } catch {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = getSelection();
    selection?.removeAllRanges();
    selection?.addRange(range);
    return "Selected: press Ctrl+C (⌘C) to copy.";
  }
}
