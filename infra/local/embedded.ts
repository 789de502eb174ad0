/**
 * The embedded default: records in this process's memory store (journaled under the data
 * directory) and s3rver, behind the same ports the deployed service uses. Real endpoints replace
 * either one when DYNAMODB_ENDPOINT or S3_ENDPOINT is set; IMS_STORE chooses the record store
 * explicitly (see recordStoreChoice).
 */
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { EventEmitter } from 'node:events';
import type { S3Event } from 'aws-lambda';
import { join, resolve } from 'node:path';
import S3rver from 's3rver';
import { ensureBuckets } from '#shared/artifacts/ensure-buckets.js';
import { makeDynamoClient, makeS3Client } from '#shared/clients.js';
import { readAuthSettings, readSettings } from '#shared/config.js';
import { ensureJobReportKeyFile } from '#shared/job-report-key.js';
import { ensureTable } from '#shared/store/ensure-table.js';
import { openMemoryStore } from '#shared/store/record-stores.js';
import { indexRecord } from '#shared/domain/record-index.js';
import { buildContext, type AppContext, type WorkerFactory } from '#shared/wiring.js';
import { WORKERS } from '#shared/worker-table.js';
import { allJobs, updateJobState } from '#shared/domain/job-state.js';
import { handleS3Event } from '#functions/events/recipe-upload.js';
import { logger } from '#shared/logger.js';
import { createApiServer } from './http-server.js';
import { apiHandlers } from './handlers.js';
import { EMBEDDED_STATE_MACHINE_ARN, startSfnEndpoint } from './sfn-endpoint.js';
import { clearReconcileLease, reconcileJobs } from '#shared/workflow/reconcile.js';
import { LocalWorkflowRunner, type LocalRunnerOptions } from './local-workflow-runner.js';

/** s3rver accepts this key pair only; users point their S3 clients at it. */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface EmbeddedOptions {
  host?: string;
  port?: number;
  s3Port?: number;
  /** Where the record store and s3rver keep their data; undefined keeps records in memory only (tests). */
  dataDir?: string;
  /** Directory for s3rver when dataDir is not given. */
  scratchDir?: string;
  /** How the embedded workflow runner retries, and its clock (tests shorten or virtualize both). */
  workflow?: LocalRunnerOptions;
  /**
   * Milliseconds between two passes of the reconciler (IMS_RECONCILE_MS, default 5000; deployed it
   * runs once a minute); 0 runs it only when reconcile() is called (tests with a virtual clock).
   */
  reconcileMs?: number;
  /** Runs one reconciler pass in place of the in-process one (e.g. in its own process, as deployed). */
  reconcile?: () => Promise<unknown>;
  /**
   * At start, end the processes and remove the work directories under IMS_WORK_ROOT of jobs the
   * store does not know (shared/workers/local/orphans.ts). `npm start` does; tests opt in, since
   * test services with tables of their own may share a work root.
   */
  sweepOrphanedWork?: boolean;
  /** false drops the workers' in-process reports of progress, leaving stages to the reconciler (tests of its net). */
  wakes?: boolean;
  /** Workers beside the built-in ones, by name (tests run jobs on scripted workers). */
  workers?: Record<string, WorkerFactory>;
  /** The record store, as IMS_STORE chooses it (which it replaces): 'dynalite' when handlers run in processes of their own. */
  recordStore?: 'memory' | 'dynalite';
}

export interface EmbeddedService {
  url: string;
  s3Endpoint?: string;
  /** The DynamoDB endpoint records are in; absent with the memory store. */
  dynamoEndpoint?: string;
  recordStore: RecordStoreChoice;
  app: AppContext;
  workflow: LocalWorkflowRunner;
  /** Runs one reconciler pass now (the timer runs them too, unless reconcileMs is 0). */
  reconcile(): Promise<unknown>;
  /** The Step Functions endpoint of the embedded workflow (SFN_ENDPOINT for handlers in their own process). */
  sfnEndpoint: string;
  /** The embedded S3's event emitter (`'event'`, S3 notification format); absent with S3_ENDPOINT. */
  s3Events?: EventEmitter;
  /** Resolves when every embedded S3 event received so far has been handled. */
  s3EventsSettled(): Promise<void>;
  stop(): Promise<void>;
}

const DYNALITE_DIR = 'dynamodb';

/**
 * Where records are kept: the memory store in this process (journaled under the data directory),
 * dynalite in this process (handlers that run in processes of their own reach it over the
 * network, as they reach DynamoDB deployed), or DynamoDB at DYNAMODB_ENDPOINT.
 */
export type RecordStoreChoice = 'memory' | 'dynalite' | 'dynamodb';

/**
 * IMS_STORE=memory chooses the memory store, IMS_STORE=dynalite a database reachable from other
 * processes: DYNAMODB_ENDPOINT when set, else dynalite. Without IMS_STORE: DYNAMODB_ENDPOINT when
 * set, dynalite for a data directory that dynalite already keeps, else memory.
 */
