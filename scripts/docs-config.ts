// Writes the README's configuration table from the settings table of src/platform/config.ts
// (`npm run docs:config`). test/docs.test.ts fails when the README holds another table.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PRELOAD_SETTINGS, SETTINGS, type Setting } from '../src/platform/config.ts';

export const README = fileURLToPath(new URL('../README.md', import.meta.url));
const BEGIN = '<!-- The configuration table is generated from src/platform/config.ts by `npm run docs:config`: edit it there. -->';
const END = '<!-- End of the generated configuration table. -->';

/** A table cell: a `|` would end it, inside code spans too. */
const cell = (markdown: string) => markdown.replaceAll('|', '\\|');

function defaultOf(row: Setting<unknown>): string {
  if (row.defaultText !== undefined) return row.defaultText;
  return row.default === undefined ? '—' : `\`${row.default}\``;
}

export function configTable(): string {
  const rows = [
    ...Object.values(SETTINGS as Record<string, Setting<unknown>>).map((row) => [
      row.flag ? `\`${row.env}\`, \`latchkey serve ${row.flag}\`` : `\`${row.env}\``,
      defaultOf(row),
      row.onlyWith ? `${row.parser.accepts}; read only with \`${row.onlyWith}\`` : row.parser.accepts,
      row.description,
    ]),
    ...PRELOAD_SETTINGS.map((row) => [`\`${row.env}\``, row.defaultText ?? '—', row.accepts, row.description]),
  ];
  return ['| variable | default | accepts | meaning |', '| --- | --- | --- | --- |', ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** The README with its configuration table (between the markers) as generated. */
export function withConfigTable(readme: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`README.md has lost the markers of its configuration table:\n${BEGIN}\n${END}`);
  return `${readme.slice(0, begin + BEGIN.length)}\n\n${configTable()}\n\n${readme.slice(end)}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const readme = fs.readFileSync(README, 'utf8');
  const written = withConfigTable(readme);
  if (written !== readme) fs.writeFileSync(README, written);
  process.stdout.write(written === readme ? 'README.md: the configuration table was already up to date\n' : 'README.md: wrote the configuration table\n');
}
