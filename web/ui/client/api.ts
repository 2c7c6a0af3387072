/// <reference lib="dom" />
/**
 * The page's only way to the node: same-origin fetches of the node API and /v1. With --api-key
 * the node answers 401 until the page sends the key; the page then asks for it once, in its own
 * form (never prompt(), which a page can spam), and keeps it in sessionStorage for this tab.
 */

const KEY_ITEM = "groveKey";

export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, readonly code: string | null, message: string) {
    super(message);
  }
}

/** The key from `/ui#key=…` (a fragment never reaches the server or its logs). */
export function takeKeyFromFragment(): void {
  const match = location.hash.match(/key=([^&]+)/);
  if (!match) return;
  sessionStorage.setItem(KEY_ITEM, decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname);
}

let asking: Promise<void> | null = null;

/** Shows the key form until the user submits a key; resolves once it is stored. */
function askForKey(): Promise<void> {
  asking ??= new Promise<void>((resolve) => {
    const form = document.getElementById("key-form") as HTMLFormElement;
    const input = document.getElementById("key-input") as HTMLInputElement;
    form.hidden = false;
    input.focus();
    form.addEventListener("submit", function submitted(event) {
      event.preventDefault();
      if (input.value === "") return;
      sessionStorage.setItem(KEY_ITEM, input.value);
      input.value = "";
      form.hidden = true;
      form.removeEventListener("submit", submitted);
      asking = null;
      resolve();
    });
  });
  return asking;
}

async function send(method: string, path: string, body?: unknown, signal?: AbortSignal) {
  for (let attempt = 0;; attempt++) {
    const key = sessionStorage.getItem(KEY_ITEM);
    const headers: Record<string, string> = {};
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (res.status === 401 && attempt < 3) {
      await res.body?.cancel();
      sessionStorage.removeItem(KEY_ITEM);
      await askForKey();
      continue;
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }
}

/** The node's error shape `{"error":{"message","type","code"}}`, or the status line. */
async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const { error } = JSON.parse(text) as { error?: { message?: string; code?: string } };
    if (error?.message) return new ApiError(res.status, error.code ?? null, error.message);
  } catch {
    // not JSON: the text itself says what went wrong
  }
  return new ApiError(res.status, null, `${res.status} ${res.statusText}: ${text.slice(0, 200)}`);
}

/** Calls `onLine` for every complete line of a streamed body. */
async function readLines(res: Response, onLine: (line: string) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, end).replace(/\r$/, ""));
      buffered = buffered.slice(end + 1);
    }
  }
  if (buffered !== "") onLine(buffered);
}

export const api = {
  async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return await (await send("GET", path, undefined, signal)).json() as T;
  },
  async text(path: string, signal?: AbortSignal): Promise<string> {
    return await (await send("GET", path, undefined, signal)).text();
  },
  async post<T>(path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return await (await send("POST", path, body ?? {}, signal)).json() as T;
  },
  async del<T>(path: string, signal?: AbortSignal): Promise<T> {
    return await (await send("DELETE", path, undefined, signal)).json() as T;
  },
  /** A POST answered with NDJSON (model pulls): one parsed object per line. */
  async ndjson(
    path: string,
    body: unknown,
    onLine: (line: Record<string, unknown>) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const res = await send("POST", path, body, signal);
    await readLines(res, (line) => {
      if (line.trim() !== "") onLine(JSON.parse(line));
    });
  },
  /** A POST answered with server-sent events (streamed chat): each `data:` payload but [DONE]. */
  async sse(
    path: string,
    body: unknown,
    onEvent: (data: Record<string, unknown>, event: string | null) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const res = await send("POST", path, body, signal);
    let event: string | null = null;
    await readLines(res, (line) => {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) {
        const data = line.slice(5).trim();
        if (data !== "[DONE]") onEvent(JSON.parse(data), event);
      } else if (line === "") event = null;
    });
  },
};
