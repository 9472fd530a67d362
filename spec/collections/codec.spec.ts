import fc from "fast-check";
import { Keyv } from "keyv";
import { describe, expect, it } from "vitest";
import {
  decodeValue,
  deserializeChecked,
  encodeSpliced,
  encodeValue,
  jsonText,
  serializeChecked,
} from "../../lib/collections/codec.js";

// The reference: what Keyv itself writes and reads. The collections' native fast paths must match it
// byte for byte, or collection() and the collections would stop reading each other's data.
const keyv = new Keyv();
const serialize = keyv.serialize as unknown as (data: unknown) => string;
const deserialize = keyv.deserialize as unknown as (text: string) => unknown;

/** Strings that hit every case Keyv's serializer treats specially, beside arbitrary ones. */
const tricky = fc.oneof(
  fc.string(),
  fc.constantFrom(":", "::", ":x", ":base64:AAEC", ',":', '[":', '":', "a:b", '"', "\\"),
  fc.string().map((s) => `:${s}`),
);
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    tricky,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(tricky, tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** Values collection() is handed in practice, with everything Keyv's serializer treats apart from JSON. */
const anyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    json,
    fc.constant(undefined),
    fc.constant(() => 1),
    fc.uint8Array({ maxLength: 4 }).map((bytes) => Buffer.from(bytes)),
    fc.date({ noInvalidDate: true }),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.sparseArray(tie("value"), { maxLength: 4 }),
    fc.dictionary(tricky, tie("value"), { maxKeys: 4 }),
  ),
})).value;

describe("stored values match Keyv's own serializer", () => {
  it("serializeChecked (collection() writes) is Keyv's text for every value, however it gets there", () => {
    fc.assert(
      fc.property(anyValue, fc.option(fc.integer({ min: 1, max: 2 ** 45 }), { nil: undefined }), (value, expires) => {
        const data = expires === undefined ? { value } : { value, expires };
        expect(serializeChecked(data)).toBe(serialize(data));
      }),
      { numRuns: 3000 },
    );
  });

  it("writes plain JSON where Keyv's serializer writes text that does not read back as the value", () => {
    const named = Object.assign([1, 2], { extra: 5 });
    // Keyv: {"0":"a","1":"b"}, {}, [1,2,5], {"a":undefined,…} (not JSON), and a TypeError.
    expect(serializeChecked({ value: new String("ab") })).toBe('{"value":"ab"}');
    expect(serializeChecked({ value: new Number(3) })).toBe('{"value":3}');
    expect(serializeChecked({ value: named })).toBe('{"value":[1,2]}');
    expect(serializeChecked({ value: { a: Symbol("s"), b: 1 } })).toBe('{"value":{"b":1}}');
    expect(serializeChecked({ value: { toJSON: 1, a: 2 } })).toBe('{"value":{"toJSON":1,"a":2}}');
  });

  it("encodeValue writes what Keyv writes, and decodeValue reads what Keyv reads", () => {
    fc.assert(
      fc.property(json, (value) => {
        const text = encodeValue(value);
        expect(text).toBe(serialize({ value }));
        expect(decodeValue(text, "n")).toEqual((deserialize(text) as { value: unknown }).value);
      }),
      { numRuns: 2000 },
    );
  });

  it("encodeSpliced writes the same text as the whole record through Keyv, with and without expiry", () => {
    fc.assert(
      fc.property(
        fc.dictionary(tricky, json, { minKeys: 1, maxKeys: 4 }).filter((fields) => !("data" in fields)),
        json,
        fc.option(fc.integer({ min: 1, max: 2 ** 45 }), { nil: undefined }),
        (fields, data, expires) => {
          const text = encodeSpliced(fields, "data", jsonText(data), expires);
          const value = { ...fields, data };
          expect(text).toBe(serialize(expires === undefined ? { value } : { value, expires }));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("reads any JSON text as Keyv reads it, whitespace and bare colon strings included", () => {
    fc.assert(
      fc.property(json, fc.constantFrom(undefined, 1, "\t", " \n "), (value, space) => {
        for (const text of [JSON.stringify(value, null, space), serialize(value), serialize({ value })]) {
          expect(deserializeChecked(text)).toEqual(deserialize(text));
          expect(decodeValue(text, "n")).toEqual(
            (() => {
              const data = deserialize(text) as { value?: unknown } | null;
              return data !== null && typeof data === "object" ? data.value : undefined;
            })(),
          );
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("reads back bytes and colon strings exactly", () => {
    const text = serialize({ value: { a: ":x", b: [":base64:AAEC"], c: Buffer.from([1, 2]) } });
    expect(decodeValue(text, "n")).toEqual({ a: ":x", b: [":base64:AAEC"], c: Buffer.from([1, 2]) });
    expect(decodeValue(encodeValue({ k: ":::" }), "n")).toEqual({ k: ":::" });
  });

  it("treats an entry past its expiry as missing", () => {
    const past = encodeSpliced({ name: "a" }, "data", "1", Date.now() - 1);
    const future = encodeSpliced({ name: "a" }, "data", "1", Date.now() + 60_000);
    expect(decodeValue(past, "a")).toBeUndefined();
    expect(decodeValue(future, "a")).toEqual({ name: "a", data: 1 });
  });
});
