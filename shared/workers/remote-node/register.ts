/**
 * Makes the remote-node worker available: job creation hands jobs to it when it places them on
 * a remote build node (domain/node-placement.ts). ssh2 and the worker load on first use only.
 */
import { makeArtifactStore, registerWorker } from '../../wiring.js';
import { remoteNodeSettingsFromEnv } from './settings.js';

registerWorker('remote-node', async (settings) => {
  const { RemoteNodeWorker } = await import('./remote-node-worker.js');
  // The app's store: the nodes' part URLs are signed by the same long-lived key as the GET URLs.
  return new RemoteNodeWorker(remoteNodeSettingsFromEnv(process.env), {
    results: { artifacts: makeArtifactStore(settings), bucket: settings.bootImagesBucket, urlExpirySeconds: settings.urlExpirationSeconds },
  });
});
