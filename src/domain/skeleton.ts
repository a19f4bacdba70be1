// The confusable skeleton of UTS #39 section 4: two strings that look alike have one skeleton
// (`admin`, `adm\u0131n` with a dotless i and `\u0251dmin` with a Latin alpha all do). The store keeps
// each account's skeleton of its name and email unique, so no account can be made to look like
// another. A leaf of src/domain/: the store's migration computes it exactly as the core does.
import { caseFold } from 'unicode-case-folding';
import { CONFUSABLES } from './confusables-data.ts';

/** Source code point to its prototype, from Unicode's confusables.txt (version in confusables-data.ts). */
const PROTOTYPES: ReadonlyMap<number, string> = new Map(
  CONFUSABLES.split(',').map((entry) => {
    const [source, target] = entry.split('>');
    return [parseInt(source, 16), String.fromCodePoint(...target.split(' ').map((cp) => parseInt(cp, 16)))];
  }),
);

const DEFAULT_IGNORABLE = /^\p{Default_Ignorable_Code_Point}$/u;

/**
 * UTS #39's skeleton(X): NFD, drop default-ignorable code points, replace each code point by its
 * prototype, NFD again.
 */
export function skeleton(text: string): string {
  let mapped = '';
  for (const char of text.normalize('NFD')) {
    if (DEFAULT_IGNORABLE.test(char)) continue;
    mapped += PROTOTYPES.get(char.codePointAt(0)!) ?? char;
  }
  return mapped.normalize('NFD');
}

/**
 * The skeleton of an identity key (src/domain/identity-key.ts), case-folded once more: keys are
 * compared without case, and some prototypes are capitals (`0` → `O`), so `b0b` meets `bob`.
 */
export function lookAlikeKey(identityKey: string): string {
  return caseFold(skeleton(identityKey)).normalize('NFD');
}
