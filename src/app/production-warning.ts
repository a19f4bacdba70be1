// A copy of the data directory holds the generated secret beside the embedded database, and with
// unsealed keys the signing keys are in that database: a copy then gives back live codes and lets
// its holder sign tokens. Fine on a laptop; in production, say so once at start.
import type { Config } from '../platform/config.ts';

/** The warning a production start owes its operator, or undefined when there is none. */
export function productionWarning(config: Pick<Config, 'production' | 'secret' | 'keySecret' | 'dataDir'>): string | undefined {
  if (!config.production || config.secret || config.keySecret) return undefined;
  return (
    `NODE_ENV=production, but the secret that keys codes and links is the generated file in ${config.dataDir} (LATCHKEY_SECRET is unset) ` +
    'and the signing keys are stored unsealed (LATCHKEY_KEY_SECRET is unset): a copy of the data directory and the database gives back live codes and the keys; ' +
    'set LATCHKEY_SECRET and LATCHKEY_KEY_SECRET, kept out of backups (see SECURITY.md)'
  );
}
