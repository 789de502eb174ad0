/** Builds the local worker (IMS_JOB_WORKER=local, the default of `npm start`). */
import type { WorkerDeps } from '../worker-deps.js';
import type { Worker } from '../../domain/worker-port.js';
import { LocalWorker } from './local-worker.js';
import { localSettingsFromEnv } from './settings.js';

export function createLocalWorker({ env, settings, artifacts, wake }: WorkerDeps): Worker {
  return new LocalWorker(localSettingsFromEnv(env), { artifacts, bucket: settings.bootImagesBucket, wake });
}
