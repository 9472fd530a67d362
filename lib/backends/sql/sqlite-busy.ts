/** How long a SQLite statement or transaction waits for another connection's write lock. */
export const BUSY_TIMEOUT_MS = 5000;

/** Whether `error` (typed or node-sqlite3's own) is SQLite's SQLITE_BUSY. */
export const isBusy = (error: unknown): boolean => {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | null;
  return e?.cause?.code === "SQLITE_BUSY" || e?.code === "SQLITE_BUSY";
};

/**
 * Runs `work` again while SQLite answers SQLITE_BUSY (another connection holds the write lock or
 * is switching the file to WAL), with backoff, for at most `timeoutMs`. Only whole statements and
 * whole transactions are retried: a busy answer means nothing of them was applied.
 */
export async function retryBusy<T>(work: () => Promise<T>, timeoutMs = BUSY_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(2 * delay, 100)) {
    try {
      return await work();
    } catch (error) {
      if (!isBusy(error) || Date.now() + delay >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * delay));
    }
  }
}
