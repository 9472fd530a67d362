import { keyvApiTests, keyvIteratorTests, keyvValueTests } from "@keyv/test-suite";
import KeyvModule from "keyv";
import * as vitest from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "../../lib/backends/driver.js";
import { openBackend, ScopedStore } from "../../lib/index.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { randomRoot } from "../support/env.js";

// Keyv's own adapter suite over one tagged prefix of a 3-master cluster, beside another
// workspace's key the suite must never see, clear or iterate.
describe("@keyv/test-suite on a Redis Cluster (hash-tag layout)", () => {
  const root = randomRoot("cluster");
  const opened: { cluster?: TestCluster; backend?: Backend } = {};
  const scoped = (id: string) => new ScopedStore(opened.backend!.driver.scope(`${root}:ws:{${id}}:things`));
  beforeAll(async () => {
    opened.cluster = await startCluster();
    opened.backend = await openBackend(opened.cluster.url, { cluster: true });
    await scoped("b").set("foreign", "untouched");
  });
  afterAll(async () => {
    await opened.backend?.close();
    await opened.cluster?.stop();
  });
  const store = () => scoped("a");
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  it("left the other workspace's key alone", async () => {
    expect(await scoped("b").get("foreign")).toBe("untouched");
  });
});
