// The layering of src/, as named rules that `npm test` checks (test/dependency-rules.test.ts).
// docs/architecture.md says why each rule exists and draws the rooms they keep apart.
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
      name: 'store-and-limits-below-core',
      severity: 'error',
      comment:
        'store/ and limits/ serve the core and never import it, not even a type: what they share with it lives in the src/domain/ leaves, or in their own modules that the core imports (store/schema.ts, limits/limits.ts).',
      from: { path: '^src/(store|limits)/' },
      to: { path: '^src/core/' },
    },
    {
      name: 'store-below-limits',
      severity: 'error',
      comment: 'The SQL limits stand on the store (its connection, its data dir); the store knows nothing of counting.',
      from: { path: '^src/store/' },
      to: { path: '^src/limits/' },
    },
    {
      name: 'only-sql-limits-on-store',
      severity: 'error',
      comment: 'Of limits/, only the SQL adapter (limits/sql.ts) uses the store; the interface, the Redis adapter and the client key do not.',
      from: { path: '^src/limits/', pathNot: '^src/limits/sql\\.ts$' },
      to: { path: '^src/store/' },
    },
    {
      name: 'core-counts-through-limits-interface',
      severity: 'error',
      comment: 'The core counts through limits/limits.ts and keys clients by limits/client-key.ts, never through an adapter: the wiring picks SQL or Redis, and the core reaches neither.',
      from: { path: '^src/core/' },
      to: { path: '^src/limits/', pathNot: '^src/limits/(limits|client-key)\\.ts$' },
    },
    {
      name: 'domain-is-a-leaf',
      severity: 'error',
      comment: 'src/domain/ holds what the core shares with the layers below it; it imports nothing of src/, so importing it runs no core code and closes no cycle.',
      from: { path: '^src/domain/' },
      to: { path: '^src/', pathNot: '^src/domain/' },
    },
    {
      name: 'platform-is-a-leaf-layer',
      severity: 'error',
      comment: 'src/platform/ (config, log, data dir, escapes) is what every room stands on: it imports only itself and src/domain/, so it never pulls a room above it in.',
      from: { path: '^src/platform/' },
      to: { path: '^src/', pathNot: '^src/(platform|domain)/' },
    },
    {
      name: 'entry-rooms-on-top',
      severity: 'error',
      comment: 'The command line (src/cli/), the process (src/run/) and the wiring (src/app/) start things; nothing they start imports them back.',
      from: { path: '^src/(core|store|limits|domain|platform|mail|upstream|transfer|http|metrics)/' },
      to: { path: '^src/(app|run|cli)/|^src/main\\.ts$' },
    },
    {
      name: 'wiring-below-process-below-cli',
      severity: 'error',
      comment: 'cli/ runs run/ (serve) and app/ (one-shot commands); run/ runs app/; app/ knows neither.',
      from: { path: '^src/app/' },
      to: { path: '^src/(run|cli)/' },
    },
    {
      name: 'process-below-cli',
      severity: 'error',
      comment: 'run/ (single process, cluster) is started by cli/ and never reaches back into it.',
      from: { path: '^src/run/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'http-only-from-wiring',
      severity: 'error',
      comment: 'The HTTP rooms translate shapes for the core; no room below the wiring imports them.',
      from: { path: '^src/(core|store|limits|domain|platform|mail|upstream|transfer|metrics)/' },
      to: { path: '^src/http/' },
    },
    {
      name: 'fastify-only-in-http',
      severity: 'error',
      comment: 'Only the HTTP dialects (src/http/) and the app wiring (src/app/app.ts) know fastify.',
      from: { path: '^src/', pathNot: '^src/(http/|app/)' },
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
