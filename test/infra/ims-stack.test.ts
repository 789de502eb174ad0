/**
 * The deployed stack, checked on its synthesized template (bundling skipped: see
 * bundling.test.ts for the one bundle that is really built). The app gets cdk.json's context, so
 * these tests see the same feature flags as `npx cdk synth`; among them
 * `@aws-cdk/core:validateAgainstDefaultRules`, which makes the synth here fail on a CloudFormation
 * error such as a dependency cycle (a stage function given grantTaskResponse). cdk-nag runs on
 * the same app in its own test, so an unacknowledged finding fails that test with the list.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { REPO_ROOT } from '#infra/constructs/ims-function.js';
import { PUBLIC_PATHS } from '#infra/constructs/ims-http-api.js';
import { ImsStack } from '#infra/stacks/ims-stack.js';
import { KNOWN_HOSTS_SECRET, PRIVATE_CONTEXT, synthStack, UPLOADER } from './synth.js';
import { API_BASE_PATH, ROUTES, type HandlerGroup } from '#shared/http/routes.js';
import { LIST_OBJECT_DAYS, LIST_OBJECT_PREFIX } from '#shared/http/list-objects.js';
import { tableKeySchema } from '#shared/store/table-design.js';

type Resource = { Type: string; Properties: Record<string, any> };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

let app: App;
let stack: ImsStack;
let template: Template;
let resources: Record<string, Resource>;
/** The stack with the recipe-upload trigger on (it is off by default: see 'recipe uploads'). */
let upload: NonNullable<ImsStack['recipeUploadFunction']>;

beforeAll(() => {
  ({ app, stack, template } = synthStack('ImsTest', {
    imsBucketName: 'ims-test-recipes',
    bootImagesBucketName: 'ims-test-boot-images',
    imsVersion: '9.9.9',
    recipeUploadTrigger: 'true',
    recipeUploadPrincipals: UPLOADER,
  }));
  resources = template.toJSON().Resources;
  upload = stack.recipeUploadFunction!;
}, 120_000);

const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const allFunctions = () => stack.allFunctions();
/** aws-cdk-lib's own deploy-time helper that writes bucket notification configurations. */
const isCdkNotificationsHandler = (id: string) => id.startsWith('BucketNotificationsHandler');
const sortBy = <T>(items: readonly T[], key: (t: T) => string) => [...items].sort((a, b) => key(a).localeCompare(key(b)));
const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** Every statement of the policies attached to a function's role. */
function statementsOf(fn: { fn: { role?: iam.IRole } }): Statement[] {
  const role = logicalId(fn.fn.role!);
  return ofType('AWS::IAM::Policy')
    .filter(([, p]) => ((p.Properties.Roles ?? []) as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: role })))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
}
const actionsOf = (fn: Parameters<typeof statementsOf>[0]) => statementsOf(fn).flatMap((s) => asList(s.Action));

function functionProps(fn: { fn: IConstruct }): Record<string, any> {
  return resources[logicalId(fn.fn)].Properties;
}

/**
 * The state machine's definition as JSON, each stage function's ARN written as
 * scripts/synth-workflow.ts writes it (`...:function:ims-workflow-<stage>`).
 */
function definitionOf(machine: Resource): { States: Record<string, unknown> } {
  const stageOf = new Map(Object.entries(stack.stageFunctions).map(([stage, f]) => [logicalId(f.fn), stage]));
  const flatten = (v: unknown): string => {
    if (typeof v === 'string') return v;
    const o = v as Record<string, any>;
    if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).map(flatten).join(o['Fn::Join'][0]);
    if (o.Ref === 'AWS::Partition') return 'aws';
    const stage = o['Fn::GetAtt']?.[1] === 'Arn' ? stageOf.get(o['Fn::GetAtt'][0]) : undefined;
    if (stage) return `arn:aws:lambda:us-east-1:000000000000:function:ims-workflow-${stage}`;
    throw new Error(`unexpected intrinsic in the definition: ${JSON.stringify(v)}`);
  };
  return JSON.parse(flatten(machine.Properties.DefinitionString));
}

