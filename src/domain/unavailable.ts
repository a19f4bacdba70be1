// A dependency that cannot serve now. A leaf of src/domain/, not of the core: the store raises it
// (src/store/faults.ts) and may not run core code; the core re-exports it with its own errors
// (src/core/errors.ts), which each API maps to its answer.

/** What the server depends on and may find unavailable. */
export type Dependency = 'store';

/**
 * A dependency cannot serve now (the store unreachable, full or too slow): not the client's fault
 * and not a bug. Every API answers it as a 503 with Retry-After, in its own shape.
 */
export class DependencyUnavailable extends Error {
  readonly code = 'dependency_unavailable';
  constructor(
    readonly dependency: Dependency,
    message: string,
    /** Seconds a client should wait before trying again. */
    readonly retryAfter: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'DependencyUnavailable';
  }
}
