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
}

/** Builds a worker; may load its (large) client library on first use. */
export type WorkerFactory = (deps: WorkerDeps) => Worker | Promise<Worker>;
