/**
 * Process warnings for failures an outside API would otherwise swallow (Keyv's default error
 * handling) or that must not stop a listing: each distinct message is emitted once, and the set of
 * messages remembered is bounded so a long-lived process cannot grow it without limit.
 */
const MAX_REMEMBERED = 1000;
const emitted = new Set<string>();

export function warnOnce(code: string, message: string): void {
  const key = `${code}\u0000${message}`;
  if (emitted.has(key)) return;
  if (emitted.size >= MAX_REMEMBERED) emitted.clear();
  emitted.add(key);
  process.emitWarning(message, { code });
}
