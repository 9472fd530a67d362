/** Process warnings with one code, collected until stopped (they are emitted on the next tick). */
export function captureWarnings(code: string) {
  const seen: Array<{ code?: string; message: string }> = [];
  const on = (warning: Error & { code?: string }) => {
    if (warning.code === code) seen.push({ code: warning.code, message: warning.message });
  };
  process.on("warning", on);
  const settled = () => new Promise((resolve) => setImmediate(resolve));
  return {
    async all() {
      await settled();
      return [...seen];
    },
    async about(name: string) {
      await settled();
      return seen.filter((w) => w.message.includes(JSON.stringify(name)));
    },
    stop: () => process.off("warning", on),
  };
}