function recordStoreChoice(env: NodeJS.ProcessEnv, dataDir: string | undefined, requested?: 'memory' | 'dynalite'): RecordStoreChoice {
  const chosen = requested ?? (env.IMS_STORE?.trim() || undefined);
  if (chosen !== undefined && chosen !== 'memory' && chosen !== 'dynalite') throw new Error(`IMS_STORE is '${chosen}': use memory or dynalite (or unset it)`);
  if (chosen === 'memory') return 'memory';
  if (env.DYNAMODB_ENDPOINT) return 'dynamodb';
  if (chosen === 'dynalite') return 'dynalite';
  if (dataDir && existsSync(join(resolve(dataDir), DYNALITE_DIR)) && !existsSync(join(resolve(dataDir), 'records'))) {
    logger.warn('records stay in dynalite: this data directory was written by it (IMS_STORE=memory starts an empty memory store beside it)', { dataDir });
    return 'dynalite';
  }
  return 'memory';
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok(server.address() as AddressInfo));
  });
}

export async function startEmbedded(options: EmbeddedOptions = {}): Promise<EmbeddedService> {
  const host = options.host ?? '127.0.0.1';
  const stops: (() => Promise<void>)[] = [];
  const env = process.env;
  let s3Events: EventEmitter | undefined;
  // First: bad IMS_AUTH_* settings stop the start before anything runs.
  const auth = readAuthSettings(env);

  const storeChoice = recordStoreChoice(env, options.dataDir, options.recordStore);
  if (storeChoice === 'dynalite') {
    const path = options.dataDir ? join(resolve(options.dataDir), DYNALITE_DIR) : undefined;
    if (path) mkdirSync(path, { recursive: true });
    // Loaded only when chosen: the memory store's process never holds it.
    const { default: dynalite } = await import('dynalite');
    const db = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    const address = await listen(db, 0, '127.0.0.1');
    env.DYNAMODB_ENDPOINT = `http://127.0.0.1:${address.port}`;
    stops.push(async () => {
      await new Promise<void>((r) => db.close(() => r()));
      delete env.DYNAMODB_ENDPOINT;
    });
  }

  if (!env.S3_ENDPOINT) {
    const directory = options.dataDir ? join(resolve(options.dataDir), 's3') : options.scratchDir;
    if (!directory) throw new Error('startEmbedded needs dataDir or scratchDir for the embedded S3');
    mkdirSync(directory, { recursive: true });
    const s3 = new S3rver({ address: host, port: options.s3Port ?? 0, silent: true, directory });
    const address = await s3.run();
    s3Events = s3;
    env.S3_ENDPOINT = `http://${host}:${address.port}`;
    env.S3_ACCESS_KEY = EMBEDDED_S3_CREDENTIALS.accessKeyId;
    env.S3_SECRET_KEY = EMBEDDED_S3_CREDENTIALS.secretAccessKey;
    stops.push(async () => {
      await s3.close();
      delete env.S3_ENDPOINT;
      delete env.S3_ACCESS_KEY;
      delete env.S3_SECRET_KEY;
    });
  }

  // The key of job report tokens (shared/job-report-key.ts): deployed a secret; here a file kept
  // with the data (or the scratch directory), made on the first start.
  if (!env.IMS_JOB_REPORT_SECRET_ARN && !env.IMS_JOB_REPORT_KEY_FILE) {
    const directory = options.dataDir ? resolve(options.dataDir) : options.scratchDir;
    if (directory) {
      const keyFile = join(directory, 'job-report.key');
      ensureJobReportKeyFile(keyFile);
      env.IMS_JOB_REPORT_KEY_FILE = keyFile;
      stops.push(async () => void delete env.IMS_JOB_REPORT_KEY_FILE);
    }
  }

  // On one machine jobs run on this host (shared/workers/local) unless IMS_JOB_WORKER says otherwise.
  const settings = readSettings({ ...env, IMS_JOB_WORKER: env.IMS_JOB_WORKER || 'local' });
  const store = storeChoice === 'memory' ? openMemoryStore(indexRecord, options.dataDir ? join(resolve(options.dataDir), 'records') : undefined) : undefined;
  if (store) {
    stops.push(async () => store.close());
  } else {
    await ensureTable(makeDynamoClient(settings), settings.tableName);
  }
  await ensureBuckets(makeS3Client(settings), [settings.imsBucket, settings.bootImagesBucket]);
  const workflow = new LocalWorkflowRunner(options.workflow, () => app);
  const sfn = await startSfnEndpoint(workflow);
  env.SFN_ENDPOINT = sfn.url;
  env.STATE_MACHINE_ARN = EMBEDDED_STATE_MACHINE_ARN;
  const app: AppContext = buildContext(
    { ...settings, sfnEndpoint: sfn.url, stateMachineArn: EMBEDDED_STATE_MACHINE_ARN },
    { env, workflow, workers: { ...WORKERS, ...options.workers }, store, wakes: options.wakes },
  );
  if (options.workflow?.clock) {
    const clock = options.workflow.clock;
    app.clock = { nowMicros: () => BigInt(Math.round(clock.nowMs() * 1000)) };
  }
  stops.push(async () => {
    app.stopWakes();
    workflow.stopAll();
    await workflow.drain();
    await new Promise<void>((r) => sfn.server.close(() => r()));
    delete env.SFN_ENDPOINT;
    delete env.STATE_MACHINE_ARN;
  });
  await resumeUnfinishedJobs(app, workflow);
  if (options.sweepOrphanedWork) await sweepOrphanedWork(app);
  // This process runs every pass: a lease in the store is one its predecessor never released.
  await clearReconcileLease(app.store);
  const reconciler = startReconciler(options.reconcile ?? (() => reconcileJobs(app)), workflow, options.reconcileMs ?? Number(env.IMS_RECONCILE_MS || 5000));
  stops.push(reconciler.stop);
  const uploads = s3Events ? handleUploads(s3Events, app) : undefined;
  if (uploads) stops.push(uploads.stop);

  const server = createApiServer(apiHandlers(() => app), { auth });
  const address = await listen(server, options.port ?? 8080, host);
  const url = `http://${host}:${address.port}`;
  // Remote build nodes report to this service unless told another address (one they can reach).
  if (!env.REMOTE_NODE_REPORT_URL) {
    env.REMOTE_NODE_REPORT_URL = url;
    stops.push(async () => void delete env.REMOTE_NODE_REPORT_URL);
  }
  stops.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  );

  return {
    url,
    s3Endpoint: settings.s3Endpoint,
    dynamoEndpoint: storeChoice === 'memory' ? undefined : settings.dynamoEndpoint,
    recordStore: storeChoice,
    app,
    workflow,
    reconcile: reconciler.runNow,
    sfnEndpoint: sfn.url,
    s3Events,
    s3EventsSettled: async () => uploads?.settled(),
    stop: async () => {
      for (const stop of stops.reverse()) await stop();
    },
  };
}

