import assert from "node:assert/strict";
import { parseRelayInformation, requireMesh } from "./nip11-reader.ts";

const DOC = {
  name: "grove",
  description: "a test relay",
  pubkey: "a".repeat(64),
  supported_nips: [1, 9, 11, 40, 42, 43, 70, 86, 98],
  software: "grove",
  version: "0.1.0",
  limitation: { max_message_length: 131072, auth_required: false, restricted_writes: true },
  mesh: {
    id: "mesh-1",
    rendezvous: ["/ip4/127.0.0.1/tcp/7778/p2p/16Uiu2HAmExample"],
    admission_url: "http://127.0.0.1:7777/admission",
    status_kind: 30621,
  },
};

Deno.test("nip11: a full document parses, mesh included", () => {
  const info = parseRelayInformation(structuredClone(DOC));
  assert.deepEqual(info, DOC);
  assert.deepEqual(requireMesh(info), DOC.mesh);
});

Deno.test("nip11: without mesh it parses, and requireMesh fails closed", () => {
  const { mesh: _mesh, ...rest } = DOC;
  const info = parseRelayInformation(rest);
  assert.equal(info.mesh, undefined);
  assert.throws(() => requireMesh(info), /advertises no mesh object.*refusing to start/);
  const empty = parseRelayInformation({ ...DOC, mesh: { ...DOC.mesh, rendezvous: [] } });
  assert.throws(() => requireMesh(empty), /no rendezvous address/);
});

Deno.test("nip11: bad fields are named", () => {
  assert.throws(() => parseRelayInformation("x"), /not a JSON object/);
  assert.throws(() => parseRelayInformation({ ...DOC, pubkey: "npub1" }), /pubkey must be/);
  assert.throws(
    () => parseRelayInformation({ ...DOC, supported_nips: ["1"] }),
    /supported_nips must be an array of integers/,
  );
  const mesh = (patch: Record<string, unknown>) =>
    parseRelayInformation({ ...DOC, mesh: { ...DOC.mesh, ...patch } });
  assert.throws(() => mesh({ id: "" }), /mesh.id must be a non-empty string/);
  assert.throws(() => mesh({ rendezvous: "addr" }), /mesh.rendezvous must be an array/);
  assert.throws(() => mesh({ admission_url: "nope" }), /mesh.admission_url nope is not a URL/);
  assert.throws(() => mesh({ status_kind: 1 }), /mesh.status_kind must be 30621/);
});
