// How the value of one environment variable becomes a setting: each parser checks a raw value,
// refusing a bad one with one line that names the variable, and says what it accepts in the
// README's words, so the check and its documentation are one thing (src/platform/config.ts's table).
import path from 'node:path';
import { isStrongSecret, SECRET_RULE } from './secret-strength.ts';

export class ConfigError extends Error {}

export interface Parser<T> {
  /** The value of a variable that is set (an empty one counts as unset and is never parsed). */
  parse(raw: string, name: string): T;
  /** What it accepts, in Markdown, for the README's configuration table. */
  accepts: string;
  /** A value it refuses, for the test that every setting names itself when refused. */
  refuses?: string;
}

const code = (value: unknown) => `\`${value}\``;

/** `a`, `b` or `c`. */
export const either = (values: readonly unknown[]) =>
  values.length === 1 ? code(values[0]) : `${values.slice(0, -1).map(code).join(', ')} or ${code(values.at(-1))}`;

/** An integer in [min, max]: past max is a setting that would undo the limit it sets. */
export function integer({ min, max }: { min: number; max?: number }): Parser<number> {
  return {
    parse(raw, name) {
      const value = Number(raw);
      if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
      if (max !== undefined && value > max) throw new ConfigError(`${name} must be at most ${max}, got ${value}`);
      return value;
    },
    accepts: max === undefined ? `integer ≥ ${min}` : `integer ${min} to ${max}`,
    refuses: 'x',
  };
}

/** A URL of one of these protocols (e.g. `postgres:`), kept as written. */
export function url(protocols: readonly string[]): Parser<string> {
  return {
    parse(raw, name) {
      let parsed: URL;
      try {
        parsed = new URL(raw);
      } catch {
        throw new ConfigError(`${name} is not a valid URL`);
      }
      if (!protocols.includes(parsed.protocol)) throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
      return raw;
    },
    accepts: `${either(protocols.map((p) => `${p}//…`))} URL`,
    refuses: 'not a url',
  };
}

export function oneOf<T extends string>(allowed: readonly T[]): Parser<T> {
  return {
    parse(raw, name) {
      if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}`);
      return raw as T;
    },
    accepts: either(allowed),
    refuses: 'none of these',
  };
}

export const text: Parser<string> = { parse: (raw) => raw, accepts: 'text' };

/**
 * A URL the world sees (mail links, discovery, `iss`): credentials in it would be published, so
 * they are refused rather than redacted. Trailing slashes are dropped, so paths can be appended.
 */
export const publicBaseUrl: Parser<string> = {
  parse(raw, name) {
    const parsed = URL.canParse(raw) ? new URL(raw) : undefined;
    if (parsed?.username || parsed?.password) throw new ConfigError(`${name} must not carry a user or password: it is published in mail links and discovery documents`);
    return raw.replace(/\/+$/, '');
  },
  accepts: 'URL without a user or password (a trailing `/` is dropped)',
  refuses: 'https://user:pass@example.com',
};

/** A directory, resolved against the working directory. */
export const directory: Parser<string> = { parse: (raw) => path.resolve(raw), accepts: 'path' };

/** A bearer token or secret: strong enough that guessing it is hopeless (src/platform/secret-strength.ts). */
export const longSecret: Parser<string> = {
  parse(raw, name) {
    if (!isStrongSecret(raw)) throw new ConfigError(`${name} must be ${SECRET_RULE}`);
    return raw;
  },
  accepts: SECRET_RULE,
  refuses: 'short',
};

export const boolean: Parser<boolean> = {
  parse(raw, name) {
    if (raw !== 'true' && raw !== 'false') throw new ConfigError(`${name} must be true or false`);
    return raw === 'true';
  },
  accepts: either(['true', 'false']),
  refuses: 'yes',
};
