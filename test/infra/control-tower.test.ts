/**
 * AWS Control Tower's proactive controls (cdk-validator-cfnguard, run offline with the cfn-guard
 * binary of its package) on the synthesized stack, beside cdk-nag, and what a regulated account
 * enforces that a setting serves: a customer-managed KMS key for the table, the buckets and the
 * log groups, log retention, and a versioned access-log bucket. The synth is the app's own, with
 * the plugin registered as infra/app.ts does.
 */
import { describe, expect, test } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { ControlTowerChecks } from '#infra/constructs/control-tower.js';
import { CONTROL_TOWER_PLUGIN } from '#infra/constructs/nag.js';
import { KNOWN_HOSTS_SECRET, PRIVATE_CONTEXT, synthStack, UPLOADER } from './synth.js';

type Construct = { constructPath: string };
type Violation = { ruleName: string; violatingConstructs: Construct[] };
type Suppressed = Violation & { acknowledgedAt: string; reason?: string };

/** The stack synthesized with the Control Tower plugin: its unacknowledged findings, and the acknowledged ones. */
function controlTower(id: string, context: Record<string, unknown> = {}, change?: (s: ReturnType<typeof synthStack>) => void) {
  const synth = synthStack(id, context);
  change?.(synth);
  Validations.of(synth.app).addPlugins(new ControlTowerChecks());
  let failure: string | undefined;
  try {
    synth.app.synth({ force: true });
  } catch (error) {
    failure = (error as Error).message;
  }
  const reportFile = join(synth.app.outdir, 'validation-report.json');
  const reports = existsSync(reportFile) ? (JSON.parse(readFileSync(reportFile, 'utf8')).pluginReports as { pluginName: string; violations: Violation[]; suppressedViolations?: Suppressed[] }[]) : [];
  const report = reports.find((r) => r.pluginName === CONTROL_TOWER_PLUGIN);
  const findings = (report?.violations ?? []).flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName}: ${c.constructPath}`));
  return { ...synth, failure, findings, acknowledged: report?.suppressedViolations ?? [] };
}

const nagFindings = (scope: IConstruct) =>
  [new AwsSolutionsChecks(), new ServerlessChecks()].flatMap((pack) => pack.validateScope(scope).violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`));

const KEYED = { ...PRIVATE_CONTEXT, remoteNodeKnownHostsSecretArn: KNOWN_HOSTS_SECRET, customerManagedKey: 'true' };

describe('AWS Control Tower proactive controls', () => {
  test('the default stack has no unacknowledged finding; each acknowledgement sits on its resource, with the control and a reason', () => {
    const { failure, findings, acknowledged } = controlTower('ImsCt');
    expect(findings).toEqual([]);
    expect(failure).toBeUndefined();
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const a of acknowledged) {
      expect({ rule: a.ruleName, at: a.acknowledgedAt }).not.toEqual({ rule: a.ruleName, at: 'ImsCt' });
      // On the resource itself or on its construct (a function, a bucket, a log group), never above.
      for (const c of a.violatingConstructs) {
        const on = c.constructPath === a.acknowledgedAt || c.constructPath === `${a.acknowledgedAt}/Resource`;
        expect({ rule: a.ruleName, path: c.constructPath, on }).toEqual({ rule: a.ruleName, path: c.constructPath, on: true });
      }
      expect(a.reason).toMatch(/^CT\.[A-Z0-9]+\.PR\.\d+: \S/);
    }
  }, 300_000);

  test('nor the private stack with a customer-managed key, where no encryption finding is acknowledged but the access-log bucket\'s, nor the stack with the recipe-upload trigger', () => {
    const keyed = controlTower('ImsCtKeyed', KEYED);
    expect(keyed.findings).toEqual([]);
    expect(keyed.failure).toBeUndefined();
    const encryption = keyed.acknowledged.filter((a) => /encrypt/.test(a.ruleName)).flatMap((a) => a.violatingConstructs.map((c) => `${a.ruleName}: ${c.constructPath}`));
    expect(encryption).toEqual(['s3_bucket_default_encryption_kms_check: ImsCtKeyed/AccessLogs/Resource']);
    const upload = controlTower('ImsCtUpload', { recipeUploadTrigger: 'true', recipeUploadPrincipals: UPLOADER });
    expect(upload.findings).toEqual([]);
    expect(upload.failure).toBeUndefined();
  }, 600_000);

  test('a resource added without what the controls ask fails the synth, naming the control and the resource', () => {
    const { failure, findings } = controlTower('ImsCtBare', {}, ({ stack }) => {
      new s3.Bucket(stack, 'Unversioned', { enforceSSL: true });
    });
    expect(findings).toEqual(expect.arrayContaining(['s3_bucket_versioning_enabled_check: ImsCtBare/Unversioned/Resource']));
    // Only the new bucket is reported.
    expect(findings.filter((f) => !f.includes('ImsCtBare/Unversioned/'))).toEqual([]);
    expect(failure).toMatch(/CT\.S3\.PR\.11[\s\S]*ImsCtBare\/Unversioned\/Resource/);
  }, 300_000);
});

