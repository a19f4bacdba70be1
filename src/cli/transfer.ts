// `latchkey users import FILE` and `latchkey users export`: the terminal side of core/user-transfer.ts
// (file streams, a progress bar or periodic lines, the rejects file, the summary).
import fs from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Core } from '../core/index.ts';
import type { ImportCounts } from '../core/user-transfer.ts';
import { formatOf, readRecords, TransferFormatError, type TransferFormat } from '../transfer/records.ts';
import { createOwnerOnly, replaceOwnerOnly } from './owner-only-file.ts';
import { forTerminal } from '../platform/terminal.ts';

export interface ImportCommandOptions {
  format?: string;
  update?: boolean;
  /** Where rejected rows go; default FILE.rejects.jsonl (or ./import.rejects.jsonl for stdin). */
  rejects?: string;
  /** Progress goes here: a bar when it is a terminal, a line every few seconds otherwise. */
  progressTo?: NodeJS.WriteStream;
  clock?: () => number;
}

const PLAIN_EVERY_MS = 5000;

function pickFormat(file: string, format: string | undefined): TransferFormat {
  const picked = format ?? formatOf(file);
  if (picked !== 'csv' && picked !== 'jsonl') throw new TransferFormatError(`cannot tell the format of ${file}: give --format csv or --format jsonl`);
  return picked;
}

async function writeLine(out: Writable, line: string) {
  if (!out.write(line + '\n')) await once(out, 'drain');
}

export async function importCommand(core: Core, file: string, options: ImportCommandOptions = {}) {
  const format = pickFormat(file, options.format);
  const fromStdin = file === '-';
  const input = fromStdin ? process.stdin : fs.createReadStream(file);
  if (!fromStdin) await once(input, 'open');
  const totalBytes = fromStdin ? 0 : fs.statSync(file).size;
  const rejectsPath = options.rejects ?? (fromStdin ? 'import.rejects.jsonl' : `${file}.rejects.jsonl`);
  // Rejected rows name users and say what was wrong with their hashes: owner-only, made anew each run.
  const rejects = replaceOwnerOnly(rejectsPath, 'the rejects file');
  const progressTo = options.progressTo ?? process.stderr;
  const clock = options.clock ?? Date.now;
  const started = clock();
  const rowsDone = (c: ImportCounts) => c.imported + c.updated + c.skipped + c.rejected;
  const rate = (c: ImportCounts) => Math.round(rowsDone(c) / Math.max((clock() - started) / 1000, 0.001));
  const bytesRead = () => (fromStdin ? 0 : (input as fs.ReadStream).bytesRead);

  const bar =
    progressTo.isTTY && totalBytes > 0
      ? new cliProgress.SingleBar(
          { stream: progressTo, format: 'import [{bar}] {percentage}% | {rows} rows | {rate} rows/s | ETA {eta_formatted}', etaBuffer: 50 },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  bar?.start(totalBytes, 0, { rows: 0, rate: 0 });
  let lastLine = started;
  const onProgress = (counts: ImportCounts, final = false) => {
    if (bar) return bar.update(final ? totalBytes : Math.min(bytesRead(), totalBytes), { rows: rowsDone(counts), rate: rate(counts) });
    if (!final && clock() - lastLine < PLAIN_EVERY_MS) return;
    lastLine = clock();
    const share = totalBytes ? ` (${Math.floor((100 * bytesRead()) / totalBytes)}%)` : '';
    progressTo.write(
      `import: ${rowsDone(counts)} rows${share}, ${counts.imported} imported, ${counts.updated} updated, ${counts.skipped} skipped, ${counts.rejected} rejected, ${rate(counts)} rows/s\n`,
    );
  };

  let counts: ImportCounts;
  try {
    counts = await core.transfer.importUsers(readRecords(input, format), {
      update: options.update,
      onReject: (reject) => rejects.write(JSON.stringify(reject) + '\n'),
      onProgress,
    });
    onProgress(counts, true);
  } finally {
    bar?.stop();
    rejects.end();
    await once(rejects, 'close');
    if (!fromStdin) input.destroy();
  }
  // No rejects: no file, so a stale one from an earlier run cannot mislead.
  if (counts.rejected === 0) fs.rmSync(rejectsPath, { force: true });
  const seconds = (clock() - started) / 1000;
  return { ...counts, ...(counts.rejected ? { rejects_file: rejectsPath } : {}), seconds, rows_per_second: rate(counts) };
}

export async function exportCommand(core: Core, options: { withHashes?: boolean; output?: string } = {}) {
  const out = options.output ? createOwnerOnly(options.output, '--output') : process.stdout;
  let users = 0;
  for await (const row of core.transfer.exportUsers({ withHashes: options.withHashes })) {
    // The same JSON, with no stored name able to drive a terminal the export is shown on.
    await writeLine(out, forTerminal(JSON.stringify(row)));
    users++;
  }
  if (options.output) {
    out.end();
    await once(out, 'close');
  }
  return { exported: users };
}
