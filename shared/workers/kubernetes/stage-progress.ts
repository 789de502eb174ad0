/**
 * What the job record's status says about a stage. The job pod reports progress itself by
 * PATCHing the record, so the record is the first thing to read; the Kubernetes objects are only
 * looked at while a stage is still going, to notice a pod that can no longer report.
 */
import type { JobRecord, JobStatus } from '../../domain/records.js';
import type { Stage } from '../../domain/worker-port.js';

export type PolledStage = Exclude<Stage, 'register' | 'cleanup' | 'prepare'>;

/** `error`: the pod gave up; `done`: the stage is behind the job; `pending`: still going. */
export type StatusVerdict = 'error' | 'done' | 'pending';

/** Statuses set after the image root exists (create) or is unpacked (customize). */
const PAST_BUILD = new Set<JobStatus>(['waiting_on_user', 'packaging_artifacts', 'success']);
/** Statuses set once the user (or a debug session) is done with the shell. */
const PAST_SSH = new Set<JobStatus>(['packaging_artifacts', 'success']);

export function statusVerdict(stage: PolledStage, record: JobRecord): StatusVerdict {
  if (record.status === 'error') return 'error';
  switch (stage) {
    case 'build':
      return PAST_BUILD.has(record.status) ? 'done' : 'pending';
    case 'ssh':
      // A create job only opens a shell when debug is on and the build failed (the sidecar then
      // sets waiting_on_user, and error once the user is done); otherwise there is no shell stage.
      if (record.job_type === 'create' && !record.enable_debug) return 'done';
      return PAST_SSH.has(record.status) ? 'done' : 'pending';
    case 'package':
      return record.status === 'success' ? 'done' : 'pending';
  }
}

/** Where to reach the shell, from the record's ssh_containers (computed when the job was made). */
export function sshEndpoints(record: JobRecord): string | undefined {
  const container = record.ssh_containers?.[0];
  if (!container) return undefined;
  const endpoints = Object.entries(container.connection_info).map(([network, c]) => `${network} ssh -p ${c.port} root@${c.host}`);
  return endpoints.length > 0 ? endpoints.join(', ') : undefined;
}
