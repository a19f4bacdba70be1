// Work that runs after the answer has gone out (reset requests, mail). Tracked, so shutdown
// and tests can wait for it, and its failures are logged instead of lost.
export class Background {
  private readonly pending = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(private readonly onError: (error: unknown, what: string) => void) {}

  run(what: string, job: () => Promise<void>): void {
    const task = job()
      .catch((error) => this.onError(error, what))
      .finally(() => this.pending.delete(task));
    this.pending.add(task);
  }

  /** Jobs still running. */
  get size(): number {
    return this.pending.size;
  }

  /** Aborted once shutdown begins: work that is waiting (a mail's retry delay) stops waiting. */
  get stopSignal(): AbortSignal {
    return this.stopping.signal;
  }

  stop(): void {
    this.stopping.abort();
  }

  /** Resolves once nothing is running, including work that running work started. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