describe('records table', () => {
  test('has the key schema and indexes of table-design.ts', () => {
    const [[, table]] = ofType('AWS::DynamoDB::Table');
    const p = table.Properties;
    expect(p.KeySchema).toEqual(tableKeySchema.KeySchema);
    expect(sortBy(p.AttributeDefinitions, (a: any) => a.AttributeName)).toEqual(sortBy(tableKeySchema.AttributeDefinitions, (a) => a.AttributeName));
    const indexes = p.GlobalSecondaryIndexes.map((i: any) => ({ IndexName: i.IndexName, KeySchema: i.KeySchema, Projection: i.Projection }));
    expect(sortBy(indexes, (i: any) => i.IndexName)).toEqual(sortBy(tableKeySchema.GlobalSecondaryIndexes, (i) => i.IndexName));
  });

  test('is on demand, with point-in-time recovery and deletion protection', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
  });
});

describe('buckets', () => {
  const dataBuckets = () => [stack.imsBucket, stack.bootImagesBucket];

  test('block public access, encrypt at rest and log access', () => {
    for (const bucket of dataBuckets()) {
      const p = resources[logicalId(bucket)].Properties;
      expect(p.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
      expect(p.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }]);
      expect(p.LoggingConfiguration.DestinationBucketName).toBeDefined();
    }
  });

  test('take their names from the stack props', () => {
    expect(resources[logicalId(stack.imsBucket)].Properties.BucketName).toBe('ims-test-recipes');
    expect(resources[logicalId(stack.bootImagesBucket)].Properties.BucketName).toBe('ims-test-boot-images');
  });

  test('refuse requests without TLS', () => {
    for (const bucket of dataBuckets()) {
      const [[, policy]] = ofType('AWS::S3::BucketPolicy').filter(([, p]) => JSON.stringify(p.Properties.Bucket) === JSON.stringify({ Ref: logicalId(bucket) }));
      expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  test('are versioned, and expire replaced or deleted versions after noncurrentVersionDays (30 by default)', () => {
    for (const bucket of dataBuckets()) {
      const p = resources[logicalId(bucket)].Properties;
      expect(p.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(p.LifecycleConfiguration.Rules).toContainEqual(expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 } }));
    }
    const { stack: s, resources: r, logicalId: id } = synthStack('ImsDays', { noncurrentVersionDays: '7' });
    expect(r[id(s.imsBucket)].Properties.LifecycleConfiguration.Rules).toContainEqual(expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 7 } }));
  });
});

