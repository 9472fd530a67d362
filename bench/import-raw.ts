/**
 * The raw counterpart of `kvws import` (bench/lifecycle-import.ts), in a process of its own:
 *   tsx bench/import-raw.ts <url> <keyPrefix> <file>
 * What a user would write without the library: read the NDJSON line by line, store each record's
 * value in Keyv's envelope at `<keyPrefix><collection>:<name>`, one MSET per BATCH records, one
 * in flight. Prints {"ms":…,"entries":…,"maxRssBytes":…,"cpuMs":…}; the time runs from connecting
 * to the last reply, its modules loaded before (as lifecycle-worker.ts's with KVWS_BENCH_PRELOAD).
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { createClient } from "@redis/client";
import { BATCH } from "../lib/lifecycle/stats.js";
import { peakRssKiB } from "./peak-rss.mjs";

const [url = "", keyPrefix = "", file = ""] = process.argv.slice(2);
const t0 = performance.now();
const client = createClient({ url });
await client.connect();
let args: string[] = ["MSET"];
let entries = 0;
for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })) {
  if (line === "") continue;
  const record = JSON.parse(line) as { collection: string; name: string; value: unknown };
  args.push(`${keyPrefix}${record.collection}:${record.name}`, JSON.stringify({ value: record.value }));
  if (++entries % BATCH === 0) {
    await client.sendCommand(args);
    args = ["MSET"];
  }
}
if (args.length > 1) await client.sendCommand(args);
const ms = performance.now() - t0;
client.destroy();
const { user, system } = process.cpuUsage();
process.stdout.write(
  `${JSON.stringify({ ms, entries, maxRssBytes: peakRssKiB() * 1024, cpuMs: (user + system) / 1000 })}\n`,
);
process.exit(0);
