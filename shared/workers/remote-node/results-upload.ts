/**
 * The `package` stage of a remote-node job: the node sends its results to S3 itself. Each poll
 * does one short step and the node's job directory remembers where it stands:
 *
 *   1. the node checksums its results in the background (`sums`: size and MD5 of each file);
 *   2. this stage starts one multipart upload per result at the key the image will have
 *      (`<resultant image id>/rootfs`, …, carrying the node's MD5 as `md5sum` metadata),
 *      pre-signs every part's PUT URL and leaves the plan on the node; the node PUTs the parts
 *      in the background (`upload`) and writes down their ETags;
 *   3. this stage completes the uploads from those ETags, checks each object's size against the
 *      node's, and marks the upload completed.
 *
 * Register then finds the objects where it would have put them (no copy, no download), and a
 * retried stage redoes at most its own step: the keys are fixed per job, so a re-upload
 * replaces an object and never makes a second image.
 */
import { randomBytes } from 'node:crypto';
import { s3Path } from '../../domain/links.js';
import type { ArtifactStore, S3Location } from '../../domain/ports.js';
import { logger } from '../../logger.js';
import { shq } from './ssh-session.js';
import type { StageProgress, WorkerJob } from '../../domain/worker-port.js';
import { RESULT_FILES, type ResultFile } from './job-layout.js';
import { hasResult } from './job-view.js';
import { COMMAND_TIMEOUT_MS, type NodeJob } from './node-job.js';
import { startTask, tasksDir } from './node-tasks.js';

/** Where a job's results go in S3, and how the node's uploads are signed. */
export interface ResultTarget {
  artifacts: ArtifactStore;
  /** The boot-images bucket (S3_BOOT_IMAGES_BUCKET). */
  bucket: string;
  /** Lifetime of the part URLs (S3_URL_EXPIRATION, at most SigV4's 7 days). */
  urlExpirySeconds: number;
  /** Smallest part size (bytes, a whole number of MiB, at least S3's 5 MiB). */
  partSize?: number;
}

const MIB = 1024 * 1024;
export const DEFAULT_PART_SIZE = 64 * MIB;
/** Parts per file at most (S3 allows 10,000; fewer keep the ETag list one short read). */
const MAX_PARTS = 1000;
const MAX_URL_EXPIRY_SECONDS = 7 * 24 * 3600;

const REQUIRED: ResultFile[] = ['rootfs.sqsh', 'kernel', 'initrd'];

/** The result files by their artifact name in the image (register-artifacts.ts). */
const ARTIFACT_NAMES: Record<ResultFile, string> = {
  'rootfs.sqsh': 'rootfs',
  kernel: 'kernel',
  initrd: 'initrd',
  parameters: 'boot_parameters',
  packages: 'packages',
};

export function resultLocation(bucket: string, job: WorkerJob, file: ResultFile): S3Location {
  return { bucket, key: `${job.resultImageId}/${ARTIFACT_NAMES[file]}` };
}

export function partSizeFor(size: number, base = DEFAULT_PART_SIZE): number {
  return Math.max(base, Math.ceil(size / MAX_PARTS / MIB) * MIB);
}

function metadataOf(job: WorkerJob, md5: string): Record<string, string> {
  return {
    md5sum: md5,
    'x-shasta-ims-image-name': job.job.image_root_archive_name,
    'x-shasta-ims-image-id': job.resultImageId,
    'x-shasta-ims-job-id': job.job.id,
  };
}

const planPath = (n: Pick<NodeJob, 'layout'>) => `${tasksDir(n)}/upload.plan`;

/**
 * Starts the uploads and writes the plan: `U <file> <upload id>` and `P <file> <part> <offset>
 * <length> <url>` lines. The plan is linked into place, so of two invocations planning at once
 * one wins and the other aborts its own uploads. Empty files need no upload: they are written here.
 */
async function planUpload(n: NodeJob, target: ResultTarget, files: ResultFile[]): Promise<void> {
  const expiry = Math.min(target.urlExpirySeconds, MAX_URL_EXPIRY_SECONDS);
  const lines: string[] = [];
  const started: { location: S3Location; uploadId: string }[] = [];
  for (const file of files) {
    const { size, md5 } = n.view.sums.get(file)!;
    const location = resultLocation(target.bucket, n.job, file);
    if (size === 0) {
      await target.artifacts.putText(location, '', 'application/octet-stream', metadataOf(n.job, md5));
      continue;
    }
    const uploadId = await target.artifacts.createMultipartUpload(location, metadataOf(n.job, md5));
    started.push({ location, uploadId });
    lines.push(`U ${file} ${uploadId}`);
    const partSize = partSizeFor(size, target.partSize);
    for (let offset = 0, part = 1; offset < size; offset += partSize, part++) {
      const url = await target.artifacts.presignUploadPart(location, uploadId, part, expiry);
      lines.push(`P ${file} ${part} ${offset} ${Math.min(partSize, size - offset)} ${url}`);
    }
  }
  const temporary = `${planPath(n)}.${randomBytes(6).toString('hex')}`;
  await n.session.writeFile(temporary, `${lines.join('\n')}\n`, 0o600);
  const linked = await n.session.exec(`ln ${shq(temporary)} ${shq(planPath(n))}; rc=$?; rm -f ${shq(temporary)}; exit $rc`, {
    timeoutMs: COMMAND_TIMEOUT_MS,
  });
  if (linked.code !== 0) {
    // Another invocation planned first: its plan stands, ours goes.
    for (const { location, uploadId } of started) await target.artifacts.abortMultipartUpload(location, uploadId);
  }
}

