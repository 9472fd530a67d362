import type { Embedder } from "./types.js";

/**
 * Deterministic feature-hashing embedder: words and character trigrams hashed into a
 * fixed number of signed buckets. No model, no download, same vector in every process;
 * good for keyword-ish search of workflow descriptions. Pass a real embedder for semantics.
 */
export function hashingEmbedder(dimensions = 256): Embedder {
  return {
    dimensions,
    embed(text: string): Float32Array {
      const out = new Float32Array(dimensions);
      const words =
        text
          .toLowerCase()
          .normalize("NFKC")
          .match(/[\p{L}\p{N}_]+/gu) ?? [];
      const add = (feature: string, weight: number) => {
        const h = fnv1a(feature);
        out[h % dimensions] = (out[h % dimensions] ?? 0) + ((h >>> 31) & 1 ? -weight : weight);
      };
      for (const word of words) {
        add(`w:${word}`, 1);
        const padded = `^${word}$`;
        for (let i = 0; i + 3 <= padded.length; i++) add(`t:${padded.slice(i, i + 3)}`, 0.5);
      }
      return out;
    },
  };
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
