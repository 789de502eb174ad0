/**
 * A recipe archive uploaded to the IMS bucket registers (or updates) its recipe and may start a
 * create job: the use case behind functions/events/recipe-upload.ts, for S3 notifications when
 * deployed and for the embedded S3's events locally.
 *
 * S3 delivers each event at least once, so handling one upload must be idempotent, also when a
 * delivery dies halfway. An upload is identified by bucket, key, ETag, version id and the
 * event's sequencer (a re-delivery repeats all of them; a new PUT of the same key gets a new
 * sequencer). Its first delivery claims that identity for a freshly generated upload id; every
 * later delivery reads the same upload id back from the claim, and every id the upload writes
 * is chosen from it: the recipe it creates has that id, the job's id is derived from it. Records
 * are created conditionally on their id, so a repeat finds what an earlier delivery wrote and
 * finishes only what is missing. A second claim marks the upload done; after it, a delivery
 * changes nothing, even when the user has since deleted the recipe or the job.
 */
import { createHash } from 'node:crypto';
import { DuplicateLinkError, linkHolder, s3Path } from './links.js';
import { mutate } from './lifecycle.js';
import { createJob, nameBasedId } from './job-create.js';
import type { JobContext } from './job-state.js';
import { createRecipe } from './recipes.js';
import { parseUploadRequest, SIDECAR_SUFFIX, type UploadRequest } from './recipe-upload-request.js';
import { ObjectTooLargeError, type S3Location } from './ports.js';
import type { ErrorMap } from './errors.js';
import type { ArtifactLink, RecipeRecord } from './records.js';

/** One object-created notification, as the handler reads it from the event record. */
export interface RecipeUpload {
  eventName: string;
  bucket: string;
  /** The object key, decoded. */
  key: string;
  /** The ETag the event reports; absent for some event kinds. */
  etag?: string;
  versionId?: string;
  sequencer?: string;
}

export interface UploadRules {
  /** The IMS bucket (S3_IMS_BUCKET): the only one whose uploads are recipes. */
  bucket: string;
  /** RECIPE_UPLOAD_PREFIX. */
  prefix: string;
}

export type UploadOutcome =
  | { result: 'ignored' | 'undescribed' | 'gone' | 'superseded' | 'repeat' }
  | { result: 'rejected'; errors: ErrorMap }
  | { result: 'registered' | 'updated'; recipeId: string; jobId?: string };

export const ARCHIVE_SUFFIXES = ['.tgz', '.tar.gz'];
/**
 * Uploads only: a copy is not one. The service itself copies an archive back into place when a
 * recipe is undeleted, and that must not register or build anything.
 */
const UPLOAD_EVENTS = ['ObjectCreated:Put', 'ObjectCreated:Post', 'ObjectCreated:CompleteMultipartUpload'];
const SIDECAR_MAX_BYTES = 64 * 1024;
const UPLOAD_SCOPE = 'recipe-upload';
const DONE_SCOPE = 'recipe-upload-done';

export function isRecipeUpload(upload: RecipeUpload, rules: UploadRules): boolean {
  // radosgw has sent the names with an `s3:` prefix in some releases.
  const event = upload.eventName.replace(/^s3:/, '');
  return (
    UPLOAD_EVENTS.includes(event) &&
    upload.bucket === rules.bucket &&
    upload.key.startsWith(rules.prefix) &&
    ARCHIVE_SUFFIXES.some((suffix) => upload.key.endsWith(suffix))
  );
}

