/**
 * Puts a job's artifacts where the original puts them (`s3://<boot bucket>/<image id>/rootfs`,
 * `kernel`, `initrd`, `boot_parameters`) and writes manifest.json version 1.0 in the original's
 * format (sorted keys, 4-space indent). Returns the manifest link for the image record.
 */
import { createHash } from 'node:crypto';
import { parseS3Path, s3Path } from '../domain/links.js';
import { ROOTFS_TYPE } from '../domain/manifest.js';
import { CHANGES_TYPE, PACKAGES_TYPE } from '../domain/image-contents.js';
import { formatManifestTime } from '../domain/time.js';
import type { DomainContext } from '../domain/context.js';
import type { ArtifactLink } from '../domain/records.js';
import type { CollectedArtifacts, WorkerJob } from '../domain/worker-port.js';

const TYPES = {
  rootfs: ROOTFS_TYPE,
  kernel: 'application/vnd.cray.image.kernel',
  initrd: 'application/vnd.cray.image.initrd',
  boot_parameters: 'application/vnd.cray.image.parameters.boot',
} as const;

/**
 * Extra artifacts (e.g. the package list of a build) go into the manifest too, so that image
 * delete, soft delete and undelete move them with the image; consumers pick artifacts by type.
 */
const EXTRA_TYPES: Record<string, string> = { packages: PACKAGES_TYPE, changes: CHANGES_TYPE };
const EXTRA_DEFAULT_TYPE = 'application/octet-stream';
const EXTRA_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const RESERVED = new Set(['rootfs', 'kernel', 'initrd', 'boot_parameters', 'debug_kernel', 'manifest.json']);

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
  }
  return value;
}

export async function registerArtifacts(
  ctx: DomainContext,
  job: WorkerJob,
  collected: Exclude<CollectedArtifacts, { kind: 'registered' }>,
): Promise<ArtifactLink> {
  const bucket = ctx.settings.bootImagesBucket;
  const imageId = job.resultImageId;
  const sources: [string, string | undefined, string][] = [
    ['rootfs', collected.rootfs, TYPES.rootfs],
    ['kernel', collected.kernel, TYPES.kernel],
    ['initrd', collected.initrd, TYPES.initrd],
    ['boot_parameters', collected.parameters, TYPES.boot_parameters],
  ];
  for (const [name, source] of Object.entries(collected.extras ?? {})) {
    if (!EXTRA_NAME.test(name) || RESERVED.has(name)) throw new Error(`the worker reported an extra artifact named '${name}', which cannot be used`);
    sources.push([name, source, EXTRA_TYPES[name] ?? EXTRA_DEFAULT_TYPE]);
  }
  const artifacts: Record<string, unknown>[] = [];
  const labels = { 'x-shasta-ims-image-name': job.job.image_root_archive_name, 'x-shasta-ims-image-id': imageId, 'x-shasta-ims-job-id': job.job.id };
  for (const [name, source, type] of sources) {
    if (!source) continue;
    if (collected.kind === 'files') {
      const to = { bucket, key: `${imageId}/${name}` };
      const { etag, md5 } = await ctx.artifacts.uploadFile(to, source, labels);
      artifacts.push({ link: { etag, path: s3Path(to), type: 's3' }, md5, type });
      continue;
    }
    const from = parseS3Path(source);
    if (!from) throw new Error(`the worker reported an artifact at ${source}, which is not an s3:// path`);
    const to = { bucket, key: `${imageId}/${name}` };
    const info = await ctx.artifacts.head(from);
    if (!info) throw new Error(`the worker reported an artifact at ${source}, which does not exist`);
    const { etag } = from.bucket === to.bucket && from.key === to.key ? { etag: info.etag } : await ctx.artifacts.copy(from, to);
    artifacts.push({ link: { etag, path: s3Path(to), type: 's3' }, md5: info.metadata.md5sum ?? '', type });
  }
  const manifest = sortKeys({ artifacts, created: formatManifestTime(ctx.clock.nowMicros()), version: '1.0' });
  const at = { bucket, key: `${imageId}/manifest.json` };
  const text = JSON.stringify(manifest, null, 4);
  const { etag } = await ctx.artifacts.putText(at, text, 'application/json', { md5sum: createHash('md5').update(text).digest('hex') });
  return { path: s3Path(at), etag, type: 's3' };
}
