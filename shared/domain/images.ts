import { InvalidInputError, PatchConflictError } from './errors.js';
import { getInState, mutate, removeInState } from './lifecycle.js';
import { claimLink, copyForMove, deletedManifestKey, linkRepr, parseS3Path, releaseLink, restoredLocation, s3Path, sameLink } from './links.js';
import { imageLabelFor, linkedArtifacts, MANIFEST_TYPE, readJsonObject, readManifest, RETRY_HINT, validateImageManifest } from './manifest.js';
import { formatManifestTime, formatTimestamp, sortableTimestamp } from './time.js';
import { forEachRecord, markDeleted, markLive, purge, withArtifactLease, type DeleteMode } from './soft-delete.js';
import type { DomainContext } from './context.js';
import type { S3Location } from './ports.js';
import type { ArtifactLink, Deleted, ImageRecord, RecordState } from './records.js';

const KIND = 'image';

export type ImageInput = Omit<ImageRecord, 'id' | 'created'>;

export interface MetadataOperation {
  operation: 'set' | 'remove';
  key: string;
  value: string;
}

export interface ImagePatch {
  link?: ArtifactLink;
  arch?: ImageRecord['arch'];
  metadata?: MetadataOperation;
}

/**
 * The original converts image POST metadata before validating it: an object with a `key`
 * member is read as one `{key: value}` entry (value defaulting to ""); anything else is kept.
 */
export function normalizeImageCreateBody(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const b = body as Record<string, unknown>;
  const m = b.metadata;
  if (typeof m === 'object' && m !== null && !Array.isArray(m) && 'key' in m) {
    const entry = m as Record<string, unknown>;
    return { ...b, metadata: { [String(entry.key)]: 'value' in entry ? entry.value : '' } };
  }
  return body;
}

async function claimAndValidate(ctx: DomainContext, id: string, link: ArtifactLink): Promise<void> {
  await claimLink(ctx.store, KIND, link.path, id);
  try {
    await validateImageManifest(ctx.artifacts, link, imageLabelFor(link), ctx.settings.maxManifestBytes);
  } catch (error) {
    await releaseLink(ctx.store, KIND, link.path, id);
    throw error;
  }
}

export async function createImage(ctx: DomainContext, input: ImageInput): Promise<ImageRecord> {
  const micros = ctx.clock.nowMicros();
  const record: ImageRecord = {
    id: ctx.ids.newId(),
    created: formatTimestamp(micros),
    name: input.name,
    link: input.link,
    arch: input.arch,
    metadata: input.metadata,
  };
  if (record.link) await claimAndValidate(ctx, record.id, record.link);
  await ctx.store.create(KIND, record.id, record, sortableTimestamp(micros));
  return record;
}

/**
 * Creates an image under an id chosen by the caller (a job's resultant image). Creating the
 * same id again returns the image already there, so a retried registration makes no second one.
 */
export async function createImageWithId(ctx: DomainContext, id: string, input: ImageInput): Promise<ImageRecord> {
  const existing = await ctx.store.get<ImageRecord>(KIND, id);
  if (existing) return existing.record;
  const micros = ctx.clock.nowMicros();
  const record: ImageRecord = { id, created: formatTimestamp(micros), name: input.name, link: input.link, arch: input.arch, metadata: input.metadata };
  if (record.link) await claimAndValidate(ctx, id, record.link);
  if (!(await ctx.store.create(KIND, id, record, sortableTimestamp(micros)))) {
    return (await ctx.store.get<ImageRecord>(KIND, id))!.record;
  }
  return record;
}

export async function getImage(ctx: DomainContext, id: string, state: RecordState = 'live') {
  return (await getInState<ImageRecord>(ctx.store, KIND, id, state)).record;
}

export async function patchImage(ctx: DomainContext, id: string, patch: ImagePatch, sentLink?: Record<string, unknown>): Promise<ImageRecord> {
  let claimed: string | undefined;
  try {
    const updated = await mutate<ImageRecord>(ctx.store, KIND, id, 'live', async ({ record }) => {
      const next: ImageRecord = { ...record, metadata: { ...record.metadata } };
      if (patch.link) {
        if (record.link) {
          if (!sameLink(record.link, sentLink ?? patch.link)) throw new PatchConflictError();
        } else {
          if (claimed !== patch.link.path) {
            await claimAndValidate(ctx, id, patch.link);
            claimed = patch.link.path;
          }
          next.link = patch.link;
        }
      }
      if (patch.arch !== undefined) next.arch = patch.arch;
      if (patch.metadata) {
        if (patch.metadata.operation === 'set') next.metadata[patch.metadata.key] = patch.metadata.value;
        else delete next.metadata[patch.metadata.key];
      }
      return { record: next, state: 'live' };
    });
    return updated!;
  } catch (error) {
    if (claimed) await releaseLink(ctx.store, KIND, claimed, id);
    throw error;
  }
}

