import { ArtifactNotFoundError, ConflictError, InvalidArgumentError, InvalidValueError } from "../errors.js";
import { validateName } from "../keys.js";
import { decodeValue, encodeSpliced, jsonText } from "./codec.js";
import { assertJson, assertMetadata } from "./json.js";
import { checkListOptions, listValues } from "./list.js";
import type { ArtifactInfo, ArtifactStore, CollectionContext, SaveItem } from "./types.js";
import { checkIfVersion, newVersion, versionOf, writeIf } from "./version.js";

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
  return { ...info, version: versionOf(info) };
}

function payloadOf(stored: StoredArtifact): unknown {
  return stored.kind === "bytes" ? new Uint8Array(Buffer.from(stored.data as string, "base64")) : stored.data;
}

/** A save checked and serialised before any I/O; `entry` completes it once the first save's time is known. */
interface Prepared {
  name: string;
  ttl: number | undefined;
  /** `createdAt`: the stored record's, undefined when there is none (this save creates it). */
  entry(createdAt: string | undefined): { info: ArtifactInfo; value: string };
}

/** How many names' creation times one artifact store remembers (about 100 bytes each). */
export const KNOWN_NAMES = 65_536;

/**
 * The creation time of records this handle wrote or read, newest learned last, so that a save of a name
 * it knows can write the record whole in one step (PrefixStore.replace) instead of reading it
 * first. The replaced value says whether the guess held.
 */
class KnownCreation {
  readonly #times = new Map<string, string>();

  get(name: string): string | undefined {
    return this.#times.get(name);
  }

