/** S3 buckets with the defaults every bucket of the service shares. */
import { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledgeControl, UNENCRYPTED_BY_CHOICE } from './nag.js';

const PRIVATE_DEFAULTS = {
  blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  enforceSSL: true,
  objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
  versioned: true,
} satisfies s3.BucketProps;

/** AWS Control Tower's bucket controls that no bucket of the service meets, each with its reason. */
function acknowledgeBucketControls(bucket: s3.Bucket): void {
  acknowledgeControl(
    bucket,
    'CT.S3.PR.4',
    's3_event_notifications_enabled_check',
    'No process watches these objects: artifacts and recipes are written through the API and the job workflow, which record each one. (With recipeUploadTrigger the ims bucket notifies the upload function through the configuration aws-cdk-lib writes at deploy time.)',
  );
  acknowledgeControl(
    bucket,
    'CT.S3.PR.9',
    's3_bucket_object_lock_enabled_check',
    'Objects are meant to be deleted and replaced: deleting an image or recipe removes its artifacts, and lifecycle rules expire old versions and whole-list objects. Versioning keeps replaced and deleted objects recoverable for noncurrentVersionDays; Object Lock would keep them forever.',
  );
}

/**
 * Where the other buckets' server access logs go. S3 log delivery writes only to a bucket
 * encrypted with SSE-S3 (never SSE-KMS), and not to one that logs its own access.
 */
export function createAccessLogsBucket(scope: Construct, id: string, props: { noncurrentVersionDays: number }): s3.Bucket {
  const bucket = new s3.Bucket(scope, id, {
    ...PRIVATE_DEFAULTS,
    encryption: s3.BucketEncryption.S3_MANAGED,
    lifecycleRules: [{ expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays) }],
  });
  acknowledgeBucketControls(bucket);
  acknowledgeControl(bucket, 'CT.S3.PR.2', 's3_bucket_logging_enabled_check', 'This bucket holds the access logs of the others; logging its own access into itself would never end, and into another bucket would need a third.');
  acknowledgeControl(
    bucket,
    'CT.S3.PR.10',
    's3_bucket_default_encryption_kms_check',
    'S3 server access log delivery writes only to buckets encrypted with SSE-S3: with SSE-KMS no log would arrive. The logs hold request metadata, no artifact data.',
  );
  return bucket;
}

export interface DataBucketProps {
  bucketName?: string;
  accessLogs: s3.IBucket;
  /** Days a replaced or deleted version is kept. */
  noncurrentVersionDays: number;
  /** With a key, SSE-KMS with it (and an S3 Bucket Key, which spares most of the KMS requests of uploads and downloads); else SSE-S3. */
  encryptionKey?: kms.IKey;
}

export function createDataBucket(scope: Construct, id: string, props: DataBucketProps): s3.Bucket {
  const bucket = new s3.Bucket(scope, id, {
    ...PRIVATE_DEFAULTS,
    ...(props.encryptionKey ? { encryption: s3.BucketEncryption.KMS, encryptionKey: props.encryptionKey, bucketKeyEnabled: true } : { encryption: s3.BucketEncryption.S3_MANAGED }),
    bucketName: props.bucketName,
    serverAccessLogsBucket: props.accessLogs,
    serverAccessLogsPrefix: `${id}/`,
    lifecycleRules: [
      {
        // Artifacts are uploaded in parts; an interrupted upload's parts would be billed forever.
        abortIncompleteMultipartUploadAfter: Duration.days(7),
        // Replaced or deleted artifacts stay recoverable for a while, not forever.
        noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays),
      },
    ],
  });
  acknowledgeBucketControls(bucket);
  if (!props.encryptionKey) acknowledgeControl(bucket, 'CT.S3.PR.10', 's3_bucket_default_encryption_kms_check', UNENCRYPTED_BY_CHOICE);
  return bucket;
}
