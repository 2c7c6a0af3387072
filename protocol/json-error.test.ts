import assert from "node:assert/strict";
import { jsonError } from "./json-error.ts";

Deno.test("jsonError: shapes {error: {code, message}}", () => {
  assert.equal(
    JSON.stringify(jsonError("not_member", "you are not a member")),
    '{"error":{"code":"not_member","message":"you are not a member"}}',
  );
});
