/** What the Sentinels are asked: who the master is, and which replicas it has. */
import { ConnectionError, InvalidConfigError } from "../../errors.js";
import { connectRedis, DEFAULT_CONNECT_TIMEOUT_MS, type RedisConnection, type RedisOpenOptions } from "./open.js";
import { nodeUrl, parseSentinelUrl, type SentinelAddress, type SentinelUrl, sentinelNodeUrl } from "./sentinel-url.js";

type Send = (args: string[]) => Promise<unknown>;

/** `ask` on the first Sentinel that answers; each is bounded by the connect timeout. */
export async function askSentinels<T>(
  parsed: SentinelUrl,
  options: RedisOpenOptions,
  ask: (send: Send) => Promise<T>,
): Promise<T> {
  const timeout = Math.min(options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 2000);
  const errors: unknown[] = [];
  for (const sentinel of parsed.sentinels) {
    let conn: RedisConnection | undefined;
    try {
      conn = await connectRedis(sentinelNodeUrl(parsed, sentinel), {
        connectTimeoutMs: timeout,
        commandTimeoutMs: timeout,
      });
      const { commander } = conn;
      return await ask((args) => commander.sendCommand(args));
    } catch (error) {
      errors.push(error);
    } finally {
      await conn?.close();
    }
  }
  // Every Sentinel that answered does not know the master: the URL is wrong, not the network.
  const unknown = errors.find((e) => e instanceof InvalidConfigError);
  if (unknown && errors.every((e) => e instanceof InvalidConfigError || e instanceof ConnectionError)) throw unknown;
  const last = errors.at(-1);
  throw new ConnectionError(
    `no Sentinel of ${redactedList(parsed)} answered: ${last instanceof Error ? last.message : String(last)}`,
    { cause: last },
  );
}

const redactedList = (parsed: SentinelUrl) => parsed.sentinels.map(({ host, port }) => `${host}:${port}`).join(",");

/** The master's address as the Sentinels see it now. */
export function masterAddress(parsed: SentinelUrl, options: RedisOpenOptions): Promise<SentinelAddress> {
  return askSentinels(parsed, options, async (send) => {
    const reply = await send(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", parsed.masterName]);
    if (!Array.isArray(reply) || reply.length < 2) {
      throw new InvalidConfigError(
        "url",
        `no Sentinel at ${redactedList(parsed)} knows a master named ${parsed.masterName}`,
      );
    }
    return { host: String(reply[0]), port: Number(reply[1]) };
  });
}

/** Master and replicas (those the Sentinels do not see as down), as redis:// URLs with the data credentials. */
export async function sentinelDataNodeUrls(url: string, options: RedisOpenOptions = {}): Promise<string[]> {
  const parsed = parseSentinelUrl(url);
  const master = await masterAddress(parsed, options);
  const replicas = await askSentinels(parsed, options, async (send) => {
    const reply = (await send(["SENTINEL", "REPLICAS", parsed.masterName])) as unknown[];
    return reply.map((fields) => {
      const flat = fields as string[];
      const field = (name: string) => flat[flat.indexOf(name) + 1] ?? "";
      return { host: field("ip"), port: Number(field("port")), flags: field("flags") };
    });
  });
  const up = replicas.filter((r) => !/s_down|o_down|disconnected/.test(r.flags));
  return [master, ...up].map((node) => nodeUrl(parsed, node));
}

/** The current master as a redis:// URL with the data credentials: for one-off jobs (rebuild-index). */
export async function sentinelMasterUrl(url: string, options: RedisOpenOptions = {}): Promise<string> {
  const parsed = parseSentinelUrl(url);
  return nodeUrl(parsed, await masterAddress(parsed, options));
}
