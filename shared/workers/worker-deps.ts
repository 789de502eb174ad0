/** What the wiring hands a worker's factory (shared/wiring.ts keeps the table of factories). */
import type { Settings } from '../config.js';
import type { ArtifactStore } from '../domain/ports.js';
import type { Worker } from '../domain/worker-port.js';

/** The environment the per-adapter settings readers read (worker settings, remote-node SSH settings). */
export type Env = Readonly<Record<string, string | undefined>>;

/** What a worker is built from: the settings, the environment its own settings reader reads, the app's artifact store. */
export interface WorkerDeps {
  settings: Settings;
  env: Env;
  artifacts: ArtifactStore;
  /**
   * "This job's work has news: check its waiting stage now." A worker whose work runs beside it
   * (the local worker's processes) calls it the moment a step ends, so the stage moves on at the
   * speed of the work; the reconciler stays the net for a report that is lost. In-process only:
   * deployed, a Lambda invocation keeps nothing running between invocations, so no worker there
   * can hold a watch; absent when reports are dropped (tests of the reconciler's net).
   */
  wake?: (jobId: string) => void;
}

/** Builds a worker; may load its (large) client library on first use. */
export type WorkerFactory = (deps: WorkerDeps) => Worker | Promise<Worker>;
