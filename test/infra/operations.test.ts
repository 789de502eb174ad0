/**
 * What an operator sets and watches: settings checked at synth, the private network, known
 * hosts, scope authorization, the opt-in recipe-upload trigger, failure handling, alarms and the
 * dashboard. Each synthesizes the stack from context as `npx cdk synth` does.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IConstruct } from 'constructs';
import { REPO_ROOT } from '#infra/constructs/ims-function.js';
import { readDeploySettings, SETTINGS } from '#infra/stacks/settings.js';
import { RECONCILE_LEASE_MS } from '#shared/workflow/reconcile.js';
import { environmentSizes, MAX_ENVIRONMENT_BYTES } from '#infra/constructs/environment-size.js';
import { KNOWN_HOSTS_SECRET, PRIVATE_CONTEXT, synthStack, UPLOADER } from './synth.js';

type Synth = ReturnType<typeof synthStack>;
type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, any>; Principal?: unknown };
const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

function statementsOf(s: Synth, f: { fn: IConstruct & { role?: IConstruct } }): Statement[] {
  const role = s.logicalId(f.fn.role!);
  return s
    .ofType('AWS::IAM::Policy')
    .filter(([, p]) => JSON.stringify(p.Properties.Roles ?? []).includes(`"${role}"`))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
}

const settingsOf = (context: Record<string, unknown>) => readDeploySettings((key) => context[key]);

let plain: Synth;
beforeAll(() => {
  plain = synthStack('ImsPlain');
}, 120_000);

describe('settings', () => {
  test('a bad value fails the synth naming the key and the accepted values', () => {
    expect(() => synthStack('ImsBadWorker', { jobWorker: 'podman' })).toThrow("context jobWorker: 'podman' is not valid; accepted: kubernetes, remote-node, none");
    expect(() => settingsOf({ stageTimeoutSsh: '3 days' })).toThrow("context stageTimeoutSsh: '3 days' is not valid; accepted: an integer from 60 to 129600");
    expect(() => settingsOf({ remoteNodeSshPort: 70000 })).toThrow('context remoteNodeSshPort: 70000 is not valid; accepted: an integer from 1 to 65535');
    expect(() => settingsOf({ jobIstio: 'yes' })).toThrow('context jobIstio: \'yes\' is not valid; accepted: true or false');
    expect(() => settingsOf({ authorization: 'maybe' })).toThrow('accepted: on, off');
    expect(() => settingsOf({ remoteNodeHostMap: 'x1000c0s0b0n0' })).toThrow('context remoteNodeHostMap');
    expect(() => settingsOf({ recipeUploadPrincipals: 'alice' })).toThrow('accepted: IAM user or role ARNs');
  });

  test('settings that only make sense together are checked together', () => {
    expect(() => settingsOf({ vpcId: PRIVATE_CONTEXT.vpcId })).toThrow('context subnetIds is required with vpcId');
    expect(() => settingsOf({ ...PRIVATE_CONTEXT, routeTableIds: undefined })).toThrow('context routeTableIds is required for the S3 and DynamoDB gateway endpoints');
    expect(() => settingsOf({ subnetIds: PRIVATE_CONTEXT.subnetIds })).toThrow('context subnetIds needs vpcId');
    expect(() => settingsOf({ recipeUploadTrigger: 'true' })).toThrow('context recipeUploadPrincipals is required');
    expect(() => settingsOf({ remoteNodeKnownHostsSecretArn: KNOWN_HOSTS_SECRET, remoteNodeKnownHostsParameter: '/ims/known-hosts' })).toThrow('set one source of known hosts');
    expect(() => settingsOf({ remoteNodeKnownHostsParameter: '/ims/known-hosts', remoteNodeAcceptUnknownHosts: true })).toThrow('contradicts');
  });

  test('stageTimeoutRegister is no setting: register waits on nothing, and the task and function bound its one invocation', () => {
    expect(() => settingsOf({ stageTimeoutRegister: 600 })).toThrow(/^context stageTimeoutRegister is no longer a setting: the register stage waits on nothing/);
    expect(Object.keys(SETTINGS).filter((key) => key.startsWith('stageTimeout'))).toEqual(['stageTimeoutPrepare', 'stageTimeoutBuild', 'stageTimeoutSsh', 'stageTimeoutPackage']);
    // What does bound it: the Register task's TimeoutSeconds (the deployed definition is this ASL), above its function's own timeout.
    const asl = JSON.parse(readFileSync(join(REPO_ROOT, 'shared/workflow/generated/job-workflow.asl.json'), 'utf8'));
    expect(asl.States.Register).toMatchObject({ Type: 'Task', TimeoutSeconds: 300 });
    expect(plain.propsOf(plain.stack.stageFunctions.register).Timeout).toBe(280);
    expect(Object.keys(plain.envOf(plain.stack.stageFunctions.register)).filter((name) => name.startsWith('IMS_STAGE_TIMEOUT'))).toEqual([]);
  });

  test('defaults: kubernetes worker, scopes on, trigger off', () => {
    const s = settingsOf({});
    expect({ jobWorker: s.jobWorker, authorization: s.authorization, trigger: s.recipeUploadTrigger, stackName: s.stackName }).toEqual({
      jobWorker: 'kubernetes',
      authorization: 'on',
      trigger: false,
      stackName: 'Ims',
    });
  });

  test('each set value reaches exactly the functions of its audience as its variable', () => {
    const s = synthStack('ImsSettings', { stageTimeoutSsh: '7200', jobNamespace: 'image-jobs', remoteNodeSshUser: 'builder', logLevel: 'DEBUG', jobIstio: 'false', s3UrlExpiration: 86400 });
    const { stack, envOf } = s;
    const stages = Object.values(stack.stageFunctions);
    for (const f of [...stages, stack.reconcileFunction, stack.apiFunctions.jobs]) {
      expect(envOf(f)).toMatchObject({ IMS_STAGE_TIMEOUT_SSH: '7200', DEFAULT_IMS_JOB_NAMESPACE: 'image-jobs', IMS_JOB_ISTIO: 'false', S3_URL_EXPIRATION: '86400', REMOTE_NODE_SSH_USER: 'builder' });
    }
    expect(envOf(stack.apiFunctions['remote-build-nodes']).REMOTE_NODE_SSH_USER).toBe('builder');
    expect(envOf(stack.apiFunctions['remote-build-nodes']).IMS_STAGE_TIMEOUT_SSH).toBeUndefined();
    for (const f of [stack.apiFunctions.images, stack.apiFunctions.service]) {
      expect(envOf(f).IMS_STAGE_TIMEOUT_SSH).toBeUndefined();
      expect(envOf(f).REMOTE_NODE_SSH_USER).toBeUndefined();
    }
    for (const f of stack.allFunctions()) expect(envOf(f).POWERTOOLS_LOG_LEVEL).toBe('DEBUG');
    // Unset, no variable: the service's own default applies.
    expect(plain.envOf(plain.stack.apiFunctions.jobs).IMS_STAGE_TIMEOUT_SSH).toBeUndefined();
  });

  test('every setting has its accepted values and default written out', () => {
    for (const [key, s] of Object.entries(SETTINGS)) {
      expect({ key, accepts: s.accepts.length > 0, doc: s.doc.length > 0, defaultText: s.defaultText.length > 0 }).toEqual({ key, accepts: true, doc: true, defaultText: true });
    }
  });
});

describe('private network', () => {
  let net: Synth;
  beforeAll(() => {
    net = synthStack('ImsPrivate', PRIVATE_CONTEXT);
  }, 120_000);

  test('the functions that reach the cluster or the nodes run in the given subnets and security groups; the others outside', () => {
    const { stack, propsOf } = net;
    const inside = [...Object.values(stack.stageFunctions), stack.reconcileFunction, stack.apiFunctions.jobs, stack.apiFunctions['remote-build-nodes']];
    for (const f of inside) {
      expect(propsOf(f).VpcConfig).toEqual({
        SubnetIds: PRIVATE_CONTEXT.subnetIds.split(','),
        SecurityGroupIds: [PRIVATE_CONTEXT.securityGroupIds],
      });
    }
    for (const f of stack.allFunctions().filter((f) => !inside.includes(f))) expect(propsOf(f).VpcConfig).toBeUndefined();
    for (const f of plain.stack.allFunctions()) expect(plain.propsOf(f).VpcConfig).toBeUndefined();
  });

  test('only the roles of the functions in the VPC get the VPC execution policy', () => {
    const { stack, resources, logicalId } = net;
    const managed = (f: { fn: { role?: IConstruct } }) => JSON.stringify(resources[logicalId(f.fn.role!)].Properties.ManagedPolicyArns ?? []);
    expect(managed(stack.apiFunctions.jobs)).toContain('AWSLambdaVPCAccessExecutionRole');
    expect(managed(stack.apiFunctions.images)).toBe('[]');
  });

  test('creates gateway endpoints for S3 and DynamoDB and interface endpoints open to the functions only', () => {
    const endpoints = net.ofType('AWS::EC2::VPCEndpoint').map(([, e]) => e.Properties);
    const service = (e: Record<string, any>) => (e.ServiceName['Fn::Join'][1] as string[]).at(-1);
    expect(endpoints.filter((e) => e.VpcEndpointType === 'Gateway').map(service).sort()).toEqual(['.dynamodb', '.s3']);
    for (const e of endpoints.filter((e) => e.VpcEndpointType === 'Gateway')) expect(e.RouteTableIds).toEqual([PRIVATE_CONTEXT.routeTableIds]);
    const interfaces = endpoints.filter((e) => e.VpcEndpointType === 'Interface');
    expect(interfaces.map(service).sort()).toEqual(['.secretsmanager', '.ssm', '.states', '.xray']);
    for (const e of interfaces) expect(e).toMatchObject({ PrivateDnsEnabled: true, SubnetIds: PRIVATE_CONTEXT.subnetIds.split(','), VpcId: PRIVATE_CONTEXT.vpcId });
    const [[, group]] = net.ofType('AWS::EC2::SecurityGroup');
    expect(group.Properties.SecurityGroupIngress).toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, SourceSecurityGroupId: PRIVATE_CONTEXT.securityGroupIds })]);
    // The operator's groups are not changed.
    expect(net.ofType('AWS::EC2::SecurityGroupIngress')).toEqual([]);
    expect(net.ofType('AWS::EC2::SecurityGroupEgress')).toEqual([]);
  });

  test('an interface endpoint gets one subnet per Availability Zone (the first of each); the functions get every subnet', () => {
    const subnets = ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1', 'subnet-0123456789abcdef2'];
    const s = synthStack('ImsZones', { ...PRIVATE_CONTEXT, subnetIds: subnets.join(','), subnetAvailabilityZones: 'us-east-1a,us-east-1a,us-east-1b' });
    const interfaces = s.ofType('AWS::EC2::VPCEndpoint').filter(([, e]) => e.Properties.VpcEndpointType === 'Interface');
    expect(interfaces).toHaveLength(4);
    for (const [, e] of interfaces) expect(e.Properties.SubnetIds).toEqual([subnets[0], subnets[2]]);
    expect(s.propsOf(s.stack.apiFunctions.jobs).VpcConfig.SubnetIds).toEqual(subnets);
  });

  test('without the subnets\' zones, more than one subnet is refused at synth when endpoints are created; zones must match the subnets', () => {
    const { subnetAvailabilityZones: _, ...withoutZones } = PRIVATE_CONTEXT;
    expect(() => settingsOf(withoutZones)).toThrow(/context subnetAvailabilityZones is required with more than one of subnetIds when endpoints are created: an interface endpoint takes one subnet per Availability Zone/);
    expect(() => settingsOf({ ...PRIVATE_CONTEXT, subnetAvailabilityZones: 'us-east-1a' })).toThrow('context subnetAvailabilityZones: 1 zones for 2 subnets');
    expect(() => settingsOf({ ...PRIVATE_CONTEXT, subnetAvailabilityZones: 'use1-az1,use1-az2' })).toThrow('context subnetAvailabilityZones');
    // One subnet, or no endpoints: no zones needed.
    expect(settingsOf({ ...withoutZones, subnetIds: 'subnet-0123456789abcdef0' }).subnetIds).toHaveLength(1);
    expect(settingsOf({ ...withoutZones, routeTableIds: undefined, createVpcEndpoints: 'false' }).subnetIds).toHaveLength(2);
  });

  test('no endpoints with createVpcEndpoints=false, nor without a VPC', () => {
    const without = synthStack('ImsNoEndpoints', { ...PRIVATE_CONTEXT, routeTableIds: undefined, createVpcEndpoints: 'false' });
    expect(without.ofType('AWS::EC2::VPCEndpoint')).toEqual([]);
    expect(without.propsOf(without.stack.apiFunctions.jobs).VpcConfig).toBeDefined();
    expect(plain.ofType('AWS::EC2::VPCEndpoint')).toEqual([]);
  });
});

describe('known hosts', () => {
  const nodeFunctions = (s: Synth) => s.stack.nodeFunctions();
  const others = (s: Synth) => s.stack.allFunctions().filter((f) => !s.stack.nodeFunctions().includes(f));

  test('from a secret: its ARN, and read access to exactly that secret, for the functions that connect to nodes', () => {
    const s = synthStack('ImsKnownSecret', { remoteNodeKnownHostsSecretArn: KNOWN_HOSTS_SECRET });
    for (const f of nodeFunctions(s)) {
      expect(s.envOf(f).REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN).toBe(KNOWN_HOSTS_SECRET);
      const reads = statementsOf(s, f).filter((st) => asList(st.Action).includes('secretsmanager:GetSecretValue'));
      expect(reads.flatMap((st) => asList(st.Resource))).toContain(KNOWN_HOSTS_SECRET);
    }
    for (const f of others(s)) expect(JSON.stringify(statementsOf(s, f))).not.toContain(KNOWN_HOSTS_SECRET);
  });

  test('from a parameter: its name, and ssm:GetParameter on exactly that parameter', () => {
    const s = synthStack('ImsKnownParameter', { remoteNodeKnownHostsParameter: '/ims/known-hosts' });
    for (const f of nodeFunctions(s)) {
      expect(s.envOf(f).REMOTE_NODE_KNOWN_HOSTS_PARAMETER).toBe('/ims/known-hosts');
      const [statement] = statementsOf(s, f).filter((st) => asList(st.Action).includes('ssm:GetParameter'));
      expect(JSON.stringify(statement.Resource)).toContain(':parameter/ims/known-hosts');
      expect(JSON.stringify(statement.Resource)).not.toContain('*');
    }
    for (const f of others(s)) expect(JSON.stringify(statementsOf(s, f))).not.toContain('ssm:');
  });

  test('as text: in the environment of the functions that connect to nodes; malformed or over 3 KB, the synth fails', () => {
    const known = '[10.1.0.5]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
    const s = synthStack('ImsKnownText', { remoteNodeKnownHosts: known });
    for (const f of nodeFunctions(s)) expect(s.envOf(f).REMOTE_NODE_KNOWN_HOSTS).toBe(known);
    for (const f of others(s)) expect(s.envOf(f).REMOTE_NODE_KNOWN_HOSTS).toBeUndefined();
    expect(() => settingsOf({ remoteNodeKnownHosts: 'node1 ssh-ed25519' })).toThrow(/context remoteNodeKnownHosts: .* \(REMOTE_NODE_KNOWN_HOSTS line 1/);
    const big = Array.from({ length: 40 }, (_, i) => known.replace('10.1.0.5', `10.1.0.${i}`)).join('\n');
    expect(() => settingsOf({ remoteNodeKnownHosts: big })).toThrow(/more than a function's environment holds \(3072\); put the known_hosts text in a secret \(remoteNodeKnownHostsSecretArn\) or an SSM parameter \(remoteNodeKnownHostsParameter\)/);
  });

  test('as multi-line text, or as a JSON array of lines, the text arrives whole', () => {
    const lines = ['10.1.0.5', '10.1.0.6,node6', '[10.1.0.7]:2222'].map((host) => `${host} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl`);
    const text = `# the build nodes\n${lines.join('\n')}`;
    const s = synthStack('ImsKnownLines', { remoteNodeKnownHosts: text });
    for (const f of nodeFunctions(s)) expect(s.envOf(f).REMOTE_NODE_KNOWN_HOSTS).toBe(text);
    expect(settingsOf({ remoteNodeKnownHosts: lines }).environment.nodes.REMOTE_NODE_KNOWN_HOSTS).toBe(lines.join('\n'));
    expect(() => settingsOf({ remoteNodeKnownHosts: [lines[0], 7] })).toThrow(/context remoteNodeKnownHosts: .* is not valid/);
  });

  test('no source: no variable, no grant (deployed, the nodes are then refused); the opt-out is explicit', () => {
    for (const f of nodeFunctions(plain)) {
      const env = plain.envOf(f);
      expect(Object.keys(env).filter((k) => k.startsWith('REMOTE_NODE_KNOWN_HOSTS') || k === 'REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS')).toEqual([]);
    }
    const s = synthStack('ImsAcceptAny', { remoteNodeAcceptUnknownHosts: 'true' });
    for (const f of nodeFunctions(s)) expect(s.envOf(f).REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS).toBe('true');
    for (const f of others(s)) expect(s.envOf(f).REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS).toBeUndefined();
  });
});

describe('authorization', () => {
  test('scopes are checked by default: the API functions get IMS_AUTH_SCOPES=on, and nothing else does', () => {
    const api = Object.values(plain.stack.apiFunctions);
    for (const f of api) expect(plain.envOf(f).IMS_AUTH_SCOPES).toBe('on');
    for (const f of plain.stack.allFunctions().filter((f) => !api.includes(f))) expect(plain.envOf(f).IMS_AUTH_SCOPES).toBeUndefined();
  });

  test('claim and scope names are settable, or scopes off', () => {
    const s = synthStack('ImsScopes', { authClaim: 'realm_access.roles', authReadScope: 'ims-reader', authWriteScope: 'ims-writer', authAdminScope: 'ims-admin' });
    expect(s.envOf(s.stack.apiFunctions.jobs)).toMatchObject({
      IMS_AUTH_SCOPES: 'on',
      IMS_AUTH_CLAIM: 'realm_access.roles',
      IMS_AUTH_READ_SCOPE: 'ims-reader',
      IMS_AUTH_WRITE_SCOPE: 'ims-writer',
      IMS_AUTH_ADMIN_SCOPE: 'ims-admin',
    });
    expect(settingsOf({ authorization: 'off' }).environment.api.IMS_AUTH_SCOPES).toBe('off');
    expect(() => settingsOf({ authAdminScope: 'ims admin' })).toThrow('context authAdminScope');
  });
});

describe('recipe uploads', () => {
  test('off by default: no notification, no upload function, no queue', () => {
    expect(plain.stack.recipeUploadFunction).toBeUndefined();
    expect(plain.ofType('Custom::S3BucketNotifications')).toEqual([]);
    expect(plain.ofType('AWS::SQS::Queue')).toEqual([]);
    expect(plain.ofType('AWS::Lambda::Function')).toHaveLength(plain.stack.allFunctions().length);
  });

  describe('on', () => {
    let on: Synth;
    beforeAll(() => {
      on = synthStack('ImsUploads', { recipeUploadTrigger: 'true', recipeUploadPrincipals: `${UPLOADER},arn:aws:iam::123456789012:user/ci` });
    }, 120_000);

    test('only the named principals and the stack\'s own writers may put objects under recipes/', () => {
      const { stack, ofType, logicalId } = on;
      const [[, policy]] = ofType('AWS::S3::BucketPolicy').filter(([, p]) => JSON.stringify(p.Properties.Bucket) === JSON.stringify({ Ref: logicalId(stack.imsBucket) }));
      const deny = (policy.Properties.PolicyDocument.Statement as Statement[]).find((s) => s.Effect === 'Deny' && s.Action === 's3:PutObject');
      expect(deny).toMatchObject({ Principal: { AWS: '*' }, Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack.imsBucket), 'Arn'] }, '/recipes/*']] } });
      const allowed = deny!.Condition!.ArnNotLike['aws:PrincipalArn'] as unknown[];
      expect(allowed.slice(0, 2)).toEqual([UPLOADER, 'arn:aws:iam::123456789012:user/ci']);
      const roles = allowed.slice(2).map((a) => (a as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]).sort();
      const writers = [stack.apiFunctions.recipes, stack.apiFunctions.deleted, ...Object.values(stack.stageFunctions), stack.reconcileFunction];
      expect(roles).toEqual(writers.map((f) => logicalId(f.fn.role!)).sort());
    });

    test('failed events are retried twice, then kept in an encrypted, TLS-only queue whose depth raises an alarm', () => {
      const { stack, ofType, logicalId, template } = on;
      const queue = logicalId(stack.recipeUploadDeadLetters!);
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalId(stack.recipeUploadFunction!.fn) },
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 21600,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
      });
      expect(ofType('AWS::SQS::Queue')).toEqual([[queue, expect.objectContaining({ Properties: expect.objectContaining({ SqsManagedSseEnabled: true }) })]]);
      const [[, queuePolicy]] = ofType('AWS::SQS::QueuePolicy');
      expect(queuePolicy.Properties.PolicyDocument.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    });
  });
});

describe('failure handling and observability', () => {
  test('every function is traced and names its service and metrics namespace; X-Ray has a policy of its own', () => {
    const { stack, propsOf, envOf, ofType } = plain;
    for (const f of stack.allFunctions()) {
      expect(propsOf(f).TracingConfig).toEqual({ Mode: 'Active' });
      expect(envOf(f)).toMatchObject({ POWERTOOLS_SERVICE_NAME: 'ims', POWERTOOLS_METRICS_NAMESPACE: 'IMS' });
      const tracing = ofType('AWS::IAM::Policy').filter(([id]) => id === plain.logicalId(f.node.findChild('Tracing')));
      expect(tracing.map(([, p]) => p.Properties.PolicyDocument.Statement)).toEqual([[{ Effect: 'Allow', Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], Resource: '*' }]]);
    }
    plain.template.hasResourceProperties('AWS::StepFunctions::StateMachine', { TracingConfiguration: { Enabled: true } });
  });

  test('no function reserves concurrency unless remoteBuildNodesConcurrency opts in (low-quota accounts refuse reservations)', () => {
    const { stack, propsOf } = plain;
    for (const f of stack.allFunctions()) expect({ fn: f.node.path, reserved: propsOf(f).ReservedConcurrentExecutions }).toEqual({ fn: f.node.path, reserved: undefined });
    const s = synthStack('ImsProbes', { remoteBuildNodesConcurrency: '20' });
    expect(s.propsOf(s.stack.apiFunctions['remote-build-nodes']).ReservedConcurrentExecutions).toBe(20);
    expect(s.propsOf(s.stack.reconcileFunction).ReservedConcurrentExecutions).toBeUndefined();
  });

  test('the scheduled reconciler gets no retries, from the schedule or from Lambda; its lease outlasts its longest pass', () => {
    const { stack, ofType, logicalId, propsOf } = plain;
    const [[, schedule]] = ofType('AWS::Scheduler::Schedule');
    expect(schedule.Properties.Target.RetryPolicy).toMatchObject({ MaximumRetryAttempts: 0 });
    const configs = ofType('AWS::Lambda::EventInvokeConfig').filter(([, c]) => JSON.stringify(c.Properties.FunctionName) === JSON.stringify({ Ref: logicalId(stack.reconcileFunction.fn) }));
    expect(configs.map(([, c]) => c.Properties.MaximumRetryAttempts)).toEqual([0]);
    // A pass killed at the function's timeout frees the lease soon after; a live pass is never overtaken.
    expect(propsOf(stack.reconcileFunction).Timeout * 1000).toBeLessThan(RECONCILE_LEASE_MS);
  });

  test('alarms on API 5xx, every function\'s errors and throttles, failed and timed-out executions, and jobs the reconciler failed, all to one topic', () => {
    const { stack, ofType, logicalId } = plain;
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const byMetric = (name: string) => alarms.filter((a) => a.MetricName === name);
    expect(byMetric('5xx')).toEqual([expect.objectContaining({ Namespace: 'AWS/ApiGateway', Dimensions: [{ Name: 'ApiId', Value: { Ref: logicalId(stack.httpApi.api) } }] })]);
    for (const metric of ['Errors', 'Throttles']) {
      const fns = byMetric(metric).map((a) => a.Dimensions[0].Value.Ref).sort();
      expect(fns).toEqual(stack.allFunctions().map((f) => logicalId(f.fn)).sort());
    }
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut']) {
      expect(byMetric(metric)).toEqual([expect.objectContaining({ Namespace: 'AWS/States', Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: logicalId(stack.stateMachine) } }] })]);
    }
    expect(byMetric('ReconcilerFailedJobs')).toEqual([
      expect.objectContaining({ Namespace: 'IMS', Dimensions: [{ Name: 'service', Value: 'ims' }], Statistic: 'Sum', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' }),
    ]);
    const [[topicId, topic]] = ofType('AWS::SNS::Topic');
    expect(topic.Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [expect.any(String), 'Arn'] });
    for (const a of alarms) expect(a.AlarmActions).toEqual([{ Ref: topicId }]);
    const [[, topicPolicy]] = ofType('AWS::SNS::TopicPolicy');
    expect(JSON.stringify(topicPolicy.Properties.PolicyDocument)).toContain('aws:SecureTransport');
  });

  test('alarmTopicArn: the alarms notify the operator\'s topic, and the stack creates none', () => {
    const arn = 'arn:aws:sns:us-east-1:123456789012:ops-alarms';
    const s = synthStack('ImsOpsTopic', { alarmTopicArn: arn });
    expect(s.ofType('AWS::SNS::Topic')).toEqual([]);
    for (const [, a] of s.ofType('AWS::CloudWatch::Alarm')) expect(a.Properties.AlarmActions).toEqual([arn]);
  });

  test('one dashboard shows the API, the functions, the state machine, the reconciler and the dead-letter queue', () => {
    const [[, dashboard]] = plain.ofType('AWS::CloudWatch::Dashboard');
    expect(plain.ofType('AWS::CloudWatch::Dashboard')).toHaveLength(1);
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const title of ['Alarms', 'API requests and errors', 'Job workflow executions', 'Function errors', 'Function throttles', 'Reconciler']) expect(body).toContain(title);
    expect(body).toContain('ReconcilerFailedJobs');
    const on = synthStack('ImsDashboardUploads', { recipeUploadTrigger: 'true', recipeUploadPrincipals: UPLOADER });
    expect(JSON.stringify(on.ofType('AWS::CloudWatch::Dashboard')[0][1].Properties.DashboardBody)).toContain('Recipe upload dead letters');
  });

  test('the secrets the operator fills outlive the stack; the keys the stack makes (S3 signing, job reports) go with it', () => {
    const made = [plain.stack.s3SigningKeySecret, plain.stack.jobReportKeySecret].map((c) => plain.logicalId(c));
    const secrets = plain.ofType('AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(4);
    for (const [id, secret] of secrets) {
      const kept = made.includes(id) ? { deletion: 'Delete', replace: 'Delete' } : { deletion: 'Retain', replace: 'Retain' };
      expect({ id, deletion: secret.DeletionPolicy, replace: secret.UpdateReplacePolicy }).toEqual({ id, ...kept });
    }
  });
});

describe('removing the stack and deploying it again', () => {
  /** Every resource a `Ref` or `Fn::GetAtt` in `value` names. */
  const referenced = (value: unknown): string[] => {
    if (Array.isArray(value)) return value.flatMap(referenced);
    if (!value || typeof value !== 'object') return [];
    const object = value as Record<string, unknown>;
    if (typeof object.Ref === 'string') return [object.Ref];
    if (Array.isArray(object['Fn::GetAtt'])) return [object['Fn::GetAtt'][0] as string];
    return Object.values(object).flatMap(referenced);
  };

  test('the data outlives it: table, buckets and the secrets the operator fills, and they can be imported together into a new stack', () => {
    const resources = plain.template.toJSON().Resources as Record<string, { Type: string; Properties?: unknown; DeletionPolicy?: string }>;
    // Log groups are kept too (CloudFormation names them afresh in a new stack); the data is what matters here.
    const STATEFUL = ['AWS::DynamoDB::Table', 'AWS::S3::Bucket', 'AWS::SecretsManager::Secret'];
    const retained = Object.entries(resources).filter(([, r]) => r.DeletionPolicy === 'Retain' && STATEFUL.includes(r.Type));
    const { stack, logicalId } = plain;
    const accessLogs = stack.node.findChild('AccessLogs') as IConstruct;
    expect(retained.map(([id]) => id).sort()).toEqual(
      [stack.table, stack.imsBucket, stack.bootImagesBucket, accessLogs, stack.kubeconfigSecret, stack.remoteNodeKeySecret].map((c) => logicalId(c)).sort(),
    );
    // The keys the stack makes (S3 signing, job reports) go with it.
    expect(Object.values(resources).filter((r) => STATEFUL.includes(r.Type) && r.DeletionPolicy !== 'Retain').map((r) => r.Type)).toEqual(['AWS::SecretsManager::Secret', 'AWS::SecretsManager::Secret']);
    // `cdk import` into a new stack adds only the imported resources: each may refer to the others alone.
    const ids = new Set(retained.map(([id]) => id));
    const parameters = Object.keys((plain.template.toJSON().Parameters ?? {}) as object);
    for (const [id, r] of retained) {
      const outside = referenced(r.Properties).filter((ref) => !ids.has(ref) && !ref.startsWith('AWS::') && !parameters.includes(ref));
      expect({ id, outside }).toEqual({ id, outside: [] });
    }
  });

  test('the S3 signing key secret goes with the stack, as its IAM user and key do', () => {
    const secret = plain.template.toJSON().Resources[plain.logicalId(plain.stack.s3SigningKeySecret)];
    expect(secret.DeletionPolicy).toBe('Delete');
    expect(plain.template.toJSON().Resources[plain.logicalId(plain.stack.s3SigningUser)].DeletionPolicy).toBeUndefined();
  });
});

