/**
 * Image artifacts in the embedded S3 for image tests: a rootfs, kernel and initrd under a fresh
 * prefix and a manifest.json (version 1.0) listing them, the way IMS jobs write them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { TestService } from './service.js';

export const BOOT = 'boot-images';
export const ROOTFS = 'application/vnd.cray.image.rootfs.squashfs';
export const KERNEL = 'application/vnd.cray.image.kernel';
export const INITRD = 'application/vnd.cray.image.initrd';
export const MANIFEST = 'application/vnd.cray.image.manifest';

export const md5 = (text: string) => createHash('md5').update(text).digest('hex');

export interface ArtifactSpec {
  name: string;
  type: string;
  /** Leave the manifest entry without an md5. */
  noMd5?: boolean;
}

export interface UploadedImage {
  prefix: string;
  bucket: string;
  manifestKey: string;
  manifestPath: string;
  manifestText: string;
  /** `{path, etag: "", type: "s3"}` for POST bodies. */
  link: { path: string; etag: string; type: 's3' };
  artifacts: { key: string; type: string; content: string; md5?: string }[];
}

export const DEFAULT_ARTIFACTS: ArtifactSpec[] = [
  { name: 'rootfs', type: ROOTFS },
  { name: 'kernel', type: KERNEL },
  { name: 'initrd', type: INITRD, noMd5: true },
];

/** Uploads the artifacts and their manifest under `<prefix>/` in `bucket`. */
export async function uploadImage(
  svc: TestService,
  options: { bucket?: string; prefix?: string; artifacts?: ArtifactSpec[]; manifestKey?: string } = {},
): Promise<UploadedImage> {
  const bucket = options.bucket ?? BOOT;
  const prefix = options.prefix ?? `img-${randomUUID().slice(0, 8)}`;
  const artifacts = (options.artifacts ?? DEFAULT_ARTIFACTS).map((a) => {
    const content = `${a.name} of ${prefix} ${randomUUID()}`;
    return { key: `${prefix}/${a.name}`, type: a.type, content, md5: a.noMd5 ? undefined : md5(content) };
  });
  for (const a of artifacts) await svc.putObject(bucket, a.key, a.content);
  const manifest = {
    version: '1.0',
    created: '2024-01-02 03:04:05',
    artifacts: artifacts.map((a) => ({
      link: { path: `s3://${bucket}/${a.key}`, etag: md5(a.content), type: 's3' },
      type: a.type,
      ...(a.md5 ? { md5: a.md5 } : {}),
    })),
  };
  const manifestKey = options.manifestKey ?? `${prefix}/manifest.json`;
  const manifestText = JSON.stringify(manifest);
  await svc.putObject(bucket, manifestKey, manifestText);
  const manifestPath = `s3://${bucket}/${manifestKey}`;
  return { prefix, bucket, manifestKey, manifestPath, manifestText, link: { path: manifestPath, etag: '', type: 's3' }, artifacts };
}

/** Writes `manifest` (any JSON value, or raw text) at a fresh key; returns the link for it. */
export async function putManifest(svc: TestService, manifest: unknown, raw = false) {
  const key = `manifests/${randomUUID()}/manifest.json`;
  await svc.putObject(BOOT, key, raw ? (manifest as string) : JSON.stringify(manifest));
  return { path: `s3://${BOOT}/${key}`, etag: '', type: 's3' as const };
}

/** Uploads one object and returns a manifest artifact entry linking to it. */
export async function putArtifact(svc: TestService, type: string, name = 'artifact') {
  const key = `parts/${randomUUID()}/${name}`;
  const content = `${name} ${randomUUID()}`;
  await svc.putObject(BOOT, key, content);
  return { link: { path: `s3://${BOOT}/${key}`, etag: md5(content), type: 's3' }, type, md5: md5(content) };
}

/** Removes an object behind the service's back. */
export async function removeObject(svc: TestService, bucket: string, key: string): Promise<void> {
  await svc.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

export const RETRY = 'Please determine the specific information that is missing or invalid and then re-run the request with valid information.';

/** Python's repr of a link dict in the order its keys are given. */
export function pyRepr(link: Record<string, string>): string {
  return `{${Object.entries(link)
    .map(([k, v]) => `'${k}': '${v}'`)
    .join(', ')}}`;
}

/** The 422 detail of §3.2 for the top-level link (repr order etag, type, path). */
export function cannotValidate(link: { path: string; etag?: string; type?: string }): string {
  return `The s3 artifact ${pyRepr({ etag: link.etag ?? '', type: link.type ?? 's3', path: link.path })} cannot be validated. ${RETRY}`;
}

export function duplicateImageLink(path: string, owner: string): string {
  return (
    `The link path ${path} matches the link path for the IMS image record ${owner}. The link value must be unique and ` +
    'cannot be duplicated. Determine the specific information that is missing or invalid and then re-run the request with valid information.'
  );
}

export function duplicateRecipeLink(path: string, owner: string): string {
  return (
    `The link path ${path} matches the link path for the IMS recipe record ${owner}. The link value must be unique and ` +
    'cannot be duplicated. Determine the specific information that is missing or invalid and then re-run the request with valid information.'
  );
}
