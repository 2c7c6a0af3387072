/**
 * A node's HTTP port against the attacks of issue 9 (findings 2, 8 and 9), on real processes: a
 * relay, a serving node and a client node from tests/mesh-harness.ts. A page's requests are
 * written byte for byte on a TCP socket, since fetch() replaces the Host header with the URL's.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import OpenAI from "openai";
import { metric, servingAndClient, startMesh } from "./mesh-harness.ts";
import { memoryKiB } from "./support/process-memory.ts";

const MODEL = "stories260K";
const APP = "http://app.example";
const chat = { model: MODEL, messages: [{ role: "user", content: "Once upon a time" }] };
const MiB = 1024 * 1024;

Deno.test({
  name: "node HTTP edge: pages, rebinding names, huge bodies and bad params are refused",
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const mesh = await startMesh();
  try {
    const { serving, client } = await servingAndClient(mesh, {
      name: "edge",
      serveArgs: ["--ctx-size", "256", "--allow-origin", APP, "--allow-host", "grove.lan"],
    });
    const served = () => metric(serving.url, "grove_inference_requests_total");

    await t.step(
      "finding 2: a page's text/plain POST is refused; curl and the SDK work",
      async () => {
        const before = await served();
        for (const node of [client, serving]) {
          const res = await raw(node.url, "POST", "/v1/chat/completions", {
            origin: "http://evil.example",
            "content-type": "text/plain",
          }, JSON.stringify(chat));
          assert.equal(res.status, 403, res.body);
          const { error } = JSON.parse(res.body);
          assert.equal(error.code, "origin_not_allowed");
          assert.match(error.message, /--allow-origin http:\/\/evil\.example/);
          assert.equal(res.headers.get("access-control-allow-origin"), null);
        }
        assert.equal(await served(), before, "the refused page spent no compute");

        // curl -d, with no content type and with its default form type: no Origin, a tool.
        const body = JSON.stringify({ ...chat, max_tokens: 4 });
        for (const type of [undefined, "application/x-www-form-urlencoded"]) {
          const headers: Record<string, string> = type ? { "content-type": type } : {};
          const res = await raw(client.url, "POST", "/v1/chat/completions", headers, body);
          assert.equal(res.status, 200, res.body);
          assert.equal(JSON.parse(res.body).usage.completion_tokens, 4);
        }
        const sdk = new OpenAI({ baseURL: `${client.url}/v1`, apiKey: "unused", maxRetries: 0 });
        const answer = await sdk.chat.completions.create({ ...chat, max_tokens: 4 } as never);
        assert.equal((answer as OpenAI.ChatCompletion).usage?.completion_tokens, 4);
        assert.equal(await served(), before + 3);
      },
    );

    await t.step("finding 2: a rebinding Host reads neither status nor availability", async () => {
      const port = new URL(client.url).port;
      for (const path of ["/api/status", "/api/availability"]) {
        const res = await raw(client.url, "GET", path, { host: `rebind.example:${port}` });
        assert.equal(res.status, 403, res.body);
        assert.equal(JSON.parse(res.body).error.code, "host_not_allowed");
        assert.doesNotMatch(res.body, /16Uiu2|peerId|serveTargets/);
        const own = await raw(client.url, "GET", path, { host: `127.0.0.1:${port}` });
        assert.equal(own.status, 200, own.body);
      }
      const availability = await raw(client.url, "GET", "/api/availability", {
        host: `localhost:${port}`,
      });
      assert.match(availability.body, /serveTargets/);
      // A name the operator allowed (--allow-host grove.lan on the serving node), any port.
      const allowed = await raw(serving.url, "GET", "/api/status", { host: "grove.lan:8080" });
      assert.equal(allowed.status, 200, allowed.body);
    });

    await t.step("finding 2: an --allow-origin page gets CORS on preflight and POST", async () => {
      const preflight = await raw(serving.url, "OPTIONS", "/v1/chat/completions", {
        origin: APP,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, authorization",
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("access-control-allow-origin"), APP);
      assert.match(preflight.headers.get("access-control-allow-headers")!, /authorization/);
      assert.match(preflight.headers.get("vary")!, /Origin/);
      const res = await raw(serving.url, "POST", "/v1/chat/completions", {
        origin: APP,
        "content-type": "application/json",
      }, JSON.stringify({ ...chat, max_tokens: 2 }));
      assert.equal(res.status, 200, res.body);
      assert.equal(res.headers.get("access-control-allow-origin"), APP);
      assert.match(res.headers.get("vary")!, /Origin/);
      // The client node was given no --allow-origin: the same page is refused there.
      const elsewhere = await raw(client.url, "OPTIONS", "/v1/chat/completions", {
        origin: APP,
        "access-control-request-method": "POST",
      });
      assert.equal(elsewhere.status, 403);
    });

    await t.step(
      "finding 8: 100 MiB bodies get 413 promptly; the node's memory stays put",
      async () => {
        const pid = serving.child.pid;
        const rssBefore = rssMiB(pid);
        const declared = await flood(serving.url, 100 * MiB, false);
        const chunked = await flood(serving.url, 100 * MiB, true);
        for (const [how, r] of [["Content-Length", declared], ["chunked", chunked]] as const) {
          assert.match(r.response, /^HTTP\/1\.1 413 /, `${how}: ${r.response.slice(0, 200)}`);
          assert.match(r.response, /request_too_large/);
          assert.match(r.response, /8 MiB \(8388608 bytes\)/);
          assert.ok(r.ms < 5000, `${how}: 413 after ${r.ms} ms`);
          assert.ok(r.sent < 40 * MiB, `${how}: the node stopped reading (${r.sent} bytes sent)`);
        }
        const grown = rssMiB(pid) - rssBefore;
        console.log(
          `100 MiB POSTs: 413 after ${declared.ms} ms (Content-Length) and ${chunked.ms} ms ` +
            `(chunked); ${(declared.sent / MiB).toFixed(0)} and ${
              (chunked.sent / MiB).toFixed(0)
            } MiB sent; RSS ${rssBefore} MiB → +${grown}`,
        );
        assert.ok(grown < 48, `RSS grew ${grown} MiB`);
        const after = await raw(serving.url, "POST", "/v1/chat/completions", {
          "content-type": "application/json",
        }, JSON.stringify({ ...chat, max_tokens: 2 }));
        assert.equal(after.status, 200, "the node serves on");
      },
    );

    await t.step(
      "finding 9: bad params are 400s at the client node, never sent to a peer",
      async () => {
        const before = await served();
        const bad: [Record<string, unknown>, string][] = [
          // The finding's own three, then what this HTTP layer let through before.
          [{ logprobs: true, top_logprobs: 1000 }, "top_logprobs"],
          [{ max_tokens: "x" }, "max_tokens"],
          [{ stop: 5 }, "stop"],
          [{ n: 9 }, "n"],
          [{ stop: ["a", "b", "c", "d", "e"] }, "stop"],
          [{ max_completion_tokens: 8, max_tokens: "x" }, "max_tokens"],
          [{ logit_bias: { "1": 101 } }, "logit_bias"],
          [{ response_format: { type: "xml" } }, "response_format"],
        ];
        for (const [fields, param] of bad) {
          const res = await fetch(`${client.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ ...chat, ...fields }),
          });
          assert.equal(res.status, 400, JSON.stringify(fields));
          const { error } = await res.json();
          assert.equal(error.type, "invalid_request_error");
          assert.equal(error.param, param);
        }
        assert.equal(await served(), before, "no bad request reached the serving node");
      },
    );
  } finally {
    await mesh.close();
  }
});

interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** One HTTP/1.1 request as written, `Host` the node's unless given; the whole answer. */
async function raw(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  const { hostname, host, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const lines = [`${method} ${path} HTTP/1.1`, `host: ${host}`];
  for (const [k, v] of Object.entries({ ...headers, connection: "close" })) {
    if (k === "host") lines[1] = `host: ${v}`;
    else lines.push(`${k}: ${v}`);
  }
  const bytes = body === undefined ? new Uint8Array() : new TextEncoder().encode(body);
  if (body !== undefined) lines.push(`content-length: ${bytes.length}`);
  await writeAll(conn, new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  await writeAll(conn, bytes);
  const text = await new Response(conn.readable).text();
  const [head, ...rest] = text.split("\r\n\r\n");
  const [status, ...fields] = head.split("\r\n");
  const parsed = new Headers();
  for (const f of fields) parsed.append(f.slice(0, f.indexOf(":")), f.slice(f.indexOf(":") + 1));
  return { status: Number(status.split(" ")[1]), headers: parsed, body: rest.join("\r\n\r\n") };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/**
 * Sends a POST of `total` bytes (declared by Content-Length, or chunked) 1 MiB at a time until the
 * node answers, the node closes, or all is sent; returns the answer's start and what was sent.
 */
async function flood(url: string, total: number, chunked: boolean) {
  const { hostname, host, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const started = performance.now();
  const framing = chunked ? "transfer-encoding: chunked" : `content-length: ${total}`;
  const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: ${host}\r\n` +
    `content-type: application/json\r\n${framing}\r\n\r\n`;
  let response = "";
  let ms = 0;
  const reading = (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (let n; (n = await conn.read(buf)) !== null;) {
        response += new TextDecoder().decode(buf.subarray(0, n));
        ms ||= Math.round(performance.now() - started);
      }
    } catch {
      // the node ended the connection: what was read is the answer
    }
  })();
  const piece = new Uint8Array(MiB).fill(0x20); // spaces: valid JSON padding, if it were read
  const frame = chunked
    ? Buffer.concat([enc(`${MiB.toString(16)}\r\n`), piece, enc("\r\n")])
    : piece;
  let sent = 0;
  // Bounded whatever the node does: a node that neither reads nor answers would block the writes.
  const deadline = setTimeout(() => conn.close(), 10_000);
  try {
    await writeAll(conn, enc(head));
    while (sent < total && response === "") {
      await writeAll(conn, frame);
      sent += MiB;
    }
  } catch {
    // the node closed its side after answering
  }
  try {
    conn.closeWrite();
  } catch {
    // already closed
  }
  await reading;
  clearTimeout(deadline);
  try {
    conn.close();
  } catch {
    // already closed
  }
  return { response, sent, ms };
}

const enc = (s: string) => new TextEncoder().encode(s);

/** The process's resident memory now, in whole MiB. */
function rssMiB(pid: number): number {
  return Math.round(memoryKiB(pid) / 1024);
}
