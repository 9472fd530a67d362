/**
 * Quotas on Redis (lib/backends/redis/quota.ts): what `collection().set` costs the server in a
 * workspace without a quota, next to the same Keyv over a PrefixStore the quota feature never sees
 * (scopedKeyv over driver.scope(prefix), no quota option), and in a workspace with a quota (a high
 * limit, so every write is checked and counted and none refused). Server CPU per op (INFO cpu
 * deltas), throughput and commands per op at 1 and 128 in flight, as per-round ratios over
 * interleaved rounds, in both layouts, on a private redis-server this suite starts and stops.
 */
import { createClient } from "@redis/client";
import { redisDriver } from "../lib/backends/redis/driver.js";
import { connectRedis } from "../lib/backends/redis/open.js";
import { openStorage } from "../lib/index.js";
import { ScopedStore, scopedKeyv } from "../lib/scope.js";
import { tempDir } from "../spec/support/env.js";
import { freePort, PrivateRedis } from "../spec/support/servers.js";
import { type BenchRow, median, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { drive, type Op } from "./server-cpu.js";

const GROUP = "quota-redis";
const VALUE = { n: 1, text: "x".repeat(100), tags: ["a", "b"] };
const NAMES = 5_000;
const FLIGHTS = [1, 128] as const;

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const rounds = opts.tiny ? 2 : 5;
  const count = (flight: number) => (opts.tiny ? 300 : flight === 1 ? 3_000 : 20_000);
  const dir = tempDir();
  const server = new PrivateRedis(await freePort(), dir.path, ["--appendonly", "no"]);
  await server.start();
  const admin: ReturnType<typeof createClient> = createClient({ url: server.url });
  admin.on("error", () => {});
  await admin.connect();
  const connection = await connectRedis(server.url);
  const closing: Array<() => Promise<void>> = [];
  const rows: BenchRow[] = [];
  try {
    for (const layout of ["keys", "hash"] as const) {
      const driver = redisDriver(async () => connection.commander, { layout });
      const open = async (workspaceId?: string) => {
        const storage = await openStorage({
          url: server.url,
          root: `app${layout}`,
          redisLayout: layout,
          ...(workspaceId ? { workspaceId } : {}),
        });
        closing.push(() => storage.close());
        return storage;
      };
      const operator = await open();
      await operator.setQuota("q", { maxEntries: 1_000_000_000, maxBytes: 1_000_000_000_000 });
      const variants: Array<{ name: string; op: Op }> = [];
      const plain = scopedKeyv(new ScopedStore(driver.scope(`app${layout}:ws:p:things`)));
      const none = (await open("n")).collection("things");
      const quota = (await open("q")).collection("things");
      const name = (i: number) => `k${i % NAMES}`;
      variants.push(
        { name: "plain", op: (i) => plain.set(name(i), VALUE) },
        { name: "no quota", op: (i) => none.set(name(i), VALUE) },
        { name: "quota", op: (i) => quota.set(name(i), VALUE) },
      );
      // Every variant overwrites names that exist already, as a busy collection does.
      for (const variant of variants) for (let i = 0; i < NAMES; i += 128) await drive([admin], variant.op, 128, 128);
      for (const flight of FLIGHTS) {
        const results = new Map(
          variants.map((v) => [v.name, { ops: [] as number[], cpu: [] as number[], cmd: [] as number[] }]),
        );
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? variants : [...variants].reverse();
          for (const variant of order) {
            const r = await drive([admin], variant.op, count(flight), flight);
            const into = results.get(variant.name);
            into?.ops.push(r.opsPerSecond);
            into?.cpu.push(r.cpuMicros);
            into?.cmd.push(r.commandsPerOp);
          }
        }
        const get = (n: string) => results.get(n) as { ops: number[]; cpu: number[]; cmd: number[] };
        progress(
          `quota-redis ${layout} @${flight}: ${variants.map((v) => `${v.name} ${median(get(v.name).ops) | 0}/s ${median(get(v.name).cpu).toFixed(1)}µs`).join(", ")}`,
        );
        const label = `${layout} collection().set`;
        for (const v of variants) {
          rows.push(row(GROUP, `${label}, ${v.name} @${flight} in flight`, "ops/s", get(v.name).ops));
          rows.push(row(GROUP, `${label}, ${v.name} @${flight} server CPU`, "µs/op", get(v.name).cpu));
          rows.push(row(GROUP, `${label}, ${v.name} @${flight} commands per op`, "commands", get(v.name).cmd));
        }
        const pairs: Array<[string, string, string]> = [
          ["no quota", "plain", "a workspace without a quota vs no quota feature; goal ≈ 1"],
          ["quota", "no quota", "the quota check: WATCH, reads, MULTI … HINCRBY … EXEC"],
        ];
        for (const [a, b, note] of pairs) {
          rows.push(
            row(GROUP, `${label}, ${a} / ${b} server CPU @${flight}`, "×", ratios(get(a).cpu, get(b).cpu), note),
          );
          rows.push(row(GROUP, `${label}, ${a} / ${b} ops/s @${flight}`, "×", ratios(get(a).ops, get(b).ops), note));
          rows.push(row(GROUP, `${label}, ${a} / ${b} commands @${flight}`, "×", ratios(get(a).cmd, get(b).cmd), note));
        }
      }
    }
  } finally {
    for (const close of closing.reverse()) await close();
    await connection.close();
    admin.destroy();
    await server.kill();
    dir.remove();
  }
  return rows;
}
