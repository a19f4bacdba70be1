// Rows of a user file, streamed: CSV (with a header row naming the fields) or JSON Lines (one
// object per line). Each row comes with its line number; a row that cannot be read comes with why,
// so the import reports it and goes on.
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

/**
 * Longest line (or CSV record) read, in bytes. A user row is a few hundred bytes; a longer line is
 * refused without being held, so a hostile file cannot make the reader buffer without end.
 */
export const MAX_LINE_BYTES = 64 * 1024;

/** One physical line: its text, or why it was not read (too long, not UTF-8). */
export interface Line {
  number: number;
  text?: string;
  error?: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Splits a byte stream into lines in one pass over each byte, holding at most one line of
 * `maxBytes`. (node:readline re-scans the whole pending line for a line ending at every chunk,
 * so a long line arriving in many chunks cost time quadratic in its length, and memory without
 * bound.) A line over the bound is reported as soon as it crosses it, and the rest of it is
 * skipped up to its newline. Lines end at \n; a \r before it is dropped.
 */
export async function* lines(input: AsyncIterable<Buffer | string>, maxBytes = MAX_LINE_BYTES): AsyncGenerator<Line> {
  let pieces: Buffer[] = [];
  let held = 0;
  let number = 1;
  let skipping = false;
  const finish = (): Line => {
    const bytes = Buffer.concat(pieces, held);
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    // A byte-order mark opens some exported files; it is not part of the first row.
    const start = number === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    try {
      return { number, text: strictUtf8.decode(bytes.subarray(start, end)) };
    } catch {
      return { number, error: 'not valid UTF-8' };
    }
  };
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let from = 0;
    while (from < buffer.length) {
      const newline = buffer.indexOf(0x0a, from);
      const to = newline === -1 ? buffer.length : newline;
      if (!skipping) {
        if (held + (to - from) > maxBytes) {
          skipping = true;
          pieces = [];
          held = 0;
          yield { number, error: `line ${number} is longer than ${maxBytes} bytes` };
        } else if (to > from) {
          pieces.push(buffer.subarray(from, to));
          held += to - from;
        }
      }
      if (newline === -1) break;
      if (!skipping) yield finish();
      pieces = [];
      held = 0;
      skipping = false;
      number++;
      from = newline + 1;
    }
  }
  if (!skipping && held > 0) yield finish();
}

/** A body longer than its limit; `line` is the line it broke off in. */
export class BodyTooLarge extends Error {
  constructor(readonly line: number) {
    super(`body too large (line ${line})`);
  }
}

/** Passes `input` through until `maxBytes`, then fails with BodyTooLarge naming the line reached. */
export async function* capBytes(input: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<Buffer> {
  let total = 0;
  let newlines = 0;
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (total + buffer.length > maxBytes) {
      // The whole lines within the limit are read; the one it cuts through is not.
      const allowed = buffer.subarray(0, maxBytes - total);
      for (let at = allowed.indexOf(0x0a); at !== -1; at = allowed.indexOf(0x0a, at + 1)) newlines++;
      yield allowed;
      throw new BodyTooLarge(newlines + 1);
    }
    total += buffer.length;
    for (let at = buffer.indexOf(0x0a); at !== -1; at = buffer.indexOf(0x0a, at + 1)) newlines++;
    yield buffer;
  }
}

export async function* jsonLines(input: AsyncIterable<Buffer | string>, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<ImportRecord> {
  for await (const { number: line, text, error } of lines(input, maxLineBytes)) {
    if (error !== undefined) {
      yield { line, error };
      continue;
    }
    if (text!.trim() === '') continue;
    let fields: unknown;
    try {
      fields = JSON.parse(text!);
    } catch {
      yield { line, error: 'not valid JSON' };
      continue;
    }
    yield { line, fields: withIdAsWritten(fields, text!) };
  }
}

/**
 * A JSON id goes on as the text it was written as, never as the float JSON.parse made of it:
 * 9007199254740990.5 and 1.0000000000000001 parse to whole numbers, and would land on ids the row
 * never named. The id's own check (src/core/ids.ts) then refuses any fraction or exponent.
 */
function withIdAsWritten(fields: unknown, text: string): unknown {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return fields;
  const record = fields as Record<string, unknown>;
  if (typeof record.id !== 'number') return fields;
  const written = topLevelNumberText(text, 'id');
  return written === undefined ? fields : { ...record, id: written };
}

const JSON_NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * The text of the number that `key` holds in the top-level object of `text` (valid JSON): the
 * last such member, as JSON.parse keeps the last of repeated keys.
 */
function topLevelNumberText(text: string, key: string): string | undefined {
  let depth = 0;
  let found: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (depth !== 1) continue;
      let after = i + 1;
      while (/\s/.test(text[after] ?? '')) after++;
      if (text[after] !== ':' || JSON.parse(text.slice(start, i + 1)) !== key) continue;
      after++;
      while (/\s/.test(text[after] ?? '')) after++;
      JSON_NUMBER.lastIndex = after;
      found = JSON_NUMBER.exec(text)?.[0];
    }
  }
  return found;
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
      max_record_size: MAX_LINE_BYTES,
      on_skip: (error) => {
        // csv-parse drops the rest of the chunk after an over-long record (rows below it with it),
        // so such a file cannot be read row by row: stop, naming the line (rows above it are in).
        if ((error as { code?: string } | undefined)?.code === 'CSV_MAX_RECORD_SIZE') {
          throw new TransferFormatError(`line ${(error as { lines?: number }).lines ?? '?'}: a record is longer than ${MAX_LINE_BYTES} bytes; the import stopped there`);
        }
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
