/** NDJSON in and out: one ExportRecord per line, streamed. */
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { InvalidValueError } from "../errors.js";
import { type ExportRecord, LINE_OF } from "../lifecycle/transfer.js";

/** The lines of a stream, read chunk by chunk: the stream waits while the caller works (backpressure). */
async function* lines(input: Readable): AsyncGenerator<string> {
  const decoder = new StringDecoder("utf8");
  let rest = "";
  for await (const chunk of input) {
    const parts = (rest + (typeof chunk === "string" ? chunk : decoder.write(chunk as Buffer))).split("\n");
    rest = parts.pop() as string;
    yield* parts;
  }
  rest += decoder.end();
  if (rest !== "") yield rest;
}

/** Records of a stream; LINE_OF gives the line of the record it yielded last, so an import error can name it. */
export function readRecords(input: Readable): AsyncGenerator<ExportRecord> {
  const at = { line: 0 };
  const records = parse(input, at);
  // One entry per stream, not per record: the import checks each record as soon as it is yielded.
  LINE_OF.set(records, () => at.line);
  return records;
}

const BLANK = /^\s*$/;

async function* parse(input: Readable, at: { line: number }): AsyncGenerator<ExportRecord> {
  for await (const text of lines(input)) {
    const line = ++at.line;
    if (BLANK.test(text)) continue;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch (error) {
      throw new InvalidValueError(`line ${line}: not JSON (${(error as Error).message})`, { cause: error });
    }
    yield record as ExportRecord;
  }
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
