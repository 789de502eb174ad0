/**
 * Whole lists too large for a Lambda response are written to S3 under this prefix of the IMS
 * bucket and handed out through short-lived pre-signed URLs (list-response.ts); a lifecycle rule
 * of the bucket expires them (infra/stacks/ims-stack.ts).
 */
export const LIST_OBJECT_PREFIX = 'lists/';
/** Lifetime of the pre-signed URL of a list object. */
export const LIST_URL_SECONDS = 300;
/** Days a list object is kept before the bucket's lifecycle rule deletes it. */
export const LIST_OBJECT_DAYS = 1;
