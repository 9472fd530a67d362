/** NDJSON in and out: one ExportRecord per line, streamed. */
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { InvalidValueError } from "../errors.js";
import { BATCHES_OF, type RecordBatch } from "../lifecycle/records.js";
import type { ExportRecord } from "../lifecycle/transfer.js";

const BLANK = /^\s*$/;

/**
 * The records of a stream, parsed a chunk at a time: the stream waits while the caller works
 * (backpressure). A line that is not JSON ends it with an error naming the line, after the
 * records before it.
 */
async function* batches(input: Readable): AsyncGenerator<RecordBatch> {
  const decoder = new StringDecoder("utf8");
  let rest = "";
  let line = 0;
  const parse = (texts: readonly string[]): RecordBatch & { error?: InvalidValueError } => {
    const records: unknown[] = [];
    const lines: number[] = [];
    for (const text of texts) {
      line++;
      if (BLANK.test(text)) continue;
      try {
        records.push(JSON.parse(text));
      } catch (error) {
        const bad = new InvalidValueError(`line ${line}: not JSON (${(error as Error).message})`, { cause: error });
        return { records, lines, error: bad };
      }
      lines.push(line);
    }
    return { records, lines };
  };
  const emit = function* (texts: readonly string[]) {
    const { records, lines, error } = parse(texts);
    if (records.length > 0) yield { records, lines };
    if (error) throw error;
  };
  for await (const chunk of input) {
    const texts = (rest + (typeof chunk === "string" ? chunk : decoder.write(chunk as Buffer))).split("\n");
    rest = texts.pop() as string;
    yield* emit(texts);
  }
  rest += decoder.end();
  if (rest !== "") yield* emit([rest]);
}

/**
 * Records of a stream, one by one; importWorkspace takes them in batches instead (BATCHES_OF),
 * each with its line number so an import error can name it.
 */
export function readRecords(input: Readable): AsyncGenerator<ExportRecord> {
  const records = (async function* () {
    for await (const batch of batches(input)) yield* batch.records as ExportRecord[];
  })();
  BATCHES_OF.set(records, () => batches(input));
  return records;
}

/** Writes one line per record, waiting whenever the output's buffer is full; returns the count. */
export async function writeRecords(
  records: AsyncIterable<ExportRecord>,
  output: Writable,
  onRecord?: (written: number) => void,
): Promise<number> {
  let count = 0;
  for await (const record of records) {
    // events.once rejects on "error" and removes both listeners either way.
    if (!output.write(`${JSON.stringify(record)}\n`)) await once(output, "drain");
    onRecord?.(++count);
  }
  return count;
}
