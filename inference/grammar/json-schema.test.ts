import assert from "node:assert/strict";
import { GrammarError } from "./grammar.ts";
import { jsonObjectGrammar } from "./json-primitives.ts";
import { jsonSchemaGrammar } from "./json-schema.ts";
import { acceptsText } from "./matcher.ts";

function check(schema: unknown, yes: string[], no: string[]) {
  const g = jsonSchemaGrammar(schema);
  for (const t of yes) assert.ok(acceptsText(g, t), `${JSON.stringify(schema)} should match ${t}`);
  for (const t of no) assert.ok(!acceptsText(g, t), `${JSON.stringify(schema)} should refuse ${t}`);
}

function refused(schema: unknown, feature: string | undefined, message?: RegExp) {
  assert.throws(() => jsonSchemaGrammar(schema), (e) => {
    assert.ok(e instanceof GrammarError, `a GrammarError, got ${e}`);
    assert.equal(e.feature, feature, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

Deno.test("json schema: objects keep the schema's order; optional properties may be left out", () => {
  const schema = {
    type: "object",
    properties: { a: { type: "integer" }, b: { type: "string" }, c: { type: "boolean" } },
    required: ["b"],
  };
  check(schema, [
    '{"b":""}',
    '{"a":1,"b":"x"}',
    '{"b":"x","c":true}',
    '{ "a": 1, "b": "x", "c": false }',
  ], [
    "{}",
    '{"a":1}',
    '{"b":"x","a":1}',
    '{"b":"x",}',
    '{,"b":"x"}',
    '{"b":"x","d":1}',
  ]);
  check({ type: "object", properties: { a: { type: "null" } } }, ["{}", '{"a":null}'], ['{"a":1}']);
  // A required property the schema does not describe takes any value.
  check({ type: "object", required: ["x"] }, ['{"x":[1,{"y":null}]}'], ["{}"]);
});

Deno.test("json schema: additionalProperties false, true or a schema", () => {
  const props = { a: { type: "integer" } };
  check({ type: "object", properties: props, additionalProperties: false }, ["{}", '{"a":1}'], [
    '{"b":1}',
  ]);
  check({ type: "object", properties: props, additionalProperties: true }, [
    '{"a":1,"b":[true]}',
    '{"zz":{},"a2":null}',
    '{"":1}',
  ], ['{"a":"x"}', '{"b":1,"a":2}']);
  check({ type: "object", properties: props, additionalProperties: { type: "string" } }, [
    '{"a":1,"ab":"x"}',
    '{"b":"x","c":"y"}',
  ], ['{"b":1}', '{"a":"s"}']);
  // An extra key never repeats a declared one, so the value cannot dodge its schema.
  check({ properties: { ab: { const: 1 } }, additionalProperties: { type: "string" } }, [
    '{"a":"x"}',
    '{"abc":"x"}',
  ], ['{"ab":"x"}']);
});

Deno.test("json schema: arrays with items, prefixItems, tuples and bounds", () => {
  check({ type: "array", items: { type: "integer" }, minItems: 1, maxItems: 3 }, [
    "[1]",
    "[1, 2,3]",
  ], ["[]", "[1,2,3,4]", '["a"]', "[1,]"]);
  check({ type: "array", items: { type: "boolean" } }, ["[]", "[true,false,true]"], ["[1]"]);
  check({ type: "array", prefixItems: [{ type: "string" }, { type: "integer" }], items: false }, [
    "[]",
    '["a"]',
    '["a",1]',
  ], ['["a",1,2]', "[1]"]);
  check(
    {
      type: "array",
      prefixItems: [{ type: "string" }],
      items: { type: "null" },
      minItems: 2,
      maxItems: 3,
    },
    ['["a",null]', '["a",null,null]'],
    ['["a"]', '["a",null,null,null]'],
  );
  check({ type: "array", items: [{ const: 1 }], additionalItems: { type: "string" } }, [
    "[]",
    "[1]",
    '[1,"x","y"]',
  ], ["[1,2]"]);
  check({ type: "array", items: { type: "integer" }, maxItems: 1, uniqueItems: true }, [
    "[]",
    "[5]",
  ], [
    "[5,6]",
  ]);
});

Deno.test("json schema: strings with lengths, enum, const and escapes", () => {
  check({ type: "string", minLength: 2, maxLength: 3 }, ['"ab"', '"a\\nb"', '"éè€"'], [
    '"a"',
    '"abcd"',
    '"\\n"',
  ]);
  check({ type: "string" }, ['""', '"\\u00e9\\"\\\\"', '"😀"'], ['"\\ud800"', '"a\nb"', '"a']);
  check({ enum: ["red", "green", 3, null, { a: [1] }] }, ['"red"', "3", "null", '{"a":[1]}'], [
    '"blue"',
    "4",
  ]);
  check({ const: { x: "y" } }, ['{"x":"y"}'], ['{"x":"z"}']);
  check({ type: "string", enum: ["a", 1] }, ['"a"'], ["1"]);
});

Deno.test("json schema: formats date, time, date-time and uuid", () => {
  check({ type: "string", format: "date" }, ['"2024-01-31"', '"1999-12-01"', '"2023-02-28"'], [
    '"2024-02-30"',
    '"2024-04-31"',
    '"2024-13-01"',
    '"24-01-01"',
  ]);
  check({ type: "string", format: "time" }, ['"23:59:59Z"', '"00:00:00.123+05:30"'], [
    '"24:00:00Z"',
    '"12:00:00"',
  ]);
  check({ type: "string", format: "date-time" }, ['"2024-05-06T07:08:09Z"'], ['"2024-05-06"']);
  check({ type: "string", format: "uuid" }, ['"123e4567-e89b-12d3-a456-426614174000"'], [
    '"123e4567e89b12d3a456426614174000"',
  ]);
  refused({ type: "string", format: "email" }, "format: email");
});

Deno.test("json schema: patterns as a regex subset", () => {
  check({ type: "string", pattern: "^[a-c]+-\\d{2,3}$" }, ['"ab-12"', '"c-123"'], [
    '"ab-1"',
    '"d-12"',
    '"ab-1234"',
  ]);
  check({ type: "string", pattern: "^(foo|ba(r|z))?x*$" }, ['""', '"foo"', '"bazxx"'], ['"fo"']);
  check({ type: "string", pattern: "^a.c$" }, ['"abc"', '"a\\"c"', '"a\\\\c"', '"a😀c"'], [
    '"a\\nc"',
    '"ac"',
  ]);
  check({ type: "string", pattern: "^[^\\s]\\w\\S?$" }, ['"x_"', '"-1!"'], ['" a"']);
  check({ type: "string", pattern: "ab" }, ['"ab"', '"xxabyy"'], ['"a"']); // unanchored
  check({ type: "string", pattern: "^\\.\\u0041+?$" }, ['".AA"'], ['"xA"']);
  refused({ type: "string", pattern: "^(a)\\1$" }, "pattern: backreferences");
  refused({ type: "string", pattern: "^a(?=b)" }, "pattern: lookahead");
  refused({ type: "string", pattern: "\\bword" }, "pattern: \\b (word boundary)");
  refused({ type: "string", pattern: "a(^b)" }, "pattern: an anchor (^ or $) inside the pattern");
  check({ type: "string", pattern: "^a$|^b" }, ['"a"', '"bcd"'], ['"ab"']);
  refused({ type: "string", pattern: "^a", minLength: 2 }, "pattern");
  assert.throws(() => jsonSchemaGrammar({ type: "string", pattern: "(" }), /not valid/);
});

Deno.test("json schema: integers within bounds, exactly", () => {
  const bounds = [
    { minimum: -120, maximum: 7 },
    { minimum: 5, maximum: 305 },
    { exclusiveMinimum: -3, exclusiveMaximum: 99 },
    { minimum: 0 },
    { maximum: -10 },
    { minimum: 1.5, maximum: 9.5 },
  ];
  for (const b of bounds) {
    const g = jsonSchemaGrammar({ type: "integer", ...b });
    const lo = b.minimum ??
      (b.exclusiveMinimum !== undefined ? b.exclusiveMinimum + 1e-9 : -Infinity);
    const hi = b.maximum ??
      (b.exclusiveMaximum !== undefined ? b.exclusiveMaximum - 1e-9 : Infinity);
    for (let n = -400; n <= 400; n++) {
      assert.equal(acceptsText(g, String(n)), n >= lo && n <= hi, `${n} in ${JSON.stringify(b)}`);
    }
    assert.ok(!acceptsText(g, "007"), "no leading zeros");
    assert.ok(!acceptsText(g, "-0"));
  }
  check({ type: "integer" }, ["0", "-12", "1234567890123456"], ["01", "1.5", "12345678901234567"]);
  refused({ type: "integer", minimum: 5, maximum: 4 }, undefined, /no integer lies within/);
});

Deno.test("json schema: numbers within whole-number bounds", () => {
  const cases = [
    { minimum: 0, maximum: 1 },
    { minimum: -2, maximum: 3 },
    { exclusiveMinimum: 0, exclusiveMaximum: 10 },
    { minimum: -5, maximum: -2 },
    { exclusiveMinimum: -1 },
  ];
  const texts = [
    "0",
    "0.5",
    "1",
    "1.0",
    "1.01",
    "-0.5",
    "-1",
    "-2",
    "-2.5",
    "-5",
    "-5.01",
    "3",
    "3.5",
  ];
  for (const b of cases) {
    const g = jsonSchemaGrammar({ type: "number", ...b });
    for (const t of [...texts, "9.99", "10", "0.000", "-0.0001", "100.25"]) {
      const v = Number(t);
      const ok = (b.minimum === undefined || v >= b.minimum) &&
        (b.maximum === undefined || v <= b.maximum) &&
        (b.exclusiveMinimum === undefined || v > b.exclusiveMinimum) &&
        (b.exclusiveMaximum === undefined || v < b.exclusiveMaximum);
      assert.equal(acceptsText(g, t), ok, `${t} in ${JSON.stringify(b)}`);
    }
  }
  check({ type: "number" }, ["0", "-1.5", "2e10", "3.25E-2"], ["1.", ".5", "+1", "1e"]);
  refused({ type: "number", minimum: 0.5 }, "minimum", /not supported/);
});

Deno.test("json schema: booleans, null, type lists, nullable, anyOf and oneOf", () => {
  check({ type: "boolean" }, ["true", "false"], ["1"]);
  check({ type: ["string", "null"], maxLength: 1 }, ['"a"', "null"], ['"ab"', "1"]);
  check({ type: "integer", nullable: true }, ["1", "null"], ['"1"']);
  check({ anyOf: [{ type: "integer" }, { type: "array", items: { type: "integer" } }] }, [
    "1",
    "[1,2]",
  ], ['"x"']);
  check({ oneOf: [{ const: "a" }, { type: "object", properties: { b: { type: "null" } } }] }, [
    '"a"',
    '{"b":null}',
  ], ['"b"']);
  // Keywords beside anyOf apply to every branch.
  check(
    {
      type: "object",
      required: ["k"],
      anyOf: [{ properties: { k: { const: 1 } } }, {
        properties: { k: { const: 2 } },
      }],
    },
    ['{"k":1}', '{"k":2}'],
    ["{}", '{"k":3}'],
  );
  check(true, ["1", '{"a":[]}'], []);
  check({}, ["null"], []);
  check({ description: "anything", title: "x", "x-unknown": 1 }, ['"s"'], []);
});

Deno.test("json schema: allOf of objects merges them", () => {
  check(
    {
      allOf: [
        { type: "object", properties: { a: { type: "integer" } }, required: ["a"] },
        { properties: { b: { type: "string" } }, required: ["b"] },
        { properties: { a: { minimum: 0 } } },
      ],
    },
    ['{"a":1,"b":"x"}'],
    ['{"a":-1,"b":"x"}', '{"a":1}'],
  );
  // A branch that allows no extra properties drops what the other adds.
  check(
    {
      allOf: [
        { properties: { a: { type: "integer" } }, additionalProperties: false },
        { properties: { b: { type: "string" } } },
      ],
    },
    ['{"a":1}'],
    ['{"a":1,"b":"x"}'],
  );
  refused({ allOf: [{ type: "string" }, { type: "integer" }] }, "allOf", /type/);
  refused({ allOf: [{ pattern: "^a" }, { pattern: "^b" }] }, "allOf", /pattern/);
});

Deno.test("json schema: $ref to $defs, definitions and pointers, recursion included", () => {
  const tree = {
    $defs: {
      node: {
        type: "object",
        properties: {
          v: { type: "integer" },
          kids: { type: "array", items: { $ref: "#/$defs/node" } },
        },
        required: ["v"],
      },
    },
    $ref: "#/$defs/node",
  };
  check(tree, ['{"v":1}', '{"v":1,"kids":[{"v":2,"kids":[{"v":3}]},{"v":4}]}'], [
    '{"v":1,"kids":[{}]}',
  ]);
  check(
    {
      definitions: { s: { type: "string", maxLength: 1 } },
      properties: { a: { $ref: "#/definitions/s" }, b: { $ref: "#/properties/a" } },
    },
    ['{"a":"x","b":"y"}'],
    ['{"a":"xy"}'],
  );
  // The root itself, and a $ref with sibling keywords.
  check({ type: "array", items: { anyOf: [{ type: "null" }, { $ref: "#" }] }, maxItems: 2 }, [
    "[[null],[]]",
  ], ["[1]"]);
  check(
    {
      $defs: { o: { type: "object", properties: { a: { type: "integer" } } } },
      $ref: "#/$defs/o",
      required: ["a"],
    },
    ['{"a":1}'],
    ["{}"],
  );
  refused({ $ref: "https://example.com/s.json" }, "$ref", /local/);
  refused({ $ref: "#/$defs/missing" }, "$ref", /points at nothing/);
});

Deno.test("json schema: keywords it cannot honour are refused by name", () => {
  for (
    const k of [
      "not",
      "if",
      "patternProperties",
      "propertyNames",
      "dependentRequired",
      "contains",
      "multipleOf",
      "unevaluatedProperties",
    ]
  ) {
    refused({ type: "object", [k]: {} }, k, new RegExp(`unsupported JSON Schema keyword: ${k}`));
  }
  refused({ type: "array", uniqueItems: true }, "uniqueItems");
  refused({ type: "object", properties: { a: {} }, minProperties: 1 }, "minProperties");
  refused({ type: "object", properties: { a: {} }, maxProperties: 0 }, "maxProperties");
  refused({ type: "frobnicate" }, "type");
  refused(false, "false");
  refused({ properties: { a: false }, required: ["a"] }, "false");
});

Deno.test("json_object: any JSON object, nested, and nothing else", () => {
  const g = jsonObjectGrammar();
  for (const t of ["{}", '{"a":{"b":[1,-2.5e3,"x",true,null]}}', '{\n  "k": "v"\n}']) {
    assert.ok(acceptsText(g, t), t);
  }
  for (const t of ["[]", '"x"', "{", '{"a"}', '{"a":1,}', " {}"]) assert.ok(!acceptsText(g, t), t);
});
