/**
 * Progress of a long operation on stderr: a bar (cli-progress) when stderr is a terminal, one
 * plain summary line when it is not (logs and pipes get no control characters).
 */
import cliProgress from "cli-progress";

export interface Progress {
  /** Work done so far (absolute). */
  update(done: number): void;
  /** Done: completes the bar, or prints the summary line. */
  stop(summary: string): void;
}

export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
}

export function progress(stream: ProgressStream, label: string, total: number | undefined): Progress {
  if (!stream.isTTY || total === undefined) {
    return { update() {}, stop: (summary) => void stream.write(`${summary}\n`) };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as NodeJS.WritableStream,
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`,
      hideCursor: true,
      // Redraw even when stderr looks non-interactive to cli-progress (e.g. under `script`).
      noTTYOutput: true,
      notTTYSchedule: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(total, 1), 0);
  let last = 0;
  return {
    update(done) {
      last = done;
      // A total counted before the work may be passed by writes landing meanwhile.
      if (done > bar.getTotal()) bar.setTotal(done);
      bar.update(done);
    },
    stop(summary) {
      bar.setTotal(Math.max(last, 1));
      bar.update(Math.max(last, 1));
      bar.stop();
      stream.write(`${summary}\n`);
    },
  };
}
