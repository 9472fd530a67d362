/**
 * The first write of each new workspace on a standalone Redis (load.ts's private server), 128 in
 * flight: it also registers the workspace in the root's registry and its collection in the
 * workspace's (lib/lifecycle/registry.ts), in the same MULTI as the data. Against raw Keyv's set
 * of as many new keys, and the library's own steady set (a second write of each workspace), both
 * layouts, interleaved round by round. Server CPU from INFO, as load.ts.
 */
import type { Keyv } from "keyv";
import type { WorkspaceStorage } from "../lib/index.js";
import { type BenchRow, median, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { drive, type RedisNode } from "./server-cpu.js";

const GROUP = "load";
const FLIGHT = 128;

export async function firstWrites(
  admin: RedisNode,
  raw: Keyv,
  layouts: Record<string, WorkspaceStorage>,
  value: unknown,
  opts: SuiteOptions,
): Promise<BenchRow[]> {
  const count = opts.tiny ? 500 : 10_000;
  const rounds = opts.tiny ? 1 : 5;
  const series = new Map<string, { ops: number[]; cpu: number[]; commands: number[] }>();
  let warm = true;
  const record = (name: string, result: Awaited<ReturnType<typeof drive>>) => {
    if (warm) return;
    let s = series.get(name);
    if (!s) series.set(name, (s = { ops: [], cpu: [], commands: [] }));
    s.ops.push(result.opsPerSecond);
    s.cpu.push(result.cpuMicros);
    s.commands.push(result.commandsPerOp);
  };
  // Round -1 warms up (JIT, connections, the registries' first members) and is not recorded.
  for (let round = -1; round < rounds; round++) {
    warm = round < 0;
    const n = warm ? Math.min(count, 1000) : count;
    const steps: Array<() => Promise<void>> = [
      async () =>
        record("raw set, new key", await drive([admin], (i) => raw.set(`new${round + 1}:${i}`, value), n, FLIGHT)),
    ];
    for (const [layout, storage] of Object.entries(layouts)) {
      steps.push(async () => {
        // Handles made beforehand: what is measured is the write, as cluster.ts's rows do.
        const notes = Array.from({ length: n }, (_, i) =>
          storage.withWorkspace(`first${round + 1}x${i}`).collection("notes"),
        );
        const at = (i: number) => notes[i] as (typeof notes)[number];
        record(`${layout} first write of a workspace`, await drive([admin], (i) => at(i).set("k0", value), n, FLIGHT));
        record(`${layout} second write of a workspace`, await drive([admin], (i) => at(i).set("k1", value), n, FLIGHT));
      });
    }
    for (const step of round % 2 === 0 ? steps : [...steps].reverse()) await step();
  }
  const get = (name: string) => series.get(name) as { ops: number[]; cpu: number[]; commands: number[] };
  const rawSet = get("raw set, new key");
  const rows: BenchRow[] = [
    row(GROUP, `raw set, new key @${FLIGHT} in flight`, "ops/s", rawSet.ops, `${count} new keys per round`),
    row(GROUP, `raw set, new key @${FLIGHT} server CPU`, "µs/op", rawSet.cpu),
  ];
  for (const layout of Object.keys(layouts)) {
    const first = get(`${layout} first write of a workspace`);
    const second = get(`${layout} second write of a workspace`);
    const note = `${count} new workspaces per round, registry entries in the write's MULTI`;
    rows.push(
      row(GROUP, `${layout} first write of a workspace @${FLIGHT} in flight`, "ops/s", first.ops, note),
      row(GROUP, `${layout} first write of a workspace @${FLIGHT} server CPU`, "µs/op", first.cpu),
      row(
        GROUP,
        `${layout} first write of a workspace commands per op`,
        "commands",
        first.commands,
        "MULTI and EXEC count one each",
      ),
      row(
        GROUP,
        `${layout} first write / raw set (new key) ops/s @${FLIGHT}`,
        "×",
        ratios(first.ops, rawSet.ops),
        "goal ≥ 0.5",
      ),
      row(
        GROUP,
        `${layout} first write / second write of a workspace ops/s @${FLIGHT}`,
        "×",
        ratios(first.ops, second.ops),
        "what registering costs beside the library's own set",
      ),
    );
    progress(`load: ${layout} first write ${median(first.ops) | 0}/s, raw set new key ${median(rawSet.ops) | 0}/s`);
  }
  return rows;
}