async function removeQuietly(ctx: DomainContext, location: S3Location): Promise<void> {
  try {
    await ctx.artifacts.remove(location);
  } catch {
    // As in the original, failing to remove an artifact never keeps a record alive.
  }
}

/**
 * Removes every artifact a manifest lists and then the manifest; an unreadable manifest is
 * skipped. Returns the path of the image manifest a deleted manifest lists (whose link claim the
 * deleted image still holds), if any.
 */
async function removeManifestAndArtifacts(ctx: DomainContext, link: ArtifactLink | null): Promise<string | undefined> {
  const location = link ? parseS3Path(link.path) : undefined;
  if (!location) return undefined;
  const manifest = await readJsonObject(ctx.artifacts, location, ctx.settings.maxManifestBytes).catch(() => undefined);
  const listed = manifest ? linkedArtifacts(manifest) : [];
  for (const { location: artifact } of listed) await removeQuietly(ctx, artifact);
  await removeQuietly(ctx, location);
  const imageManifest = listed.find(({ entry }) => entry.type === MANIFEST_TYPE);
  return imageManifest ? s3Path(imageManifest.location) : undefined;
}

export async function deleteImage(ctx: DomainContext, id: string, mode: DeleteMode, cascade = true): Promise<void> {
  if (mode === 'soft') return softDeleteImage(ctx, id);
  await withArtifactLease(ctx, KIND, id, async () => {
    let path: string | undefined;
    await removeInState<ImageRecord>(ctx.store, KIND, id, 'live', async ({ record }) => {
      path = record.link?.path;
      if (cascade) await removeManifestAndArtifacts(ctx, record.link);
    });
    await releaseLink(ctx.store, KIND, path, id);
  });
}

/**
 * §6.6 without moving a byte: a rootfs of many GiB cannot be copied within a request, and a copy
 * cut off half-way would start over. The artifacts and the manifest stay where they are; a
 * deleted_manifest.json in the boot-images bucket lists them there (with their ETags, md5 or
 * not, and `in_place: true`), and the record is marked deleted pointing at it, so `link.path`
 * is what the original's clients read. One HEAD per artifact, one PUT and one record write,
 * whatever the sizes; repeating it after a crash rewrites the same deleted manifest. The deleted
 * image keeps the claim on its manifest's link path (links.ts): no other image can take the
 * objects it still owns.
 */
export function softDeleteImage(ctx: DomainContext, id: string): Promise<void> {
  return withArtifactLease(ctx, KIND, id, () => softDeleteImageHoldingLease(ctx, id));
}

async function softDeleteImageHoldingLease(ctx: DomainContext, id: string): Promise<void> {
  const { record } = await getInState<ImageRecord>(ctx.store, KIND, id, 'live');
  const manifestAt = record.link ? parseS3Path(record.link.path) : undefined;
  const manifest = manifestAt
    ? await readJsonObject(ctx.artifacts, manifestAt, ctx.settings.maxManifestBytes).catch(() => undefined)
    : undefined;
  if (!manifestAt || !manifest) {
    await markDeleted<ImageRecord>(ctx, KIND, id);
    await releaseLink(ctx.store, KIND, record.link?.path, id);
    return;
  }
  const micros = ctx.clock.nowMicros();
  const entries = [...linkedArtifacts(manifest), { entry: { type: MANIFEST_TYPE } as Record<string, unknown>, location: manifestAt }];
  const found = await Promise.all(entries.map(async ({ entry, location }) => ({ entry, location, info: await ctx.artifacts.head(location) })));
  const listed = found
    .filter(({ info }) => info !== undefined)
    .map(({ entry, location, info }) => ({
      type: entry.type,
      ...(typeof entry.md5 === 'string' ? { md5: entry.md5 } : {}),
      link: { etag: info!.etag, path: s3Path(location), type: 's3' },
    }));
  const deletedManifestAt = { bucket: ctx.settings.bootImagesBucket, key: deletedManifestKey(id) };
  await ctx.artifacts.putJson(deletedManifestAt, { version: '1.0', created: formatManifestTime(micros), artifacts: listed, [IN_PLACE]: true });
  // The deleted manifest's `created` is the record's `deleted` time, as in the original.
  await markDeleted<ImageRecord>(ctx, KIND, id, { link: { path: s3Path(deletedManifestAt), type: 's3', etag: '' } }, micros);
}

