/**
 * What a process keeps per workspace it has written to: first writes to many workspaces (128 in
 * flight, handles dropped after each write, as a server handling one request per tenant does),
 * then the heap left after a full GC. Per-workspace knowledge lives in lib/memo.ts's bounded memos,
 * so the heap should stop growing once they are full; before them it grew by about 800 bytes per
 * workspace for the process's whole life.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { openStorage } from "../lib/index.js";
import { type BenchRow, progress, row, type SuiteOptions } from "./rows.js";

const GROUP = "load";
const FLIGHT = 128;

function collector(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

export async function retainedPerWorkspace(url: string, opts: SuiteOptions): Promise<BenchRow[]> {
  const checkpoints = opts.tiny ? [2_000, 10_000] : [20_000, 100_000];
  const gc = collector();
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const storage = await openStorage({ url, root: "app:retained" });
  const rows: BenchRow[] = [];
  try {
    const base = heap();
    const retained: number[] = [];
    let written = 0;
    for (const upTo of checkpoints) {
      let next = written;
      await Promise.all(
        Array.from({ length: FLIGHT }, async () => {
          while (next < upTo) {
            const i = next++;
            await storage.withWorkspace(`r${i}`).collection("notes").set("k0", 1);
          }
        }),
      );
      written = upTo;
      retained.push(heap() - base);
      progress(`load: heap after ${upTo} workspaces +${((retained.at(-1) as number) / 1e6).toFixed(1)} MB`);
    }
    checkpoints.forEach((upTo, i) => {
      rows.push(
        row(GROUP, `client heap retained after first writes to ${upTo} workspaces`, "MB", [
          (retained[i] as number) / 1e6,
        ]),
      );
    });
    const [few, many] = checkpoints as [number, number];
    rows.push(
      row(
        GROUP,
        `client heap retained, ${many} / ${few} workspaces`,
        "×",
        [(retained[1] as number) / (retained[0] as number)],
        `${many / few}.0 = grows with every workspace ever written; one run`,
      ),
    );
  } finally {
    await storage.close();
  }
  return rows;
}
