// This process's peak resident set, in KiB. VmHWM belongs to the process's own memory;
// getrusage's maxRSS is kept across exec on Linux, so a child of a big process (the bench runner)
// would report its parent's peak instead of its own. Plain JS: plain-node fixtures load it too.
import { readFileSync } from "node:fs";

export function peakRssKiB() {
  try {
    const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
    if (hwm > 0) return hwm;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS;
}
