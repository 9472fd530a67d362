import type { PrefixStore } from "../../lib/backends/driver.js";

/** Every name a PrefixStore lists, sorted. */
export async function listNames(store: PrefixStore): Promise<string[]> {
  const out: string[] = [];
  for await (const name of store.names()) out.push(name);
  return out.sort();
}
