/**
 * S3 event handler: a recipe archive uploaded under RECIPE_UPLOAD_PREFIX of the IMS bucket
 * registers its recipe and may start a build (shared/domain/recipe-upload.ts). Deployed, S3
 * invokes it through the bucket's notification; embedded, infra/local/embedded.ts hands it the
 * embedded S3's events unchanged; with radosgw, the receiver of its HTTP push does the same.
 * Every path delivers every object-created event: the filtering is done here, once.
 */
import type { S3Event, S3EventRecord } from 'aws-lambda';
import { DomainError, OperationFailedError, UnavailableError } from '#shared/domain/errors.js';
import { handleRecipeUpload, type RecipeUpload, type UploadOutcome } from '#shared/domain/recipe-upload.js';
import { logger } from '#shared/logger.js';
import { lambdaHandler } from '#shared/observability.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';

/** AWS URL-encodes keys in events ('+' for a space); radosgw sends them as they are. */
function keyOf(record: S3EventRecord): string {
  const key = record.s3.object.key;
  if (record.eventSource === 'ceph:s3') return key;
  try {
    return decodeURIComponent(key.replaceAll('+', ' '));
  } catch {
    return key;
  }
}

export function uploadOf(record: S3EventRecord): RecipeUpload {
  const object = record.s3.object;
  return {
    eventName: record.eventName,
    bucket: record.s3.bucket.name,
    key: keyOf(record),
    etag: object.eTag,
    versionId: object.versionId || undefined,
    sequencer: object.sequencer,
  };
}

function report(outcome: UploadOutcome, upload: RecipeUpload): void {
  const where = { bucket: upload.bucket, key: upload.key, event: upload.eventName };
  switch (outcome.result) {
    case 'ignored':
      return logger.debug('not a recipe upload', where);
    case 'rejected':
      return logger.warn('recipe upload rejected; nothing was registered', { ...where, errors: outcome.errors });
    case 'registered':
    case 'updated':
      return logger.info(`recipe upload ${outcome.result} a recipe`, { ...where, recipeId: outcome.recipeId, jobId: outcome.jobId });
    default:
      return logger.info(`recipe upload: ${outcome.result}`, where);
  }
}

/**
 * Handles each record on its own. Bad input is logged and dropped: retrying cannot fix it, and
 * a throw would only make S3 deliver it again. Any other failure (a store that is down) is
 * thrown after the other records are done, so that Lambda retries the event; the upload's
 * claims make that retry finish the work instead of repeating it.
 */
export async function handleS3Event(event: S3Event, app: AppContext): Promise<UploadOutcome[]> {
  const rules = { bucket: app.config.imsBucket, prefix: app.config.recipeUploadPrefix };
  const outcomes: UploadOutcome[] = [];
  const failures: unknown[] = [];
  for (const record of event.Records ?? []) {
    const upload = uploadOf(record);
    try {
      outcomes.push(await handleRecipeUpload(app, upload, rules));
    } catch (error) {
      if (!(error instanceof DomainError) || error instanceof UnavailableError || error instanceof OperationFailedError) {
        logger.error('recipe upload failed; the event will be retried', { bucket: upload.bucket, key: upload.key, error: error as Error });
        failures.push(error);
        continue;
      }
      outcomes.push({ result: 'rejected', errors: { _upload: [error.detail] } });
    }
    report(outcomes[outcomes.length - 1], upload);
  }
  if (failures.length > 0) throw new AggregateError(failures, `${failures.length} recipe upload(s) failed`);
  return outcomes;
}

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
const context = contextFrom(process.env);

export const handler = lambdaHandler(async (event: S3Event): Promise<void> => {
  await handleS3Event(event, context());
});