function uploadIdentity(upload: RecipeUpload, etag: string): string {
  const parts = [upload.bucket, upload.key, etag, upload.versionId ?? '', upload.sequencer ?? ''];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** The ETag without quotes, as events and HEAD responses may or may not quote it. */
const bare = (etag: string | undefined) => (etag ?? '').replaceAll('"', '');

async function readSidecar(ctx: JobContext, at: S3Location): Promise<string | undefined | ObjectTooLargeError> {
  try {
    return await ctx.artifacts.readText({ bucket: at.bucket, key: `${at.key}${SIDECAR_SUFFIX}` }, SIDECAR_MAX_BYTES);
  } catch (error) {
    if (error instanceof ObjectTooLargeError) return error;
    throw error;
  }
}

/** Checks the request against the store: the public key of a build must exist (as POST /jobs requires). */
async function storeErrors(ctx: JobContext, request: UploadRequest): Promise<ErrorMap | undefined> {
  if (!request.build) return undefined;
  const key = await ctx.store.get('public-key', request.build.public_key_id);
  if (key?.state === 'live') return undefined;
  return { public_key_id: [`No IMS public-key record found matching id=${request.build.public_key_id}`] };
}

/** Registers or updates the recipe, then starts the build it asks for; see the module comment. */
export async function handleRecipeUpload(ctx: JobContext, upload: RecipeUpload, rules: UploadRules): Promise<UploadOutcome> {
  if (!isRecipeUpload(upload, rules)) return { result: 'ignored' };
  const location = { bucket: upload.bucket, key: upload.key };
  const object = await ctx.artifacts.head(location);
  if (!object) return { result: 'gone' };
  // Overwritten since this event: the newer upload's own event registers what is there now.
  if (bare(upload.etag) && bare(upload.etag) !== bare(object.etag)) return { result: 'superseded' };

  const sidecar = await readSidecar(ctx, location);
  if (sidecar instanceof ObjectTooLargeError) return { result: 'rejected', errors: { _sidecar: [`Larger than ${SIDECAR_MAX_BYTES} bytes.`] } };
  const parsed = parseUploadRequest(object.metadata, sidecar);
  if (parsed.kind === 'undescribed') return { result: 'undescribed' };
  if (parsed.kind === 'invalid') return { result: 'rejected', errors: parsed.errors };
  const errors = await storeErrors(ctx, parsed.request);
  if (errors) return { result: 'rejected', errors };

  const identity = uploadIdentity(upload, bare(object.etag));
  if (await ctx.store.claimHolder(DONE_SCOPE, identity)) return { result: 'repeat' };
  const fresh = ctx.ids.newId();
  const uploadId = (await ctx.store.claim(UPLOAD_SCOPE, identity, fresh))?.owner ?? fresh;

  const link: ArtifactLink = { path: s3Path(location), etag: bare(object.etag), type: 's3' };
  const { recipe, created } = await registerRecipe(ctx, uploadId, parsed.request, link);
  const build = parsed.request.build;
  const job = build
    ? await createJob(ctx, { job_type: 'create', artifact_id: recipe.id, ...build }, nameBasedId(`ims-recipe-upload-job:${uploadId}`))
    : undefined;
  await ctx.store.claim(DONE_SCOPE, identity, uploadId);
  return { result: created ? 'registered' : 'updated', recipeId: recipe.id, ...(job ? { jobId: job.id } : {}) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The live recipe linking to the object is updated; without one, a recipe with the upload's id
 * is created. Another record may claim the link between our look and our claim (a POST
 * /recipes, or another upload of the same key): then we look again, and update that one.
 */
async function registerRecipe(ctx: JobContext, uploadId: string, request: UploadRequest, link: ArtifactLink): Promise<{ recipe: RecipeRecord; created: boolean }> {
  for (let attempt = 0; ; attempt++) {
    const holder = await linkHolder(ctx.store, 'recipe', link.path);
    if (holder?.holds && holder.id !== uploadId) return { recipe: await updateRecipe(ctx, holder.id, request, link), created: false };
    try {
      return { recipe: await createRecipe(ctx, { ...request.recipe, link }, uploadId), created: true };
    } catch (error) {
      if (!(error instanceof DuplicateLinkError) || attempt >= 5) throw error;
      await sleep(50 * 2 ** attempt);
    }
  }
}

/** Every field the upload describes, and the new ETag; the link path is the same object. */
async function updateRecipe(ctx: JobContext, id: string, request: UploadRequest, link: ArtifactLink): Promise<RecipeRecord> {
  let current: RecipeRecord | undefined;
  const updated = await mutate<RecipeRecord>(ctx.store, 'recipe', id, 'live', async ({ record }) => {
    current = record;
    const next: RecipeRecord = { ...record, ...request.recipe, link };
    return JSON.stringify(next) === JSON.stringify(record) ? undefined : { record: next, state: 'live' };
  });
  return updated ?? current!;
}
