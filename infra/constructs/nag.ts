/**
 * cdk-nag acknowledgements, and those of AWS Control Tower's proactive controls (run by
 * cdk-validator-cfnguard), each with the reason the finding is accepted. cdk-nag v3 reads them
 * from CDK's `Validations.of(scope).acknowledge()`, on the resource and on every construct above
 * it, so each one sits on the one resource it is about (a policy, a role, a function, a secret,
 * a route), never on the stack or a parent of many resources; a wildcard finding (IAM5) is
 * acknowledged by its exact id, naming the resource it is about. A new finding anywhere else
 * still fails the synth, in both packs (AwsSolutions and Serverless).
 */
import { Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** The name of the validation plugin that runs the Control Tower controls (CfnGuardValidator's). */
export const CONTROL_TOWER_PLUGIN = 'cdk-validator-cfnguard';

/**
 * A Control Tower control the resource does not meet: `control` is its id (CT.S3.PR.9), `rule`
 * the Guard rule that reports it, which is what the plugin's findings are acknowledged by.
 */
export function acknowledgeControl(scope: IConstruct, control: string, rule: string, reason: string): void {
  acknowledge(scope, `${CONTROL_TOWER_PLUGIN}::${rule}`, `${control}: ${reason}`);
}

/** Why a resource is encrypted with an AWS key, not a customer-managed one, by default. */
export const UNENCRYPTED_BY_CHOICE =
  'Encrypted at rest with an AWS key; a customer-managed KMS key is the customerManagedKey setting (off by default: every reader of the artifacts, the boot services included, would need a grant on the key). docs/deploy.md, Encryption.';

/** How cdk-nag writes a resource's ARN (`Fn::GetAtt [X, Arn]`) in a finding: `<X.Arn>`. */
function arnOf(resource: IConstruct): string {
  return `<${Stack.of(resource).getLogicalId(resource.node.defaultChild as CfnElement)}.Arn>`;
}

/** The policy CDK's grants write to: the DefaultPolicy of a function's, a state machine's, a role's or a user's identity. */
export function policyOf(grantee: IConstruct): IConstruct {
  const identity =
    grantee instanceof lambda.Function ? grantee.role : grantee instanceof sfn.StateMachine ? grantee.role : grantee;
  if (!(identity instanceof iam.Role || identity instanceof iam.User)) throw new Error(`${grantee.node.path} has no policy of its own`);
  return identity.node.findChild('DefaultPolicy');
}

const wildcard = (finding: string) => `AwsSolutions-IAM5[${finding}]`;

/** Lambda runtime (AwsSolutions-L1) of an ImsFunction, and its X-Ray policy (IAM5 Resource::*). */
export function acknowledgeFunctionDefaults(fn: IConstruct, tracingPolicy: IConstruct): void {
  for (const id of ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion']) {
    acknowledge(
      fn,
      id,
      'Node.js 22 is the LTS line the project builds and tests on (package.json engines, CI); moving to a newer runtime is a deliberate upgrade, not a default.',
    );
  }
  acknowledge(
    tracingPolicy,
    wildcard('Resource::*'),
    'Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions. This policy holds only them.',
  );
}

/** A function that runs in the operator's VPC gets AWS's managed policy for its network interfaces. */
export function acknowledgeVpcExecution(role: IConstruct): void {
  acknowledge(
    role,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
    "Lambda needs ec2:CreateNetworkInterface, DescribeNetworkInterfaces and DeleteNetworkInterface (which take no resource) to run a function in the VPC; AWS's policy for that is kept current by AWS, and the role is this function's own.",
  );
}

/**
 * A function invoked only synchronously (by API Gateway, or by the state machine's tasks, which
 * retry and catch): a dead-letter queue would never receive anything (Serverless-LambdaDLQ).
 */
export function acknowledgeSynchronousInvocation(fn: IConstruct, invoker: string): void {
  acknowledge(
    fn,
    'Serverless-LambdaDLQ',
    `Invoked synchronously by ${invoker}, which gets the error itself; a dead-letter queue only receives failed asynchronous invocations.`,
  );
}

const BUCKET_ACTIONS_REASON =
  "CDK's bucket grant methods (grantRead, grantReadWrite) name S3 action families; the statement is limited to this stack's bucket and its objects.";

/** What `bucket.grantRead(grantee)` (and with `write`, grantReadWrite) produces. */
export function acknowledgeBucketAccess(grantee: IConstruct, bucket: IConstruct, write: boolean): void {
  const actions = ['s3:GetObject*', 's3:GetBucket*', 's3:List*', ...(write ? ['s3:DeleteObject*', 's3:Abort*'] : [])];
  const policy = policyOf(grantee);
  for (const action of actions) acknowledge(policy, wildcard(`Action::${action}`), BUCKET_ACTIONS_REASON);
  acknowledge(
    policy,
    wildcard(`Resource::${arnOf(bucket)}/*`),
    'Object keys are record ids (recipes/<id>/..., <image id>/...) created at run time, so access is to the objects of this one bucket.',
  );
}

/** What `table.grantReadWriteData(grantee)` produces. */
export function acknowledgeTableAccess(grantee: IConstruct, table: IConstruct): void {
  acknowledge(
    policyOf(grantee),
    wildcard(`Resource::${arnOf(table)}/index/*`),
    "Listing reads the table's by-state GSI; CDK grants the table's indexes as <table>/index/*.",
  );
}

/** What `stateMachine.grantExecution(grantee, 'states:StopExecution')` produces. */
export function acknowledgeExecutionAccess(grantee: IConstruct, stateMachine: IConstruct): void {
  // The execution ARN holds the machine's name, which CDK cuts out of its ARN; cdk-nag prints
  // intrinsics it cannot flatten as JSON.
  const ref = { Ref: Stack.of(stateMachine).getLogicalId(stateMachine.node.defaultChild as CfnElement) };
  const name = JSON.stringify({ 'Fn::Select': [6, { 'Fn::Split': [':', ref] }] });
  acknowledge(
    policyOf(grantee),
    wildcard(`Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${name}:*`),
    'Deleting a job stops its execution; executions are created at run time (named after the job id), so the grant covers the executions of this one state machine.',
  );
}

/** The state machine's role: Lambda invocations, X-Ray and log delivery. */
export function acknowledgeStateMachine(stateMachine: IConstruct, invoked: readonly IConstruct[]): void {
  const policy = policyOf(stateMachine);
  for (const fn of invoked) {
    acknowledge(
      policy,
      wildcard(`Resource::${arnOf(fn)}:*`),
      'LambdaInvoke grants the function and its versions and aliases (<arn>:*); the state machine invokes only its own stage functions.',
    );
  }
  acknowledge(
    policy,
    wildcard('Resource::*'),
    'X-Ray tracing (xray:PutTraceSegments, ...) and CloudWatch Logs delivery (logs:CreateLogDelivery, logs:DescribeResourcePolicies, ...) support no resource-level permissions.',
  );
}

/** The health and version routes (AwsSolutions-APIG4). */
export function acknowledgePublicRoute(route: IConstruct): void {
  const reason = 'Liveness, readiness and version are public as in the original IMS: probes carry no token, and the answers hold no data.';
  acknowledge(route, 'AwsSolutions-APIG4', reason);
  acknowledgeControl(route, 'CT.APIGATEWAY.PR.5', 'api_gw_v2_authorization_type_configured_check', reason);
}

/** A log group encrypted with an AWS key (CT.CLOUDWATCH.PR.3), when customerManagedKey is off. */
export function acknowledgeLogGroupKey(logGroup: IConstruct): void {
  acknowledgeControl(logGroup, 'CT.CLOUDWATCH.PR.3', 'cloudwatch_log_group_encrypted_check', UNENCRYPTED_BY_CHOICE);
}

/** A function outside any VPC (CT.LAMBDA.PR.3): `why` says why it needs none. */
export function acknowledgeOutsideVpc(fn: IConstruct, why: string): void {
  acknowledgeControl(fn, 'CT.LAMBDA.PR.3', 'lambda_inside_vpc_check', why);
}

/**
 * What CDK's grants on a KMS-encrypted bucket (read/write) or table add to a policy
 * (kms:GenerateDataKey*, kms:ReEncrypt*), with customerManagedKey.
 */
export function acknowledgeKeyUse(grantee: IConstruct, key: IConstruct): void {
  const policy = policyOf(grantee);
  for (const action of ['kms:GenerateDataKey*', 'kms:ReEncrypt*']) {
    acknowledge(
      policy,
      wildcard(`Action::${action}`),
      `CDK's grants on an encrypted bucket or table name KMS action families; the statement is limited to the stack's one key (${Stack.of(key).getLogicalId(key.node.defaultChild as CfnElement)}).`,
    );
  }
}

/** The job report routes (AwsSolutions-APIG4, CT.APIGATEWAY.PR.5): remote build nodes hold no OAuth token. */
export function acknowledgeJobReportRoute(route: IConstruct): void {
  const reason =
    "Remote build nodes hold no OAuth token: the handler checks the job's own report token (an HMAC over job id and expiry, keyed by the JobReportKeySecret), which grants nothing but asking for a check of that job.";
  acknowledge(route, 'AwsSolutions-APIG4', reason);
  acknowledgeControl(route, 'CT.APIGATEWAY.PR.5', 'api_gw_v2_authorization_type_configured_check', reason);
}

/** The key of the job report tokens (AwsSolutions-SMG4). */
export function acknowledgeJobReportKey(secret: IConstruct): void {
  acknowledge(
    secret,
    'AwsSolutions-SMG4',
    'Generated by CloudFormation and read by the functions only; rotating it makes the tokens of running jobs stop verifying, whose progress the reconciler then finds at its pass. docs/deploy.md says how to rotate it by hand.',
  );
}

/** A secret whose value is issued outside AWS (AwsSolutions-SMG4). */
export function acknowledgeExternalSecret(secret: IConstruct): void {
  acknowledge(
    secret,
    'AwsSolutions-SMG4',
    'The value (kubeconfig, SSH private key) is issued outside AWS by the cluster or node administrators; it is rotated where it is issued and put in with put-secret-value, which no rotation Lambda could do.',
  );
}

/** The S3 signing user's policy and its access-key secret (infra/stacks/ims-stack.ts). */
export function acknowledgeS3SigningIdentity(user: IConstruct, secret: IConstruct, bootImages: IConstruct, ims: IConstruct): void {
  const policy = policyOf(user);
  acknowledge(
    policy,
    wildcard(`Resource::${arnOf(bootImages)}/*`),
    "Job pods upload each image's artifacts under <image id>/, an id made at run time, and pre-signed URLs of rootfs objects name those keys: access is to the objects of this one bucket.",
  );
  acknowledge(
    policy,
    wildcard(`Resource::${arnOf(ims)}/recipes/*`),
    'Pre-signed URLs of recipe archives (recipes/<id>/...) are signed with this key: read of the recipes prefix only.',
  );
  // Control Tower wants no IAM users, or users without policies of their own (CT.IAM.PR.4), and
  // reads the user's inline policy as admin or full access (CT.IAM.PR.1, PR.5): it is neither.
  const why =
    "Pre-signed URLs live as long as the key that signs them (S3_URL_EXPIRATION, days), and job pods upload with a key they are handed: a role's temporary credentials expire within hours. This user is the stack's only one; its policy allows S3 object actions on the boot-images bucket and reads of two prefixes of the ims bucket, nothing else.";
  for (const scope of [user, policy]) {
    acknowledgeControl(scope, 'CT.IAM.PR.4', 'iam_user_no_policies_check', why);
    acknowledgeControl(scope, 'CT.IAM.PR.1', 'iam_inline_policy_no_statements_with_admin_access_check', why);
    acknowledgeControl(scope, 'CT.IAM.PR.5', 'iam_inline_policy_no_statements_with_full_access_check', why);
  }
  acknowledge(
    secret,
    'AwsSolutions-SMG4',
    'The access key of an IAM user: rotation means a second key, put in while URLs signed with the first still live (up to S3_URL_EXPIRATION), then the first deleted; docs/deploy.md gives the steps. A rotation Lambda that swaps keys at once would break those URLs.',
  );
}

/** Put and read of whole-list objects under lists/ of the IMS bucket (shared/http/list-objects.ts). */
export function acknowledgeListObjects(grantee: IConstruct, ims: IConstruct, prefix: string): void {
  acknowledge(
    policyOf(grantee),
    wildcard(`Resource::${arnOf(ims)}/${prefix}*`),
    `A whole list too large for a Lambda response is written to ${prefix}<random id>.json and read through a pre-signed URL: access is to that prefix of this one bucket, whose lifecycle rule expires the objects.`,
  );
}

export function acknowledgeJobLogDeletion(grantee: IConstruct, bootImages: IConstruct, prefix: string): void {
  acknowledge(
    policyOf(grantee),
    wildcard(`Resource::${arnOf(bootImages)}/${prefix}*`),
    `Deleting a job removes the logs it kept under ${prefix}<job id>/logs/: only s3:DeleteObject, on that prefix of this one bucket.`,
  );
}

/**
 * S3 bucket notifications: CDK's BucketNotificationsHandler, a function of aws-cdk-lib that
 * writes the bucket's notification configuration during deployments (never at run time).
 */
export function acknowledgeBucketNotifications(stack: Stack): void {
  const handler = stack.node.children.find((c) => c.node.id.startsWith('BucketNotificationsHandler'));
  if (!handler) throw new Error('no BucketNotificationsHandler in the stack');
  const role = handler.node.findChild('Role');
  const why = "It runs only during deployments, as a custom resource built by aws-cdk-lib (its code, runtime and settings are aws-cdk-lib's).";
  acknowledge(role, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', `aws-cdk-lib gives it the basic execution role. ${why}`);
  // Its policy is written when the template is, so the acknowledgement is on the role that holds it.
  acknowledge(role, wildcard('Resource::*'), `aws-cdk-lib grants s3:PutBucketNotification on *. ${why}`);
  for (const id of ['Serverless-LambdaDLQ', 'Serverless-LambdaTracing', 'Serverless-LambdaDefaultMemorySize', 'Serverless-LambdaLatestVersion', 'AwsSolutions-L1']) {
    acknowledge(handler, id, why);
  }
  acknowledgeOutsideVpc(handler, `It calls only S3's API. ${why}`);
}

/** The reconciler reads the status of this one state machine's executions. */
export function acknowledgeReconcilerExecutions(reconciler: IConstruct, stateMachineName: string): void {
  acknowledge(
    policyOf(reconciler),
    wildcard(`Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${stateMachineName}:*`),
    'A job whose execution ended without ending the job is failed by the reconciler, and the execution of a job a bulk delete left to it is stopped; executions are named after job ids at run time, so the grant covers the executions of this one state machine.',
  );
}

/** EventBridge Scheduler's role invokes the reconciler, which Lambda grants as the function and its versions. */
export function acknowledgeSchedulerInvoke(role: IConstruct, fn: IConstruct): void {
  acknowledge(policyOf(role), wildcard(`Resource::${arnOf(fn)}:*`), 'The schedule invokes only the reconciler function; the grant covers the function and its versions and aliases (<arn>:*).');
}
