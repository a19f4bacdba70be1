// The algorithms a signing key may use, apart from the keys themselves (src/core/keys.ts), so
// the configuration can check a name without loading jose.
export type SigningAlg = 'EdDSA' | 'ES256' | 'RS256';
export const SIGNING_ALGS: readonly SigningAlg[] = ['EdDSA', 'ES256', 'RS256'];
