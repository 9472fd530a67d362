/**
 * Turns rows into what people read: a table on stdout, a JSON record per run (with enough
 * context to compare runs: commit, machine, Node, args), and an SVG of the scan figure.
 */
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import type { BenchRow } from "./rows.js";

export interface RunInfo {
  outDir: string;
  args: string[];
  mode: string;
  suites: readonly string[];
  seconds: number;
}

// --- the scan chart's rows: scan.ts names them, the chart finds them by name --------------

export const SCAN_SERIES = { scan: "SCAN MATCH+filter", index: "library list() (index)" } as const;
export type ScanSeries = keyof typeof SCAN_SERIES;

export function scanRowName(series: ScanSeries, others: number): string {
  return `redis list 100: ${SCAN_SERIES[series]}, ${others} other keys`;
}

const SCAN_ROW = /^redis list 100: (.+), (\d+) other keys$/;

export function scanPoints(rows: readonly BenchRow[]): Record<ScanSeries, Array<{ x: number; y: number }>> {
  const out: Record<ScanSeries, Array<{ x: number; y: number }>> = { scan: [], index: [] };
  for (const r of rows) {
    const match = r.group === "scan" ? SCAN_ROW.exec(r.name) : null;
    if (!match) continue;
    const series = (Object.keys(SCAN_SERIES) as ScanSeries[]).find((s) => SCAN_SERIES[s] === match[1]);
    if (series) out[series].push({ x: Number(match[2]), y: r.median });
  }
  for (const points of Object.values(out)) points.sort((a, b) => a.x - b.x);
  return out;
}

// --- table ---------------------------------------------------------------------------------

export function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

export function table(rows: readonly BenchRow[]): string {
  const head = ["group", "name", "median", "min", "max", "unit", "note"];
  const body = rows.map((r) => [r.group, r.name, fmt(r.median), fmt(r.min), fmt(r.max), r.unit, r.note ?? ""]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] as string).length)));
  const numeric = new Set([2, 3, 4]);
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number)))
      .join("  ")
      .trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

// --- JSON ----------------------------------------------------------------------------------

function git(args: string[]): string | undefined {
  try {
    return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

export function runRecord(rows: readonly BenchRow[], info: RunInfo, date: Date) {
  const commit = git(["rev-parse", "HEAD"]) ?? "unknown";
  const status = git(["status", "--porcelain", "--untracked-files=no"]);
  const cpu = cpus();
  return {
    date: date.toISOString(),
    commit,
    dirty: status === undefined ? null : status.length > 0,
    machine: {
      cpu: cpu[0]?.model ?? "unknown",
      cores: cpu.length,
      totalmemBytes: totalmem(),
      platform: process.platform,
      // Other work on the machine skews absolute times; the 1/5/15-minute load at the end says how much.
      loadavg: loadavg().map((value) => Math.round(value * 100) / 100),
    },
    node: process.version,
    args: info.args,
    mode: info.mode,
    suites: info.suites,
    seconds: Math.round(info.seconds * 10) / 10,
    rows,
  };
}

// --- SVG -----------------------------------------------------------------------------------

const escapeXml = (text: string) =>
  text.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c] as string);

/** Latency (ms, linear y) against other tenants' key count (log x); hand-written, no dependencies. */
export function scanSvg(points: Record<ScanSeries, Array<{ x: number; y: number }>>, subtitle: string): string {
  const W = 640;
  const H = 400;
  const m = { left: 64, right: 24, top: 48, bottom: 56 };
  const all = [...points.scan, ...points.index];
  const xs = all.map((p) => p.x);
  const lo = Math.floor(Math.log10(Math.max(1, Math.min(...xs))));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...xs))));
  const yMax = niceCeil(Math.max(...all.map((p) => p.y)));
  const px = (x: number) => m.left + ((Math.log10(x) - lo) / (hi - lo)) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - (y / yMax) * (H - m.top - m.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">Listing one workspace's 100 entries on Redis</text>`,
    `<text x="${W / 2}" y="36" text-anchor="middle" fill="#555">${escapeXml(subtitle)}</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    const x = px(10 ** e).toFixed(1);
    parts.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${H - m.bottom}" stroke="#ddd"/>`);
    parts.push(`<text x="${x}" y="${H - m.bottom + 16}" text-anchor="middle">${fmt(10 ** e)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
    const y = py(v).toFixed(1);
    parts.push(`<line x1="${m.left}" y1="${y}" x2="${W - m.right}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  parts.push(
    `<text x="${(m.left + W - m.right) / 2}" y="${H - 14}" text-anchor="middle">keys of other workspaces in the same Redis (log scale)</text>`,
    `<text transform="translate(16 ${(m.top + H - m.bottom) / 2}) rotate(-90)" text-anchor="middle">median latency (ms)</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${W - m.left - m.right}" height="${H - m.top - m.bottom}" fill="none" stroke="#888"/>`,
  );
  const colors: Record<ScanSeries, string> = { scan: "#d62728", index: "#1f77b4" };
  (Object.keys(points) as ScanSeries[]).forEach((series, i) => {
    const pts = points[series];
    if (pts.length === 0) return;
    const path = pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ");
    parts.push(`<polyline points="${path}" fill="none" stroke="${colors[series]}" stroke-width="2"/>`);
    for (const p of pts) {
      parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${colors[series]}"/>`);
    }
    const ly = m.top + 16 + i * 18;
    parts.push(`<rect x="${m.left + 12}" y="${ly - 9}" width="14" height="3" fill="${colors[series]}"/>`);
    parts.push(`<text x="${m.left + 32}" y="${ly - 4}">${escapeXml(SCAN_SERIES[series])}</text>`);
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

function niceCeil(value: number): number {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * step >= value) return f * step;
  return 10 * step;
}

// --- all of it -----------------------------------------------------------------------------

/** Prints the table and writes the JSON (and the chart, when the scan suite ran). Returns the paths written. */
export async function writeReport(rows: readonly BenchRow[], info: RunInfo, date = new Date()): Promise<string[]> {
  console.log(table(rows));
  await mkdir(info.outDir, { recursive: true });
  const record = runRecord(rows, info, date);
  const stamp = `${date.toISOString().slice(0, 19).replace(/:/g, "-")}Z-${record.commit.slice(0, 8)}`;
  const written: string[] = [];
  const json = join(info.outDir, `${stamp}.json`);
  await writeFile(json, `${JSON.stringify(record, null, 2)}\n`);
  written.push(json);
  const points = scanPoints(rows);
  if (points.scan.length > 0 || points.index.length > 0) {
    const subtitle = `${record.machine.cores}× ${record.machine.cpu}, Node ${record.node}, ${record.commit.slice(0, 8)}${record.dirty ? " (dirty)" : ""}, ${info.mode}`;
    const svg = join(info.outDir, `scan-${stamp}.svg`);
    await writeFile(svg, scanSvg(points, subtitle));
    await copyFile(svg, join(info.outDir, "latest.svg"));
    written.push(svg, join(info.outDir, "latest.svg"));
  }
  return written;
}
