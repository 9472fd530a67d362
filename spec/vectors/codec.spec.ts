import fc from "fast-check";
import { Keyv } from "keyv";
import { describe, expect, it } from "vitest";
import { encodeValue } from "../../lib/collections/codec.js";
import { decodeVector, encodeRow, encodeVector, parseKeyvText, storedDimensions } from "../../lib/vectors/codec.js";

const keyv = new Keyv();

describe("vector codec", () => {
  it("round-trips float32 values exactly through base64", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 50 }),
        (xs) => {
          const v = Float32Array.from(xs);
          const text = encodeVector(v);
          expect(storedDimensions(text)).toBe(v.length);
          expect(Array.from(decodeVector(text)!)).toEqual(Array.from(v));
        },
      ),
    );
  });

  it("reads stored rows exactly as Keyv's own deserializer does", async () => {
    const metadata = fc.dictionary(
      fc.string(),
      fc.oneof(fc.string(), fc.constantFrom(":x", "::y", ":base64:", "a"), fc.integer(), fc.array(fc.string())),
    );
    await fc.assert(
      fc.asyncProperty(metadata, fc.boolean(), async (m, withExpiry) => {
        const value = { v: encodeVector(Float32Array.of(1, 2, 3)), m };
        const text = (await keyv.serializeData({ value, expires: withExpiry ? 123 : undefined })) as string;
        expect(parseKeyvText(text)).toEqual(keyv.deserialize!(text));
      }),
    );
    const others: Array<{ value: unknown }> = [
      { value: "plain" },
      { value: [1, 2] },
      { value: { v: [1, 2], m: { a: ":b" } } },
    ];
    for (const other of others) {
      const text = (await keyv.serializeData(other)) as string;
      expect(parseKeyvText(text)).toEqual(keyv.deserialize!(text));
    }
  });

  it("writes a row's text as encodeValue does, metadata with colon strings included", () => {
    const text = fc.oneof(
      fc.string(),
      fc.string().map((s) => `:${s}`),
      fc.constantFrom(":", '":', ":base64:AA"),
    );
    const meta = fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null), fc.array(text)), {
      maxKeys: 4,
    });
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true }), { minLength: 1, maxLength: 40 }), meta, (xs, m) => {
        const values = Float32Array.from(xs);
        expect(encodeRow(values, m)).toBe(encodeValue({ v: encodeVector(values), m }));
      }),
      { numRuns: 1000 },
    );
  });
});
