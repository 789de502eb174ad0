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
export const RESULT_KEYS = ['rootfs', 'kernel', 'initrd', 'boot_parameters', 'packages'] as const;
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
  const location = resultLocation(target, job.job, key);
  const md5 = await md5Of(path);
  const { size } = await stat(path);
  const record = job.job.job;
  const metadata = { md5sum: md5, 'x-shasta-ims-image-name': record.image_root_archive_name, 'x-shasta-ims-image-id': job.job.resultImageId, 'x-shasta-ims-job-id': record.id };
  const uploadId = await target.artifacts.createMultipartUpload(location, metadata);
  await appendFile(uploadsFile(job), `${location.key} ${uploadId}\n`);
  const parts = Math.max(1, Math.ceil(size / PART_BYTES));
  const etags: string[] = new Array(parts);
  const file = await open(path, 'r');
  try {
    let next = 0;
    const lane = async () => {
      for (let part = next++; part < parts; part = next++) {
        if (signal.aborted) throw new Error('the upload was stopped');
        const length = Math.min(PART_BYTES, size - part * PART_BYTES);
        const body = Buffer.alloc(length);
        const { bytesRead } = await file.read(body, 0, length, part * PART_BYTES);
        if (bytesRead !== length) throw new Error(`${path} changed while it was uploaded`);
        const url = await target.artifacts.presignUploadPart(location, uploadId, part + 1, URL_SECONDS);
        const response = await fetch(url, { method: 'PUT', body, signal });
        if (!response.ok) throw new Error(`uploading part ${part + 1} of ${key} answered ${response.status}`);
        etags[part] = response.headers.get('etag') ?? '';
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, parts) }, lane));
    await target.artifacts.completeMultipartUpload(location, uploadId, etags);
  } catch (error) {
    await target.artifacts.abortMultipartUpload(location, uploadId).catch(() => undefined);
    throw error;
  } finally {
    await file.close();
  }
  const info = await target.artifacts.head(location);
  if (info?.size !== size || info.metadata.md5sum !== md5) throw new Error(`the uploaded ${key} does not match ${path} (size ${info?.size ?? 'none'} of ${size})`);
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
  entry.done = (async () => {
    await Promise.all(Object.entries(files).map(([key, path]) => uploadOne(job, target, key as ResultKey, path!, stop.signal)));
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
