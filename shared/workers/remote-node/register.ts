/**
 * Makes the remote-node worker available: job creation hands jobs to it when it places them on
 * a remote build node (domain/node-placement.ts). ssh2 and the worker load on first use only.
 */
import { registerWorker } from '../../wiring.js';
import { remoteNodeSettingsFromEnv } from '../../remote-nodes/settings.js';

registerWorker('remote-node', async (settings) => {
  const [{ RemoteNodeWorker }, { S3ArtifactStore }, { makeS3Client }] = await Promise.all([
    import('./remote-node-worker.js'),
    import('../../artifacts/s3-artifact-store.js'),
    import('../../clients.js'),
  ]);
  return new RemoteNodeWorker(remoteNodeSettingsFromEnv(process.env), {
    results: { artifacts: new S3ArtifactStore(makeS3Client(settings)), bucket: settings.bootImagesBucket, urlExpirySeconds: settings.urlExpirationSeconds },
  });
});