  note(name: string, createdAt: unknown): void {
    // A name it knows keeps its place: a read of it must not churn the map (every load passes here).
    if (typeof createdAt !== "string" || this.#times.get(name) === createdAt) return;
    this.#times.delete(name);
    this.#times.set(name, createdAt);
    if (this.#times.size > KNOWN_NAMES) this.#times.delete(this.#times.keys().next().value as string);
  }

  forget(name: string): void {
    this.#times.delete(name);
  }
}

const HEAD = '{"value":{"name":';
const CREATED = ',"createdAt":"';
const METADATA = ',"metadata":';

/**
 * A stored record's creation time without parsing it (a save of a known name needs only that, and
 * the parse was a sixth of its client CPU). Text as entry() writes it starts with the name and has
 * no expiry in its envelope (it ends `}}`): its first `,"createdAt":"` is the field's, as long as
 * it comes before `,"metadata":`, since only JSON strings and a number precede it there, in which
 * that text cannot occur unescaped. Anything else: undefined, and the caller parses the record.
 */
function createdAtOf(raw: unknown): string | undefined {
  if (typeof raw !== "string" || !raw.startsWith(HEAD) || !raw.endsWith("}}")) return undefined;
  const at = raw.indexOf(CREATED);
  const metadata = raw.indexOf(METADATA);
  if (at < 0 || metadata < at) return undefined;
  const start = at + CREATED.length;
  const end = raw.indexOf('"', start);
  return end < 0 ? undefined : raw.slice(start, end);
}

function prepare(name: string, data: unknown, options: Omit<SaveItem, "name" | "data"> | undefined): Prepared {
  validateName(name, "artifact name");
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new InvalidValueError(
      "artifact save options must be an object ({ description?, metadata?, ttl?, ifVersion? })",
    );
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
  const kind = bytes ? "bytes" : "json";
  return {
    name,
    ttl,
    entry(created) {
      const now = new Date().toISOString();
      const createdAt = created ?? now;
      const info: ArtifactInfo = {
        name,
        description,
        size,
        kind,
        createdAt,
        updatedAt: now,
        metadata,
        version: newVersion(),
      };
      // The stored value is { ...info, data }, and the expiry also goes inside it, as Keyv writes it: a
      // backend that keeps no expiry of its own (a plain Map) or a reader racing the expiry still sees it as gone.
      const expires = ttl === undefined ? undefined : Date.now() + ttl;
      return { info, value: encodeSpliced(info, "data", payloadText, expires) };
    },
  };
}

export function createArtifactStore({ store }: CollectionContext): ArtifactStore {
  const decode = (raw: unknown, name: string) => (decodeValue(raw, name) as StoredArtifact | undefined) ?? undefined;
  const known = new KnownCreation();
  const seen = (stored: StoredArtifact | undefined, name: string) => {
    if (stored) known.note(name, stored.createdAt);
    return stored;
  };
  const read = async (name: string) => seen(decode(await store.get(validateName(name, "artifact name")), name), name);

  /**
   * One round trip where the store can: the record is written whole with the creation time this
   * handle last saw, and the value it replaced confirms it. When it does not (another process
   * deleted and re-created the name since, or it expired), the record is rewritten with the right
   * time, only if it is still this save's: for that one round trip a reader may see the old time.
   */
  const replaced = async (save: Prepared): Promise<ArtifactInfo | undefined> => {
    const created = known.get(save.name);
    if (created === undefined || save.ttl !== undefined || !store.replace || !store.transact) return undefined;
    const guess = save.entry(created);
    const raw = await store.replace(save.name, guess.value);
    if (raw === undefined) return undefined;
    // null: the store wrote the record although the name was gone, so it gets a creation time of its own.
    const before = raw === null ? undefined : (createdAtOf(raw) ?? decode(raw, save.name)?.createdAt);
    if (before === created) return guess.info;
    const fixed = save.entry(before);
    try {
      await writeIf<StoredArtifact>(store, save.name, guess.info.version, () => ({ value: fixed.value }));
    } catch (error) {
      // A later write replaced this one meanwhile: it decided its own creation time.
      if (!(error instanceof ConflictError)) throw error;
    }
    known.note(save.name, fixed.info.createdAt);
    return fixed.info;
  };

  return {
    async save(name, data, options) {
      const save = prepare(name, data, options);
      const ifVersion = checkIfVersion(options?.ifVersion, "artifacts.save");
      if (ifVersion === undefined) {
        const done = await replaced(save);
        if (done) return done;
        const { info, value } = save.entry((await read(name))?.createdAt);
        await store.set(name, value, save.ttl);
        known.note(name, info.createdAt);
        return info;
      }
      let written: ArtifactInfo | undefined;
      await writeIf<StoredArtifact>(store, name, ifVersion, (previous) => {
        const { info, value } = save.entry(previous?.createdAt);
        written = info;
        return { value, ttl: save.ttl };
      });
      known.note(name, written?.createdAt);
      return written!;
    },
    async saveMany(items) {
      if (!Array.isArray(items)) throw new InvalidArgumentError("artifacts.saveMany takes an array of items");
      const seen = new Set<string>();
      // Every item is checked before the first read, so a bad one leaves the store as it was.
      const saves = items.map((item: unknown, i) => {
        if (item === null || typeof item !== "object") {
          throw new InvalidArgumentError(`artifacts.saveMany: item ${i} must be an object { name, data, ... }`);
        }
        const { name, data, ...options } = item as SaveItem;
        const save = prepare(name, data, options);
        if (seen.has(name)) throw new InvalidArgumentError(`artifacts.saveMany: ${JSON.stringify(name)} comes twice`);
        seen.add(name);
        return save;
      });
      if (saves.length === 0) return [];
      const names = saves.map((save) => save.name);
      const previous = await store.getMany(names);
      const entries = saves.map((save, i) => ({ save, ...save.entry(decode(previous[i], save.name)?.createdAt) }));
      await store.setMany(entries.map(({ save, value }) => ({ name: save.name, value, ttl: save.ttl })));
      for (const { info } of entries) known.note(info.name, info.createdAt);
      return entries.map(({ info }) => info);
    },
    async load(name) {
      const stored = await read(name);
      if (!stored) throw new ArtifactNotFoundError(`artifact ${JSON.stringify(name)} not found`);
      return payloadOf(stored);
    },
    async loadMany(names) {
      if (!Array.isArray(names)) throw new InvalidArgumentError("artifacts.loadMany takes an array of names");
      for (const name of names) validateName(name, "artifact name");
      if (names.length === 0) return [];
      const raws = await store.getMany(names);
      return names.map((name, i) => {
        const stored = seen(decode(raws[i], name), name);
        return stored && payloadOf(stored);
      });
    },
    async info(name) {
      const stored = await read(name);
      return stored && infoOf(stored);
    },
    async list(options) {
      const all = await listValues<StoredArtifact>(store, checkListOptions(options, "artifacts.list"));
      return all.map(([name, stored]) => infoOf(seen(stored, name) as StoredArtifact));
    },
    has: async (name) => store.has(validateName(name, "artifact name")),
    async delete(name, options) {
      validateName(name, "artifact name");
      const ifVersion = checkIfVersion(options?.ifVersion, "artifacts.delete", false);
      known.forget(name);
      if (ifVersion === undefined) return store.delete(name);
      // A version names an entry that exists, so a match always deletes one.
      await writeIf<StoredArtifact>(store, name, ifVersion, () => "delete");
      return true;
    },
  };
}
