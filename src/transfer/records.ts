// Rows of a user file, streamed: CSV (with a header row naming the fields) or JSON Lines (one
// object per line). Each row comes with its line number; a row that cannot be read comes with why,
// so the import reports it and goes on.
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { TRANSFER_FIELDS, type ImportRecord } from '../core/user-transfer.ts';

export type TransferFormat = 'csv' | 'jsonl';

/** The format a file name says, or undefined. */
export function formatOf(fileName: string): TransferFormat | undefined {
  if (/\.csv$/i.test(fileName)) return 'csv';
  if (/\.(jsonl|ndjson)$/i.test(fileName)) return 'jsonl';
  return undefined;
}

/** Refused before any row is read: the file as a whole is not an import file. */
export class TransferFormatError extends Error {}

const MAX_LINE = 1024 * 1024;

export async function* jsonLines(input: Readable): AsyncGenerator<ImportRecord> {
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    if (text.length > MAX_LINE) {
      yield { line, error: 'line is too long' };
      continue;
    }
    try {
      yield { line, fields: JSON.parse(text) };
    } catch {
      yield { line, error: 'not valid JSON' };
    }
  }
}

export async function* csvRows(input: Readable): AsyncGenerator<ImportRecord> {
  const skipped: ImportRecord[] = [];
  const parser = input.pipe(
    parse({
      bom: true,
      info: true,
      // A row with the wrong number of fields is refused by us, with its line, not by the parser.
      relax_column_count: true,
      skip_empty_lines: true,
      // A row the parser cannot read (a stray quote) is reported and skipped; the rest go on.
      skip_records_with_error: true,
      max_record_size: MAX_LINE,
      on_skip: (error) => {
        skipped.push({ line: Number((error as { lines?: number } | undefined)?.lines ?? 0), error: `not valid CSV: ${error?.message ?? 'unreadable row'}` });
        return undefined;
      },
    }),
  );
  input.on('error', (error) => parser.destroy(error));
  let header: string[] | undefined;
  // The parser reads ahead, so a skipped row may be reported before the rows above it: keep line order.
  const skippedBefore = (line: number) => {
    skipped.sort((a, b) => a.line - b.line);
    const count = skipped.findIndex((s) => s.line >= line);
    return skipped.splice(0, count === -1 ? skipped.length : count);
  };
  for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    yield* skippedBefore(info.lines);
    if (!header) {
      header = record.map((name) => name.trim().toLowerCase());
      const unknown = header.filter((name) => !(TRANSFER_FIELDS as readonly string[]).includes(name));
      if (unknown.length) throw new TransferFormatError(`unknown column: ${unknown[0]} (expected some of ${TRANSFER_FIELDS.join(', ')})`);
      if (!header.includes('username')) throw new TransferFormatError('the header row has no username column');
      continue;
    }
    if (record.length !== header.length) {
      yield { line: info.lines, error: `expected ${header.length} fields, found ${record.length}` };
      continue;
    }
    yield { line: info.lines, fields: Object.fromEntries(header.map((name, i) => [name, record[i]])) };
  }
  yield* skippedBefore(Infinity);
}

export function readRecords(input: Readable, format: TransferFormat): AsyncGenerator<ImportRecord> {
  return format === 'csv' ? csvRows(input) : jsonLines(input);
}
