/**
 * Builds the remote-node worker: job creation hands jobs to it when it places them on a remote
 * build node (domain/node-placement.ts).
 */
import type { WorkerDeps } from '../worker-deps.js';
import type { Worker } from '../../domain/worker-port.js';
import { RemoteNodeWorker } from './remote-node-worker.js';
import { remoteNodeSettingsFromEnv } from './settings.js';
import type { Settings } from '../../config.js';
import { jobReportKey } from '../../job-report-key.js';
import { mintReportToken } from '../../domain/job-report-token.js';
import type { ReportTarget } from './node-reports.js';

export function createRemoteNodeWorker({ settings, env, artifacts }: WorkerDeps): Worker {
  const remote = remoteNodeSettingsFromEnv(env);
  // The app's store: the nodes' part URLs are signed by the same long-lived key as the GET URLs.
  return new RemoteNodeWorker(remote, {
    results: { artifacts, bucket: settings.bootImagesBucket, urlExpirySeconds: settings.urlExpirationSeconds },
    reports: reportTargets(settings, remote.reportUrl),
  });
}

/**
 * A job's token is minted when its work starts on the node and lives as long as the job can: the
 * sum of its stages' time limits (from now, so it outlasts the job), plus an hour for its cleanup.
 */
function reportTargets(settings: Settings, url: string | undefined): ((jobId: string) => Promise<ReportTarget | undefined>) | undefined {
  if (!url) return undefined;
  const lifetime = Object.values(settings.stageTimeouts).reduce((a, b) => a + b, 0) + 3600;
  return async (jobId) => {
    const key = await jobReportKey(settings);
    if (!key) return undefined;
    const expiresAt = Math.floor(Date.now() / 1000) + lifetime;
    return { url, token: mintReportToken(key, jobId, expiresAt), expiresAt };
  };
}