describe('HTTP API', () => {
  /** Route key → the logical id of the function its integration calls, and its authorization. */
  function routeTable() {
    const fnOfIntegration = new Map(
      ofType('AWS::ApiGatewayV2::Integration').map(([id, i]) => [id, (i.Properties.IntegrationUri['Fn::GetAtt'] as string[])[0]]),
    );
    return new Map(
      ofType('AWS::ApiGatewayV2::Route').map(([, r]) => {
        const integration = (r.Properties.Target['Fn::Join'][1] as unknown[])[1] as { Ref: string };
        return [r.Properties.RouteKey as string, { fn: fnOfIntegration.get(integration.Ref), auth: r.Properties.AuthorizationType, authorizer: r.Properties.AuthorizerId }];
      }),
    );
  }

  test('routes every path of ROUTES, any method, to the function of its group, under / and under /apis/ims', () => {
    const routes = routeTable();
    for (const route of ROUTES) {
      for (const path of [route.path, `/apis/ims${route.path}`]) {
        expect({ path, fn: routes.get(`ANY ${path}`)?.fn }).toEqual({ path, fn: logicalId(stack.apiFunctions[route.group].fn) });
      }
    }
    expect(routes.has('ANY /apis/ims/v2/images/{image_id}')).toBe(true);
    expect(routes.has('ANY /apis/ims/v3/jobs/{job_id}')).toBe(true);
    expect(routes.size).toBe(ROUTES.length * 2 + 1);
  });

  test('sends unknown URLs ($default) to the service function', () => {
    expect(routeTable().get('$default')?.fn).toBe(logicalId(stack.apiFunctions.service.fn));
  });

  test('requires a bearer token everywhere except the health and version routes and the job report routes, checked by the Lambda authorizer', () => {
    const [[authorizerId, authorizer]] = ofType('AWS::ApiGatewayV2::Authorizer');
    expect(authorizer.Properties).toMatchObject({
      AuthorizerType: 'REQUEST',
      AuthorizerPayloadFormatVersion: '2.0',
      EnableSimpleResponses: true,
      IdentitySource: ['$request.header.Authorization'],
      AuthorizerResultTtlInSeconds: 60,
    });
    expect(JSON.stringify(authorizer.Properties.AuthorizerUri)).toContain(logicalId(stack.authorizerFunction.fn));
    for (const [key, route] of routeTable()) {
      const isPublic =
        PUBLIC_PATHS.some((path) => key === `ANY ${path}` || key === `ANY ${API_BASE_PATH}${path}`) || /^ANY (\/apis\/ims)?(\/v[23])?\/jobs\/\{job_id\}\/checks$/.test(key);
      expect({ key, auth: route.auth, authorizer: route.authorizer }).toEqual(
        isPublic ? { key, auth: 'NONE', authorizer: undefined } : { key, auth: 'CUSTOM', authorizer: { Ref: authorizerId } },
      );
    }
    expect(PUBLIC_PATHS.every((path) => routeTable().has(`ANY ${path}`) && routeTable().has(`ANY ${API_BASE_PATH}${path}`))).toBe(true);
    template.hasParameter('JwtIssuer', { Type: 'String' });
    template.hasParameter('JwtAudience', { Type: 'CommaDelimitedList' });
    // API Gateway may invoke it; it gets the issuers and audiences, and nothing of the records.
    template.hasResourceProperties('AWS::Lambda::Permission', { FunctionName: { 'Fn::GetAtt': [logicalId(stack.authorizerFunction.fn), 'Arn'] }, Principal: 'apigateway.amazonaws.com' });
    const env = (functionProps(stack.authorizerFunction).Environment?.Variables ?? {}) as Record<string, unknown>;
    expect(env).toMatchObject({ IMS_AUTH_ISSUERS: { Ref: 'JwtIssuer' }, IMS_AUTH_AUDIENCE: { 'Fn::Join': [',', { Ref: 'JwtAudience' }] } });
    expect(Object.keys(env).filter((name) => /TABLE|BUCKET|SECRET|IMS_AUTH_SCOPES/.test(name))).toEqual([]);
    expect(functionProps(stack.authorizerFunction).VpcConfig).toBeUndefined();
  });

  test("the job pods' issuer (context authIssuers) is trusted beside JwtIssuer, each with its JWKS; a bad entry fails the synth", () => {
    const pods = 'http://keycloak.services.svc.cluster.local:8080/keycloak/realms/shasta=https://auth.example.com/keycloak/realms/shasta/protocol/openid-connect/certs';
    const other = synthStack('ImsIssuers', { authIssuers: pods });
    expect(other.envOf(other.stack.authorizerFunction).IMS_AUTH_ISSUERS).toEqual({ 'Fn::Join': [',', [{ Ref: 'JwtIssuer' }, pods]] });
    expect(() => synthStack('ImsBadIssuer', { authIssuers: 'http://keycloak.services/realms/shasta' })).toThrow(/authIssuers.*needs its JWKS as an https URL/);
    expect(() => synthStack('ImsBadIssuer2', { authIssuers: 'keycloak=https://x.example/certs' })).toThrow(/context authIssuers: 'keycloak=https:\/\/x.example\/certs' is not valid/);
  });

  test('the job report routes, under every version and base path, reach the jobs function without an authorizer', () => {
    const routes = routeTable();
    const keys = ['', '/v2', '/v3'].flatMap((v) => ['', API_BASE_PATH].map((base) => `ANY ${base}${v}/jobs/{job_id}/checks`));
    for (const key of keys) expect({ key, ...routes.get(key) }).toEqual({ key, fn: logicalId(stack.apiFunctions.jobs.fn), auth: 'NONE', authorizer: undefined });
    expect(stack.httpApi.jobReportRoutes).toHaveLength(keys.length);
  });

  test('logs access on its default stage', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: { DestinationArn: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] }, Format: Match.stringLikeRegexp('context.requestId') },
    });
  });
});

