// The type of the key that opens the store's user writes, apart from the one module that holds
// its value (src/store/credentials.ts), so the store can name it without importing that module.
declare const credentialBrand: unique symbol;
/** What opens the store's user writes; its one value never leaves src/store/credentials.ts. */
export type CredentialKey = { readonly [credentialBrand]: true };