/** The upload ids of the plan on the node (none when there is no plan). */
export async function plannedUploads(n: Pick<NodeJob, 'session' | 'layout'>): Promise<{ file: ResultFile; uploadId: string }[]> {
  const out = await n.session.run(`grep '^U ' ${shq(planPath(n))} 2>/dev/null; true`, { timeoutMs: COMMAND_TIMEOUT_MS });
  return out
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length === 3 && (RESULT_FILES as readonly string[]).includes(f[1]))
    .map(([, file, uploadId]) => ({ file: file as ResultFile, uploadId }));
}

/** Completes the uploads from the ETags the node wrote; an upload completed before (a retried poll) is checked instead. */
async function completeUpload(n: NodeJob, target: ResultTarget, files: ResultFile[]): Promise<string | undefined> {
  const uploads = await plannedUploads(n);
  const etagText = await n.session.run(`cat ${shq(`${tasksDir(n)}/upload/etags`)}`, { timeoutMs: COMMAND_TIMEOUT_MS });
  const etags = new Map<string, string[]>();
  for (const line of etagText.split('\n')) {
    const [file, part, etag] = line.split(' ');
    if (!file || !etag) continue;
    const list = etags.get(file) ?? [];
    list[Number(part) - 1] = etag;
    etags.set(file, list);
  }
  for (const { file, uploadId } of uploads) {
    const location = resultLocation(target.bucket, n.job, file);
    const { size } = n.view.sums.get(file) ?? { size: 0 };
    const parts = etags.get(file) ?? [];
    const expected = Math.ceil(size / partSizeFor(size, target.partSize));
    if (parts.length !== expected || parts.some((e) => !e)) return `the node reported ${parts.filter(Boolean).length} of the ${expected} parts of ${file}`;
    try {
      await target.artifacts.completeMultipartUpload(location, uploadId, parts);
    } catch (error) {
      // Completed by an earlier poll that did not live to mark it: the object tells.
      logger.info('completing an upload failed; checking the object', { jobId: n.job.job.id, file, error: (error as Error).message });
    }
  }
  for (const file of files) {
    const sum = n.view.sums.get(file)!;
    const location = resultLocation(target.bucket, n.job, file);
    const info = await target.artifacts.head(location);
    if (!info) return `${file} is not in S3 at ${s3Path(location)} after its upload`;
    if (info.size !== sum.size || info.metadata.md5sum !== sum.md5) {
      return `${s3Path(location)} has ${info.size} bytes and MD5 '${info.metadata.md5sum ?? ''}', the node's ${file} ${sum.size} bytes and MD5 ${sum.md5}`;
    }
  }
  return undefined;
}

/** package: checksum on the node, upload from the node, complete here; `running` until the node's part is done. */
export async function packageResults(n: NodeJob, target: ResultTarget): Promise<StageProgress> {
  const { view, xname } = n;
  const missing = REQUIRED.filter((f) => !hasResult(view, f));
  if (missing.length > 0) return { state: 'failed', reason: `the job on ${xname} produced no ${missing.join(', ')}` };
  const files = RESULT_FILES.filter((f) => hasResult(view, f));
  const detail = `uploaded ${files.join(', ')} from ${xname} to s3://${target.bucket}/${n.job.resultImageId}/`;
  if (view.markers.has('tasks/completed')) return { state: 'done', status: 'packaging_artifacts', detail };

  const sums = view.tasks.sums;
  if (sums.kind === 'absent') {
    await startTask(n, 'sums', [`${n.layout.image}/out`, ...files]);
    return { state: 'running', status: 'packaging_artifacts', detail: `checksumming the results on ${xname}` };
  }
  if (sums.kind === 'failed') return { state: 'failed', reason: `checksumming the results on ${xname} failed: ${sums.reason}` };
  if (sums.kind === 'running') return { state: 'running', status: 'packaging_artifacts', detail: `${sums.progress || 'checksumming the results'} on ${xname}` };
  const unsummed = files.filter((f) => !view.sums.has(f));
  if (unsummed.length > 0) return { state: 'failed', reason: `the node ${xname} reported no checksum for ${unsummed.join(', ')}` };

  const upload = view.tasks.upload;
  if (upload.kind === 'failed') return { state: 'failed', reason: `uploading the results from ${xname} failed: ${upload.reason}` };
  if (upload.kind === 'running') return { state: 'running', status: 'packaging_artifacts', detail: `${upload.progress || 'uploading the results'} from ${xname}` };
  if (upload.kind === 'absent') {
    if (!view.markers.has('tasks/upload.plan')) await planUpload(n, target, files);
    await startTask(n, 'upload', [`${n.layout.image}/out`]);
    return { state: 'running', status: 'packaging_artifacts', detail: `uploading the results from ${xname} to S3` };
  }
  const wrong = await completeUpload(n, target, files);
  if (wrong) return { state: 'failed', reason: `the upload of the results from ${xname} went wrong: ${wrong}` };
  await n.session.run(`touch ${shq(`${tasksDir(n)}/completed`)}`, { timeoutMs: COMMAND_TIMEOUT_MS });
  return { state: 'done', status: 'packaging_artifacts', detail };
}
