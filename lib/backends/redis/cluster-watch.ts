/**
 * WATCH on a Redis Cluster: a transaction's keys share one slot (the hash-tag layout puts a
 * workspace's keys in one), so its WATCH runs on a connection of its own to that slot's master.
 *
 * While that slot migrates, the master refuses a WATCH or a read whose keys are split (TRYAGAIN,
 * ASK); once it has moved, it answers MOVED. Neither is the write's fault: the attempt is sent
 * again, MOVED after the slot map is read again (one routed command), until the command's time is
 * up (docs/cluster.md, Resharding). Nothing of a refused attempt ran: these replies come before EXEC.
 */
import type { RedisClusterType } from "@redis/client";
import { ConnectionError, KeyvWorkspacesError } from "../../errors.js";
import { sleep } from "./errors.js";
import { duplicateOf, type Optimistic, optimisticOver } from "./optimistic.js";
import { isErrorReply } from "./tx.js";

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

type Cluster = Pick<RedisClusterType, "getSlotMaster" | "nodeClient" | "sendCommand">;

/** "moved" (the slot has a new master), "moving" (it is half-migrated), or undefined. */
function slotRefusal(error: unknown): "moved" | "moving" | undefined {
  const reply = error instanceof KeyvWorkspacesError ? error.cause : error;
  if (!isErrorReply(reply)) return undefined;
  if (/^MOVED\b/.test(reply.message)) return "moved";
  return /^(ASK|TRYAGAIN)\b/.test(reply.message) ? "moving" : undefined;
}

/** Optimistic transactions routed by their first watched key, one dedicated connection per master. */
export function clusterOptimistic(cluster: Cluster, timeoutMs = 10_000): Optimistic & { close(): void } {
  const byMaster = new Map<string, Optimistic & { close(): void }>();
  const once: Optimistic = (watch, reads, write) => {
    const master = cluster.getSlotMaster(keySlot(watch[0] as string));
    let onMaster = byMaster.get(master.address);
    if (!onMaster) {
      onMaster = optimisticOver(async () => duplicateOf(await cluster.nodeClient(master)), timeoutMs);
      byMaster.set(master.address, onMaster);
    }
    return onMaster(watch, reads, write);
  };
  const run: Optimistic = async (watch, reads, write) => {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 20, tries = 0; ; delay = Math.min(2 * delay, 500), tries++) {
      try {
        return await once(watch, reads, write);
      } catch (error) {
        const refusal = slotRefusal(error);
        if (refusal === undefined) throw error;
        if (Date.now() + delay >= deadline) {
          throw new ConnectionError(
            `the cluster kept refusing a conditional write for ${timeoutMs} ms while its slot moved: ${(error as Error).message}`,
            { cause: error },
          );
        }
        // A routed command follows MOVED and reads the slot map again, so the next attempt goes to the new master.
        if (refusal === "moved") await cluster.sendCommand(watch[0], true, ["EXISTS", watch[0] as string]);
        if (refusal === "moving" || tries > 0) await sleep(delay);
      }
    }
  };
  return Object.assign(run, {
    close() {
      for (const onMaster of byMaster.values()) onMaster.close();
      byMaster.clear();
    },
  });
}
