/** Watching in specs: the reset event, and reading a watcher's events with a time bound. */
import type { ChangeEvent } from "../../lib/index.js";

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
