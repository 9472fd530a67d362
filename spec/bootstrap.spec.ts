import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { openStorage, type StorageConfig, type WorkspaceStorage } from "../lib/index.js";
import { BACKENDS } from "./support/backends.js";
import { randomRoot } from "./support/env.js";

const child = fileURLToPath(new URL("./fixtures/bootstrap-child.ts", import.meta.url));
const run = promisify(execFile);

async function inChildProcess(config: StorageConfig) {
  const { stdout } = await run(process.execPath, ["--import", "tsx", child, JSON.stringify(config)], {
    timeout: 20_000,
  });
  return JSON.parse(stdout);
}

// Node 20 does not apply `--import tsx` to a worker's own entry file, so the worker registers tsx itself.
const tsxApi = pathToFileURL(
  join(dirname(createRequire(import.meta.url).resolve("tsx/package.json")), "dist/esm/api/index.mjs"),
).href;
const workerBoot = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(pathToFileURL(child).href)}); });`;

function inWorker(config: StorageConfig) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerBoot, { eval: true, workerData: config });
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
  });
}

// memory: is per process by definition, so only the backends another process can reach.
describe.each(BACKENDS.filter((b) => b.name !== "memory"))("bootstrap config on $name", (backend) => {
  let storage: WorkspaceStorage | undefined;
  let root = "";
  afterEach(async () => {
    await storage?.close();
    await backend.cleanup(root);
  });

  it.each([
    ["a child process", inChildProcess],
    ["a worker thread", inWorker],
  ])("rebuilds the same workspace in %s, with deps still unscoped", async (_label, elsewhere) => {
    root = randomRoot(`boot_${backend.name}`);
    storage = await openStorage({ url: backend.url(root), root, workspaceId: "tenant-1" });
    await storage.artifacts.save("from-parent", { hello: "child" });
    await storage.withWorkspace("tenant-2").artifacts.save("other-tenant", 1);
    const result = (await elsewhere(storage.toBootstrapConfig())) as Record<string, unknown>;
    expect(result).toEqual({
      workspaceId: "tenant-1",
      seen: { hello: "child" },
      depsPrefix: `${root}:deps`,
      deps: ["child-dep@1.0.0"],
      artifacts: ["from-child", "from-parent"],
    });
    expect(await storage.artifacts.load("from-child")).toMatchObject({ pid: expect.any(Number) });
    expect(await storage.withWorkspace(null).deps.list()).toEqual(["child-dep@1.0.0"]);
    expect(await storage.withWorkspace(null).artifacts.list()).toEqual([]);
  });
});
