/**
 * The package stage's uploads: each result (rootfs, kernel, initrd, boot parameters, a create
 * job's package list) goes straight to the resultant image's key (`<image id>/rootfs`, ...),
 * where the register stage finds it and neither copies nor re-reads it (`collect` reports them as
 * `objects`). The MD5 is taken first, from the file mksquashfs has just written (the page cache:
 * its superblock is written last, at offset 0, so no hash can run alongside mksquashfs), because
 * the object's `md5sum` metadata must be known when its multipart upload starts; the parts then
 * go up in parallel, each read once. The uploads run in this process, so a restarted service
 * starts them again (the ids of started uploads are kept in the job's state, for cleanup to
 * abort).
 */
import { createReadStream } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { appendFile, open, readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ArtifactStore, S3Location } from '../../domain/ports.js';
import type { WorkerJob } from '../../domain/worker-port.js';
import type { LocalJob } from './local-job.js';

/** Where a job's results go, and whom to tell when they are up. */
export interface ResultsTarget {
  artifacts: ArtifactStore;
  bucket: string;
  wake?: (jobId: string) => void;
}

/** The results' names at the image's keys, as the register stage names them. */
export const RESULT_KEYS = ['rootfs', 'kernel', 'initrd', 'boot_parameters', 'packages', 'changes'] as const;
export type ResultKey = (typeof RESULT_KEYS)[number];

const PART_BYTES = 32 * 1024 * 1024;
const PARALLEL_PARTS = 4;
const URL_SECONDS = 3600;

export const resultLocation = (target: ResultsTarget, job: WorkerJob, key: ResultKey): S3Location => ({ bucket: target.bucket, key: `${job.resultImageId}/${key}` });

async function md5Of(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const uploadsFile = (job: LocalJob) => join(job.paths.state, 'uploads');

/** The multipart uploads this job started (`<key> <upload id>` lines). */
export async function startedUploads(job: LocalJob): Promise<{ key: string; uploadId: string }[]> {
  const text = await readFile(uploadsFile(job), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [key, uploadId] = line.split(' ');
      return { key, uploadId };
    });
}

async function uploadOne(job: LocalJob, target: ResultsTarget, key: ResultKey, path: string, signal: AbortSignal): Promise<void> {
  const record = job.job.job;
  const labels = { 'x-shasta-ims-image-name': record.image_root_archive_name, 'x-shasta-ims-image-id': job.job.resultImageId, 'x-shasta-ims-job-id': record.id };
  await uploadWithMd5(target.artifacts, resultLocation(target, job.job, key), path, labels, {
    signal,
    started: (location, uploadId) => appendFile(uploadsFile(job), `${location.key} ${uploadId}\n`),
  });
}

/**
 * Uploads the file at `path` to `location` with its MD5 as `md5sum` metadata: the MD5 first
 * (one read), then the parts in parallel (a second read, of the page cache for a file just
 * written), each part PUT to its pre-signed URL; checks the object's size and MD5 after. `started`
 * learns the multipart upload's id before any part goes.
 */
export async function uploadWithMd5(
  artifacts: ArtifactStore,
  location: S3Location,
  path: string,
  labels: Record<string, string>,
  options: { signal?: AbortSignal; started?: (location: S3Location, uploadId: string) => Promise<void> } = {},
): Promise<{ md5: string; size: number }> {
  const md5 = await md5Of(path);
  const { size } = await stat(path);
  const uploadId = await artifacts.createMultipartUpload(location, { md5sum: md5, ...labels });
  await options.started?.(location, uploadId);
  const parts = Math.max(1, Math.ceil(size / PART_BYTES));
  const etags: string[] = new Array(parts);
  const file = await open(path, 'r');
  try {
    let next = 0;
    const lane = async () => {
      for (let part = next++; part < parts; part = next++) {
        if (options.signal?.aborted) throw new Error('the upload was stopped');
        const length = Math.min(PART_BYTES, size - part * PART_BYTES);
        const body = Buffer.alloc(length);
        const { bytesRead } = await file.read(body, 0, length, part * PART_BYTES);
        if (bytesRead !== length) throw new Error(`${path} changed while it was uploaded`);
        const url = await artifacts.presignUploadPart(location, uploadId, part + 1, URL_SECONDS);
        const answer = await putPart(url, body, options.signal);
        if (answer.status < 200 || answer.status > 299) throw new Error(`uploading part ${part + 1} of ${location.key} answered ${answer.status}`);
        etags[part] = answer.etag;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, parts) }, lane));
    await artifacts.completeMultipartUpload(location, uploadId, etags);
  } catch (error) {
    await artifacts.abortMultipartUpload(location, uploadId).catch(() => undefined);
    throw error;
  } finally {
    await file.close();
  }
  const info = await artifacts.head(location);
  if (info?.size !== size || info.metadata.md5sum !== md5) throw new Error(`the uploaded ${location.key} does not match ${path} (size ${info?.size ?? 'none'} of ${size})`);
  return { md5, size };
}

/**
 * PUTs one part on a connection of its own (no pooled keep-alive: a part is large, and a pooled
 * socket would outlive the artifact store it was opened to, e.g. an embedded one that stopped).
 */
function putPart(url: string, body: Buffer, signal?: AbortSignal): Promise<{ status: number; etag: string }> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const put = request(url, { method: 'PUT', agent: false, signal, headers: { 'content-length': body.length } }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, etag: String(response.headers.etag ?? '') }));
      response.on('error', reject);
    });
    put.on('error', reject);
    put.end(body);
  });
}

interface Running {
  done: Promise<void>;
  stop: AbortController;
  error?: string;
  finished: boolean;
}

const running = new Map<string, Running>();

/**
 * One look at the job's uploads: starts them when none runs (then 'running'), 'running' while
 * they go, 'done' once all are up (once), or why they failed. `files` maps result keys to paths.
 */
export function pollUploads(job: LocalJob, target: ResultsTarget, files: Partial<Record<ResultKey, string>>): 'running' | 'done' | { failed: string } {
  const jobId = job.job.job.id;
  const known = running.get(jobId);
  if (known?.finished) {
    running.delete(jobId);
    return known.error === undefined ? 'done' : { failed: known.error };
  }
  if (known) return 'running';
  const stop = new AbortController();
  const entry: Running = { stop, finished: false, done: Promise.resolve() };
  const started = Date.now();
  entry.done = (async () => {
    await job.log(`uploading the results: ${Object.keys(files).join(', ')}`);
    await Promise.all(Object.entries(files).map(([key, path]) => uploadOne(job, target, key as ResultKey, path!, stop.signal)));
    await job.log(`the results are uploaded (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  })()
    .catch((error: unknown) => {
      entry.error = (error as Error).message;
    })
    .finally(() => {
      entry.finished = true;
      target.wake?.(jobId);
    });
  running.set(jobId, entry);
  return 'running';
}

/** Stops the job's uploads in this process and waits until they have let go (cleanup). */
export async function stopUploads(jobId: string): Promise<void> {
  const known = running.get(jobId);
  if (!known) return;
  known.stop.abort();
  await known.done;
  running.delete(jobId);
}