/**
 * Deployed, S3 invokes functions/events/recipe-upload.ts for the IMS bucket's notification.
 * Here every event of the embedded S3 goes to the same handler, unchanged: s3rver emits them
 * for every bucket and key, and the handler does the filtering that the notification's filter
 * does when deployed (and again, so both paths behave alike). One difference stays: s3rver
 * sends keys as they are, where AWS URL-encodes them, so a key holding '+' or '%' is read
 * differently here. A failed upload is logged; it never stops the server.
 */
function handleUploads(s3: EventEmitter, app: AppContext) {
  const pending = new Set<Promise<void>>();
  const onEvent = (event: S3Event) => {
    const handled: Promise<void> = handleS3Event(event, app)
      .then(() => undefined, (error: unknown) => logger.error('embedded S3 event not handled', { error: error as Error }))
      .finally(() => pending.delete(handled));
    pending.add(handled);
  };
  s3.on('event', onEvent);
  const settled = async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };
  return {
    settled,
    stop: async () => {
      s3.off('event', onEvent);
      await settled();
    },
  };
}

/**
 * The reconciler under `npm start`: deployed, EventBridge Scheduler invokes
 * functions/workflow/reconcile.ts once a minute; here a timer runs the same pass. Passes never
 * overlap; each also fails waiting tasks whose heartbeat or time is up (Step Functions does that
 * itself deployed).
 */
function startReconciler(pass: () => Promise<unknown>, workflow: LocalWorkflowRunner, intervalMs: number) {
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const runNow = async (): Promise<unknown> => {
    while (running) await running.catch(() => undefined);
    workflow.checkTimeouts();
    running = pass().finally(() => (running = undefined));
    return running;
  };
  const timer =
    intervalMs > 0
      ? setInterval(() => {
          if (running || stopped) return;
          runNow().catch((error: unknown) => logger.warn('reconciler pass failed', { error: (error as Error).message }));
        }, intervalMs)
      : undefined;
  timer?.unref();
  return {
    runNow,
    stop: async () => {
      stopped = true;
      if (timer) clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}

/** Work of the local worker that belongs to no job of the store: ended and removed, and logged. */
async function sweepOrphanedWork(app: AppContext): Promise<void> {
  const [{ sweepOrphanedJobs }, { localSettingsFromEnv }] = await Promise.all([import('#shared/workers/local/orphans.js'), import('#shared/workers/local/settings.js')]);
  await sweepOrphanedJobs(localSettingsFromEnv(process.env), async (jobId) => (await app.store.get('job', jobId)) !== undefined);
}

/** Executions live in memory: after a restart every job not yet ended gets a new one (stages are idempotent). */
async function resumeUnfinishedJobs(app: AppContext, workflow: LocalWorkflowRunner): Promise<void> {
  for await (const job of allJobs(app)) {
    if (job.status === 'success' || job.status === 'error') continue;
    logger.info('resuming job workflow', { jobId: job.id, status: job.status });
    const execution = await workflow.start(job.id);
    await updateJobState(app, job.id, (state) => ({ ...state, execution })).catch(() => undefined);
  }
}
