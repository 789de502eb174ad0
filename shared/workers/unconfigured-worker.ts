import type { CollectedArtifacts, StageProgress, Worker } from '../domain/worker-port.js';

/**
 * Stands in when no worker is configured for jobs: every job ends in `error` at once, with a
 * reason that says what to configure, instead of waiting for work nobody will do.
 */
export class UnconfiguredWorker implements Worker {
  readonly name = 'none';

  constructor(private readonly hint: string) {}

  async advance(): Promise<StageProgress> {
    return { state: 'failed', reason: `no job worker is configured: ${this.hint}` };
  }

  async collect(): Promise<CollectedArtifacts> {
    throw new Error(`no job worker is configured: ${this.hint}`);
  }

  async cleanup(): Promise<void> {}
}
