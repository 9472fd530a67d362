import { ArtifactNotFoundError, InvalidArgumentError, InvalidValueError } from "../errors.js";
import { validateName } from "../keys.js";
import { decodeValue, encodeSpliced, jsonText } from "./codec.js";
import { assertJson, assertMetadata } from "./json.js";
import { checkListOptions, listValues } from "./list.js";
import type { ArtifactInfo, ArtifactStore, CollectionContext } from "./types.js";

/** What one artifact key holds: its info and its payload, written in one set so they never disagree. */
interface StoredArtifact extends ArtifactInfo {
  /** The JSON value, or base64 of the bytes. */
  data: unknown;
}

function asBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return undefined;
}

function infoOf({ data: _data, ...info }: StoredArtifact): ArtifactInfo {
  return info;
}

export function createArtifactStore({ store }: CollectionContext): ArtifactStore {
  const read = async (name: string) =>
    (decodeValue(await store.get(validateName(name, "artifact name")), name) as StoredArtifact | undefined) ??
    undefined;

  return {
    async save(name, data, options) {
      validateName(name, "artifact name");
      if (options !== undefined && (typeof options !== "object" || options === null)) {
        throw new InvalidValueError("artifact save options must be an object ({ description?, metadata?, ttl? })");
      }
      const ttl = options?.ttl;
      if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl > 0)) {
        throw new InvalidArgumentError(`artifact ttl must be a positive integer (ms), got ${String(ttl)}`);
      }
      const description = options?.description ?? "";
      if (typeof description !== "string") throw new InvalidValueError("artifact description must be a string");
      const metadata = assertMetadata(options?.metadata);
      const bytes = asBytes(data);
      let payloadText: string;
      let size: number;
      if (bytes) {
        payloadText = JSON.stringify(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"));
        size = bytes.byteLength;
      } else {
        if (data === undefined) throw new InvalidValueError("artifact data is undefined; save null or a value");
        assertJson(data, "artifact data");
        payloadText = jsonText(data);
        size = Buffer.byteLength(payloadText);
      }
      const now = new Date().toISOString();
      const previous = await read(name);
      const info: ArtifactInfo = {
        name,
        description,
        size,
        kind: bytes ? "bytes" : "json",
        createdAt: previous?.createdAt ?? now,
        updatedAt: now,
        metadata,
      };
      // The stored value is { ...info, data }, and the expiry also goes inside it, as Keyv writes it: a
      // backend that keeps no expiry of its own (a plain Map) or a reader racing the expiry still sees it as gone.
      const expires = ttl === undefined ? undefined : Date.now() + ttl;
      await store.set(name, encodeSpliced(info, "data", payloadText, expires), ttl);
      return info;
    },
    async load(name) {
      const stored = await read(name);
      if (!stored) throw new ArtifactNotFoundError(`artifact ${JSON.stringify(name)} not found`);
      return stored.kind === "bytes" ? new Uint8Array(Buffer.from(stored.data as string, "base64")) : stored.data;
    },
    async info(name) {
      const stored = await read(name);
      return stored && infoOf(stored);
    },
    async list(options) {
      const all = await listValues<StoredArtifact>(store, checkListOptions(options, "artifacts.list"));
      return all.map(([, stored]) => infoOf(stored));
    },
    has: async (name) => store.has(validateName(name, "artifact name")),
    delete: async (name) => store.delete(validateName(name, "artifact name")),
  };
}
