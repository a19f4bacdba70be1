// The `latchkey` command line: serve, migrate, and manage users, keys and the dev outbox.
// One commander program: each command declares its arguments, flags and help text in one place
// below (add a command next to its siblings), and every usage mistake exits 2 naming the CLI's
// own flags, before any store is opened.
import fs from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { loadConfig, ConfigError, MAX_WORKERS, SETTINGS, type Config } from '../platform/config.ts';
import type { Services } from '../app/app.ts';
import { isAuthError, KeySecretMismatch } from '../core/errors.ts';
import { TransferFormatError } from '../transfer/records.ts';
import { StartupError } from '../app/startup-errors.ts';
import { isValidEmail, normalizeLogin, publicUser } from '../core/users.ts';
import { addressOf, MAX_USERS_PAGE, USER_ADDRESSINGS, type UserRef } from '../core/user-addressing.ts';
import { SIGNING_ALGS, type SigningAlg } from '../domain/signing-algs.ts';
import { LEGACY_ID_RULE, parseLegacyId } from '../core/legacy-ids.ts';
import { isAddressedTo, outboxDir, readOutbox } from '../mail/outbox.ts';
import { VERSION } from '../platform/version.ts';
import { forTerminal } from '../platform/terminal.ts';

/** A well-formed request the system refused for a reason the user should read: exit 1. */
class Refusal extends Error {}

/** Where the CLI writes: the process's stdout and stderr, or a test's buffers. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function serve(config: Config) {
  const { serve } = await import('../run/server.ts');
  await serve(config);
}

// ---- values of flags, checked as they are parsed (commander names the flag in the error) ----

/**
 * What the parts of one program share as it is built and parsed: each main() builds its own, so
 * runs in one process (the tests') cannot see each other's.
 */
interface ProgramState {
  /** Every long flag of the program, so `--email --password x` is not read as the email "--password". */
  knownFlags: Set<string>;
  /** Which of `--email` and `--no-email` each command was given (they set one value, so both at once would pass unseen). */
  emailFlagsGiven: WeakMap<Command, Set<string>>;
}

const text = (value: string) => value;

function wholeNumber(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    }
    return Number(value);
  };
}

function emailAddress(value: string): string {
  if (!isValidEmail(normalizeLogin(value))) throw new InvalidArgumentError('expected an email address such as alice@example.com.');
  return value;
}

/** Flags that take a value, parsed by `parse`; another of the program's flags in the value's place means the value is missing. */
function valueFlags(knownFlags: ReadonlySet<string>) {
  return (flags: string, description: string, parse: (value: string) => unknown = text): Option => {
    const option = new Option(flags, description);
    return option.argParser((value: string) => {
      if (knownFlags.has(value.split('=')[0])) throw new InvalidArgumentError(`${value} is a flag: give ${option.long} a value first.`);
      return parse(value);
    });
  };
}

// ---- the commands ----

