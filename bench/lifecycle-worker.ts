/**
 * One kvws command in a process of its own, so its peak RSS is that command's alone:
 *   tsx bench/lifecycle-worker.ts <kvws args...>
 * Prints {"ms":…,"maxRssBytes":…,"cpuMs":…} on stdout (cpuMs: the whole process, start-up included) (the command's own output goes to the files it names).
 */
import { Writable } from "node:stream";
import { main } from "../lib/cli/main.js";
import { peakRssKiB } from "./peak-rss.mjs";

const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
const errors: string[] = [];
const stderr = new Writable({
  write(chunk, _encoding, done) {
    errors.push(String(chunk));
    done();
  },
});
// KVWS_BENCH_PRELOAD=1: the Redis backend's modules (which main() loads once the URL is opened) are
// loaded first, so the time is the command's own work, not the loader compiling sources (coldstart.ts measures that).
if (process.env.KVWS_BENCH_PRELOAD === "1") await import("../lib/backends/redis/backend.js");
const t0 = performance.now();
const code = await main(process.argv.slice(2), { stdin: process.stdin, stdout: sink, stderr, env: process.env });
const ms = performance.now() - t0;
if (code !== 0) {
  process.stderr.write(errors.join(""));
  process.exit(code);
}
const { user, system } = process.cpuUsage();
process.stdout.write(`${JSON.stringify({ ms, maxRssBytes: peakRssKiB() * 1024, cpuMs: (user + system) / 1000 })}\n`);
process.exit(0);
