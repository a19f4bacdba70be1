// Compact JWS signing on node:crypto with keys held as KeyObjects. jose signs through WebCrypto,
// which costs an async round trip and a key conversion per token; a refresh mints two tokens.
// jose still verifies (and test/jws.test.ts checks jose accepts what this signs).
import crypto, { type KeyObject } from 'node:crypto';
import type { SigningAlg } from '../domain/signing-algs.ts';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function signature(alg: SigningAlg, input: Buffer, key: KeyObject): Buffer {
  switch (alg) {
    case 'EdDSA':
      return crypto.sign(null, input, key);
    case 'ES256':
      // JWS wants the raw r||s pair, not DER.
      return crypto.sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return crypto.sign('sha256', input, key);
  }
}

export function signCompact(header: { alg: SigningAlg; kid: string; typ: 'JWT' }, payload: object, key: KeyObject): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${signature(header.alg, Buffer.from(input), key).toString('base64url')}`;
}
