import assert from "node:assert/strict";
import { consumeOptionsFromArgs } from "./consume.ts";
import { CliError } from "./errors.ts";
import { isLoopback, parseSize } from "./node-flags.ts";
import { publicModelId, serveOptionsFromArgs } from "./serve.ts";

Deno.test("node flags: defaults per SPEC §1", () => {
  const o = consumeOptionsFromArgs(["--data", "/tmp/x"]);
  assert.equal(o.relayUrl, "ws://127.0.0.1:7777");
  assert.equal(o.port, 9337);
  assert.equal(o.host, "127.0.0.1");
  assert.equal(o.quic, true);
  assert.equal(serveOptionsFromArgs(["--data", "/tmp/x"]).model, "stories260K");
});

Deno.test("consume: a non-loopback --host demands --api-key", () => {
  assert.throws(
    () => consumeOptionsFromArgs(["--data", "/tmp/x", "--host", "0.0.0.0"]),
    (e) => e instanceof CliError && /--api-key/.test(e.message),
  );
  const ok = consumeOptionsFromArgs(["--data", "/tmp/x", "--host", "0.0.0.0", "--api-key", "k"]);
  assert.equal(ok.apiKey, "k");
  assert.ok(isLoopback("127.0.0.1") && isLoopback("localhost") && !isLoopback("192.168.1.2"));
  assert.ok(isLoopback("[::1]") && isLoopback("127.1.2.3") && !isLoopback("127.0.0.1.nip.io"));
});

Deno.test("serve: --gpu, bad sizes and bad relay URLs are clear errors", () => {
  assert.equal(serveOptionsFromArgs(["--gpu", "--data", "/tmp/x"]).gpu, true);
  assert.throws(() => serveOptionsFromArgs(["--max-memory", "lots"]), /--max-memory "lots"/);
  assert.throws(() => serveOptionsFromArgs(["--relay", "http://x"]), /ws:\/\/ or wss:\/\//);
  assert.equal(parseSize("m", "900KiB"), 900 * 1024);
  assert.equal(parseSize("m", "6GiB"), 6 * 1024 ** 3);
  assert.equal(parseSize("m", "512MB"), 512e6);
  assert.equal(parseSize("m", "1000"), 1000);
});

Deno.test("serve: the published model id is never a local path", () => {
  assert.equal(publicModelId("stories260K"), "stories260K");
  assert.equal(publicModelId("hf://o/r/m.gguf"), "hf://o/r/m.gguf");
  assert.equal(publicModelId("/home/me/models/tiny.gguf"), "tiny");
  assert.equal(publicModelId("./tiny.Q4_0.gguf"), "tiny.Q4_0");
});

Deno.test("serve: a non-loopback --host demands --api-key, as consume does", () => {
  for (const host of ["0.0.0.0", "::", "192.168.1.2", "127.0.0.1.nip.io"]) {
    assert.throws(
      () => serveOptionsFromArgs(["--data", "/tmp/x", "--host", host]),
      (e) => e instanceof CliError && /opens the serving node's endpoint/.test(e.message),
      host,
    );
  }
  const keyed = serveOptionsFromArgs(["--data", "/tmp/x", "--host", "0.0.0.0", "--api-key", "k"]);
  assert.equal(keyed.host, "0.0.0.0");
  for (const host of ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]) {
    assert.equal(serveOptionsFromArgs(["--data", "/tmp/x", "--host", host]).host, host);
  }
});
