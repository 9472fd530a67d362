// Keeps `npm run bench` from rotting: the real runner, tiny sizes, real Redis and files.
// No timing thresholds: only that every suite ran and produced sane numbers.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  END,
  quotingDocs,
  type RunJson,
  renderLatest,
  START,
  withFigures,
  withLatest,
  withQuotes,
  withRows,
} from "../bench/docs.js";
import { fmt, scanPoints, scanRowName, scanSvg, table } from "../bench/report.js";
import type { BenchRow } from "../bench/rows.js";
import { ratios, row } from "../bench/rows.js";
import { SUITES } from "../bench/suites.js";
import { tempDir } from "./support/env.js";

const runner = fileURLToPath(new URL("../bench/run.ts", import.meta.url));
const execute = promisify(execFile);

function bench(args: string[]) {
  return execute(process.execPath, ["--import", "tsx", runner, ...args], {
    env: { ...process.env },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 170_000,
  });
}

interface RunRecord {
  commit: string;
  dirty: boolean | null;
  machine: { cpu: string; cores: number; totalmemBytes: number };
  node: string;
  args: string[];
  rows: BenchRow[];
}

/** A run as bench/run.ts writes it, around the given rows. */
function runOf(rows: BenchRow[]): RunJson {
  return {
    date: "2026-12-06T00:00:00.000Z",
    commit: "0123456789abcdef",
    dirty: false,
    machine: { cpu: "cpu", cores: 2, totalmemBytes: 2 ** 31 },
    node: "v20.20.2",
    mode: "quick",
    seconds: 12,
    rows,
  };
}

