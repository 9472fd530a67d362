import net from "node:net";

/** Fails the run (never skips) when the Redis the tests need does not answer. */
export default async function setup(): Promise<void> {
  const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const ok = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port || 6379) });
    const done = (value: boolean) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => done(true));
  });
  if (!ok) {
    throw new Error(
      `No Redis answers at ${url.href}. Run the tests with "npm test" (it starts a private redis-server when one is installed), ` +
        "or start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no",
    );
  }
}
