// What a file store holds on disk, read straight from its files (snapshot + log) by a fresh reader,
// not from the memory of the store that wrote it.
import { existsSync, readFileSync } from "node:fs";
import { emptyContents, entriesOf, type Tuple } from "../../lib/backends/file/format.js";
import { Journal } from "../../lib/backends/file/journal.js";

/** The snapshot's and the log's bytes as text: a value written is found in one of them. */
export function diskText(path: string): string {
  const log = `${path}.log`;
  return readFileSync(path, "utf8") + (existsSync(log) ? readFileSync(log, "latin1") : "");
}

/** The entries the files hold now, [key, value, expiresAt|null, prefixLength?], in the order a reader sees them. */
export async function diskEntries(path: string): Promise<Tuple[]> {
  const { contents } = await new Journal(path).load(emptyContents());
  return entriesOf(contents);
}

export const diskKeys = async (path: string) => (await diskEntries(path)).map((entry) => entry[0]);
