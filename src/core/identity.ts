// What a name may not be made of: look-alike script mixes and invisible characters, checked on
// the identity key (src/domain/identity-key.ts) where names and emails are created.

// ---- UTS #39: mixed scripts and invisible characters

/** ISO 15924 codes of Unicode's scripts; any this engine's Unicode does not know are left out. */
const SCRIPT_CODES = `Adlm Aghb Ahom Arab Armi Armn Avst Bali Bamu Bass Batk Beng Bhks Bopo Brah Brai Bugi Buhd Cakm Cans
  Cari Cham Cher Chrs Copt Cpmn Cprt Cyrl Deva Diak Dogr Dsrt Dupl Egyp Elba Elym Ethi Gara Geor Glag Gong Gonm Goth Gran
  Grek Gujr Gukh Guru Hang Hani Hano Hatr Hebr Hira Hluw Hmng Hmnp Hung Ital Java Kali Kana Kawi Khar Khmr Khoj Kits Knda
  Krai Kthi Lana Laoo Latn Lepc Limb Lina Linb Lisu Lyci Lydi Mahj Maka Mand Mani Marc Medf Mend Merc Mero Mlym Modi Mong
  Mroo Mtei Mult Mymr Nagm Nand Narb Nbat Newa Nkoo Nshu Ogam Olck Onao Orkh Orya Osge Osma Ougr Palm Pauc Perm Phag Phli
  Phlp Phnx Plrd Prti Rjng Rohg Runr Samr Sarb Saur Sgnw Shaw Shrd Sidd Sind Sinh Sogd Sogo Sora Soyo Sund Sunu Sylo Syrc
  Tagb Takr Tale Talu Taml Tang Tavt Telu Tfng Tglg Thaa Thai Tibt Tirh Tnsa Todr Toto Tutg Ugar Vaii Vith Wara Wcho Xpeo
  Xsux Yezi Yiii Zanb`.split(/\s+/);

const SCRIPTS = SCRIPT_CODES.flatMap((code) => {
  try {
    return [{ code, test: new RegExp(`^\\p{Script_Extensions=${code}}$`, 'u') }];
  } catch {
    return [];
  }
});
/** Common and Inherited characters (digits, punctuation, combining marks) go with any script. */
const ANY_SCRIPT = /^[\p{Script=Zyyy}\p{Script=Zinh}]$/u;
const ONLY_LATIN = /^[\p{Script_Extensions=Latn}\p{Script=Zyyy}\p{Script=Zinh}]*$/u;
/** UTS #39's Highly Restrictive level: one script, or Latin with one of the CJK sets. */
const ALLOWED_MIXES = [
  ['Latn', 'Hani', 'Hira', 'Kana'],
  ['Latn', 'Hani', 'Bopo'],
  ['Latn', 'Hani', 'Hang'],
];
const scriptCache = new Map<string, readonly string[]>();

/** The scripts a character is used with (Script_Extensions); empty for Common and Inherited. */
function scriptsOf(char: string): readonly string[] {
  let scripts = scriptCache.get(char);
  if (!scripts) {
    scripts = SCRIPTS.filter((s) => s.test.test(char)).map((s) => s.code);
    // A character of a script this list lacks still counts as a script of its own.
    if (!scripts.length && !ANY_SCRIPT.test(char)) scripts = [`?${char}`];
    if (scriptCache.size < 10_000) scriptCache.set(char, scripts);
  }
  return scripts;
}

/**
 * Whether the text mixes scripts the way a look-alike does (a Cyrillic `а` in `аdmin`): UTS #39
 * section 5.1's resolved script set, at its Highly Restrictive level.
 */
export function mixesScripts(text: string): boolean {
  if (ONLY_LATIN.test(text)) return false;
  const sets = [...text].map(scriptsOf).filter((s) => s.length > 0);
  if (!sets.length) return false;
  const resolved = sets.reduce((acc, s) => acc.filter((code) => s.includes(code)));
  if (resolved.length) return false;
  return !ALLOWED_MIXES.some((mix) => sets.every((s) => s.some((code) => mix.includes(code))));
}

/** Zero-width, bidi-override and other invisible characters (format controls, default ignorables). */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;

export function hasInvisible(text: string): boolean {
  return INVISIBLE.test(text);
}

/** Why a name (as its key) may not be created, or undefined. Emails are checked part by part. */
export function confusableReason(key: string, kind: 'username' | 'email'): string | undefined {
  if (hasInvisible(key)) return `${kind} contains invisible or direction-changing characters`;
  const parts = kind === 'email' ? key.split(/[@.]/) : [key];
  if (parts.some(mixesScripts)) return `${kind} mixes scripts that look alike (for example Latin and Cyrillic)`;
  return undefined;
}
