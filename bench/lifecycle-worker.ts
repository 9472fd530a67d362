/**
 * One kvws command in a process of its own, so its peak RSS is that command's alone:
 *   tsx bench/lifecycle-worker.ts <kvws args...>
 * Prints {"ms":…,"maxRssBytes":…} on stdout (the command's own output goes to the files it names).
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
const t0 = performance.now();
const code = await main(process.argv.slice(2), { stdin: process.stdin, stdout: sink, stderr, env: process.env });
const ms = performance.now() - t0;
if (code !== 0) {
  process.stderr.write(errors.join(""));
  process.exit(code);
}
process.stdout.write(`${JSON.stringify({ ms, maxRssBytes: peakRssKiB() * 1024 })}\n`);
process.exit(0);
