/**
 * WATCH on a Redis Cluster: a transaction's keys share one slot (the hash-tag layout puts a
 * workspace's keys in one), so its WATCH runs on a connection of its own to that slot's master.
 */
import type { RedisClusterType } from "@redis/client";
import { duplicateOf, type Optimistic, optimisticOver } from "./optimistic.js";

/** CRC16/XMODEM of the key's hash tag (or the whole key), as Redis Cluster assigns slots. */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  let hashed = key;
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

type Cluster = Pick<RedisClusterType, "getSlotMaster" | "nodeClient">;

/** Optimistic transactions routed by their first watched key, one dedicated connection per master. */
export function clusterOptimistic(cluster: Cluster, timeoutMs?: number): Optimistic & { close(): void } {
  const byMaster = new Map<string, Optimistic & { close(): void }>();
  const run: Optimistic = (watch, reads, write) => {
    const master = cluster.getSlotMaster(keySlot(watch[0] as string));
    let onMaster = byMaster.get(master.address);
    if (!onMaster) {
      onMaster = optimisticOver(async () => duplicateOf(await cluster.nodeClient(master)), timeoutMs);
      byMaster.set(master.address, onMaster);
    }
    return onMaster(watch, reads, write);
  };
  return Object.assign(run, {
    close() {
      for (const onMaster of byMaster.values()) onMaster.close();
      byMaster.clear();
    },
  });
}
