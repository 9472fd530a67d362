import { type KeyvWorkspacesError, ValueTooLargeError } from "../../errors.js";

export interface Pending {
  apply(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Group commit: writes issued while a batch is being committed wait for the next one, so
 * thousands in flight cost a handful of appends. `commit` applies and persists a batch, settling
 * each op, or settles none and returns the typed error; `after` runs once the queue is drained.
 */
export class WriteQueue {
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  readonly #commit: (batch: Pending[]) => Promise<KeyvWorkspacesError | undefined>;
  readonly #after: () => void;

  constructor(commit: (batch: Pending[]) => Promise<KeyvWorkspacesError | undefined>, after: () => void) {
    this.#commit = commit;
    this.#after = after;
  }

  write<T>(apply: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ apply, resolve: resolve as (value: unknown) => void, reject });
      this.#start();
    });
  }

  /** Waits for every write issued so far to be settled. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing.catch(() => {});
  }

  #start(): void {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = undefined;
      // A caller awaiting the last batch may have queued its next write before this ran.
      if (this.#queue.length > 0) this.#start();
    });
  }

  async #drain(): Promise<void> {
    // Let writes issued in the same turn (Promise.all, setMany loops) join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0);
      const failure = await this.#commit(batch);
      if (failure instanceof ValueTooLargeError && batch.length > 1) {
        // One oversized write must not take down the writes that happened to share its batch:
        // each is tried alone (memory is reloaded first, so none of the refused batch lingers).
        for (const op of batch) {
          const alone = await this.#commit([op]);
          if (alone) op.reject(alone);
        }
      } else if (failure) {
        for (const op of batch) op.reject(failure);
      }
    }
    this.#after();
  }
}
