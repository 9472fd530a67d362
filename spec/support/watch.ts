/** Watching in specs: the reset event, and reading a watcher's events with a time bound. */
import { expect } from "vitest";
import type { ChangeEvent, WatchOptions } from "../../lib/index.js";
import { captureWarnings } from "./warnings.js";

export const RESET: ChangeEvent = { collection: "*", name: null, op: "reset" };

/** Events until `stop` says enough, failing after `ms`. */
export async function collect(
  it: AsyncIterator<ChangeEvent>,
  stop: (events: ChangeEvent[]) => boolean,
  ms = 20_000,
): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  const deadline = Date.now() + ms;
  while (!stop(out)) {
    const next = await Promise.race([
      it.next(),
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()))),
    ]);
    if (next === "timeout") throw new Error(`timed out with ${JSON.stringify(out.slice(-5))} (${out.length} events)`);
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

/**
 * A workspace's ACL user may not subscribe to the shared deps channel: its watch of deps gets one
 * reset and one KVWS_WATCH_SUBSCRIBE warning naming the refusal, then stays quiet.
 */
export async function expectDepsWatchRefused(tenant: {
  watch(options?: WatchOptions): AsyncIterableIterator<ChangeEvent>;
}) {
  const warnings = captureWarnings("KVWS_WATCH_SUBSCRIBE");
  try {
    const denied = tenant.watch({ collections: ["deps"] });
    expect(await collect(denied, (got) => got.length === 1)).toEqual([RESET]);
    const told = await warnings.all();
    expect(told).toHaveLength(1);
    expect(told[0]?.message).toMatch(/NOPERM|permission/i);
    await denied.return?.();
  } finally {
    warnings.stop();
  }
}