describe('function environments', () => {
  const known = (count: number) =>
    Array.from({ length: count }, (_, i) => `[10.1.0.${i}]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl`).join('\n');

  test('each fits in Lambda\'s 4 KB, names and ARNs counted at their deployed bound', () => {
    for (const f of plain.stack.allFunctions()) {
      const total = environmentSizes(plain.envOf(f)).reduce((sum, v) => sum + v.bytes, 0);
      expect({ fn: f.node.path, fits: total <= MAX_ENVIRONMENT_BYTES }).toEqual({ fn: f.node.path, fits: true });
    }
  });

  test('an environment over 4 KB fails the synth, naming the function and its largest variables', () => {
    const text = known(31);
    // Within the setting's own bound, but not beside everything else a node function gets.
    expect(Buffer.byteLength(text)).toBeLessThan(3072);
    expect(() => synthStack('ImsFullEnv', { remoteNodeKnownHosts: text })).toThrow(
      /ImsFullEnv\/WorkflowStages\/prepare\/Function: its environment is \d+ bytes, above Lambda's limit of 4096 for all keys and values together; the largest variables: REMOTE_NODE_KNOWN_HOSTS \(\d+ bytes\)/,
    );
    const { app, stack } = synthStack('ImsAddedEnv');
    stack.apiFunctions.images.fn.addEnvironment('EXTRA', 'x'.repeat(4000));
    expect(() => app.synth({ force: true })).toThrow(/ImsAddedEnv\/ApiHandlers\/images\/Function: its environment is \d+ bytes.*the largest variables: EXTRA \(4005 bytes\)/);
  });
});
