/** S3 buckets with the defaults every bucket of the service shares. */
import { Duration } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

const PRIVATE_DEFAULTS = {
  blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  encryption: s3.BucketEncryption.S3_MANAGED,
  enforceSSL: true,
  objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
} satisfies s3.BucketProps;

/** Where the other buckets' server access logs go (S3 log delivery needs SSE-S3 here). */
export function createAccessLogsBucket(scope: Construct, id: string): s3.Bucket {
  return new s3.Bucket(scope, id, {
    ...PRIVATE_DEFAULTS,
    lifecycleRules: [{ expiration: Duration.days(365) }],
  });
}

export interface DataBucketProps {
  bucketName?: string;
  accessLogs: s3.IBucket;
  /** Days a replaced or deleted version is kept. */
  noncurrentVersionDays: number;
}

export function createDataBucket(scope: Construct, id: string, props: DataBucketProps): s3.Bucket {
  return new s3.Bucket(scope, id, {
    ...PRIVATE_DEFAULTS,
    bucketName: props.bucketName,
    versioned: true,
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
}
