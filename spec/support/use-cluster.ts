/** A private 3-master cluster for the tests of one describe block: started before, stopped after. */
import { afterAll, beforeAll } from "vitest";
import { startCluster, type TestCluster } from "./cluster.js";

export function useCluster(): () => TestCluster {
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => {
    if (!cluster) throw new Error("the cluster is not started yet (use it inside a test)");
    return cluster;
  };
}
