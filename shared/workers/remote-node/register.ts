/**
 * Makes the remote-node worker available: job creation hands jobs to it when it places them on
 * a remote build node (domain/node-placement.ts). ssh2 and the worker load on first use only.
 */
import { registerWorker } from '../../wiring.js';
import { remoteNodeSettingsFromEnv } from '../../remote-nodes/settings.js';

registerWorker('remote-node', async () => {
  const { RemoteNodeWorker } = await import('./remote-node-worker.js');
  return new RemoteNodeWorker(remoteNodeSettingsFromEnv(process.env));
});
