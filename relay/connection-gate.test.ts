import assert from "node:assert/strict";
import { createConnectionGate, type Slot } from "./connection-gate.ts";

Deno.test("connection gate: strangers are capped per address, members are not", () => {
  const gate = createConnectionGate({ maxConnections: 100, maxConnectionsPerIp: 2 });
  const slots = [gate.open(), gate.open(), gate.open()] as Slot[];
  assert.equal(slots[0].assign("a"), undefined);
  assert.equal(slots[1].assign("a"), undefined);
  assert.match(slots[2].assign("a")!, /too many unauthenticated connections from a \(at most 2\)/);
  assert.equal(slots[2].assign("b"), undefined, "another address has its own count");
  slots[0].member();
  assert.equal(gate.strangers("a"), 1, "a member's socket no longer counts");
  const next = gate.open() as Slot;
  assert.equal(next.assign("a"), undefined);
  slots[0].assign("a"); // a member's socket is not counted again
  assert.equal(gate.strangers("a"), 2);
  next.close();
  next.close(); // idempotent
  assert.equal(gate.strangers("a"), 1);
  assert.equal(gate.total(), 3);
});

Deno.test("connection gate: past the global cap new sockets are refused", () => {
  const gate = createConnectionGate({ maxConnections: 2, maxConnectionsPerIp: 10 });
  const a = gate.open() as Slot;
  gate.open();
  assert.match(gate.open() as string, /maximum of 2 connections/);
  a.close();
  assert.equal(typeof gate.open(), "object");
});