export async function deleteAllImages(ctx: DomainContext, mode: DeleteMode, cascade = true): Promise<void> {
  await forEachRecord<ImageRecord>(ctx, KIND, 'live', (id) => deleteImage(ctx, id, mode, cascade));
}

/** Marks a deleted manifest whose artifacts were left where they were (every soft delete now). */
const IN_PLACE = 'in_place';

/**
 * §7.3. An image soft-deleted in place comes back by pointing the record at its manifest again
 * (a HEAD for its ETag and one record write) and removing the deleted manifest. One soft-deleted
 * by an earlier version, whose artifacts were moved under `deleted/`, has every listed artifact
 * copied back to its original key first, then the copies removed.
 */
export function undeleteImage(ctx: DomainContext, id: string): Promise<void> {
  return withArtifactLease(ctx, KIND, id, () => undeleteImageHoldingLease(ctx, id));
}

async function undeleteImageHoldingLease(ctx: DomainContext, id: string): Promise<void> {
  const { record } = await getInState<Deleted<ImageRecord>>(ctx.store, KIND, id, 'deleted');
  const linkAt = record.link ? parseS3Path(record.link.path) : undefined;
  if (!record.link || !linkAt || !linkAt.key.startsWith('deleted')) {
    if (record.link) await claimLink(ctx.store, KIND, record.link.path, id);
    await markLive<ImageRecord>(ctx, KIND, id);
    return;
  }
  const manifest = (await readManifest(ctx.artifacts, record.link, ctx.settings.maxManifestBytes)) as Record<string, unknown> | null;
  if (typeof manifest !== 'object' || manifest === null || !Array.isArray(manifest.artifacts)) {
    throw new InvalidInputError("The image's manifest.json is malformed. The manifest does not contain an artifacts section.");
  }
  const inPlace = manifest[IN_PLACE] === true;
  const copies: S3Location[] = [];
  const restores: { from: S3Location; to: S3Location; type: unknown }[] = [];
  for (const { entry, location } of linkedArtifacts(manifest)) {
    const to = inPlace ? location : restoredLocation(location);
    if (to) restores.push({ from: location, to, type: entry.type });
  }
  const manifestEntry = restores.find((r) => r.type === MANIFEST_TYPE);
  const livePath = manifestEntry ? s3Path(manifestEntry.to) : undefined;
  // In place, the claim is the deleted image's already; claiming again refreshes it.
  if (livePath) await claimLink(ctx.store, KIND, livePath, id);
  let liveLink: ArtifactLink | null = null;
  try {
    if (inPlace && manifestEntry) {
      const info = await ctx.artifacts.head(manifestEntry.to);
      if (info) liveLink = { etag: info.etag, path: s3Path(manifestEntry.to), type: 's3' };
    }
    for (const restore of inPlace ? [] : restores) {
      const link = await copyForMove(ctx.artifacts, restore.from, restore.to).catch(() => undefined);
      if (!link) continue; // as in the original, one missing artifact does not stop the rest
      copies.push(restore.from);
      if (restore === manifestEntry) liveLink = link;
    }
    if (manifestEntry && !liveLink) {
      throw new InvalidInputError(`Unable to read manifest file for the s3 artifact ${linkRepr(record.link)}. ${RETRY_HINT}`);
    }
    await markLive<ImageRecord>(ctx, KIND, id, { link: liveLink });
  } catch (error) {
    // A failed in-place undelete leaves the claim with the still deleted image.
    if (livePath && !inPlace) await releaseLink(ctx.store, KIND, livePath, id);
    throw error;
  }
  for (const copy of copies) await ctx.artifacts.remove(copy);
  await ctx.artifacts.remove(linkAt);
}

export async function undeleteAllImages(ctx: DomainContext): Promise<void> {
  await forEachRecord(ctx, KIND, 'deleted', (id) => undeleteImage(ctx, id));
}

export async function purgeImage(ctx: DomainContext, id: string): Promise<void> {
  await withArtifactLease(ctx, KIND, id, async () => {
    let claimed: string | undefined;
    await purge<ImageRecord>(ctx, KIND, id, async ({ record }) => {
      claimed = await removeManifestAndArtifacts(ctx, record.link);
    });
    await releaseLink(ctx.store, KIND, claimed, id);
  });
}

export async function purgeAllImages(ctx: DomainContext): Promise<void> {
  await forEachRecord(ctx, KIND, 'deleted', (id) => purgeImage(ctx, id));
}