function buildProgram(io: Io): Command {
  const state: ProgramState = { knownFlags: new Set(), emailFlagsGiven: new WeakMap() };
  const valueFlag = valueFlags(state.knownFlags);
  const print = (value: unknown) => io.out(JSON.stringify(value, null, 2) + '\n');

  /**
   * Opens the configured store for one command, and prints what the work returns (if anything).
   * Only the commands that set a store up (`create`) may make a new one; the others refuse when
   * there is none where the settings point. Either way stderr says which store it is.
   */
  const withServices = async (work: (services: Services) => Promise<unknown>, { create = false } = {}): Promise<void> => {
    // Loaded only when needed: help and usage errors stay quick.
    const [{ openServices }, { atLeast, createLogger }, { FIRST_MIGRATION }] = await Promise.all([
      import('../app/app.ts'),
      import('../platform/log.ts'),
      import('../store/migrations.ts'),
    ]);
    const config = loadConfig();
    // Warnings only (an unreachable Redis, say), on stderr: stdout is the command's answer.
    const log = createLogger({ level: atLeast(config.logLevel, 'warn'), format: config.logFormat, fd: 2 });
    const services = await openServices(config, log, { create });
    // Which store the command works on, at LOG_LEVEL (the other start lines are the server's business).
    const say = createLogger({ level: config.logLevel, format: config.logFormat, fd: 2 });
    const store = services.store.describe;
    if (services.migrated.includes(FIRST_MIGRATION)) say.warn({ store }, `store ${store}: new: created the schema (an empty store)`);
    else say.info({ store }, `store ${store}`);
    try {
      const result = await work(services);
      if (result !== undefined) print(result);
    } finally {
      await services.close();
    }
  };

  const program = new Command('latchkey')
    .description('Latchkey: a self-hosted authentication server, and the tools to run it.')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .helpCommand(false)
    .addHelpText('after', `\nThe store and everything else come from the environment (LATCHKEY_DATA_DIR, default the install's ./data; DATABASE_URL; …; see the README).
Only migrate, users create and users import make a new store; the others refuse when there is none.
Output is JSON. Exit status: 0 done, 1 refused (e.g. user_not_found, no store), 2 a usage or configuration error,
141 the reader of the output went away (\`latchkey users export | head\`).`);

  program
    .command('help [command...]')
    .description('show help for a command, e.g. `latchkey help users create`')
    .action((words: string[]) => {
      let target: Command = program;
      for (const word of words) {
        const next = target.commands.find((c) => c.name() === word || c.aliases().includes(word));
        if (!next) return program.error(`no such command: ${words.join(' ')}`);
        target = next;
      }
      target.outputHelp();
    });

  program
    .command('serve')
    .description('start the HTTP server (the default when no command is given)')
    .addOption(valueFlag(SETTINGS.workers.flag!, `processes serving the port, sharing the store and the limits (default: LATCHKEY_WORKERS, else 1)`, wholeNumber(1, MAX_WORKERS)))
    .action((options: { workers?: number }) => {
      const config = loadConfig();
      return serve(options.workers === undefined ? config : { ...config, workers: options.workers });
    });

  program
    .command('migrate')
    .description("bring the store's schema up to date; prints the migrations it applied (safe alongside a running server)")
    .action(() => withServices(async (services) => ({ store: services.store.describe, applied: services.migrated }), { create: true }));

  const users = program.command('users').description('manage user accounts (a user is named by username, by --id N, or by --legacy-id X)');

  // A user is named by username (which may be all digits) or by --id, never guessed from the text.
  const idFlag = () => valueFlag('--id <id>', 'name the user by numeric id instead of username', wholeNumber(1, Number.MAX_SAFE_INTEGER));
  // Or by the id it had in the system it was imported from (src/core/legacy-ids.ts).
  const legacyIdFlag = () =>
    valueFlag('--legacy-id <legacy id>', 'name the user by the id it had in the system it was imported from', (value) => {
      if (parseLegacyId(value) === undefined) throw new InvalidArgumentError(`expected ${LEGACY_ID_RULE}.`);
      return value;
    });
  const userRef = (command: Command, username: string | undefined, { id, legacyId }: { id?: number; legacyId?: string }): UserRef => {
    if (username !== undefined && id !== undefined) command.error('takes a username or --id, not both');
    if (legacyId !== undefined && (username !== undefined || id !== undefined)) command.error('takes --legacy-id alone, without a username or --id');
    if (id !== undefined) return USER_ADDRESSINGS.id.ref(String(id), '--id');
    if (legacyId !== undefined) return USER_ADDRESSINGS.legacyId.ref(legacyId, '--legacy-id');
    if (username === undefined) command.error('needs a username (or --id N) or --legacy-id X');
    return USER_ADDRESSINGS.username.ref(username!, 'username');
  };

  users
    .command('create <username>')
    .description('create a user; give exactly one of --password, --password-stdin, --temporary-password, --external')
    .addOption(valueFlag('--email <address>', 'their email address: where password reset mail goes', emailAddress))
    .addOption(new Option('--no-email', 'create the user without an email address (they can never reset a password)'))
    .addOption(valueFlag('--password <password>', 'a password they keep (visible in `ps`: prefer --password-stdin)'))
    .addOption(new Option('--password-stdin', 'read the password they keep from standard input'))
    .addOption(valueFlag('--temporary-password <password>', 'a password they must replace at their first login'))
    .addOption(new Option('--external', 'authenticated elsewhere (e.g. SSO): no password and no reset here'))
    .action(async function (this: Command, username: string, options) {
      const sources = ['password', 'passwordStdin', 'temporaryPassword', 'external'].filter((key) => options[key] !== undefined);
      if (sources.length !== 1) {
        this.error(
          sources.length === 0
            ? 'needs one of --password, --password-stdin, --temporary-password or --external'
            : `takes only one of --password, --password-stdin, --temporary-password and --external`,
        );
      }
      const emailFlags = state.emailFlagsGiven.get(this)!;
      if (emailFlags.size === 0) this.error('needs --email ADDRESS (or --no-email: a user without an email cannot reset a password)');
      if (emailFlags.size > 1) this.error('takes --email or --no-email, not both');
      const password = options.passwordStdin ? await readStdin() : options.password;
      await withServices(async ({ core }) =>
        publicUser(
          await core.users.create({
            username,
            email: options.email === false ? null : options.email,
            password,
            temporaryPassword: options.temporaryPassword,
            external: options.external,
          }),
        ),
        { create: true },
      );
    });

  users
    .command('list')
    .description('list users by id, a page at a time')
    .addOption(valueFlag('--limit <n>', `how many users to show (1-${MAX_USERS_PAGE})`, wholeNumber(1, MAX_USERS_PAGE)).default(100))
    .addOption(valueFlag('--after <id>', 'show users whose id is greater than this one', wholeNumber(0, Number.MAX_SAFE_INTEGER)).default(0))
    .action((options: { limit: number; after: number }) =>
      withServices(async ({ core }) => (await core.users.list({ limit: options.limit, afterId: options.after })).map(publicUser)),
    );

  users
    .command('collisions')
    .description('accounts that landed on one identity key when stored names were rekeyed: each kept, reachable by --id, until settled')
    .action(() => withServices(async ({ core }) => core.users.collisions()));

  users
    .command('look-alikes')
    .description('existing accounts found looking like an older one (UTS #39) when that was first checked: both kept; delete one by --id, or leave both')
    .action(() => withServices(async ({ core }) => core.users.lookAlikes()));

  users
    .command('settle')
    .description("give a colliding user (--id N) its name or email back, or another with --username/--email; delete the other one first, or settle it with another name")
    .requiredOption('--id <id>', 'the user, by numeric id', wholeNumber(1, Number.MAX_SAFE_INTEGER))
    .addOption(valueFlag('--username <name>', 'a new username instead of the colliding one'))
    .addOption(valueFlag('--email <address>', 'a new email instead of the colliding one', emailAddress))
    .action((options: { id: number; username?: string; email?: string }) =>
      withServices(async ({ core }) => publicUser(await core.users.settleCollision(options.id, { username: options.username, email: options.email }))),
    );

  const oneUser: [string, string, (services: Services, user: UserRef) => Promise<unknown>][] = [
    ['get', 'show a user, and whether and until when they are locked out', async ({ core }, user) => core.users.view(await core.users.find(user))],
    ['unlock', 'lift every lockout of a user (the account\'s delay and each address\'s)', async ({ core }, user) => core.users.view(await core.users.unlock(user))],
    ['disable', 'disable a user and end every session of theirs', async ({ core }, user) => publicUser(await core.users.disable(user))],
    ['enable', 'enable a disabled user', async ({ core }, user) => publicUser(await core.users.enable(user))],
    ['delete', 'delete a user', async ({ core }, user) => (await core.users.remove(user), { deleted: addressOf(user) })],
    ['sign-out', 'end every session of a user', async ({ core }, user) => ({ revoked_sessions: await core.users.signOutEverywhere(user) })],
    ['sessions', "a user's sessions, newest first", async ({ core }, user) => core.users.sessions(user)],
    ['events', "a user's audit trail, newest first", async ({ core }, user) => core.users.events(user)],
  ];
  for (const [name, description, work] of oneUser) {
    users
      .command(`${name} [username]`)
      .description(description)
      .addOption(idFlag())
      .addOption(legacyIdFlag())
      .action(function (this: Command, username: string | undefined, options: { id?: number; legacyId?: string }) {
        const ref = userRef(this, username, options);
        return withServices((services) => work(services, ref));
      });
  }

  users
    .command('set-password [username]')
    .description('set a password and end every session of the user; give --password or --password-stdin')
    .addOption(valueFlag('--password <password>', 'the new password (visible in `ps`: prefer --password-stdin)'))
    .addOption(new Option('--password-stdin', 'read the new password from standard input'))
    .addOption(new Option('--temporary', 'the user must replace it at their next login'))
    .addOption(idFlag())
    .addOption(legacyIdFlag())
    .action(async function (this: Command, username: string | undefined, options: { password?: string; passwordStdin?: boolean; temporary?: boolean; id?: number; legacyId?: string }) {
      const user = userRef(this, username, options);
      if ((options.password === undefined) === (options.passwordStdin === undefined)) {
        this.error('needs exactly one of --password and --password-stdin');
      }
      const password = options.passwordStdin ? await readStdin() : options.password!;
      await withServices(async ({ core }) => publicUser(await core.users.setPassword(user, password, { temporary: options.temporary })));
    });

  users
    .command('import <file>')
    .description('import users from CSV or JSON Lines (- reads standard input): username, email, password_hash | password | neither (external), status, created_at, id, legacy_id; see the README, "Migrating users"')
    .addOption(new Option('--format <format>', 'the file format (default: from the file name, .csv or .jsonl/.ndjson)').choices(['csv', 'jsonl']))
    .addOption(new Option('--update', 'update users that exist already (by username) instead of skipping them'))
    .addOption(valueFlag('--rejects <path>', 'where rejected rows go, with line number and reason (default: FILE.rejects.jsonl)'))
    .action(async function (this: Command, file: string, options: { format?: string; update?: boolean; rejects?: string }) {
      const { formatOf } = await import('../transfer/records.ts');
      if (!options.format && !formatOf(file)) this.error(`cannot tell the format of ${file} from its name: give --format csv or --format jsonl`);
      if (file !== '-' && !fs.existsSync(file)) throw new Refusal(`no such file: ${file}`);
      const { importCommand } = await import('./transfer.ts');
      await withServices(({ core }) => importCommand(core, file, options), { create: true });
    });

  users
    .command('export')
    .description('write every user as JSON Lines, in the format `users import` reads (to standard output, or --output)')
    .addOption(new Option('--with-hashes', 'include password hashes (keep the file as secret as the database)'))
    .addOption(valueFlag('--output <path>', 'write to this file, created new and owner-only (an existing file is refused), instead of standard output'))
    .action(async (options: { withHashes?: boolean; output?: string }) => {
      const { exportCommand } = await import('./transfer.ts');
      await withServices(async ({ core }) => {
        const summary = await exportCommand(core, options);
        // With the rows on standard output, the summary goes to standard error.
        if (options.output) return summary;
        io.err(JSON.stringify(summary) + '\n');
      });
    });

  const keys = program.command('keys').description('signing keys');
  keys
    .command('list')
    .description('the signing keys, and which one signs')
    .action(() => withServices(async ({ core }) => core.keys.list()));
  keys
    .command('rotate')
    .description('publish a new signing key now, and sign with it once every verifier has seen it; old keys stay in the JWKS until their tokens expire')
    .addOption(new Option('--alg <alg>', 'algorithm of the new key (default: LATCHKEY_SIGNING_ALG)').choices(SIGNING_ALGS))
    .action((options: { alg?: SigningAlg }) => withServices(async ({ core }) => ({ kid: await core.keys.rotate(options.alg) })));
  keys
    .command('retire <kid>')
    .description('withdraw a (compromised) key at once: no token it signed verifies from now on, the JWKS drops it, and another key signs; needs --now (for a graceful change, `keys rotate`)')
    .addOption(new Option('--now', 'withdraw it now (the only way there is)'))
    // A kid is base64url and may begin with '-' (one key in 64 made before kids avoided it): such a
    // kid is the argument, not an unknown option.
    .allowUnknownOption()
    .action(function (this: Command, kid: string, options: { now?: boolean }) {
      if (!options.now) this.error('keys retire withdraws a key at once and needs --now; use `keys rotate` to change keys gracefully');
      return withServices(async ({ core }) => {
        const { signingKid } = await core.keys.withdraw(kid);
        return { kid, signing_kid: signingKid };
      });
    });

  program
    .command('outbox')
    .description('the latest mail in the dev outbox ($LATCHKEY_DATA_DIR/outbox, used when LATCHKEY_SMTP_URL is unset), decoded')
    .addOption(valueFlag('--to <address>', 'only mail sent to this address', emailAddress))
    .addOption(new Option('--all', 'every mail, oldest first, instead of the latest'))
    .action(async (options: { to?: string; all?: boolean }) => {
      const config = loadConfig();
      const dir = outboxDir(config.dataDir);
      const mails = (await readOutbox(dir)).filter((mail) => !options.to || isAddressedTo(mail, options.to));
      if (options.all) return print(mails);
      const latest = mails.at(-1);
      if (!latest) {
        const where = options.to ? `no mail to ${options.to} in ${dir}` : `no mail in ${dir}`;
        throw new Refusal(config.smtpUrl ? `${where}: LATCHKEY_SMTP_URL is set, so mail is sent by SMTP instead` : where);
      }
      print(latest);
    });

  finish(program, io, state);
  return program;
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Settings every command needs, applied once the tree is built (commander copies settings only at creation). */
function finish(program: Command, io: Io, state: ProgramState) {
  const visit = (command: Command) => {
    for (const option of command.options) if (option.long) state.knownFlags.add(option.long);
    command
      .exitOverride()
      .helpCommand(false)
      .showHelpAfterError(`(see: ${commandPath(command).replace(/^latchkey/, 'latchkey help')})`)
      .configureOutput({
        writeOut: io.out,
        writeErr: io.err,
        outputError: (message, write) => write(`${commandPath(command)}: ${message.replace(/^error: /, '')}`),
      });
    const seen = new Set<string>();
    state.emailFlagsGiven.set(command, seen);
    command.on('option:email', () => seen.add('--email'));
    command.on('option:no-email', () => seen.add('--no-email'));
    command.commands.forEach(visit);
  };
  visit(program);
}

/** Runs the CLI and answers its exit status; `serve` keeps running (-1). */
export async function main(argv: string[], rawIo: Io = processIo): Promise<number> {
  // Everything printed may echo a file's or a user's text: no control character reaches the terminal raw.
  const io: Io = { out: (text) => rawIo.out(forTerminal(text, { keepNewlines: true })), err: (text) => rawIo.err(forTerminal(text, { keepNewlines: true })) };
  // An error is one line: a newline in what it quotes (a CSV header, a name) is escaped, so a file
  // cannot print a line of its choosing after ours.
  const fail = (text: string) => io.err(`latchkey: ${forTerminal(text)}\n`);
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv.length ? argv : ['serve'], { from: 'user' });
    return argv.length === 0 || argv[0] === 'serve' ? -1 : 0;
  } catch (error) {
    // Every commander error is a usage error; help and --version end with code 0.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ConfigError) {
      fail(`configuration error: ${error.message}`);
      return 2;
    }
    if (isAuthError(error)) {
      fail(`${error.code}: ${error.message}`);
      return 1;
    }
    if (error instanceof StartupError || error instanceof KeySecretMismatch) {
      fail(error.message);
      return 1;
    }
    if (error instanceof Refusal || error instanceof TransferFormatError) {
      fail(error.message);
      return 1;
    }
    throw error;
  }
}
