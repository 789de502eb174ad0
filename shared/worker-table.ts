/**
 * Every worker there is, by the name IMS_JOB_WORKER gives (and `remote-node`, which job creation
 * picks when it places a job on a remote build node). Only the entry points that run jobs import
 * this table, and each worker's module loads on first use, so a process that never runs a kind of
 * job never loads its client library (nor carries it in its bundle, for those that never run any).
 */
import type { WorkerFactory } from './workers/worker-deps.js';

export const WORKERS: Readonly<Record<string, WorkerFactory>> = {
  kubernetes: async (deps) => (await import('./workers/kubernetes/factory.js')).createKubernetesWorker(deps),
  local: async (deps) => (await import('./workers/local/factory.js')).createLocalWorker(deps),
  'remote-node': async (deps) => (await import('./workers/remote-node/factory.js')).createRemoteNodeWorker(deps),
};
