/**
 * Builds the remote-node worker: job creation hands jobs to it when it places them on a remote
 * build node (domain/node-placement.ts).
 */
import type { WorkerDeps } from '../worker-deps.js';
import type { Worker } from '../../domain/worker-port.js';
import { RemoteNodeWorker } from './remote-node-worker.js';
import { remoteNodeSettingsFromEnv } from './settings.js';

export function createRemoteNodeWorker({ settings, env, artifacts }: WorkerDeps): Worker {
  // The app's store: the nodes' part URLs are signed by the same long-lived key as the GET URLs.
  return new RemoteNodeWorker(remoteNodeSettingsFromEnv(env), {
    results: { artifacts, bucket: settings.bootImagesBucket, urlExpirySeconds: settings.urlExpirationSeconds },
  });
}
