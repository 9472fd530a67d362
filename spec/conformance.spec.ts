import { keyvApiTests, keyvIteratorTests, keyvValueTests } from "@keyv/test-suite";
import KeyvModule from "keyv";
import * as vitest from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "../lib/backends/driver.js";
import { openBackend, openStorage, scopeStore, type WorkspaceStorage } from "../lib/index.js";
import { BACKENDS, REDIS_HASH } from "./support/backends.js";
import { randomRoot } from "./support/env.js";

// Keyv's own adapter suite, through scopeStore over the adapter each built-in backend hands out,
// beside a foreign key the suite must never see, clear or iterate.
describe.each(BACKENDS)("@keyv/test-suite over scopeStore on $name", (backend) => {
  const root = randomRoot(`suite${backend.name}`);
  const opened: { backend?: Backend } = {};
  const store = () => scopeStore(opened.backend!.store, `${root}:ws:a:things`);
  beforeAll(async () => {
    opened.backend = await openBackend(backend.url(root));
    await scopeStore(opened.backend.store, `${root}:ws:b:things`).set("foreign", "untouched");
  });
  afterAll(async () => {
    await opened.backend?.close();
    await backend.cleanup(root);
  });
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  it("left the other workspace's key alone", async () => {
    expect(await scopeStore(opened.backend!.store, `${root}:ws:b:things`).get("foreign")).toBe("untouched");
  });
});

// The Redis hash layout is a driver choice of openStorage, so the suite runs on collection()'s store.
describe("@keyv/test-suite over collection() on redis-hash", () => {
  const root = randomRoot("suitehash");
  const opened: { a?: WorkspaceStorage; b?: WorkspaceStorage } = {};
  const store = () => opened.a!.collection("things").opts.store;
  beforeAll(async () => {
    opened.a = await openStorage({ ...REDIS_HASH.config, url: REDIS_HASH.url(root), root, workspaceId: "a" });
    opened.b = opened.a.withWorkspace("b");
    await opened.b.collection("things").set("foreign", "untouched");
  });
  afterAll(async () => {
    await opened.a?.close();
    await REDIS_HASH.cleanup(root);
  });
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  it("left the other workspace's key alone", async () => {
    expect(await opened.b!.collection("things").get("foreign")).toBe("untouched");
  });
});
