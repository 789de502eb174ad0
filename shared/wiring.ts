/**
 * The adapters a handler uses, built from Settings handed in by the entry point: each Lambda
 * entry point builds its context once per container (contextFrom), the embedded runtime builds
 * one and hands it to the handlers it serves (and may hand in its own workflow runner or, in
 * tests, workers), so the code path is the same everywhere.
 */
import { randomUUID } from 'node:crypto';
import { S3ArtifactStore } from './artifacts/s3-artifact-store.js';
import { makeSigningS3Client, signingKeySource } from './artifacts/signing-key.js';
import { makeDynamoClient, makeS3Client, makeSfnClient } from './clients.js';
import { readSettings, type Settings } from './config.js';
import { unprobedNodes, type NodeProber } from './domain/remote-build-nodes.js';
import { nowMicros } from './domain/time.js';
import { indexRecord } from './domain/record-index.js';
import type { RecordStore, WorkflowRunner } from './domain/ports.js';
import { DynamoRecordStore } from './store/dynamo-record-store.js';
import { SfnWorkflowRunner } from './sfn/sfn-runner.js';
import { resumeReportedStage, type WorkflowContext } from './workflow/stages.js';
import { UnconfiguredWorker } from './workers/unconfigured-worker.js';
import { remoteNodeSettingsFromEnv, remoteNodesConfigured, type RemoteNodeSettings } from './workers/remote-node/settings.js';
import type { Worker } from './domain/worker-port.js';
import type { Env, WorkerFactory } from './workers/worker-deps.js';

export type { Env, WorkerDeps, WorkerFactory } from './workers/worker-deps.js';

export interface AppContext extends WorkflowContext {
  config: Settings;
  nodes: NodeProber;
  /** Ends the workers' in-process reports (WorkerDeps.wake): a service that stops acts on none after it. */
  stopWakes(): void;
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

export interface ContextOptions {
  /** The environment the adapters' own settings readers get (workers, remote nodes); none when absent. */
  env?: Env;
  workflow?: WorkflowRunner;
  nodes?: NodeProber;
  /**
   * The workers jobs can run on, by name: the entry points that run jobs hand in WORKERS
   * (shared/worker-table.ts); tests add scripted ones. Any other name gets a worker that
   * explains how to configure one.
   */
  workers?: Readonly<Record<string, WorkerFactory>>;
  /** The record store; DynamoDB (DYNAMODB_ENDPOINT, TABLE_NAME) when absent. The embedded runtime hands in its memory store. */
  store?: RecordStore;
  /**
   * false drops the workers' own reports of progress (WorkerDeps.wake): only stage entries, job
   * pods' PATCHes and the reconciler then check stages. Tests of the reconciler's net use it.
   */
  wakes?: boolean;
}

export function buildContext(settings: Settings = readSettings(), options: ContextOptions = {}): AppContext {
  const env = options.env ?? {};
  const factories = options.workers ?? {};
  const artifacts = makeArtifactStore(settings);
  const workers = new Map<string, Promise<Worker>>();
  // The context is complete before any worker is built (workerFor builds them on first use).
  let waking = options.wakes !== false;
  const wake = waking ? stageWaker((jobId) => (waking ? resumeReportedStage(context, jobId) : Promise.resolve())) : undefined;
  const workerFor = (name: string): Promise<Worker> => {
    let worker = workers.get(name);
    if (!worker) {
      const factory = Object.hasOwn(factories, name) ? factories[name] : undefined;
      const hint = name === 'none' ? NO_WORKER_HINT : `worker '${name}' is not available here; ${NO_WORKER_HINT}`;
      worker = Promise.resolve(factory ? factory({ settings, env, artifacts, wake }) : new UnconfiguredWorker(hint));
      worker.catch(() => workers.delete(name));
      workers.set(name, worker);
    }
    return worker;
  };
  const context: AppContext = {
    config: settings,
    store: options.store ?? new DynamoRecordStore(makeDynamoClient(settings), settings.tableName, indexRecord),
    artifacts,
    clock: { nowMicros },
    ids: { newId: randomUUID },
    settings: { bootImagesBucket: settings.bootImagesBucket, maxManifestBytes: settings.maxManifestBytes, recipeLinkPrefixes: settings.recipeLinkPrefixes },
    jobs: {
      defaultBuildEnvSize: settings.defaultBuildEnvSize,
      defaultJobMemSize: settings.defaultJobMemSize,
      namespace: settings.jobNamespace,
      customerAccessSubnet: settings.customerAccessSubnet,
      customerAccessDomain: settings.customerAccessDomain,
      enableDkms: settings.jobEnableDkms,
      urlExpirationSeconds: settings.urlExpirationSeconds,
      deleteInlineMs: settings.jobDeleteInlineMs,
      worker: settings.jobWorker,
    },
    workflow:
      options.workflow ??
      (settings.stateMachineArn ? new SfnWorkflowRunner(makeSfnClient(settings), settings.stateMachineArn) : noWorkflow),
    workerFor,
    stageTimeouts: settings.stageTimeouts,
    nodes: options.nodes ?? nodeProber(remoteNodeSettingsFromEnv(env)),
    stopWakes: () => {
      waking = false;
    },
  };
  return context;
}

/**
 * A worker's reports, coalesced per job: one check runs at a time, and reports that arrive
 * meanwhile ask for one more check after it, so a burst of reports costs two checks, and the
 * last report is always looked at. (Checks are idempotent and leased anyway; this only saves
 * work.) Lives in this process: deployed, nothing here outlives the invocation.
 */
function stageWaker(check: (jobId: string) => Promise<void>): (jobId: string) => void {
  const again = new Map<string, boolean>();
  const run = (jobId: string): void => {
    void check(jobId).finally(() => {
      if (again.get(jobId)) {
        again.set(jobId, false);
        run(jobId);
      } else {
        again.delete(jobId);
      }
    });
  };
  return (jobId) => {
    if (again.has(jobId)) {
      again.set(jobId, true);
      return;
    }
    again.set(jobId, false);
    run(jobId);
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
function nodeProber(remote: RemoteNodeSettings): NodeProber {
  if (!remoteNodesConfigured(remote)) return unprobedNodes;
  // The SSH client (ssh2) loads on the first probe, so handlers that never probe never load it.
  let prober: Promise<NodeProber> | undefined;
  let loaded: NodeProber | undefined;
  return {
    probing: true,
    probe: async (xname) => {
      prober ??= import('./workers/remote-node/node-prober.js').then(({ SshNodeProber }) => (loaded = new SshNodeProber(remote)));
      return (await prober).probe(xname);
    },
    invalidate: (xname) => loaded?.invalidate?.(xname),
  };
}

/**
 * The context of a Lambda entry point: built on first use from the environment it is given
 * (the function's own, `process.env`, at the door), then kept for the life of the container.
 */
export function contextFrom(env: Env, options: Omit<ContextOptions, 'env'> = {}): () => AppContext {
  let context: AppContext | undefined;
  return () => (context ??= buildContext(readSettings(env), { ...options, env }));
}
