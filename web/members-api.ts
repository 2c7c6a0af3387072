/**
 * The relay's member list from the node (docs/http-api.md#members): GET, POST and DELETE
 * /api/members, which the node signs with its own key over the relay's NIP-86 API. The calls
 * themselves are hooks the node's starter injects (cli/member-hooks.ts): web knows nothing of
 * relays. A node whose key is not the relay's owner or an admin lists `canManage: false` with
 * the relay's refusal; a change it asks for anyway is refused with 403 and the relay's words.
 */
import { errorResponse, HttpError, invalidRequest } from "./http-error.ts";
import { notProvided } from "./not-provided.ts";
import { readJsonBody } from "./validate.ts";

export type MemberRole = "owner" | "admin" | "member";

export interface MemberEntry {
  pubkey: string; // 64 hex
  npub: string;
  role: MemberRole;
}

export interface MemberList {
  canManage: boolean;
  /** Why this node cannot manage the list (the relay's words); null when it can. */
  reason: string | null;
  members: MemberEntry[];
}

/**
 * The relay calls. `target` is what the user typed (npub or hex); a hook that cannot read it
 * throws with code "invalid_pubkey". Relay failures carry code "relay_refused" (403),
 * "relay_unreachable" or "relay_bad_answer" (502).
 */
export interface MemberHooks {
  listMembers?(): Promise<MemberList>;
  addMember?(target: string, role?: "member" | "admin"): Promise<MemberEntry>;
  removeMember?(target: string): Promise<{ pubkey: string; npub: string }>;
}

const MAX_TARGET = 200; // an npub is 63 characters; anything far longer is no pubkey

export function createMembersApi(hooks: MemberHooks) {
  async function list(): Promise<Response> {
    if (!hooks.listMembers) throw notProvided("managing the relay's members", "listMembers");
    return Response.json(await relayCall(() => hooks.listMembers!()));
  }

  async function add(req: Request): Promise<Response> {
    if (!hooks.addMember) throw notProvided("managing the relay's members", "addMember");
    const body = await readJsonBody(req);
    for (const field of Object.keys(body)) {
      if (field !== "npub" && field !== "role") {
        throw invalidRequest(`unknown field ${JSON.stringify(field.slice(0, 64))}`, field);
      }
    }
    const target = checkTarget(body.npub, "npub");
    const role = body.role;
    if (role !== undefined && role !== "member" && role !== "admin") {
      throw invalidRequest('role must be "member" or "admin"', "role");
    }
    return Response.json(await relayCall(() => hooks.addMember!(target, role)));
  }

  async function remove(req: Request): Promise<Response> {
    if (!hooks.removeMember) throw notProvided("managing the relay's members", "removeMember");
    const raw = new URL(req.url).pathname.slice("/api/members/".length);
    let typed: string;
    try {
      typed = decodeURIComponent(raw);
    } catch {
      throw invalidRequest("the pubkey in the path is not valid percent-encoding", "npub");
    }
    const target = checkTarget(typed, "npub");
    const removed = await relayCall(() => hooks.removeMember!(target));
    return Response.json({ removed: removed.npub });
  }

  const guard = (handler: (req: Request) => Promise<Response>) => async (req: Request) => {
    try {
      return await handler(req);
    } catch (err) {
      return errorResponse(err);
    }
  };
  return { list: guard(list), add: guard(add), remove: guard(remove) };
}

function checkTarget(value: unknown, param: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw invalidRequest(`${param} is required: the member's npub (or 64 hex)`, param);
  }
  if (value.length > MAX_TARGET) {
    throw invalidRequest(`${param} is not a pubkey (npub or 64 hex characters)`, param);
  }
  return value.trim();
}

/** A hook's failure as the status docs/http-api.md gives it. */
async function relayCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: unknown })?.code;
    if (code === "invalid_pubkey") {
      throw new HttpError(400, message, "invalid_request_error", "invalid_pubkey", "npub");
    }
    if (code === "relay_refused") {
      throw new HttpError(403, message, "permission_error", "relay_refused");
    }
    if (code === "relay_unreachable" || code === "relay_bad_answer") {
      throw new HttpError(502, message, "api_error", code);
    }
    throw err;
  }
}
