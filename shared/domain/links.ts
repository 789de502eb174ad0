/**
 * Artifact links (`{path: "s3://bucket/key", etag, type: "s3"}`): parsing, the original's error
 * texts (which embed Python's repr of the link), existence checks, link uniqueness, and the
 * "rename under deleted/" moves of soft delete and undelete.
 */
import { ArtifactValidationError, DependencyAccessDeniedError, InvalidInputError } from './errors.js';
import type { ArtifactStore, RecordStore, S3Location } from './ports.js';
import type { ArtifactLink, RecordKind } from './records.js';

const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `s3://bucket/key` → location; undefined for anything S3 cannot address. */
export function parseS3Path(path: string): S3Location | undefined {
  const match = /^s3:\/\/([^/?#]*)(.*)$/.exec(path);
  if (!match) return undefined;
  const [, bucket, rest] = match;
  const key = rest.replace(/#.*$/, '').replace(/^\/+/, '');
  if (!BUCKET_NAME.test(bucket) || key.length === 0) return undefined;
  return { bucket, key };
}

export function s3Path(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

function pyStr(value: unknown): string {
  if (typeof value !== 'string') return String(value);
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  const body = value.replaceAll('\\', '\\\\').replaceAll(quote, `\\${quote}`).replaceAll('\n', '\\n');
  return `${quote}${body}${quote}`;
}

/**
 * Python's repr of the link dict, as the original's messages show it. A link the service loaded
 * from a request shows etag, type, path; `keepOrder` keeps the order of a link read as raw JSON
 * (e.g. from a manifest.json), as Python's dict does.
 */
export function linkRepr(link: Partial<ArtifactLink> | Record<string, unknown>, keepOrder = false): string {
  const ordered = keepOrder ? [] : ['etag', 'type', 'path'].filter((k) => k in link);
  const rest = Object.keys(link).filter((k) => !ordered.includes(k));
  const parts = [...ordered, ...rest].map((k) => `${pyStr(k)}: ${pyStr((link as Record<string, unknown>)[k])}`);
  return `{${parts.join(', ')}}`;
}

export function cannotValidateArtifact(link: Partial<ArtifactLink> | Record<string, unknown>, keepOrder = false): ArtifactValidationError {
  return new ArtifactValidationError(
    `The s3 artifact ${linkRepr(link, keepOrder)} cannot be validated. Please determine the specific information that is missing or invalid and then re-run the request with valid information.`,
  );
}

/**
 * HEAD of the link's object; a 422 problem when it is not there or cannot be addressed. A link the
 * service may not read (S3 answers 403) is bad input too, and says so: the record would link what
 * no job of the service could use.
 */
export async function requireArtifact(artifacts: ArtifactStore, link: ArtifactLink | Record<string, unknown>, keepOrder = false) {
  const location = typeof link.path === 'string' ? parseS3Path(link.path) : undefined;
  let info: Awaited<ReturnType<ArtifactStore['head']>>;
  try {
    info = location ? await artifacts.head(location) : undefined;
  } catch (error) {
    if (!(error instanceof DependencyAccessDeniedError)) throw error;
    throw new ArtifactValidationError(
      `The s3 artifact ${linkRepr(link, keepOrder)} cannot be validated: the service is denied access to it. Link an artifact in a bucket the service may read, or have an operator grant it.`,
    );
  }
  if (!location || !info) throw cannotValidateArtifact(link, keepOrder);
  return { location, info };
}

/** Dict equality as the original compares links: a link sent without `etag` differs from a stored one. */
export function sameLink(stored: ArtifactLink, sent: ArtifactLink | Record<string, unknown>): boolean {
  const keys = Object.keys(sent);
  const given = sent as Record<string, unknown>;
  return keys.length === 3 && keys.every((k) => (stored as unknown as Record<string, unknown>)[k] === given[k]);
}

const LINK_SCOPE: Partial<Record<RecordKind, string>> = { recipe: 'recipe-link', image: 'image-link' };

/** Another record has (or is about to have) the link path; a 422 on the wire. */
export class DuplicateLinkError extends InvalidInputError {
  constructor(path: string, kind: RecordKind, owner: string) {
    const what = kind === 'image' ? 'IMS image' : 'IMS recipe';
    super(
      `The link path ${path} matches the link path for the ${what} record ${owner}. The link value must be unique and cannot be duplicated. Determine the specific information that is missing or invalid and then re-run the request with valid information.`,
    );
  }
}

const duplicateLink = (path: string, kind: RecordKind, owner: string) => new DuplicateLinkError(path, kind, owner);

/** Where a soft-deleted image's deleted_manifest.json is kept, in the boot-images bucket. */
export function deletedManifestKey(id: string): string {
  return `deleted/${id}/deleted_manifest.json`;
}

async function holdsLink(store: RecordStore, kind: RecordKind, id: string, path: string): Promise<boolean> {
  const held = await store.get<{ link: ArtifactLink | null }>(kind, id);
  if (!held) return false;
  if (held.state === 'live') return held.record.link?.path === path;
  // A soft-deleted image leaves its artifacts in place and keeps the claim on its manifest's path
  // (images.ts) until it is undeleted or purged; it links to its deleted manifest meanwhile.
  const deletedAt = held.record.link ? parseS3Path(held.record.link.path) : undefined;
  return kind === 'image' && deletedAt?.key === deletedManifestKey(id);
}

/**
 * The record that claimed a link path, if any, and whether it is live and links to it (else its
 * claim is still pending, or left over from a crash).
 */
export async function linkHolder(store: RecordStore, kind: RecordKind, path: string): Promise<{ id: string; holds: boolean } | undefined> {
  const holder = await store.claimHolder(LINK_SCOPE[kind]!, path);
  return holder ? { id: holder.owner, holds: await holdsLink(store, kind, holder.owner, path) } : undefined;
}

/**
 * How long a claim whose owner does not hold the link yet is respected. Such a claim belongs to
 * a request still checking the link (a POST validating its manifest, an undelete copying the
 * artifacts back) or to one that crashed before its write; no request runs longer than a
 * Lambda can (15 minutes), so an older one is left over from a crash and is taken over.
 */
export const CLAIM_LEASE_MS = 15 * 60 * 1000;

/** Claims a link path for a live record; a 422 naming the holder when another record has it. */
export async function claimLink(store: RecordStore, kind: RecordKind, path: string, owner: string): Promise<void> {
  const scope = LINK_SCOPE[kind]!;
  for (let attempt = 0; attempt < 4; attempt++) {
    const holder = await store.claim(scope, path, owner);
    if (holder === undefined) return;
    if ((await holdsLink(store, kind, holder.owner, path)) || holder.ageMs < CLAIM_LEASE_MS) throw duplicateLink(path, kind, holder.owner);
    await store.release(scope, path, holder.owner);
  }
  throw duplicateLink(path, kind, owner);
}

export async function releaseLink(store: RecordStore, kind: RecordKind, path: string | undefined, owner: string): Promise<void> {
  if (path) await store.release(LINK_SCOPE[kind]!, path, owner);
}

export function deletedLocation(location: S3Location): S3Location {
  return { bucket: location.bucket, key: `deleted/${location.key}` };
}

/** The original key of a `deleted/...` key, or undefined when the key is not under `deleted`. */
export function restoredLocation(location: S3Location): S3Location | undefined {
  if (!location.key.startsWith('deleted')) return undefined;
  return { bucket: location.bucket, key: location.key.replace(/^deleted\/?/, '') };
}

/**
 * First half of a move: the copy. Idempotent, so a move interrupted after the copy (or after
 * the source was removed) can be run again: when the source is gone but the target is there,
 * the earlier copy is reused. Returns undefined when neither exists.
 */
export async function copyForMove(artifacts: ArtifactStore, from: S3Location, to: S3Location): Promise<ArtifactLink | undefined> {
  const source = await artifacts.head(from);
  if (source) {
    const { etag } = await artifacts.copy(from, to);
    return { etag, path: s3Path(to), type: 's3' };
  }
  const target = await artifacts.head(to);
  return target ? { etag: target.etag, path: s3Path(to), type: 's3' } : undefined;
}