describe('customerManagedKey', () => {
  test('off by default: AWS-owned keys, and no key in the stack but the alarm topic\'s', () => {
    const { ofType, resources, stack, logicalId } = synthStack('ImsNoKey');
    expect(stack.key).toBeUndefined();
    expect(ofType('AWS::KMS::Key').map(([id]) => id)).toEqual([expect.stringMatching(/^MonitoringAlarmTopicKey/)]);
    expect(resources[logicalId(stack.table)].Properties.SSESpecification).toBeUndefined();
    for (const [, group] of ofType('AWS::Logs::LogGroup')) expect(group.Properties.KmsKeyId).toBeUndefined();
  });

  test('on: the table, the data buckets and every log group are encrypted with the stack\'s key, rotated and retained; the access-log bucket stays SSE-S3', () => {
    const { stack, resources, ofType, logicalId, app } = synthStack('ImsKey', KEYED);
    const keyRef = { 'Fn::GetAtt': [logicalId(stack.key!), 'Arn'] };
    const key = resources[logicalId(stack.key!)] as { Properties: Record<string, any>; DeletionPolicy?: string };
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe('Retain');
    expect(resources[logicalId(stack.table)].Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyRef });
    for (const bucket of [stack.imsBucket, stack.bootImagesBucket]) {
      expect(resources[logicalId(bucket)].Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
        { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyRef } },
      ]);
    }
    const [[, accessLogs]] = ofType('AWS::S3::Bucket').filter(([id]) => id.startsWith('AccessLogs'));
    expect(accessLogs.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }]);
    const groups = ofType('AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThanOrEqual(stack.allFunctions().length + 2);
    for (const [id, group] of groups) expect({ id, key: group.Properties.KmsKeyId }).toEqual({ id, key: keyRef });
    // CloudWatch Logs may use it for this account's log groups; the signing user (pre-signed URLs, pod uploads) may decrypt and make data keys.
    const statements = key.Properties.KeyPolicy.Statement as { Sid?: string; Effect: string; Action: string | string[]; Condition?: unknown; Principal?: unknown }[];
    expect(statements.find((s) => s.Sid === 'CloudWatchLogsOfThisAccount')?.Condition).toEqual({ ArnLike: { 'kms:EncryptionContext:aws:logs:arn': expect.anything() } });
    const userPolicy = ofType('AWS::IAM::Policy').find(([, p]) => JSON.stringify(p.Properties.Users ?? []).includes(logicalId(stack.s3SigningUser)))!;
    expect(userPolicy[1].Properties.PolicyDocument.Statement).toContainEqual({ Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: keyRef });
    // Every function that writes lists under lists/ may make data keys with it too.
    for (const f of [stack.apiFunctions['public-keys'], stack.apiFunctions['remote-build-nodes']]) {
      const role = logicalId(f.fn.role!);
      const actions = ofType('AWS::IAM::Policy')
        .filter(([, p]) => JSON.stringify(p.Properties.Roles ?? []).includes(`"${role}"`))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[] }[])
        .flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
      expect(actions).toEqual(expect.arrayContaining(['kms:Decrypt', 'kms:GenerateDataKey']));
    }
    expect(nagFindings(app)).toEqual([]);
  });

  test('every key of the stack lets only AWS services create grants on it', () => {
    const { ofType } = synthStack('ImsKeys', KEYED);
    const keys = ofType('AWS::KMS::Key');
    expect(keys).toHaveLength(2);
    for (const [id, key] of keys) {
      expect({ id, statements: key.Properties.KeyPolicy.Statement }).toEqual({
        id,
        statements: expect.arrayContaining([
          {
            Sid: 'GrantsOnlyForAwsResources',
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 'kms:CreateGrant',
            Resource: '*',
            Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
          },
        ]),
      });
    }
  });
});

describe('logs and the access-log bucket', () => {
  test('every log group keeps its events logRetentionDays (365 by default, Control Tower\'s minimum); other periods are refused unless CloudWatch offers them', () => {
    const plain = synthStack('ImsRetention');
    const groups = plain.ofType('AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThanOrEqual(plain.stack.allFunctions().length + 2);
    for (const [id, group] of groups) expect({ id, days: group.Properties.RetentionInDays }).toEqual({ id, days: 365 });
    const longer = synthStack('ImsRetention2', { logRetentionDays: '731' });
    for (const [, group] of longer.ofType('AWS::Logs::LogGroup')) expect(group.Properties.RetentionInDays).toBe(731);
    expect(() => synthStack('ImsRetention3', { logRetentionDays: '100' })).toThrow("context logRetentionDays: '100' is not valid; accepted: one of CloudWatch Logs' retention periods");
  });

  test('the access-log bucket is versioned, and expires old versions as the data buckets do', () => {
    const { ofType } = synthStack('ImsAccessLogs', { noncurrentVersionDays: '9' });
    const [[, bucket]] = ofType('AWS::S3::Bucket').filter(([id]) => id.startsWith('AccessLogs'));
    expect(bucket.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.Properties.LifecycleConfiguration.Rules).toContainEqual(expect.objectContaining({ ExpirationInDays: 365, NoncurrentVersionExpiration: { NoncurrentDays: 9 } }));
  });
});
