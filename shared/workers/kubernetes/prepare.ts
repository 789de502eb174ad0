/**
 * The prepare stage: creates the job's objects in the original's order. Re-running it is safe
 * (objects already there are taken as created); a failure that retrying cannot fix removes the
 * objects again and reports which one could not be created.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { logger } from '../../logger.js';
import type { StageProgress, WorkerJob } from '../../domain/worker-port.js';
import { describeApiError, isAlreadyExists, isNotFound } from './api-errors.js';
import type { KubeApis } from './kube-apis.js';
import type { Manifest } from './manifests.js';
import { resourceOps } from './resources.js';
import { retryOnTimeout } from './retry.js';
import { ensurePodS3Credentials, POD_S3_SECRET } from './s3-credentials.js';
import type { KubernetesWorkerSettings } from './settings.js';
import { jobNamespace, signingKeysSecretName } from './template-params.js';

export interface PrepareContext {
  apis: KubeApis;
  settings: KubernetesWorkerSettings;
  sleep?: (ms: number) => Promise<void>;
}

const label = (m: Pick<Manifest, 'kind' | 'name'>): string => `${m.kind} ${m.name}`;

async function create(ctx: PrepareContext, manifest: Manifest): Promise<'created' | 'existed'> {
  const ops = resourceOps(ctx.apis, manifest.kind);
  try {
    await retryOnTimeout(() => ops.create(manifest.namespace, manifest.body), {
      retries: ctx.settings.timeoutRetries,
      delayMs: ctx.settings.retryDelayMs,
      what: `create ${label(manifest)}`,
      sleep: ctx.sleep,
    });
    return 'created';
  } catch (error) {
    if (isAlreadyExists(error)) return 'existed';
    throw error;
  }
}

/**
 * Removes the objects made so far. Objects that already existed are removed too: their names
 * carry the job id, so they are this job's own from an earlier attempt, and a failed prepare
 * should leave nothing behind.
 */
async function rollBack(ctx: PrepareContext, made: Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  for (const manifest of [...made].reverse()) {
    try {
      await resourceOps(ctx.apis, manifest.kind).remove(manifest.namespace, manifest.name);
    } catch (error) {
      if (!isNotFound(error)) problems.push(`${label(manifest)}: ${describeApiError(error)}`);
    }
  }
  return problems;
}

/**
 * The create job's copy of the RPM signing keys (the Secret its build container mounts), read
 * before anything is written. The original only logged a failure and built with the image's keys;
 * here a source that cannot be read (forbidden, absent, a server error) fails the stage with the
 * reason, unless the settings allow unsigned builds. Customize jobs mount no keys.
 */
async function signingKeysCopy(ctx: PrepareContext, job: WorkerJob): Promise<{ manifest?: Manifest; unsigned?: string; failure?: string }> {
  const source = ctx.settings.signingKeysSource;
  if (!source || job.job.job_type !== 'create') return {};
  let secret: V1Secret;
  try {
    secret = await retryOnTimeout(() => ctx.apis.core.readNamespacedSecret({ namespace: source.namespace, name: source.name }), {
      retries: ctx.settings.timeoutRetries,
      delayMs: ctx.settings.retryDelayMs,
      what: `read Secret ${source.namespace}/${source.name}`,
      sleep: ctx.sleep,
    });
  } catch (error) {
    const why = isNotFound(error) ? 'it does not exist' : describeApiError(error);
    const cause = `could not read the signing keys, Secret ${source.namespace}/${source.name}: ${why}`;
    if (!ctx.settings.allowUnsigned) {
      logger.error('the signing keys could not be read', { jobId: job.job.id, cause });
      return { failure: `${cause} (IMS_JOB_ALLOW_UNSIGNED=true lets builds run without them)` };
    }
    logger.warn('the job is built without signing keys', { jobId: job.job.id, cause });
    return { unsigned: `unsigned: ${cause}` };
  }
  const namespace = jobNamespace(job, ctx.settings);
  const name = signingKeysSecretName(job.job);
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/part-of': 'cray-ims', 'ims-job-id': job.job.id } },
    type: secret.type ?? 'Opaque',
    data: secret.data ?? {},
  };
  return { manifest: { kind: 'Secret', name, namespace, body } };
}

/** The pods' S3 endpoint and key, written before the Job that mounts them; nothing is created when this fails. */
async function writePodS3Credentials(ctx: PrepareContext, job: WorkerJob): Promise<{ written?: string; failure?: string }> {
  const podS3 = ctx.settings.podS3;
  if (!podS3) return {};
  const namespace = jobNamespace(job, ctx.settings);
  try {
    const outcome = await retryOnTimeout(() => ensurePodS3Credentials(ctx.apis, podS3, namespace), {
      retries: ctx.settings.timeoutRetries,
      delayMs: ctx.settings.retryDelayMs,
      what: `write Secret ${POD_S3_SECRET}`,
      sleep: ctx.sleep,
    });
    return { written: `Secret ${POD_S3_SECRET} (${outcome})` };
  } catch (error) {
    const cause = `could not write Secret ${POD_S3_SECRET} in namespace ${namespace}: ${describeApiError(error)}`;
    logger.error('the pods S3 credentials could not be written', { jobId: job.job.id, cause });
    return { failure: cause };
  }
}

export async function createJobObjects(ctx: PrepareContext, job: WorkerJob, manifests: Manifest[]): Promise<StageProgress> {
  const keys = await signingKeysCopy(ctx, job);
  if (keys.failure) return { state: 'failed', reason: keys.failure };
  const s3 = await writePodS3Credentials(ctx, job);
  if (s3.failure) return { state: 'failed', reason: s3.failure };
  const made: Manifest[] = [];
  const existed: string[] = [];
  // The keys' copy last, as the original made it; a failed prepare removes it with the rest.
  for (const manifest of keys.manifest ? [...manifests, keys.manifest] : manifests) {
    try {
      if ((await create(ctx, manifest)) === 'existed') existed.push(label(manifest));
      made.push(manifest);
    } catch (error) {
      const cause = `could not create ${label(manifest)} in namespace ${manifest.namespace}: ${describeApiError(error)}`;
      logger.error('creating the job objects failed', { jobId: job.job.id, cause });
      const leftovers = await rollBack(ctx, made);
      const removed = made.length > 0 ? `; removed again: ${made.map(label).join(', ')}` : '';
      const stuck = leftovers.length > 0 ? `; could not remove: ${leftovers.join('; ')}` : '';
      return { state: 'failed', reason: `${cause}${removed}${stuck}` };
    }
  }
  const names = [...(s3.written ? [s3.written] : []), ...made.map(label)];
  const again = existed.length > 0 ? ` (already there: ${existed.join(', ')})` : '';
  const unsigned = keys.unsigned ? `; ${keys.unsigned}` : '';
  return { state: 'done', detail: `created ${names.join(', ')}${again}${unsigned}` };
}
