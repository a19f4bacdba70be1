// The layering of src/, as named rules that `npm test` checks (test/dependency-rules.test.ts).
// docs/architecture.md says why each rule exists. Violations that only a folder move can remove
// are recorded in .dependency-cruiser-known-violations.json; any other violation fails the test.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles, type-only imports included: a cycle means two modules are one concern split in two.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'core-no-http-sql-redis',
      severity: 'error',
      comment: 'The core knows no HTTP, SQL or Redis: it talks to the outside through its own interfaces.',
      from: { path: '^src/core/' },
      to: { path: '(^|/)node_modules/(fastify|@fastify/|kysely|kysely-postgres-js|better-sqlite3|postgres|ioredis)/' },
    },
    {
      name: 'store-no-core-implementations',
      severity: 'error',
      comment: 'The store implements what the core asks for; it may name the core\'s types (type-only) but never run core code.',
      from: { path: '^src/store/' },
      // Two pure leaves are shared: errors.ts, the vocabulary of typed errors, and identity.ts, the
      // one identity key, which the migration that rekeys stored names must compute the same way.
      to: { path: '^src/core/', pathNot: '^src/core/(errors|identity)\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'fastify-only-in-http',
      severity: 'error',
      comment: 'Only the HTTP dialects (src/http/) and the app wiring (src/app.ts) know fastify.',
      from: { path: '^src/', pathNot: '^src/(http/|app\\.ts$)' },
      to: { path: '(^|/)node_modules/(fastify|@fastify/)' },
    },
    {
      name: 'credential-writes-only-from-credential-operation',
      severity: 'error',
      comment: 'Credential rows are written through one core operation: only src/core/credentials.ts imports src/store/credentials.ts.',
      from: { path: '^src/', pathNot: '^src/core/credentials\\.ts$' },
      to: { path: '^src/store/credentials\\.ts$' },
    },
    {
      name: 'diagnostics-only-for-bench-and-tests',
      severity: 'error',
      comment: 'Query plans, statistics and bulk seeding (src/store/diagnostics.ts) are for the bench and tests: no module of src/ imports them.',
      from: { path: '^src/', pathNot: '^src/store/diagnostics\\.ts$' },
      to: { path: '^src/store/diagnostics\\.ts$' },
    },
    {
      name: 'src-not-from-test-or-bench',
      severity: 'error',
      comment: 'The product never imports its tests or its benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'Every import resolves; an unresolvable one would hide its edge from every other rule.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports are edges too: a type cycle is still a cycle between concerns.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.cjs', '.mjs', '.json', '.d.ts'],
    },
  },
};
