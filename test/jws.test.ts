// Tokens are signed with node:crypto, not jose; jose (and so any standard JWT library) must
// accept them for every algorithm we offer, and refuse them once touched.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { jwtVerify, exportJWK, importJWK, decodeProtectedHeader } from 'jose';
import { signCompact } from '../src/core/jws.ts';
import { SIGNING_ALGS, type SigningAlg } from '../src/domain/signing-algs.ts';

function keyPair(alg: SigningAlg) {
  if (alg === 'EdDSA') return crypto.generateKeyPairSync('ed25519');
  if (alg === 'ES256') return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
}

describe('JWS signed with node:crypto', () => {
  for (const alg of SIGNING_ALGS) {
    it(`${alg}: jose's jwtVerify accepts our token and refuses it tampered`, async () => {
      const { privateKey, publicKey } = keyPair(alg);
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: 'https://issuer.test', aud: 'latchkey', sub: '42', iat: now, exp: now + 60, jti: 'j', sid: 's', username: 'ünïcode-名前', email: undefined };
      const token = signCompact({ alg, kid: 'k1', typ: 'JWT' }, claims, privateKey);
      const key = await importJWK(await exportJWK(publicKey), alg);
      const { payload, protectedHeader } = await jwtVerify(token, key, { issuer: 'https://issuer.test', audience: 'latchkey', algorithms: [alg] });
      assert.deepEqual(protectedHeader, { alg, kid: 'k1', typ: 'JWT' });
      assert.equal(payload.username, 'ünïcode-名前');
      assert.equal('email' in payload, false, 'undefined claims are left out, as jose does');
      assert.deepEqual(decodeProtectedHeader(token).alg, alg);
      const [h, p, s] = token.split('.');
      const forged = Buffer.from(p, 'base64url').toString().replace('"sub":"42"', '"sub":"43"');
      await assert.rejects(jwtVerify(`${h}.${Buffer.from(forged).toString('base64url')}.${s}`, key, { algorithms: [alg] }));
      const flipped = s[0] === 'A' ? `B${s.slice(1)}` : `A${s.slice(1)}`;
      await assert.rejects(jwtVerify(`${h}.${p}.${flipped}`, key, { algorithms: [alg] }));
    });
  }
});
