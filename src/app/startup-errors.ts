// Failures an operator can fix, met while starting: turned into one line that names the
// setting and the cause, instead of a stack trace. Anything else is a bug and keeps its stack.
import { DEFAULT_DATA_DIR, type Config } from '../platform/config.ts';
import { DependencyUnavailable } from '../core/errors.ts';
import { describeStore } from '../store/db.ts';
import { redactUrl } from '../platform/redact.ts';

/** A start (or a CLI command) that cannot go on for a reason in the environment: exit 1. */
export class StartupError extends Error {}

interface SystemError {
  code?: string;
  message?: string;
  severity?: string;
}

const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens there',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name could not be resolved',
  ETIMEDOUT: 'no answer in time',
  CONNECT_TIMEOUT: 'no answer in time',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'the connection was reset',
};

/** Why a network connection failed, in words, or undefined when it was not a network failure. */
export function networkReason(error: unknown): string | undefined {
  const code = (error as SystemError)?.code;
  return code && NETWORK[code] ? `${NETWORK[code]} (${code})` : undefined;
}

/** The store could not be opened or migrated: which setting to look at, and why. */
export function storeFailure(error: unknown, config: Config): StartupError | undefined {
  // The store's guard wraps a driver's fault; the cause says what it was.
  if (error instanceof DependencyUnavailable && error.cause) error = error.cause;
  const e = error as SystemError;
  if (config.databaseUrl) {
    const url = new URL(config.databaseUrl);
    const where = redactUrl(config.databaseUrl);
    const network = networkReason(error);
    if (network) return new StartupError(`DATABASE_URL: cannot reach PostgreSQL at ${url.host}: ${network}`, { cause: error });
    if (error instanceof DependencyUnavailable) {
      return new StartupError(
        `DATABASE_URL: no PostgreSQL answer from ${url.host} within ${config.dbTimeoutMs} ms (LATCHKEY_DB_TIMEOUT_MS): is PostgreSQL listening there, and is it up?`,
        { cause: error },
      );
    }
    const database = decodeURIComponent(url.pathname.slice(1)) || url.username || 'postgres';
    if (e?.code === '3D000') {
      return new StartupError(
        `DATABASE_URL: database "${database}" does not exist on ${url.host}; create it first ` +
          `(createdb -h ${url.hostname} -p ${url.port || 5432} -U ${decodeURIComponent(url.username) || 'postgres'} ${database}) ` +
          `or point DATABASE_URL at one that exists`,
        { cause: error },
      );
    }
    // Any other answer from the server itself (login refused, no permission to create tables…).
    if (e?.severity) return new StartupError(`DATABASE_URL: PostgreSQL at ${where} refused: ${e.message} (${e.code})`, { cause: error });
    return undefined;
  }
  if (e?.code?.startsWith('SQLITE_') || ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOSPC', 'EEXIST'].includes(e?.code ?? '')) {
    const why = e.message?.includes(e.code!) ? e.message : `${e.message} (${e.code})`;
    return new StartupError(`LATCHKEY_DATA_DIR: cannot use the embedded store in ${config.dataDir}: ${why}`, { cause: error });
  }
  return undefined;
}

/**
 * A command that reads or changes a store met none where the settings point: the operator has
 * most likely set up the CLI differently from the server, and an empty store made here would
 * only hide that.
 */
export function noStore(config: Config): StartupError {
  const settings = config.databaseUrl
    ? 'DATABASE_URL'
    : `LATCHKEY_DATA_DIR${config.dataDir === DEFAULT_DATA_DIR ? ' (unset: the install\'s ./data)' : ''}, or DATABASE_URL for PostgreSQL`;
  return new StartupError(
    `no store at ${describeStore(config)}: nothing there to read or change. Give this command the server's ${settings}, ` +
      'or create a store here with `latchkey migrate`',
  );
}

/** The HTTP server could not listen: which setting to change. */
export function listenFailure(error: unknown, config: Config): StartupError | undefined {
  const code = (error as SystemError)?.code;
  const at = `${config.host}:${config.port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new StartupError(`PORT ${config.port}: ${at} is already in use by another process; stop it or set PORT (or HOST) to a free one`, { cause: error });
    case 'EACCES':
      return new StartupError(`PORT ${config.port}: not allowed to listen on ${at} (ports below 1024 need privileges); set PORT above 1023`, { cause: error });
    case 'EADDRNOTAVAIL':
      return new StartupError(`HOST ${config.host}: no network interface of this machine has that address; use 127.0.0.1, or 0.0.0.0 for all`, { cause: error });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new StartupError(`HOST ${config.host}: cannot resolve that name; use an address such as 127.0.0.1 or 0.0.0.0`, { cause: error });
    default:
      return undefined;
  }
}