describe('functions', () => {

  test('are all Node.js 22 on arm64 with active tracing and their own log group', () => {
    const ours = ofType('AWS::Lambda::Function').filter(([id]) => !isCdkNotificationsHandler(id));
    expect(ours).toHaveLength(allFunctions().length);
    for (const [id, fn] of ours) {
      expect({ id, ...fn.Properties }).toMatchObject({
        id,
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        Handler: 'index.handler',
        LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
      });
    }
  });

  test('size API functions below the API Gateway timeout and stage functions below the task timeout', () => {
    for (const f of Object.values(stack.apiFunctions)) expect(functionProps(f).Timeout).toBeLessThan(30);
    for (const f of Object.values(stack.stageFunctions)) expect(functionProps(f).Timeout).toBeLessThan(300);
  });

  test('get the stack names in their environment, and only the functions that start jobs the state machine', () => {
    const env = (f: { fn: IConstruct }) => functionProps(f).Environment.Variables as Record<string, unknown>;
    const jobs = env(stack.apiFunctions.jobs);
    expect(jobs).toMatchObject({
      TABLE_NAME: { Ref: logicalId(stack.table) },
      S3_IMS_BUCKET: { Ref: logicalId(stack.imsBucket) },
      S3_BOOT_IMAGES_BUCKET: { Ref: logicalId(stack.bootImagesBucket) },
      STATE_MACHINE_ARN: { Ref: logicalId(stack.stateMachine) },
      IMS_VERSION: '9.9.9',
      IMS_JOB_WORKER: 'kubernetes',
      POWERTOOLS_SERVICE_NAME: 'ims',
    });
    expect(env(upload).STATE_MACHINE_ARN).toEqual({ Ref: logicalId(stack.stateMachine) });
    const starters = [stack.apiFunctions.jobs, upload];
    // The stages and the reconciler send task callbacks: they get the ARN built from the machine's
    // name, not a reference (the machine invokes them, so a reference would be a cycle).
    const callers = [...Object.values(stack.stageFunctions), stack.reconcileFunction];
    for (const f of callers) expect(JSON.stringify(env(f).STATE_MACHINE_ARN)).toContain(':stateMachine:ImsTest-job-workflow');
    for (const f of allFunctions().filter((f) => !starters.includes(f) && !callers.includes(f))) expect(env(f).STATE_MACHINE_ARN).toBeUndefined();
  });
});

describe('secrets', () => {
  test('exist without a value in the template (the S3 signing key: taken from its access key at deploy time)', () => {
    const secrets = ofType('AWS::SecretsManager::Secret');
    expect(secrets.map(([id]) => id).sort()).toEqual(
      [logicalId(stack.kubeconfigSecret), logicalId(stack.remoteNodeKeySecret), logicalId(stack.s3SigningKeySecret), logicalId(stack.jobReportKeySecret)].sort(),
    );
    // The job report key is generated by CloudFormation: random, in no template.
    expect(resources[logicalId(stack.jobReportKeySecret)].Properties.GenerateSecretString).toEqual({ PasswordLength: 64, ExcludePunctuation: true });
    for (const [id, secret] of secrets) {
      if (id === logicalId(stack.s3SigningKeySecret)) continue;
      expect(secret.Properties.SecretString).toBeUndefined();
    }
    const [[keyId]] = ofType('AWS::IAM::AccessKey');
    const signing = resources[logicalId(stack.s3SigningKeySecret)].Properties.SecretString;
    const text = JSON.stringify(signing);
    expect(text).toContain(JSON.stringify({ Ref: keyId }));
    expect(text).toContain(JSON.stringify({ 'Fn::GetAtt': [keyId, 'SecretAccessKey'] }));
  });

  test('reach only the functions that run, place or delete jobs, as ARNs', () => {
    const kubeconfig = { KUBECONFIG_SECRET_ARN: { Ref: logicalId(stack.kubeconfigSecret) } };
    const nodeKey = { REMOTE_NODE_KEY_SECRET_ARN: { Ref: logicalId(stack.remoteNodeKeySecret) } };
    // Creating a job (POST /jobs, a recipe upload) pre-signs with the signing key; the stages hand it to pods.
    const signing = { S3_SIGNING_SECRET_ARN: { Ref: logicalId(stack.s3SigningKeySecret) } };
    // The stages mint job report tokens, the jobs API verifies them.
    const report = { IMS_JOB_REPORT_SECRET_ARN: { Ref: logicalId(stack.jobReportKeySecret) } };
    const expected = new Map<unknown, Record<string, unknown>>([
      ...[...Object.values(stack.stageFunctions), stack.reconcileFunction].map((f) => [f, { ...kubeconfig, ...nodeKey, ...signing, ...report }] as const),
      [stack.apiFunctions.jobs, { ...kubeconfig, ...nodeKey, ...signing, ...report }],
      [stack.apiFunctions['remote-build-nodes'], nodeKey],
      [upload, { ...nodeKey, ...signing }],
    ]);
    for (const f of allFunctions()) {
      const env = functionProps(f).Environment.Variables as Record<string, unknown>;
      const secrets = Object.fromEntries(Object.entries(env).filter(([k]) => k.includes('SECRET')));
      expect(secrets).toEqual(expected.get(f) ?? {});
      const reads = actionsOf(f).includes('secretsmanager:GetSecretValue');
      expect(reads).toBe(expected.has(f));
    }
  });

  test('the stages and the reconciler tell remote build nodes to report to the API’s own URL', () => {
    for (const f of [...Object.values(stack.stageFunctions), stack.reconcileFunction]) {
      const url = JSON.stringify((functionProps(f).Environment.Variables as Record<string, unknown>).REMOTE_NODE_REPORT_URL);
      expect(url).toContain(logicalId(stack.httpApi.api));
    }
  });

  test('never appear as values in any environment', () => {
    const secretIds = [logicalId(stack.kubeconfigSecret), logicalId(stack.remoteNodeKeySecret), logicalId(stack.jobReportKeySecret)];
    for (const [id, fn] of ofType('AWS::Lambda::Function')) {
      const env = JSON.stringify(fn.Properties.Environment ?? {});
      expect({ id, resolves: /resolve:secretsmanager|SecretString/.test(env) }).toEqual({ id, resolves: false });
      for (const secretId of secretIds) {
        // A Ref (the ARN) is fine; any attribute read of the secret would not be.
        expect(env.includes(`"Fn::GetAtt":["${secretId}"`)).toBe(false);
      }
    }
  });
});

