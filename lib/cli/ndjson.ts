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

/** Records of a stream, each tagged with its line number so an import error can name it. */
export async function* readRecords(input: Readable): AsyncGenerator<ExportRecord> {
  let line = 0;
  for await (const text of lines(input)) {
    line++;
    if (text.trim() === "") continue;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch (error) {
      throw new InvalidValueError(`line ${line}: not JSON (${(error as Error).message})`, { cause: error });
    }
    if (typeof record === "object" && record !== null) LINE_OF.set(record, line);
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
