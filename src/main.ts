// The `latchkey` command: serve, migrate, and manage users and keys on the configured store.
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError, type Config } from './config.ts';
import { buildApp, openServices } from './app.ts';
import { isAuthError } from './core/errors.ts';
import { publicUser } from './core/users.ts';
import type { Core } from './core/index.ts';
import { SIGNING_ALGS, type SigningAlg } from './core/keys.ts';

const USAGE = `Usage: latchkey <command> [options]

  serve                                   start the HTTP server (the default)
  migrate                                 bring the store's schema up to date
  users create <username> --email <e> (--password <p> | --temporary-password <p> | --external | --password-stdin)
  users list [--limit N] [--after ID]
  users get <user>                        <user> is a username or numeric id
  users disable <user> | users enable <user> | users delete <user>
  users set-password <user> (--password <p> | --password-stdin) [--temporary]
  users sign-out <user>                   revoke every session of the user
  users sessions <user> | users events <user>   the user's sessions, and audit trail
  keys list
  keys rotate [--alg EdDSA|ES256|RS256]   new signing key; old ones stay in the JWKS until their tokens expire

Configuration comes from the environment; see the README.`;

const OPTIONS = {
  email: { type: 'string' },
  password: { type: 'string' },
  'temporary-password': { type: 'string' },
  'password-stdin': { type: 'boolean' },
  external: { type: 'boolean' },
  temporary: { type: 'boolean' },
  limit: { type: 'string' },
  after: { type: 'string' },
  alg: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class UsageError extends Error {}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function passwordFrom(values: Values): Promise<string | undefined> {
  return values['password-stdin'] ? readStdin() : values.password;
}

function print(value: unknown) {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

async function usersCommand(core: Core, verb: string | undefined, target: string | undefined, values: Values) {
  const need = () => {
    if (!target) throw new UsageError(`users ${verb} needs a user`);
    return target;
  };
  switch (verb) {
    case 'create': {
      const password = await passwordFrom(values);
      const user = await core.users.create({
        username: need(),
        email: values.email,
        password,
        temporaryPassword: values['temporary-password'],
        external: values.external,
      });
      return print(publicUser(user));
    }
    case 'list': {
      const users = await core.users.list({ limit: Number(values.limit ?? 100), afterId: Number(values.after ?? 0) });
      return print(users.map(publicUser));
    }
    case 'get':
      return print(publicUser(await core.users.find(need())));
    case 'disable':
      return print(publicUser(await core.users.disable(need())));
    case 'enable':
      return print(publicUser(await core.users.enable(need())));
    case 'delete':
      await core.users.remove(need());
      return print({ deleted: target });
    case 'set-password': {
      const password = await passwordFrom(values);
      if (!password) throw new UsageError('users set-password needs --password or --password-stdin');
      return print(publicUser(await core.users.setPassword(need(), password, { temporary: values.temporary })));
    }
    case 'sign-out':
      return print({ revoked_sessions: await core.users.signOutEverywhere(need()) });
    case 'sessions':
      return print(await core.users.sessions(need()));
    case 'events':
      return print(await core.users.events(need()));
    default:
      throw new UsageError(`unknown users command: ${verb ?? '(none)'}`);
  }
}

async function keysCommand(core: Core, verb: string | undefined, values: Values) {
  switch (verb) {
    case 'list':
      return print(core.keys.list());
    case 'rotate': {
      const alg = values.alg as SigningAlg | undefined;
      if (alg && !SIGNING_ALGS.includes(alg)) throw new UsageError(`--alg must be one of ${SIGNING_ALGS.join(', ')}`);
      return print({ kid: await core.keys.rotate(alg) });
    }
    default:
      throw new UsageError(`unknown keys command: ${verb ?? '(none)'}`);
  }
}

async function serve(config: Config) {
  const { app } = await buildApp(config);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'shutting down');
      // Finishes requests in flight and sends queued mail before exiting.
      void app.close().then(() => process.exit(0));
    });
  }
  await app.listen({ port: config.port, host: config.host });
}

const quietLog = { info() {}, error: (obj: object, msg: string) => console.error(msg, obj) } as never;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  const [command = 'serve', verb, target] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const config = loadConfig();
  if (command === 'serve') {
    await serve(config);
    return -1; // keeps running
  }
  if (!['migrate', 'users', 'keys'].includes(command)) throw new UsageError(`unknown command: ${command}`);
  const services = await openServices(config, quietLog);
  try {
    if (command === 'migrate') print({ store: services.store.describe, applied: services.migrated });
    else if (command === 'users') await usersCommand(services.core, verb, target, values);
    else await keysCommand(services.core, verb, values);
    return 0;
  } finally {
    await services.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error) => {
    if (error instanceof UsageError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`latchkey: ${error.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (error instanceof ConfigError) {
      console.error(`latchkey: configuration error: ${error.message}`);
      process.exitCode = 2;
    } else if (isAuthError(error)) {
      console.error(`latchkey: ${error.code}: ${error.message}`);
      process.exitCode = 1;
    } else {
      console.error('latchkey:', error);
      process.exitCode = 1;
    }
  },
);
