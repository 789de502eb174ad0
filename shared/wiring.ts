/**
 * The adapters a handler uses, built once per process (per Lambda container) from the
 * environment. The embedded runtime and the tests set the same environment variables (and may
 * hand in their own workflow runner or workers), so the code path is the same everywhere.
 */
import { randomUUID } from 'node:crypto';
import { S3ArtifactStore } from './artifacts/s3-artifact-store.js';
import { makeSigningS3Client, signingKeySource } from './artifacts/signing-key.js';
import { makeS3Client, makeSfnClient } from './clients.js';
import { readSettings, type Settings } from './config.js';
import { unprobedNodes, type NodeProber } from './domain/remote-build-nodes.js';
import { nowMicros } from './domain/time.js';
import { indexRecord } from './domain/record-index.js';
import type { WorkflowRunner } from './domain/ports.js';
import { recordStoreFor } from './store/record-stores.js';
import { SfnWorkflowRunner } from './workflow/sfn-runner.js';
import type { WorkflowContext } from './workflow/stages.js';
import { UnconfiguredWorker } from './workers/unconfigured-worker.js';
import { remoteNodeSettingsFromEnv, remoteNodesConfigured } from './remote-nodes/settings.js';
import type { Worker } from './workers/worker.js';

export interface AppContext extends WorkflowContext {
  config: Settings;
  nodes: NodeProber;
}

/** Builds a worker; may load its (large) client library on first use. */
export type WorkerFactory = (settings: Settings) => Worker | Promise<Worker>;

const workerFactories = new Map<string, WorkerFactory>();

/** Makes a worker available by name (IMS_JOB_WORKER selects the one new jobs use). */
export function registerWorker(name: string, factory: WorkerFactory): void {
  workerFactories.set(name, factory);
}

const NO_WORKER_HINT =
  'set IMS_JOB_WORKER (kubernetes, with KUBECONFIG or in-cluster credentials; local, on this host as root) to run image jobs';

const noWorkflow: WorkflowRunner = {
  start: async () => {
    throw new Error('no workflow runner is configured (set STATE_MACHINE_ARN)');
  },
  stop: async () => undefined,
  resume: async () => false,
  fail: async () => false,
  heartbeat: async () => false,
  status: async () => 'UNKNOWN',
};

export interface ContextOverrides {
  workflow?: WorkflowRunner;
  nodes?: NodeProber;
}

export function buildContext(settings: Settings = readSettings(), overrides: ContextOverrides = {}): AppContext {
  const workers = new Map<string, Promise<Worker>>();
  const workerFor = (name: string): Promise<Worker> => {
    let worker = workers.get(name);
    if (!worker) {
      const factory = workerFactories.get(name);
      const hint = name === 'none' ? NO_WORKER_HINT : `worker '${name}' is not available here; ${NO_WORKER_HINT}`;
      worker = Promise.resolve(factory ? factory(settings) : new UnconfiguredWorker(hint));
      worker.catch(() => workers.delete(name));
      workers.set(name, worker);
    }
    return worker;
  };
  return {
    config: settings,
    store: recordStoreFor(settings, indexRecord),
    artifacts: makeArtifactStore(settings),
    clock: { nowMicros },
    ids: { newId: randomUUID },
    settings: { bootImagesBucket: settings.bootImagesBucket, maxManifestBytes: settings.maxManifestBytes },
    jobs: {
      defaultBuildEnvSize: settings.defaultBuildEnvSize,
      defaultJobMemSize: settings.defaultJobMemSize,
      namespace: settings.jobNamespace,
      customerAccessSubnet: settings.customerAccessSubnet,
      customerAccessDomain: settings.customerAccessDomain,
      enableDkms: settings.jobEnableDkms,
      urlExpirationSeconds: settings.urlExpirationSeconds,
      worker: settings.jobWorker,
    },
    workflow:
      overrides.workflow ??
      (settings.stateMachineArn ? new SfnWorkflowRunner(makeSfnClient(settings), settings.stateMachineArn) : noWorkflow),
    workerFor,
    stageTimeouts: settings.stageTimeouts,
    nodes: overrides.nodes ?? nodeProber(),
  };
}

/** The artifact store every use case and worker uses: pre-signed URLs (GET and upload parts) signed by the long-lived signing key when there is one. */
export function makeArtifactStore(settings: Settings): S3ArtifactStore {
  return new S3ArtifactStore(makeS3Client(settings), { presigner: presignerFor(settings) });
}

/** Pre-signed URLs are signed with the long-lived signing key when there is one (shared/artifacts/signing-key.ts). */
function presignerFor(settings: Settings) {
  const key = signingKeySource(settings);
  return key ? makeSigningS3Client(settings, key) : undefined;
}

/** SSH probes when a key for the nodes is configured; otherwise every node shows the original's initial values. */
function nodeProber(): NodeProber {
  const remote = remoteNodeSettingsFromEnv();
  if (!remoteNodesConfigured(remote)) return unprobedNodes;
  // The SSH client (ssh2) loads on the first probe, so handlers that never probe never load it.
  let prober: Promise<NodeProber> | undefined;
  let loaded: NodeProber | undefined;
  return {
    probing: true,
    probe: async (xname) => {
      prober ??= import('./remote-nodes/node-prober.js').then(({ SshNodeProber }) => (loaded = new SshNodeProber(remote)));
      return (await prober).probe(xname);
    },
    invalidate: (xname) => loaded?.invalidate?.(xname),
  };
}

let current: AppContext | undefined;

export function appContext(): AppContext {
  current ??= buildContext();
  return current;
}

/** Replaces the cached context (embedded runtime, tests); undefined makes the next call read the environment again. */
export function resetAppContext(next?: AppContext): void {
  current = next;
}