describe('job workflow', () => {
  test('is traced, and logs its events without execution data (task tokens) to a vended-logs group', () => {
    const [[, machine]] = ofType('AWS::StepFunctions::StateMachine');
    expect(machine.Properties.TracingConfiguration).toEqual({ Enabled: true });
    const logging = machine.Properties.LoggingConfiguration;
    expect(logging).toMatchObject({ Level: 'ALL', IncludeExecutionData: false });
    const [group] = logging.Destinations.map((d: any) => d.CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0]);
    expect(resources[group].Properties.LogGroupName).toBe('/aws/vendedlogs/states/ImsTest-job-workflow');
  });

  test('runs the stages, and is exactly the ASL the embedded runtime runs', () => {
    const [[, machine]] = ofType('AWS::StepFunctions::StateMachine');
    const deployed = definitionOf(machine);
    expect(Object.keys(deployed.States)).toEqual(expect.arrayContaining(['Prepare', 'Build', 'Ssh', 'Package', 'Register', 'CleanupSuccess']));
    // Same states, same stage function in each task: what runs locally is what is deployed.
    const generated = JSON.parse(readFileSync(join(REPO_ROOT, 'shared/workflow/generated/job-workflow.asl.json'), 'utf8'));
    expect(deployed).toEqual(generated);
  });
});

