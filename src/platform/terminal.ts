// What the CLI writes is read on a terminal, and part of it comes from files and users (a CSV
// header, a stored username): a control character in it would be a command to the terminal (an
// OSC escape can retitle the window, write the clipboard, or hide text), and a bidi override can
// make a name read as another. So every byte the CLI prints passes through here.

/**
 * C0 and C1 controls, DEL, bidi marks, embeddings, overrides and isolates, and the Unicode line
 * and paragraph separators.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escape = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * `text` with each unsafe character written as a JSON escape (`\u001b`), so JSON output stays
 * the same JSON and a message shows what the file held. Newlines stay when `keepNewlines` (the
 * CLI's own line structure); within one message they are escaped too, so content cannot forge a line.
 */
export function forTerminal(text: string, { keepNewlines = false } = {}): string {
  return text.replace(keepNewlines ? UNSAFE_BUT_NEWLINE : UNSAFE, escape);
}
