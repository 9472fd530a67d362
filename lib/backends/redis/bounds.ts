/** Time bounds for Redis connections: nothing waits for ever, a close waits briefly for replies. */
const CLOSE_GRACE_MS = 1000;

/** Rejects with `onTimeout()` if `promise` has not settled within `ms`. The timer never keeps the process alive. */
export function within<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Commands still owed a reply, so a close can wait (at most CLOSE_GRACE_MS) for them first. */
export class InFlight {
  #count = 0;
  #idle: (() => void) | undefined;

  begin(): void {
    this.#count++;
  }

  end(): void {
    if (--this.#count === 0) this.#idle?.();
  }

  async drained(): Promise<void> {
    if (this.#count === 0) return;
    const idle = new Promise<void>((resolve) => {
      this.#idle = resolve;
    });
    await within(idle, CLOSE_GRACE_MS, () => new Error("close timed out")).catch(() => {});
  }
}
