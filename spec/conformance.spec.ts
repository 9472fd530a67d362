import { keyvApiTests, keyvIteratorTests, keyvValueTests } from "@keyv/test-suite";
import KeyvModule from "keyv";
import * as vitest from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "../lib/backends/driver.js";
import { openBackend, scopeStore } from "../lib/index.js";
import { BACKENDS } from "./support/backends.js";
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
