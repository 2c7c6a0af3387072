import assert from "node:assert/strict";
import { lateUrls, relayUrls } from "./relay-urls.ts";

Deno.test("relay urls: a loopback bind accepts every loopback spelling of its port", () => {
  assert.deepEqual(relayUrls("0.0.0.0", 7777), {
    ws: "ws://127.0.0.1:7777/",
    http: "http://127.0.0.1:7777",
    local: "ws://127.0.0.1:7777/",
    accepted: [
      "ws://127.0.0.1:7777/",
      "ws://127.0.0.1:7777/",
      "ws://localhost:7777/",
      "ws://[::1]:7777/",
    ],
  });
  assert.equal(relayUrls("::", 1).local, "ws://[::1]:1/");
  assert.equal(relayUrls("fd00::5", 2).local, "ws://[fd00::5]:2/");
});

Deno.test("relay urls: a public URL is what clients use, the bound address stays accepted", () => {
  const urls = relayUrls("10.0.0.7", 7777, "wss://relay.example.org");
  assert.equal(urls.ws, "wss://relay.example.org/");
  assert.equal(urls.http, "https://relay.example.org");
  assert.equal(urls.local, "ws://10.0.0.7:7777/");
  assert.deepEqual(urls.accepted, ["wss://relay.example.org/", "ws://10.0.0.7:7777/"]);
});

Deno.test("relay urls: read before the edge set them, or set twice, is a wiring mistake", () => {
  const late = lateUrls();
  assert.throws(() => late.get(), /known once its edge listens/);
  const urls = relayUrls("127.0.0.1", 4000);
  late.set(urls);
  assert.equal(late.get(), urls);
  assert.throws(() => late.set(urls), /already set/);
});
