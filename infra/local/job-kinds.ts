/**
 * What `npm start` says about jobs when it starts: which job kinds this host can run and, for
 * the others, what is missing. The service starts either way, since records need no host tools,
 * but a user learns at once rather than from the first failed job.
 */
import { remoteNodesConfigured, type RemoteNodeSettings } from '#shared/workers/remote-node/settings.js';
import { missingForJobKind, type LocalJobKind } from '#shared/workers/local/host-tools.js';

const KINDS: readonly LocalJobKind[] = ['customize', 'create'];

export interface JobKindsReport {
  /** The worker of new jobs (IMS_JOB_WORKER). */
  worker: string;
  canRun: LocalJobKind[];
  /** Why each other kind cannot run, with what to install. */
  cannotRun: Partial<Record<LocalJobKind, string>>;
  /** Whether jobs may go to remote build nodes, which need nothing on this host. */
  remoteNodes: string;
}

export interface HostFacts {
  isRoot: boolean;
  missingFor(kind: LocalJobKind): string | undefined;
}

const THIS_HOST: HostFacts = { isRoot: process.getuid?.() === 0, missingFor: (kind) => missingForJobKind(kind) };

function whyNot(worker: string, kind: LocalJobKind, host: HostFacts): string | undefined {
  if (worker === 'kubernetes') return undefined; // the cluster's job pods bring their own tools
  if (worker !== 'local') return `no job worker (IMS_JOB_WORKER=${worker}): set IMS_JOB_WORKER=local or kubernetes`;
  if (!host.isRoot) return 'the local worker runs jobs as root (it unpacks images, mounts and runs sshd): start the service as root';
  const missing = host.missingFor(kind);
  return missing && `${missing}; as root on Debian, npm start installs them itself`;
}

export function jobKindsReport(worker: string, nodes: RemoteNodeSettings, host: HostFacts = THIS_HOST): JobKindsReport {
  const canRun: LocalJobKind[] = [];
  const cannotRun: Partial<Record<LocalJobKind, string>> = {};
  for (const kind of KINDS) {
    const why = whyNot(worker, kind, host);
    if (why) cannotRun[kind] = why;
    else canRun.push(kind);
  }
  const key = nodes.keyFile ? `REMOTE_NODE_SSH_KEY_FILE ${nodes.keyFile}` : 'REMOTE_NODE_KEY_SECRET_ARN';
  const remoteNodes = remoteNodesConfigured(nodes)
    ? `on: a job goes to a healthy registered node of its arch (key from ${key}), else to the ${worker} worker; nodes need nothing on this host`
    : 'off: set REMOTE_NODE_SSH_KEY_FILE to run jobs on remote build nodes (podman on the node, nothing on this host)';
  return { worker, canRun, cannotRun, remoteNodes };
}
