/**
 * The stack's customer-managed KMS key (setting customerManagedKey): the buckets, the records
 * table and the log groups are encrypted with it. Rotated yearly, kept when the stack is deleted
 * (the retained table and buckets stay readable), and, as every key of the stack, no grant on it
 * unless for an AWS resource (denyGrantsToNonServices).
 */
import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';

/**
 * Only AWS services (DynamoDB, for one) may create grants on the key, so no principal can hand
 * its use on to another (AWS Control Tower's CT.KMS.PR.3).
 */
export function denyGrantsToNonServices(key: kms.Key): void {
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'GrantsOnlyForAwsResources',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:CreateGrant'],
      resources: ['*'],
      conditions: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
    }),
  );
}

export function createServiceKey(scope: Construct, id: string): kms.Key {
  const key = new kms.Key(scope, id, {
    description: 'IMS: encrypts the records table, the artifact buckets and the log groups',
    enableKeyRotation: true,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  // CloudWatch Logs encrypts the stack's log groups with it; only for log groups of this account and region.
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchLogsOfThisAccount',
      principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` } },
    }),
  );
  denyGrantsToNonServices(key);
  return key;
}