describe('least privilege', () => {
  test('a schedule invokes the reconciler once a minute; the reconciler may resume, heartbeat, describe and stop executions', () => {
    const schedules = ofType('AWS::Scheduler::Schedule');
    expect(schedules).toHaveLength(1);
    expect(schedules[0][1].Properties).toMatchObject({
      ScheduleExpression: 'rate(1 minute)',
      Target: { Arn: { 'Fn::GetAtt': [logicalId(stack.reconcileFunction.fn), 'Arn'] } },
    });
    const actions = actionsOf(stack.reconcileFunction).filter((a) => a.startsWith('states:'));
    expect(actions.sort()).toEqual(['states:DescribeExecution', 'states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess', 'states:StopExecution']);
    for (const f of Object.values(stack.stageFunctions)) {
      expect(actionsOf(f).filter((a) => a.startsWith('states:')).sort()).toEqual(['states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess']);
    }
  });

  test('the waiting stages wait for a task token with a heartbeat; none polls', () => {
    const definition = definitionOf(ofType('AWS::StepFunctions::StateMachine')[0][1]) as { States: Record<string, Record<string, unknown>> };
    for (const state of ['Prepare', 'Build', 'Ssh', 'Package']) {
      expect(definition.States[state]).toMatchObject({ Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken', HeartbeatSeconds: 600 });
    }
    expect(Object.values(definition.States).filter((s) => s.Type === 'Wait')).toEqual([]);
  });

  test('the jobs function may start and stop executions, and nothing else may', () => {
    const jobs = statementsOf(stack.apiFunctions.jobs);
    // Start, and resume the stage a pod's PATCH reports on.
    expect(jobs).toContainEqual(
      expect.objectContaining({
        Action: ['states:SendTaskFailure', 'states:SendTaskHeartbeat', 'states:SendTaskSuccess', 'states:StartExecution'],
        Resource: { Ref: logicalId(stack.stateMachine) },
      }),
    );
    expect(jobs).toContainEqual(expect.objectContaining({ Action: 'states:StopExecution' }));
    for (const group of Object.keys(stack.apiFunctions).filter((g) => g !== 'jobs') as HandlerGroup[]) {
      expect({ group, states: actionsOf(stack.apiFunctions[group]).filter((a) => a.startsWith('states:')) }).toEqual({ group, states: [] });
    }
    expect(actionsOf(stack.apiFunctions.images)).not.toContain('states:StartExecution');
  });

  test('the service function may only write its logs and traces', () => {
    const actions = actionsOf(stack.apiFunctions.service);
    expect(actions.filter((a) => !/^(logs|xray):/.test(a))).toEqual([]);
    expect(actions).toEqual(expect.arrayContaining(['logs:CreateLogStream', 'logs:PutLogEvents']));
  });

  test('functions touch only the buckets their records live in', () => {
    const lists = JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack.imsBucket), 'Arn'] }, `/${LIST_OBJECT_PREFIX}*`]] });
    const buckets = (group: HandlerGroup) => {
      const text = JSON.stringify(
        statementsOf(stack.apiFunctions[group]).filter((s) => asList(s.Action).some((a) => a.startsWith('s3:')) && JSON.stringify(s.Resource) !== lists),
      );
      return [stack.imsBucket, stack.bootImagesBucket].filter((b) => text.includes(`"${logicalId(b)}"`)).map((b) => b.node.id);
    };
    expect(buckets('public-keys')).toEqual([]);
    expect(buckets('remote-build-nodes')).toEqual([]);
    expect(buckets('recipes')).toEqual(['ImsBucket']);
    expect(buckets('images')).toEqual(['BootImagesBucket']);
    expect(buckets('deleted')).toEqual(['ImsBucket', 'BootImagesBucket']);
    expect(buckets('jobs')).toEqual(['ImsBucket', 'BootImagesBucket']);
    // The jobs function writes nothing but lists, and deletes only the logs a deleted job kept.
    expect(statementsOf(stack.apiFunctions.jobs).filter((s) => JSON.stringify(s.Resource) !== lists && asList(s.Action).some((a) => /^s3:(Put|Delete)/.test(a)))).toEqual([
      { Effect: 'Allow', Action: 's3:DeleteObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack.bootImagesBucket), 'Arn'] }, '/jobs/*']] } },
    ]);
  });

  test('whole lists too large for a Lambda response: every list function may write and read lists/ of the ims bucket, where objects expire', () => {
    const lists = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack.imsBucket), 'Arn'] }, `/${LIST_OBJECT_PREFIX}*`]] };
    for (const group of ['public-keys', 'recipes', 'images', 'deleted', 'remote-build-nodes', 'jobs'] as const) {
      expect({ group, statements: statementsOf(stack.apiFunctions[group]).filter((s) => JSON.stringify(s.Resource) === JSON.stringify(lists)) }).toEqual({
        group,
        statements: [{ Effect: 'Allow', Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'], Resource: lists }],
      });
    }
    expect(JSON.stringify(statementsOf(stack.apiFunctions.service))).not.toContain(LIST_OBJECT_PREFIX);
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: 'ims-test-recipes',
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: LIST_OBJECT_PREFIX, ExpirationInDays: LIST_OBJECT_DAYS, Status: 'Enabled' })]) },
    });
  });

  test('no role uses a managed policy', () => {
    for (const [id, role] of ofType('AWS::IAM::Role')) {
      if (isCdkNotificationsHandler(id)) continue;
      expect({ id, managed: role.Properties.ManagedPolicyArns }).toEqual({ id, managed: undefined });
    }
  });
});

describe('job pods', () => {
  test('the S3 signing user may use the boot-images objects and read recipe archives and list objects, nothing else; its key secret goes with the stack', () => {
    const [[userId]] = ofType('AWS::IAM::User');
    expect(userId).toBe(logicalId(stack.s3SigningUser));
    const policies = ofType('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.Users ?? []).includes(userId));
    const statements = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
    const boot = logicalId(stack.bootImagesBucket);
    const ims = logicalId(stack.imsBucket);
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'],
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [boot, 'Arn'] }, '/*']] },
      },
      { Effect: 'Allow', Action: ['s3:GetBucketLocation', 's3:ListBucket'], Resource: { 'Fn::GetAtt': [boot, 'Arn'] } },
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [ims, 'Arn'] }, `/${LIST_OBJECT_PREFIX}*`]] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [ims, 'Arn'] }, '/recipes/*']] }],
      },
    ]);
    const secret = template.toJSON().Resources[logicalId(stack.s3SigningKeySecret)];
    // It holds the key of the user the stack deletes with itself.
    expect(secret.DeletionPolicy).toBe('Delete');
    expect(secret.UpdateReplacePolicy).toBe('Delete');
    // Only the functions that pre-sign or write the pods' Secret may read it.
    const readers = allFunctions().filter((f) => JSON.stringify(statementsOf(f)).includes(logicalId(stack.s3SigningKeySecret)));
    expect(sortBy(readers.map((f) => logicalId(f.fn)), (x) => x)).toEqual(
      sortBy([stack.apiFunctions.jobs, upload, ...Object.values(stack.stageFunctions), stack.reconcileFunction].map((f) => logicalId(f.fn)), (x) => x),
    );
  });

  test('recipe links are refused outside what the signing user may read: the recipes function is told the recipes/ prefix of the ims bucket', () => {
    const recipes = functionProps(stack.apiFunctions.recipes).Environment.Variables as Record<string, unknown>;
    expect(recipes.IMS_RECIPE_LINK_PREFIXES).toEqual({ 'Fn::Join': ['', ['s3://', { Ref: logicalId(stack.imsBucket) }, '/recipes/']] });
  });

  test('the stage functions tell the pods where IMS is: the HTTP API host by default, else podApiHostname and podApiScheme', () => {
    const apiId = logicalId(stack.httpApi.api);
    for (const f of Object.values(stack.stageFunctions)) {
      const env = functionProps(f).Environment.Variables as Record<string, unknown>;
      expect(JSON.stringify(env.API_GATEWAY_HOSTNAME)).toContain(apiId);
      expect(env.API_GATEWAY_HOSTNAME).toMatchObject({ 'Fn::Select': [2, { 'Fn::Split': ['/', expect.anything()] }] });
      expect(env.IMS_JOB_API_SCHEME).toBeUndefined();
    }
    for (const f of Object.values(stack.apiFunctions)) expect(functionProps(f).Environment.Variables.API_GATEWAY_HOSTNAME).toBeUndefined();
    const { stack: custom, envOf } = synthStack('ImsPods', { podApiHostname: 'api-gw-service-nmn.local', podApiScheme: 'https' });
    for (const f of Object.values(custom.stageFunctions)) {
      const env = envOf(f);
      expect({ host: env.API_GATEWAY_HOSTNAME, scheme: env.IMS_JOB_API_SCHEME }).toEqual({ host: 'api-gw-service-nmn.local', scheme: 'https' });
    }
  });
});

describe('outputs', () => {
  test('name the API URL, the buckets, the state machine and the secrets to fill in', () => {
    const outputs = Object.keys(template.toJSON().Outputs);
    expect(outputs).toEqual(
      expect.arrayContaining(['ApiUrl', 'TableName', 'ImsBucketName', 'BootImagesBucketName', 'StateMachineArn', 'KubeconfigSecretArn', 'RemoteNodeKeySecretArn', 'S3SigningKeySecretArn', 'S3SigningUserName']),
    );
  });
});

describe('cdk-nag (AwsSolutions and Serverless)', () => {
  const findings = (scope: IConstruct) =>
    [new AwsSolutionsChecks(), new ServerlessChecks()].flatMap((pack) =>
      pack.validateScope(scope).violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`),
    );

  test('report no unacknowledged finding for the stack, in its default and its private settings', () => {
    expect(findings(app)).toEqual([]);
    const { app: privateApp } = synthStack('ImsNagPrivate', { ...PRIVATE_CONTEXT, remoteNodeKnownHostsSecretArn: KNOWN_HOSTS_SECRET });
    expect(findings(privateApp)).toEqual([]);
  });

  test('acknowledge nothing on the stack or on a construct above a function: each acknowledgement sits on its resource', () => {
    const acknowledged = (c: IConstruct) => c.node.metadata.some((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY);
    expect(acknowledged(stack)).toBe(false);
    expect(acknowledged(app)).toBe(false);
    for (const f of allFunctions()) expect({ path: f.node.path, acknowledged: acknowledged(f) }).toEqual({ path: f.node.path, acknowledged: false });
  });

  test('a wildcard grant added to one function fails the synth', () => {
    const { app: wide, stack: wideStack } = synthStack('ImsWide');
    wideStack.apiFunctions.images.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: ['*'] }));
    const report = new AwsSolutionsChecks().validateScope(wide);
    expect(report.success).toBe(false);
    const finding = report.violations.find((v) => v.ruleName === 'AwsSolutions-IAM5[Resource::*]');
    expect(finding?.violatingResources.map((r) => r.constructPath)).toEqual(['ImsWide/ApiHandlers/images/Role/DefaultPolicy/Resource']);
    // And the app fails its synth with it: the packs run as validation plugins.
    Validations.of(wide).addPlugins(new AwsSolutionsChecks(wide), new ServerlessChecks(wide));
    expect(() => wide.synth({ force: true })).toThrow(/ImsWide\/ApiHandlers\/images\/Role\/DefaultPolicy[\s\S]*AwsSolutions-IAM5\[Resource::\*\]/);
  });

  test('a function added without the stack’s defaults (tracing, a recent runtime) fails the Serverless pack', () => {
    const { app: bare, stack: bareStack } = synthStack('ImsBare');
    new lambda.Function(bareStack, 'Untraced', { runtime: lambda.Runtime.NODEJS_18_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => {};') });
    const report = new ServerlessChecks().validateScope(bare);
    expect(report.success).toBe(false);
    const rules = report.violations.filter((v) => v.violatingResources.some((r) => (r.constructPath ?? '').startsWith('ImsBare/Untraced/'))).map((v) => v.ruleName);
    expect(rules).toEqual(expect.arrayContaining(['Serverless-LambdaTracing']));
    // Nothing else in the stack is reported: the finding is the new function's alone.
    expect(report.violations.flatMap((v) => v.violatingResources.map((r) => r.constructPath)).filter((p) => !(p ?? '').startsWith('ImsBare/Untraced/'))).toEqual([]);
  });
});

describe('recipe uploads', () => {
  test('archives under recipes/ created by put, post or multipart upload (not copy) invoke the upload handler', () => {
    const [config] = ofType('Custom::S3BucketNotifications').map(([, r]) => r.Properties);
    expect(config.BucketName).toEqual({ Ref: stack.getLogicalId(stack.imsBucket.node.defaultChild as CfnElement) });
    const target = { 'Fn::GetAtt': [stack.getLogicalId(upload.fn.node.defaultChild as CfnElement), 'Arn'] };
    const configs = config.NotificationConfiguration.LambdaFunctionConfigurations as { Events: string[]; LambdaFunctionArn: unknown; Filter: { Key: { FilterRules: { Name: string; Value: string }[] } } }[];
    const seen = configs.map((c) => {
      expect(c.LambdaFunctionArn).toEqual(target);
      const rules = Object.fromEntries(c.Filter.Key.FilterRules.map((r) => [r.Name.toLowerCase(), r.Value]));
      return `${c.Events.join(',')} ${rules.prefix} ${rules.suffix}`;
    });
    expect(seen.sort()).toEqual(
      ['s3:ObjectCreated:CompleteMultipartUpload', 's3:ObjectCreated:Post', 's3:ObjectCreated:Put'].flatMap((e) => [`${e} recipes/ .tar.gz`, `${e} recipes/ .tgz`]).sort(),
    );
  });

  test('the upload handler reads the ims bucket, writes the table, starts executions, and nothing more', () => {
    const statements = statementsOf(upload);
    const text = JSON.stringify(statements);
    expect(text).toContain('states:StartExecution');
    expect(text).not.toContain('states:StopExecution');
    expect(text).toContain('dynamodb:PutItem');
    expect(text).not.toContain(stack.getLogicalId(stack.bootImagesBucket.node.defaultChild as CfnElement));
    expect(text).not.toContain('s3:DeleteObject');
  });
});
