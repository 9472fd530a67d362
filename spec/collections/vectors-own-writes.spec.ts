// A handle's own writes go into its cached matrix as it makes them (collections/vectors.ts
// ownWrite), and it catches up with the change log before the log could stop reaching back: so
// however many rows it writes, its next search reads the change log, not the whole store.
// Other handles' writes in between are still found, exactly. On every backend.
import { afterEach, describe, expect, it } from "vitest";
import { LOG_LIMIT } from "../../lib/backends/change-log.js";
import type { Backend, PrefixStore } from "../../lib/backends/driver.js";
import { openBackend } from "../../lib/backends/index.js";
import { CATCH_UP, createVectorStore } from "../../lib/collections/vectors.js";
import type { VectorStore } from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { randomVectors } from "../vectors/reference.js";

const D = 8;

/** The store with a count of full listings (what a reload does) and of names fetched. */
function counted(store: PrefixStore) {
  const counts = { listings: 0, fetched: 0 };
  const wrapped: PrefixStore = Object.create(store);
  Object.defineProperty(wrapped, "prefix", { value: store.prefix });
  wrapped.names = () => {
    counts.listings++;
    return store.names();
  };
  wrapped.getMany = (names) => {
    counts.fetched += names.length;
    return store.getMany(names);
  };
  return { store: wrapped, counts };
}

async function topId(store: VectorStore, vector: Float32Array): Promise<string | undefined> {
  return (await store.search(vector, { k: 1 }))[0]?.id;
}

describe.each(BACKENDS)("own writes on $name", (backend) => {
  const { newRoot } = perTest(backend, `own${backend.name}`);
  const opened: Backend[] = [];
  afterEach(async () => {
    for (const b of opened.splice(0)) await b.close();
  });

  async function handles() {
    const root = newRoot();
    const prefix = `${root}:ws:w:vectors`;
    const [one, two] = [await openBackend(backend.url(root)), await openBackend(backend.url(root))];
    opened.push(one, two);
    const mine = counted(one.driver.scope(prefix));
    return {
      a: createVectorStore({ store: mine.store }),
      b: createVectorStore({ store: two.driver.scope(prefix) }),
      counts: mine.counts,
    };
  }

  it("5,000 own upserts, one by one, in batches and concurrently: the next search lists nothing", async () => {
    const { a, counts } = await handles();
    const data = randomVectors(5000, D, 1);
    await a.upsert("seed", data[0]!);
    await a.search(data[0]!); // loads the cache
    const listings = counts.listings;
    for (let i = 0; i < 300; i++) await a.upsert(`s${i}`, data[i]!);
    for (let i = 300; i < 3000; i += 100) {
      await a.upsertMany(data.slice(i, i + 100).map((vector, j) => ({ id: `s${i + j}`, vector })));
    }
    await Promise.all(data.slice(3000).map((v, j) => a.upsert(`s${3000 + j}`, v)));
    await a.delete("s7");
    const fetchedByWrites = counts.fetched;
    expect(await topId(a, data[4321]!)).toBe("s4321");
    expect(await topId(a, data[7]!)).not.toBe("s7");
    expect(counts.listings).toBe(listings);
    // The search read what changed since the last catch-up at most, not 5,000 rows.
    expect(counts.fetched - fetchedByWrites).toBeLessThanOrEqual(2 * CATCH_UP);
  }, 60_000);

  it("another handle's writes between the own ones are found, exactly", async () => {
    const { a, b, counts } = await handles();
    const data = randomVectors(1400, D, 2);
    const theirs = randomVectors(3, D, 3);
    await a.upsertMany(data.slice(0, 10).map((vector, i) => ({ id: `s${i}`, vector })));
    await a.search(data[0]!);
    const listings = counts.listings;
    const own = async (from: number, to: number) => {
      for (let i = from; i < to; i += 50) {
        await a.upsertMany(data.slice(i, Math.min(i + 50, to)).map((vector, j) => ({ id: `s${i + j}`, vector })));
      }
    };
    await own(10, 600);
    for (let i = 600; i < 700; i++) await a.upsert(`s${i}`, data[i]!);
    // Another handle: a new row, a delete of one of ours, an overwrite of one of ours.
    await b.upsert("foreign", theirs[0]!);
    await b.delete("s100");
    await b.upsert("s200", theirs[1]!);
    // More own writes since the cache's last read than the change log keeps (LOG_LIMIT).
    for (let i = 700; i < 800; i++) await a.upsert(`s${i}`, data[i]!);
    await own(800, 1400);
    expect(await topId(a, theirs[0]!)).toBe("foreign");
    expect(await topId(a, data[100]!)).not.toBe("s100");
    expect(await topId(a, theirs[1]!)).toBe("s200");
    expect(await topId(a, data[200]!)).not.toBe("s200");
    expect(await topId(a, data[1399]!)).toBe("s1399");
    expect(counts.listings).toBe(listings);
  }, 60_000);

  it("racing writes of one name by both handles end as the store holds them", async () => {
    const { a, b } = await handles();
    const mine = randomVectors(200, D, 4);
    const theirs = randomVectors(200, D, 5);
    await a.upsert("x", mine[0]!);
    await a.search(mine[0]!);
    await Promise.all(
      mine.flatMap((v, i) => [a.upsert(`r${i % 20}`, v), b.upsert(`r${i % 20}`, theirs[i]!), a.search(v)]),
    );
    for (let i = 0; i < 20; i++) {
      const stored = await a.get(`r${i}`);
      expect(await topId(a, stored!.vector)).toBe(`r${i}`);
    }
  }, 60_000);
});

describe("how far own writes reach (docs/vectors.md)", () => {
  it("the cache catches up every 250 own writes, a quarter of the change log", () => {
    expect(CATCH_UP).toBe(250);
    expect(CATCH_UP).toBe(LOG_LIMIT / 4);
  });

  it("one upsertMany of more names than a memory log keeps still makes the next search reload", async () => {
    const backend = await openBackend("memory:");
    const mine = counted(backend.driver.scope("r:ws:w:vectors"));
    const a = createVectorStore({ store: mine.store });
    const data = randomVectors(LOG_LIMIT + 500, D, 6);
    await a.upsert("seed", data[0]!);
    await a.search(data[0]!);
    const listings = mine.counts.listings;
    await a.upsertMany(data.map((vector, i) => ({ id: `s${i}`, vector })));
    expect(await topId(a, data[LOG_LIMIT]!)).toBe(`s${LOG_LIMIT}`);
    expect(mine.counts.listings).toBe(listings + 1);
  });
});
