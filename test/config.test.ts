// Configuration is read once and a bad value stops the start with the variable's name.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError, SETTINGS, type Setting } from '../src/platform/config.ts';

describe('configuration', () => {
  it('has working defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.publicUrl, 'http://127.0.0.1:8080');
    assert.equal(config.issuer, config.publicUrl);
    assert.equal(config.signingAlg, 'EdDSA');
    assert.equal(config.adminToken, undefined);
    assert.deepEqual(
      [config.lifetimes.wikimediaAccessTtl, config.lifetimes.wikimediaRefreshTtl, config.lifetimes.roypiTokenTtl, config.lifetimes.roypiRefreshWindow, config.lifetimes.ziikTokenTtl],
      [86400, 90 * 86400, 5 * 86400, 10 * 86400, 86400],
    );
  });

  it('names the variable that is wrong', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: 'eighty' }, /PORT/],
      [{ DATABASE_URL: 'mysql://localhost/db' }, /DATABASE_URL must use postgres/],
      [{ REDIS_URL: 'not a url' }, /REDIS_URL is not a valid URL/],
      [{ LATCHKEY_SMTP_URL: 'http://mail' }, /LATCHKEY_SMTP_URL/],
      [{ LATCHKEY_ADMIN_TOKEN: 'short' }, /LATCHKEY_ADMIN_TOKEN must be at least 32/],
      [{ LATCHKEY_SIGNING_ALG: 'HS256' }, /LATCHKEY_SIGNING_ALG must be one of/],
      [{ LATCHKEY_WIKIMEDIA_ACCESS_TTL: '0' }, /LATCHKEY_WIKIMEDIA_ACCESS_TTL/],
      [{ LATCHKEY_PASSWORD_MIN_LENGTH: '-3' }, /LATCHKEY_PASSWORD_MIN_LENGTH/],
    ];
    for (const [env, message] of cases) {
      assert.throws(() => loadConfig(env), (error: unknown) => error instanceof ConfigError && message.test(error.message));
    }
  });

  it('refuses a bad value of every setting that can have one, in one line naming its variable', () => {
    const rows = Object.values(SETTINGS as Record<string, Setting<unknown>>).filter((row) => row.parser.refuses !== undefined);
    assert.ok(rows.length >= 40, `${rows.length} settings refuse a value`);
    for (const row of rows) {
      const env = { [row.env]: row.parser.refuses!, ...(row.onlyWith ? { [row.onlyWith]: 'roypi+https://old.example.com' } : {}) };
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.message.startsWith(`${row.env} `) && !error.message.includes('\n'),
        row.env,
      );
    }
  });

  it('reads a setting that depends on another only with it', () => {
    assert.doesNotThrow(() => loadConfig({ LATCHKEY_MIGRATE_TIMEOUT_MS: '1', LATCHKEY_MIGRATE_CASE_INSENSITIVE: 'yes' }));
    assert.throws(() => loadConfig({ LATCHKEY_MIGRATE_FROM: 'roypi+https://old.example.com', LATCHKEY_MIGRATE_TIMEOUT_MS: '1' }), /LATCHKEY_MIGRATE_TIMEOUT_MS/);
  });

  it('derives the public URL and issuer, trimming trailing slashes', () => {
    const config = loadConfig({ LATCHKEY_PUBLIC_URL: 'https://auth.example.com/', PORT: '9000' });
    assert.equal(config.publicUrl, 'https://auth.example.com');
    assert.equal(config.issuer, 'https://auth.example.com');
    assert.equal(loadConfig({ LATCHKEY_ISSUER: 'https://issuer.example/' }).issuer, 'https://issuer.example');
  });
});