describe("npm run bench --tiny", () => {
  const out = tempDir();
  let stdout = "";
  let record: RunRecord;
  let files: string[] = [];

  beforeAll(async () => {
    ({ stdout } = await bench(["--tiny", "--only", "isolation,scan,file,cluster", "--out", out.path]));
    files = readdirSync(out.path).sort();
    const json = files.filter((name) => name.endsWith(".json"));
    expect(json).toHaveLength(1);
    record = JSON.parse(readFileSync(`${out.path}/${json[0]}`, "utf8")) as RunRecord;
  }, 180_000);

  afterAll(() => out.remove());

  it("records the run's context", () => {
    expect(record.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(typeof record.dirty).toBe("boolean");
    expect(record.machine.cores).toBeGreaterThan(0);
    expect(record.machine.totalmemBytes).toBeGreaterThan(0);
    expect(record.node).toBe(process.version);
    expect(record.args).toEqual(["--tiny", "--only", "isolation,scan,file,cluster", "--out", out.path]);
  });

  it("has rows for every selected suite, with finite positive min ≤ median ≤ max", () => {
    const groups = new Set(record.rows.map((r) => r.group));
    expect([...groups].sort()).toEqual(["cluster", "file", "isolation", "scan"]);
    for (const r of record.rows) {
      for (const value of [r.min, r.median, r.max]) {
        expect(Number.isFinite(value), `${r.group}/${r.name}`).toBe(true);
        expect(value, `${r.group}/${r.name}`).toBeGreaterThan(0);
      }
      expect(r.min).toBeLessThanOrEqual(r.median);
      expect(r.median).toBeLessThanOrEqual(r.max);
      expect(r.unit.length).toBeGreaterThan(0);
    }
  });

  it("measures what the brief asks for", () => {
    const names = record.rows.map((r) => `${r.group}/${r.name}`);
    const has = (pattern: RegExp) =>
      expect(
        names.some((name) => pattern.test(name)),
        String(pattern),
      ).toBe(true);
    for (const op of ["get", "set", "getMany", "has", "delete"]) {
      has(new RegExp(`^isolation/memory ${op} scoped/raw$`));
      has(new RegExp(`^isolation/redis createStorage\\(KeyvRedis\\) ${op} scoped/raw$`));
    }
    // A single Redis get and set are the load suite's (its "@1 in flight" rows), not measured twice.
    for (const op of ["getMany", "has", "delete"]) has(new RegExp(`^isolation/redis openStorage ${op} scoped/raw$`));
    expect(names.filter((name) => /^isolation\/redis openStorage (get|set) /.test(name))).toEqual([]);
    has(/^isolation\/memory artifacts\.save \/ raw set$/);
    has(/^isolation\/redis withWorkspace\(id\)\.collection\(\)$/);
    has(/^scan\/redis list 100 growth .*SCAN/);
    has(/^scan\/redis clear 100: library clear\(\)/);
    has(/^scan\/memory list 100 growth/);
    has(/^file\/kvws file sequential, 0 entries$/);
    has(/^file\/keyv-file 5\.3\.5 \(before\) 500 concurrent/);
    has(/^file\/kvws file two processes/);
    has(/^file\/watched \/ unwatched durable save, \d+ entries$/);
    has(/^file\/another store.s save heard by a watcher \(polling alone\)$/);
    for (const op of ["get", "set"]) {
      has(new RegExp(`^cluster/${op} scoped/raw latency$`));
      has(new RegExp(`^cluster/${op} scoped/raw ops/s @64$`));
      has(new RegExp(`^cluster/${op} scoped/raw server CPU @64$`));
    }
    has(/^cluster\/list 100 growth .*: library list\(\) \(index\)$/);
    has(/^cluster\/writes 3 masters \/ 1 master ops\/s$/);
    has(/^cluster\/set watched\/unwatched ops\/s @64$/);
  });

  it("never loses a write of our file store with two writer processes", () => {
    const two = record.rows.filter((r) => r.group === "file" && r.name.startsWith("kvws file two processes"));
    expect(two.length).toBeGreaterThan(0);
    for (const r of two) expect(r.note).toMatch(/^(\d+)\/\1 writes survived$/);
  });

  it("prints the table and writes the scan chart", () => {
    expect(stdout).toMatch(/^group\s+name\s+median\s+min\s+max\s+unit/);
    expect(stdout).toContain("redis openStorage has scoped/raw");
    expect(files).toContain("latest.svg");
    expect(files.some((name) => /^scan-.*\.svg$/.test(name))).toBe(true);
    const svg = readFileSync(`${out.path}/latest.svg`, "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
  });
});

describe("npm run bench --tiny --only sql", () => {
  it("measures conditional vs plain saves, watched vs unwatched writes, batch rates and library vs raw Keyv in flight on sqlite and postgres", async () => {
    const out = tempDir();
    try {
      await bench(["--tiny", "--only", "sql", "--out", out.path]);
      const json = readdirSync(out.path).filter((name) => name.endsWith(".json"));
      const { rows } = JSON.parse(readFileSync(`${out.path}/${json[0]}`, "utf8")) as RunRecord;
      for (const engine of ["sqlite", "postgres"]) {
        const measured = [
          "save, plain",
          "save, ifVersion/plain",
          "save, watched/unwatched",
          "collection().set, watched/unwatched",
          "set library/raw @32 in flight",
          "get library/raw @32 in flight",
          "library set @1 in flight",
          "raw get @8 in flight",
        ];
        for (const what of [...measured, "artifacts.saveMany", "vectors.upsertMany"]) {
          const found = rows.find((r) => r.group === "sql" && r.name.startsWith(`${engine} ${what}`));
          expect(found?.median, `${engine} ${what}`).toBeGreaterThan(0);
        }
      }
    } finally {
      out.remove();
    }
  }, 120_000);
});

describe("bench runner arguments", () => {
  it("refuses an unknown suite with a clear message", async () => {
    const failed = await bench(["--only", "nonesuch"]).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain('unknown suite "nonesuch"');
  });

  it("refuses --tiny with --full", async () => {
    const failed = await bench(["--tiny", "--full", "--only", "file"]).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain("exclude each other");
  });
});

describe("bench report helpers", () => {
  it("summarises samples as min/median/max and ratios round by round", () => {
    expect(row("g", "n", "ms", [3, 1, 2, 10])).toEqual({
      group: "g",
      name: "n",
      unit: "ms",
      min: 1,
      median: 2.5,
      max: 10,
    });
    expect(ratios([2, 9], [1, 3])).toEqual([2, 3]);
    expect(() => row("g", "n", "ms", [])).toThrow(/no samples/);
  });

  it("finds the scan series by row name and charts them on a log axis", () => {
    const rows: BenchRow[] = [
      row("scan", scanRowName("scan", 100_000), "ms", [50]),
      row("scan", scanRowName("scan", 10_000), "ms", [5]),
      row("scan", scanRowName("index", 10_000), "ms", [0.5]),
      row("other", scanRowName("index", 10), "ms", [99]),
    ];
    const points = scanPoints(rows);
    expect(points.scan).toEqual([
      { x: 10_000, y: 5 },
      { x: 100_000, y: 50 },
    ]);
    expect(points.index).toEqual([{ x: 10_000, y: 0.5 }]);
    const svg = scanSvg(points, "a <subtitle> & more");
    expect(svg).toContain("&lt;subtitle&gt; &amp; more");
    expect(svg).toContain(">10,000<");
    expect(svg).toContain(">100,000<");
  });

  it("aligns the table columns", () => {
    const lines = table([row("g", "short", "ms", [1]), row("g", "a longer name", "×", [12.345], "note")]).split("\n");
    expect(lines).toHaveLength(4);
    const medianEnd = (lines[0] as string).indexOf("median") + "median".length;
    for (const line of lines.slice(2)) expect(line[medianEnd - 1]).toMatch(/\d/);
  });
});

describe("docs/bench.md's latest numbers", () => {
  const read = (path: string) => readFileSync(fileURLToPath(new URL(path, import.meta.url)), "utf8");
  /** A row of a generated table: cells padded as the formatter pads them. */
  const rowOf = (...cells: string[]) =>
    new RegExp(`^\\| ${cells.map((c) => `\\s*${c.replace(/[|\\^$.*+?()[\]{}]/g, "\\$&")}\\s*`).join("\\|")}\\|`, "m");

  it("are exactly what bench/docs.ts makes of the committed bench/results/latest.json", () => {
    const run = JSON.parse(read("../bench/results/latest.json")) as RunJson;
    const doc = read("../docs/bench.md");
    expect(doc).toContain(renderLatest(run));
    // Every row of the run is in the block, with its median as the table prints it.
    const block = doc.slice(doc.indexOf(START), doc.indexOf(END));
    for (const r of run.rows) expect(block).toMatch(rowOf(r.name.replace(/\|/g, "\\|"), fmt(r.median)));
  });

  it("name every suite the runner has, where README and docs/bench.md list them", () => {
    const listed = SUITES.join(", ");
    expect(read("../docs/bench.md")).toContain(`# pick suites: ${listed}\n`);
    expect(read("../README.md")).toContain(`# quick mode, every suite (${listed}),`);
  });

  it("quoted in other docs are the committed run's rows, as bench/docs.ts renders them", () => {
    const run = JSON.parse(read("../bench/results/latest.json")) as RunJson;
    const docs = quotingDocs(fileURLToPath(new URL("../docs", import.meta.url)));
    for (const path of [...docs, fileURLToPath(new URL("../README.md", import.meta.url))]) {
      const doc = readFileSync(path, "utf8");
      expect(withQuotes(doc, run), path).toBe(doc);
    }
  });

  it("render an inline figure from the row it names, median or min or max with its unit", () => {
    const run = runOf([
      { group: "g", name: "a / b", unit: "×", min: 0.5, median: 0.954, max: 2 },
      { group: "g", name: "t", unit: "ms", min: 1, median: 12.34, max: 44 },
    ]);
    const doc = "x <!-- fig g/a / b -->old<!-- /fig --> y <!-- fig g/t :max -->old<!-- /fig --> z";
    expect(withFigures(doc, run)).toBe(
      "x <!-- fig g/a / b -->0.954×<!-- /fig --> y <!-- fig g/t :max -->44.0 ms<!-- /fig --> z",
    );
    expect(() => withFigures("<!-- fig g/none -->1<!-- /fig -->", run)).toThrow(/names no row/);
  });

  it("render a bench:rows block from the rows it selects, and refuse one that selects nothing", () => {
    const run = runOf([
      { group: "g", name: "write a", unit: "×", min: 1, median: 2, max: 3 },
      { group: "g", name: "read a", unit: "×", min: 1, median: 4, max: 5 },
      { group: "h", name: "write b", unit: "×", min: 1, median: 6, max: 7 },
    ]);
    const doc = "intro\n<!-- bench:rows g /^write/ -->\nstale\n<!-- bench:rows:end -->\nafter\n";
    const out = withRows(doc, run);
    expect(out.startsWith("intro\n<!-- bench:rows g /^write/ -->\n")).toBe(true);
    expect(out.endsWith("<!-- bench:rows:end -->\nafter\n")).toBe(true);
    expect(out).toMatch(rowOf("write a", "2.00"));
    expect(out).not.toContain("read a");
    expect(out).not.toContain("write b");
    expect(out).not.toContain("stale");
    expect(withRows(out, run)).toBe(out);
    expect(() => withRows(doc.replace("^write", "^none"), run)).toThrow(/selects no row/);
  });

  it("replace the generated block and nothing else, and add one where there is none", () => {
    const run = runOf([{ group: "g", name: "a|b", unit: "µs/op", min: 1, median: 2, max: 3, note: "n" }]);
    const added = withLatest("# Bench\n\nprose\n", run);
    expect(added).toBe(`# Bench\n\nprose\n\n${renderLatest(run)}\n`);
    expect(added).toMatch(rowOf("a\\|b", "2.00", "1.00 – 3.00", "µs/op", "n"));
    const again = withLatest(`${added}\nafter\n`, { ...run, rows: [{ ...run.rows[0]!, median: 5 }] });
    expect(again.startsWith("# Bench\n\nprose\n\n")).toBe(true);
    expect(again.endsWith("\nafter\n")).toBe(true);
    expect(again).toMatch(rowOf("a\\|b", "5.00"));
    expect(again).not.toMatch(rowOf("a\\|b", "2.00"));
  });
});
