/**
 * Telling the process about data the library skips instead of failing on (an entry it cannot
 * read must not take a whole list or search down, but must not vanish silently either).
 */

/** Distinct warnings remembered; past this the oldest is forgotten (and may be told again). */
export const MAX_REMEMBERED_WARNINGS = 1024;

const told = new Set<string>();

/**
 * Emits `message` as a process warning with `code`, once per code and message: a search that
 * meets the same unreadable entry on every call reports it once. The memory of what was told is
 * bounded, so a process meeting endlessly many distinct problems cannot grow without limit.
 */
export function warnOnce(code: string, message: string): void {
  const key = `${code}\u0000${message}`;
  if (told.has(key)) return;
  if (told.size >= MAX_REMEMBERED_WARNINGS) told.delete(told.values().next().value as string);
  told.add(key);
  process.emitWarning(message, { code, type: "KeyvWorkspacesWarning" });
}
