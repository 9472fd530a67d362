/** The commands of `kvws`, each on an unscoped storage of the root (withWorkspace for one workspace). */

import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import type { Writable } from "node:stream";
import type { WorkspaceStats } from "../lifecycle/stats.js";
import { type Command, type Io, UsageError } from "./command.js";
import { readRecords, writeRecords } from "./ndjson.js";
import { progress } from "./progress.js";
import { quota } from "./quota.js";
import { rebuild } from "./rebuild.js";

export { type Command, type Io, UsageError, type Values } from "./command.js";

function needId(command: string) {
  return (args: readonly string[]) => {
    if (args[0] === undefined) throw new UsageError(`${command} needs a workspace id`);
  };
}

/**
 * What a walk of the workspace will meet: its entries, and the workflow index beside the
 * workflows. Only a bar needs it, and stats() costs a command per key on Redis, so it is asked
 * for only when stderr is a terminal.
 */
async function totalFor(io: Io, stats: () => Promise<WorkspaceStats>): Promise<number | undefined> {
  return io.stderr.isTTY ? total(await stats()) : undefined;
}

function total(stats: WorkspaceStats): number {
  let sum = 0;
  for (const [collection, { entries }] of Object.entries(stats))
    sum += collection === "workflows" ? 2 * entries : entries;
  return sum;
}

function table(stats: WorkspaceStats): string {
  const rows = [["collection", "entries", "bytes"]];
  for (const [collection, { entries, bytes }] of Object.entries(stats))
    rows.push([collection, String(entries), String(bytes)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  "))
    .join("\n");
}

/** Lines of a file, for the bar's total: indexOf jumps between newlines natively. */
async function countLines(file: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(file)) {
    const bytes = chunk as Buffer;
    for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) lines++;
  }
  return lines;
}

async function closeOutput(output: Writable): Promise<void> {
  output.end();
  await once(output, "finish");
}

export const COMMANDS: Record<string, Command> = {
  ls: {
    options: ["json"],
    args: 0,
    async run(storage, _args, values, io) {
      const ids = await storage.listWorkspaces();
      io.stdout.write(values.json ? `${JSON.stringify(ids)}\n` : ids.map((id) => `${id}\n`).join(""));
    },
  },

  stats: {
    options: ["json"],
    args: 1,
    check: needId("stats"),
    async run(storage, [id], values, io) {
      const stats = await storage.withWorkspace(id).stats();
      io.stdout.write(`${values.json ? JSON.stringify(stats) : table(stats)}\n`);
    },
  },

  export: {
    options: ["out"],
    args: 1,
    check: needId("export"),
    async run(storage, [id], values, io) {
      const workspace = storage.withWorkspace(id);
      const bar = progress(io.stderr, `export ${id}`, await totalFor(io, () => workspace.stats()));
      const out = typeof values.out === "string" ? createWriteStream(values.out) : io.stdout;
      if (out !== io.stdout) await once(out, "open");
      const count = await writeRecords(workspace.exportWorkspace(), out, (n) => bar.update(n));
      if (out !== io.stdout) await closeOutput(out);
      bar.stop(`exported ${count} entries of ${id}`);
    },
  },

  import: {
    options: ["in", "replace"],
    args: 1,
    check: needId("import"),
    async run(storage, [id], values, io) {
      const file = typeof values.in === "string" ? values.in : undefined;
      const input = file === undefined ? io.stdin : createReadStream(file);
      // Only a bar needs the total, and counting reads the whole file once more.
      const total = file !== undefined && io.stderr.isTTY ? await countLines(file) : undefined;
      const bar = progress(io.stderr, `import ${id}`, total);
      const written = await storage
        .withWorkspace(id)
        .importWorkspace(readRecords(input), { replace: values.replace === true, onProgress: (n) => bar.update(n) });
      bar.stop(`imported ${written} entries into ${id}`);
    },
  },

  drop: {
    options: ["yes"],
    args: 1,
    check(args, values) {
      needId("drop")(args);
      if (values.yes !== true) {
        throw new UsageError(`drop deletes every key of workspace ${JSON.stringify(args[0])}: pass --yes to confirm`);
      }
    },
    async run(storage, [id], _values, io) {
      const workspace = storage.withWorkspace(id);
      const bar = progress(io.stderr, `drop ${id}`, await totalFor(io, () => workspace.stats()));
      const deleted = await workspace.dropWorkspace({ onProgress: (n) => bar.update(n) });
      bar.stop(`dropped ${id}: ${deleted} entries deleted`);
    },
  },

  migrate: {
    options: ["to", "dry-run"],
    args: 0,
    check(_args, values) {
      if (typeof values.to !== "string") throw new UsageError("migrate needs --to <workspace id>");
    },
    async run(storage, _args, values, io) {
      const to = values.to as string;
      const dryRun = values["dry-run"] === true;
      const target = storage.withWorkspace(to).keyspace;
      const scoped = async () =>
        Object.fromEntries(Object.entries(await storage.stats()).filter(([name]) => target.isScoped(name)));
      const bar = progress(io.stderr, dryRun ? "count" : `migrate → ${to}`, await totalFor(io, scoped));
      const { entries } = await storage.migrateLegacy({ to, dryRun, onProgress: (n) => bar.update(n) });
      bar.stop(dryRun ? `would move ${entries} entries into ${to}` : `moved ${entries} entries into ${to}`);
    },
  },

  watch: {
    options: ["collections"],
    args: 1,
    interruptible: true,
    check: needId("watch"),
    async run(storage, [id], values, io) {
      const collections = typeof values.collections === "string" ? values.collections.split(",") : undefined;
      const changes = storage.withWorkspace(id).watch({ ...(collections && { collections }), signal: io.signal });
      for await (const change of changes) {
        if (!io.stdout.write(`${JSON.stringify(change)}\n`)) await once(io.stdout, "drain");
      }
    },
  },

  quota,

  "rebuild-index": {
    options: ["all", "collections", "prefix"],
    args: 1,
    check(args, values) {
      if (args[0] !== undefined && values.all)
        throw new UsageError("rebuild-index: give a workspace id or --all, not both");
    },
    run: (storage, [id], values, io) => rebuild(storage, id, values, io),
  },
};
