/**
 * Driving a Redis server (or several) with many operations in flight, and what it cost the
 * server: `INFO cpu` deltas (user + sys) ÷ operations, which client-side noise does not move.
 */
import type { createClient } from "@redis/client";

export type RedisNode = ReturnType<typeof createClient>;
export type Op = (i: number) => Promise<unknown>;

/** CPU seconds the servers have used so far, summed. */
export async function serverCpuSeconds(nodes: readonly RedisNode[]): Promise<number> {
  let total = 0;
  for (const node of nodes) {
    const info = String(await node.info("cpu"));
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1]);
    total += field("used_cpu_user") + field("used_cpu_sys");
  }
  return total;
}

/** Commands the servers have processed so far (MULTI and EXEC count as one each), summed. */
export async function serverCommands(nodes: readonly RedisNode[]): Promise<number> {
  let total = 0;
  for (const node of nodes)
    total += Number(/total_commands_processed:(\d+)/.exec(String(await node.info("stats")))?.[1]);
  return total;
}

/**
 * `count` operations with at most `flight` in flight: ops/s, server CPU µs/op and commands per
 * operation, summed over `nodes`.
 */
export async function drive(nodes: readonly RedisNode[], op: Op, count: number, flight: number) {
  const commands0 = await serverCommands(nodes);
  const cpu0 = await serverCpuSeconds(nodes);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) await op(next++);
  };
  await Promise.all(Array.from({ length: flight }, worker));
  const seconds = (performance.now() - t0) / 1000;
  // INFO itself costs the server a little: read once per run, spread over thousands of operations.
  const cpu = (await serverCpuSeconds(nodes)) - cpu0;
  // The INFO calls between the two readings (the first, and both CPU readings) are not the op's.
  const commands = (await serverCommands(nodes)) - commands0 - 3 * nodes.length;
  return { opsPerSecond: count / seconds, cpuMicros: (cpu * 1e6) / count, commandsPerOp: commands / count };
}
