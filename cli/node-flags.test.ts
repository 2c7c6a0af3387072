import assert from "node:assert/strict";
import { consumeOptionsFromArgs } from "./consume-command.ts";
import { CliError } from "./cli-error.ts";
import { isLoopback, parseSize } from "./node-flags.ts";
import { INTERFACES_REREAD_MS, ownAddresses } from "./node-access.ts";
import { DEFAULT_MAX_BODY, hostnameOf } from "../web/mod.ts";
import { publicModelId, serveOptionsFromArgs } from "./serve-command.ts";

Deno.test("node flags: the documented defaults", () => {
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

Deno.test("node flags: --mesh-host takes an IPv4 address, loopback by default", () => {
  assert.equal(consumeOptionsFromArgs(["--data", "/tmp/x"]).meshHost, undefined);
  const o = serveOptionsFromArgs(["--data", "/tmp/x", "--mesh-host", "198.18.0.10"]);
  assert.equal(o.meshHost, "198.18.0.10");
  for (const bad of ["localhost", "::1", "1.2.3.256", "1.2.3"]) {
    assert.throws(
      () => consumeOptionsFromArgs(["--data", "/tmp/x", "--mesh-host", bad]),
      (e) => e instanceof CliError && /--mesh-host .* is not an IPv4 address/.test(e.message),
    );
  }
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

Deno.test("node flags: --allow-host, --allow-origin and --max-body", () => {
  const o = consumeOptionsFromArgs([
    ...["--data", "/tmp/x", "--allow-host", "Grove.LAN,box.local", "--allow-host", "[fd00::2]"],
    ...[
      "--allow-origin",
      "http://App.example:3000/,https://app.example:443",
      "--allow-origin",
      "*",
    ],
    ...["--allow-origin", "vscode-webview://1abc"],
    ...["--max-body", "16MiB"],
  ]);
  assert.deepEqual(o.allowHosts, ["grove.lan", "box.local", "fd00::2"]);
  assert.deepEqual(o.allowOrigins, [
    "http://app.example:3000",
    "https://app.example",
    "*",
    "vscode-webview://1abc",
  ]);
  assert.equal(o.maxBody, 16 * 1024 * 1024);
  const d = consumeOptionsFromArgs(["--data", "/tmp/x"]);
  assert.deepEqual([d.allowHosts, d.allowOrigins, d.maxBody], [[], [], DEFAULT_MAX_BODY]);
  for (
    const [args, message] of [
      [["--allow-host", "grove.lan:9337"], /--allow-host "grove.lan:9337" is not a host name/],
      [["--allow-host", "http://grove.lan"], /without scheme, port or path/],
      [["--allow-origin", "app.example"], /--allow-origin "app.example" is not an origin/],
      [["--allow-origin", "http://app.example/page"], /without a path/],
      [["--allow-origin", "http://user@app.example"], /is not an origin/],
      [["--max-body", "12"], /--max-body "12" is below 1 KiB/],
      [["--max-body", "lots"], /--max-body "lots"/],
    ] as const
  ) {
    assert.throws(
      () => consumeOptionsFromArgs(["--data", "/tmp/x", ...args]),
      (e) => e instanceof CliError && message.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("node access: the bound address, or every interface's when bound to a wildcard", () => {
  assert.ok(ownAddresses("192.0.2.2")("192.0.2.2"));
  assert.ok(!ownAddresses("192.0.2.2")("192.0.2.3"));
  assert.ok(ownAddresses("[fd00::2]")("fd00::2"));
  let now = 0;
  let reads = 0;
  let addrs = ["127.0.0.1", "192.0.2.2", "fe80::1%eth0"];
  const own = ownAddresses("0.0.0.0", () => (reads++, addrs.map(hostnameOf)), () => now);
  assert.ok(own("0.0.0.0") && own("192.0.2.2") && own("fe80::1"));
  assert.equal(reads, 1);
  // A new address (DHCP) is found by a re-read, at most every INTERFACES_REREAD_MS.
  addrs = ["127.0.0.1", "198.51.100.7"];
  assert.ok(!own("198.51.100.7"));
  now += INTERFACES_REREAD_MS;
  assert.ok(own("198.51.100.7"));
  assert.equal(reads, 2);
  // Names never cause a re-read: a rebinding page cannot make the node list its interfaces.
  now += INTERFACES_REREAD_MS;
  assert.ok(!own("rebind.example"));
  assert.equal(reads, 2);
});
