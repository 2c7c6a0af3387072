import assert from "node:assert/strict";
import { finalizeEvent, generateSecretKey } from "nostr-tools/pure";
import { matchFilter, parseFilter } from "./filter.ts";

const limits = { maxLimit: 100 };
const A = "a".repeat(64);
const B = "b".repeat(64);

Deno.test("parseFilter keeps every NIP-01 field", () => {
  const f = parseFilter({
    ids: [A],
    authors: [B],
    kinds: [0, 1, 65535],
    since: 10,
    until: 20,
    limit: 5,
    "#e": [A],
    "#p": [B],
    "#d": ["x"],
    "#T": ["y"],
  }, limits);
  assert.deepEqual(f, {
    ids: [A],
    authors: [B],
    kinds: [0, 1, 65535],
    since: 10,
    until: 20,
    limit: 5,
    "#e": [A],
    "#p": [B],
    "#d": ["x"],
    "#T": ["y"],
  });
});

Deno.test("parseFilter clamps limit to maxLimit and ignores unknown fields", () => {
  assert.deepEqual(parseFilter({ limit: 1000, search: "cats", foo: 1 }, limits), { limit: 100 });
  assert.deepEqual(parseFilter({ limit: 0 }, limits), { limit: 0 });
  assert.deepEqual(parseFilter({}, limits), {});
  assert.deepEqual(parseFilter({ ids: [] }, limits), { ids: [] });
});

Deno.test("parseFilter rejects each malformed field, naming it", () => {
  const cases: [unknown, RegExp][] = [
    [null, /^invalid: a filter must be a JSON object/],
    [[], /^invalid: a filter must be a JSON object/],
    ["x", /^invalid: a filter must be a JSON object/],
    [{ ids: A }, /^invalid: ids must be/],
    [{ ids: ["abc"] }, /^invalid: ids must be/], // prefixes are no longer allowed
    [{ ids: [A.toUpperCase()] }, /^invalid: ids must be/],
    [{ ids: [1] }, /^invalid: ids must be/],
    [{ authors: [A + "0"] }, /^invalid: authors must be/],
    [{ authors: null }, /^invalid: authors must be/],
    [{ kinds: [1.5] }, /^invalid: kinds must be/],
    [{ kinds: [-1] }, /^invalid: kinds must be/],
    [{ kinds: [65536] }, /^invalid: kinds must be/],
    [{ kinds: ["1"] }, /^invalid: kinds must be/],
    [{ kinds: 1 }, /^invalid: kinds must be/],
    [{ since: "10" }, /^invalid: since must be/],
    [{ since: 1.5 }, /^invalid: since must be/],
    [{ until: -1 }, /^invalid: until must be/],
    [{ until: null }, /^invalid: until must be/],
    [{ limit: -1 }, /^invalid: limit must be/],
    [{ limit: 2.5 }, /^invalid: limit must be/],
    [{ limit: "5" }, /^invalid: limit must be/],
    [{ "#e": A }, /^invalid: #e must be an array of strings/],
    [{ "#p": [1] }, /^invalid: #p must be an array of strings/],
    [{ "#ab": ["x"] }, /^invalid: tag filter "#ab" must be # and a single letter/],
    [{ "#": ["x"] }, /^invalid: tag filter "#"/],
    [{ "#1": ["x"] }, /^invalid: tag filter "#1"/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => parseFilter(raw, limits), { message }, JSON.stringify(raw));
  }
});

Deno.test("matchFilter checks every field and tag values", () => {
  const sk = generateSecretKey();
  const ev = finalizeEvent({
    kind: 1,
    created_at: 100,
    tags: [["e", A], ["p", B, "wss://x"], ["t", "grove"], ["subject", "x"]],
    content: "hi",
  }, sk);
  const yes = (raw: unknown) =>
    assert.ok(matchFilter(parseFilter(raw, limits), ev), JSON.stringify(raw));
  const no = (raw: unknown) =>
    assert.ok(!matchFilter(parseFilter(raw, limits), ev), JSON.stringify(raw));
  yes({});
  yes({ ids: [ev.id, A] });
  no({ ids: [A] });
  no({ ids: [] });
  yes({ authors: [ev.pubkey] });
  no({ authors: [A] });
  yes({ kinds: [0, 1] });
  no({ kinds: [0] });
  yes({ since: 100, until: 100 });
  no({ since: 101 });
  no({ until: 99 });
  yes({ "#e": [A] });
  yes({ "#p": [B, A] });
  yes({ "#e": [A], "#t": ["grove"] });
  no({ "#e": [B] });
  no({ "#e": [A], "#t": ["other"] });
  no({ "#d": [""] });
  no({ "#e": [] });
  yes({ limit: 0 }); // limit bounds stored results, not live ones
});
