/**
 * The deployed service: the HTTP API and its handlers, the job workflow, the records table, the
 * artifact buckets, the secrets the workers need, and the alarms and dashboard that watch them.
 * Each function is granted only what its use cases touch (docs/deploy.md lists them, and a test
 * compares that list with the template). Settings come from infra/stacks/settings.ts.
 */
import { ArnFormat, CfnOutput, CfnParameter, Duration, Fn, RemovalPolicy, SecretValue, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaDestinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { HandlerGroup } from '#shared/http/routes.js';
import { LIST_OBJECT_DAYS, LIST_OBJECT_PREFIX } from '#shared/http/list-objects.js';
import { buildJobWorkflow, DEFAULT_EXECUTION_TIMEOUT, type JobWorkflowFunctions } from '#infra/workflow/definition.js';
import { ImsFunction, type FunctionNetwork } from '../constructs/ims-function.js';
import { ImsHttpApi } from '../constructs/ims-http-api.js';
import { createRecordsTable } from '../constructs/records-table.js';
import { Monitoring } from '../constructs/monitoring.js';
import { PrivateNetwork } from '../constructs/network.js';
import { createAccessLogsBucket, createDataBucket } from '../constructs/secure-bucket.js';
import { createServiceKey } from '../constructs/encryption.js';
import type { Audience, DeploySettings } from './settings.js';
import {
  acknowledge,
  acknowledgeBucketNotifications,
  acknowledgeBucketAccess,
  acknowledgeExecutionAccess,
  acknowledgeReconcilerExecutions,
  acknowledgeSchedulerInvoke,
  acknowledgeExternalSecret,
  acknowledgeJobReportKey,
  acknowledgeListObjects,
  acknowledgeS3SigningIdentity,
  acknowledgeStateMachine,
  acknowledgeSynchronousInvocation,
  acknowledgeTableAccess,
  acknowledgeJobLogDeletion,
  acknowledgeKeyUse,
  acknowledgeLogGroupKey,
  acknowledgeOutsideVpc,
  acknowledgeControl,
} from '../constructs/nag.js';

export interface ImsStackProps extends StackProps {
  /** Every context setting, checked (infra/stacks/settings.ts). */
  settings: DeploySettings;
}

/** Where recipe archives that register themselves are uploaded (RECIPE_UPLOAD_PREFIX). */
const RECIPE_PREFIX = 'recipes/';
/** Where a job's kept logs live in the boot-images bucket (shared/workflow/job-logs.ts). */
const JOB_LOG_PREFIX = 'jobs/';

/** The kubernetes worker renders its job manifests from these templates at run time. */
export const STAGE_FILES = { 'shared/workers/kubernetes/templates': 'templates' };

type Stage = keyof JobWorkflowFunctions;
const STAGES: readonly Stage[] = ['prepare', 'build', 'ssh', 'package', 'register', 'cleanup'];

export class ImsStack extends Stack {
  readonly table: dynamodb.Table;
  /** The customer-managed key of the table, the buckets and the log groups (customerManagedKey). */
  readonly key?: kms.Key;
  readonly imsBucket: s3.Bucket;
  readonly bootImagesBucket: s3.Bucket;
  readonly kubeconfigSecret: secretsmanager.Secret;
  readonly remoteNodeKeySecret: secretsmanager.Secret;
  /** The IAM user whose access key signs pre-signed URLs and is what job pods upload with. */
  readonly s3SigningUser: iam.User;
  /** JSON {accessKeyId, secretAccessKey} of that user (S3_SIGNING_SECRET_ARN); deleted with the stack, as the user is. */
  readonly s3SigningKeySecret: secretsmanager.Secret;
  /** Signs the job report tokens remote build nodes call back with (IMS_JOB_REPORT_SECRET_ARN; shared/job-report-key.ts). */
  readonly jobReportKeySecret: secretsmanager.Secret;
  readonly apiFunctions: Record<HandlerGroup, ImsFunction>;
  /** The HTTP API's Lambda authorizer: bearer tokens of the trusted issuers (functions/api/authorizer.ts). */
  readonly authorizerFunction: ImsFunction;
  readonly stageFunctions: Record<Stage, ImsFunction>;
  /** Only with context recipeUploadTrigger=true. */
  readonly recipeUploadFunction?: ImsFunction;
  /** Where recipe-upload events go after their retries (with the trigger). */
  readonly recipeUploadDeadLetters?: sqs.Queue;
  /** The VPC and its endpoints, when context vpcId is given. */
  readonly network?: PrivateNetwork;
  readonly monitoring: Monitoring;
  readonly stateMachine: sfn.StateMachine;
  /** Checks every job not yet ended once a minute (shared/workflow/reconcile.ts). */
  readonly reconcileFunction: ImsFunction;
  readonly httpApi: ImsHttpApi;

  private readonly settings: DeploySettings;

  constructor(scope: Construct, id: string, props: ImsStackProps) {
    super(scope, id, props);
    const settings = (this.settings = props.settings);

    const jwtIssuer = new CfnParameter(this, 'JwtIssuer', {
      type: 'String',
      description: 'Issuer URL of the JWTs the API accepts (e.g. https://auth.example.com/realms/shasta)',
    });
    const jwtAudience = new CfnParameter(this, 'JwtAudience', {
      type: 'CommaDelimitedList',
      description: 'Audiences (aud or client_id claims) the API accepts, comma-separated',
    });

    if (settings.customerManagedKey) this.key = createServiceKey(this, 'DataKey');
    const encryptionKey = this.key;
    this.table = createRecordsTable(this, 'Records', encryptionKey);
    const noncurrentVersionDays = settings.noncurrentVersionDays;
    const accessLogs = createAccessLogsBucket(this, 'AccessLogs', { noncurrentVersionDays });
    this.imsBucket = createDataBucket(this, 'ImsBucket', { bucketName: settings.imsBucketName, accessLogs, noncurrentVersionDays, encryptionKey });
    this.bootImagesBucket = createDataBucket(this, 'BootImagesBucket', { bucketName: settings.bootImagesBucketName, accessLogs, noncurrentVersionDays, encryptionKey });
    this.imsBucket.addLifecycleRule({ prefix: LIST_OBJECT_PREFIX, expiration: Duration.days(LIST_OBJECT_DAYS) });

    // Created without a value (CloudFormation fills in a random placeholder); the operator puts
    // the real one in after the first deploy, so no secret ever appears in the template. They
    // outlive the stack, with the table and the buckets: a new stack makes new ones, unless
    // `cdk import` adopts the retained ones first (docs/deploy.md, "Removing the stack").
    this.kubeconfigSecret = new secretsmanager.Secret(this, 'KubeconfigSecret', {
      description: 'IMS: kubeconfig (YAML) the kubernetes job worker uses to reach the cluster',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.remoteNodeKeySecret = new secretsmanager.Secret(this, 'RemoteNodeKeySecret', {
      description: 'IMS: SSH private key (PEM/OpenSSH) for remote build nodes',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledgeExternalSecret(this.kubeconfigSecret);
    acknowledgeExternalSecret(this.remoteNodeKeySecret);
    [this.s3SigningUser, this.s3SigningKeySecret] = this.createS3SigningIdentity();
    this.jobReportKeySecret = new secretsmanager.Secret(this, 'JobReportKeySecret', {
      description: 'IMS: key of the job report tokens remote build nodes call back with',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    acknowledgeJobReportKey(this.jobReportKeySecret);

    const recordsEnv = {
      TABLE_NAME: this.table.tableName,
      S3_IMS_BUCKET: this.imsBucket.bucketName,
      S3_BOOT_IMAGES_BUCKET: this.bootImagesBucket.bucketName,
    };

    // The functions that reach the cluster or the nodes run in the operator's VPC, when given.
    if (settings.vpcId && settings.subnetIds && settings.securityGroupIds) {
      this.network = new PrivateNetwork(this, 'Network', {
        vpcId: settings.vpcId,
        subnetIds: settings.subnetIds,
        subnetAvailabilityZones: settings.subnetAvailabilityZones,
        securityGroupIds: settings.securityGroupIds,
        endpointRouteTableIds: settings.createVpcEndpoints === false ? undefined : settings.routeTableIds,
      });
    }
    const network = this.network?.functionNetwork;

    const apiScope = new Construct(this, 'ApiHandlers');
    const apiFunction = (group: HandlerGroup, description: string, environment: Record<string, string> = recordsEnv, more: { network?: FunctionNetwork; reservedConcurrentExecutions?: number } = {}) =>
      new ImsFunction(apiScope, group, { entry: `functions/api/${group}.ts`, kind: 'api', description, environment, ...more });
    this.apiFunctions = {
      // Health, version and unknown URLs touch no data.
      service: apiFunction('service', 'IMS API: health, version, unknown URLs', {}),
      'public-keys': apiFunction('public-keys', 'IMS API: public keys'),
      recipes: apiFunction('recipes', 'IMS API: recipes'),
      images: apiFunction('images', 'IMS API: images'),
      deleted: apiFunction('deleted', 'IMS API: soft-deleted records'),
      // A status request probes every node: remoteBuildNodesConcurrency may bound its concurrency,
      // so that a burst of requests cannot open an unbounded number of SSH connections to the
      // nodes (nothing is reserved by default: a reservation fails the deploy in accounts whose
      // concurrency quota leaves too little unreserved).
      'remote-build-nodes': apiFunction('remote-build-nodes', 'IMS API: remote build nodes', recordsEnv, { network, reservedConcurrentExecutions: settings.remoteBuildNodesConcurrency }),
      jobs: apiFunction('jobs', 'IMS API: jobs', recordsEnv, { network }),
    };
    // Tokens of JwtIssuer (keys by its OpenID discovery) and of each authIssuers entry (keys by its JWKS URL).
    this.authorizerFunction = new ImsFunction(apiScope, 'authorizer', {
      entry: 'functions/api/authorizer.ts',
      kind: 'api',
      description: 'IMS API: bearer tokens of the trusted issuers (Lambda authorizer)',
      environment: {
        IMS_AUTH_ISSUERS: Fn.join(',', [jwtIssuer.valueAsString, ...(settings.authIssuers ?? [])]),
        IMS_AUTH_AUDIENCE: Fn.join(',', jwtAudience.valueAsList),
      },
    });
    for (const f of [...Object.values(this.apiFunctions), this.authorizerFunction]) acknowledgeSynchronousInvocation(f.fn, 'API Gateway');

    const stageScope = new Construct(this, 'WorkflowStages');
    // Secrets reach the functions as ARNs only (grantAccess): the workers read the values at run time (shared/secrets.ts).
    const stageEnv = recordsEnv;
    this.stageFunctions = Object.fromEntries(
      STAGES.map((stage) => [
        stage,
        new ImsFunction(stageScope, stage, {
          entry: `functions/workflow/${stage}.ts`,
          kind: 'workflow',
          description: `IMS job workflow: ${stage}`,
          environment: stageEnv,
          files: STAGE_FILES,
          network,
        }),
      ]),
    ) as Record<Stage, ImsFunction>;
    for (const f of Object.values(this.stageFunctions)) acknowledgeSynchronousInvocation(f.fn, "the job workflow's task (which retries it and catches its errors)");

    // The reconciler runs the workers' checks as the waiting stages do, with the same settings.
    this.reconcileFunction = new ImsFunction(stageScope, 'reconcile', {
      entry: 'functions/workflow/reconcile.ts',
      kind: 'workflow',
      description: 'IMS job workflow: reconciler (resumes, heartbeats or fails waiting jobs)',
      environment: stageEnv,
      files: STAGE_FILES,
      network,
      // No reserved concurrency: passes keep from overlapping by a lease in the table
      // (shared/workflow/reconcile.ts). No asynchronous retries either: a failed pass is made up
      // by the next one, and a slow pass cannot pile up retries behind it.
      retryAttempts: 0,
    });
    acknowledge(
      this.reconcileFunction.fn,
      'Serverless-LambdaDLQ',
      'Invoked once a minute by the schedule; a failed pass is made up by the next one, and its errors raise the function Errors alarm. A queue of missed passes would hold nothing to replay.',
    );
    acknowledge(
      this.reconcileFunction.fn,
      'Serverless-LambdaAsyncFailureDestination',
      'Its asynchronous config only turns retries off (a failed pass is made up by the next one a minute later); a destination for failed passes would hold nothing to replay.',
    );
    const schedulerRole = new iam.Role(this, 'ReconcileSchedulerRole', { assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com') });
    new scheduler.Schedule(this, 'ReconcileEveryMinute', {
      description: 'IMS: check every job not yet ended',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      // A missed pass is made up by the next one a minute later.
      target: new schedulerTargets.LambdaInvoke(this.reconcileFunction.fn, { role: schedulerRole, retryAttempts: 0 }),
    });
    acknowledgeSchedulerInvoke(schedulerRole, this.reconcileFunction.fn);

    const stages = this.stageFunctions;
    const fns: JobWorkflowFunctions = {
      prepare: stages.prepare.fn,
      build: stages.build.fn,
      ssh: stages.ssh.fn,
      package: stages.package.fn,
      register: stages.register.fn,
      cleanup: stages.cleanup.fn,
    };
    // Named, so that the functions it invokes can be given its ARN (for their task callbacks)
    // without a reference to it: Function -> Role -> StateMachine -> Function would be a cycle.
    const stateMachineName = `${this.stackName}-job-workflow`;
    // Log delivery adds a resource policy for each log group it writes to unless the group's name
    // starts with /aws/vendedlogs/ (the account's resource policies are limited in size): hence
    // the explicit name.
    const workflowLogs = new logs.LogGroup(this, 'JobWorkflowLogs', { logGroupName: `/aws/vendedlogs/states/${stateMachineName}` });
    const stateMachineArn = this.formatArn({ service: 'states', resource: 'stateMachine', resourceName: stateMachineName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const executionsArn = this.formatArn({ service: 'states', resource: 'execution', resourceName: `${stateMachineName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    this.stateMachine = new sfn.StateMachine(this, 'JobWorkflow', {
      stateMachineName,
      definitionBody: buildJobWorkflow(this, fns),
      timeout: DEFAULT_EXECUTION_TIMEOUT,
      tracingEnabled: true,
      // Every event, but never execution data: a waiting stage's input holds its task token,
      // which anyone who reads the log could use to resume or fail the job. What operations need
      // is which state ran, failed or timed out, when, with the error and cause, and that stays.
      logs: { destination: workflowLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
    acknowledgeStateMachine(this.stateMachine, Object.values(fns));
    this.apiFunctions.jobs.fn.addEnvironment('STATE_MACHINE_ARN', this.stateMachine.stateMachineArn);
    // A pod's PATCH resumes the stage waiting on it.
    this.stateMachine.grantTaskResponse(this.apiFunctions.jobs.fn);
    // The waiting stages and the reconciler resume, heartbeat or fail the executions; the
    // reconciler also looks at an execution's status, and stops those of the jobs a bulk delete left to it.
    for (const f of this.workerFunctions()) {
      f.fn.addEnvironment('STATE_MACHINE_ARN', stateMachineArn);
      f.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], resources: [stateMachineArn] }));
    }
    this.reconcileFunction.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:StopExecution'], resources: [executionsArn] }));
    acknowledgeReconcilerExecutions(this.reconcileFunction.fn, stateMachineName);

    if (settings.recipeUploadTrigger) [this.recipeUploadFunction, this.recipeUploadDeadLetters] = this.createRecipeUploadTrigger(recordsEnv, network);

    this.grantAccess();

    this.httpApi = new ImsHttpApi(this, 'Http', {
      handlers: Object.fromEntries(Object.entries(this.apiFunctions).map(([group, f]) => [group, f.fn])) as Record<HandlerGroup, ImsFunction['fn']>,
      authorizer: this.authorizerFunction.fn,
    });

    // Where the job pods report: the stage functions render it into the job templates
    // (API_GATEWAY_HOSTNAME, and IMS_URL = <scheme>://<host>/apis/ims); by default the API's own host.
    if (!settings.podApiHostname) {
      for (const f of this.workerFunctions()) f.fn.addEnvironment('API_GATEWAY_HOSTNAME', Fn.select(2, Fn.split('/', this.httpApi.api.apiEndpoint)));
    }
    // Where remote build nodes report that a step of a job ended (POST /v3/jobs/{id}/checks).
    for (const f of this.workerFunctions()) f.fn.addEnvironment('REMOTE_NODE_REPORT_URL', this.httpApi.url);
    this.applyEnvironment();

    this.monitoring = new Monitoring(this, 'Monitoring', {
      alarmTopicArn: settings.alarmTopicArn,
      api: this.httpApi.api,
      functions: Object.fromEntries(this.allFunctions().map((f) => [f.node.id, f.fn])),
      reconciler: this.reconcileFunction.fn,
      stateMachine: this.stateMachine,
      deadLetters: this.recipeUploadDeadLetters,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.httpApi.url, description: 'Base URL of the IMS API' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'ImsBucketName', { value: this.imsBucket.bucketName, description: 'S3_IMS_BUCKET: recipes' });
    new CfnOutput(this, 'BootImagesBucketName', { value: this.bootImagesBucket.bucketName, description: 'S3_BOOT_IMAGES_BUCKET: image artifacts and manifests' });
    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.stateMachineArn });
    new CfnOutput(this, 'KubeconfigSecretArn', { value: this.kubeconfigSecret.secretArn, description: 'Put the kubeconfig for the job worker here' });
    new CfnOutput(this, 'S3SigningKeySecretArn', {
      value: this.s3SigningKeySecret.secretArn,
      description: 'The S3 key that signs pre-signed URLs and that job pods get (ims-s3-credentials); rotate it as docs/deploy.md says',
    });
    new CfnOutput(this, 'S3SigningUserName', { value: this.s3SigningUser.userName, description: 'IAM user of the S3 signing key' });
    new CfnOutput(this, 'RemoteNodeKeySecretArn', { value: this.remoteNodeKeySecret.secretArn, description: 'Put the remote build nodes SSH private key here' });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn, description: 'Subscribe to it to receive the alarms' });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
    if (this.recipeUploadDeadLetters) {
      new CfnOutput(this, 'RecipeUploadDeadLetterQueueUrl', { value: this.recipeUploadDeadLetters.queueUrl, description: 'Recipe-upload events that failed after their retries' });
    }
    // Last: they apply to every log group and permission the stack has.
    this.applyLogGroupSettings();
    this.applyControls();
  }

  /**
   * Recipe archives uploaded under recipes/ register (and may build) themselves. Copies are left
   * out on purpose: undelete copies archives back and must not start builds again. Only the
   * principals the operator names, and the stack's own roles that write there, may put objects
   * under the prefix. Events that still fail after two retries land in an encrypted queue.
   */
  private createRecipeUploadTrigger(recordsEnv: Record<string, string>, network: FunctionNetwork | undefined): [ImsFunction, sqs.Queue] {
    const deadLetters = new sqs.Queue(this, 'RecipeUploadDeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const lastStop = "This queue is the upload function's on-failure destination, the last stop of a failed event; its depth raises an alarm.";
    for (const id of ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy']) acknowledge(deadLetters, id, lastStop);
    acknowledgeControl(deadLetters, 'CT.SQS.PR.1', 'sqs_dlq_check', lastStop);
    const fn = new ImsFunction(this, 'RecipeUpload', {
      entry: 'functions/events/recipe-upload.ts',
      kind: 'api',
      description: 'IMS: registers recipe archives uploaded to the ims bucket, and starts builds they ask for',
      environment: { ...recordsEnv, STATE_MACHINE_ARN: this.stateMachine.stateMachineArn, RECIPE_UPLOAD_PREFIX: RECIPE_PREFIX },
      // A new job is placed on the remote build nodes, which it probes.
      network,
      onFailure: new lambdaDestinations.SqsDestination(deadLetters),
    });
    acknowledge(
      fn.fn,
      'Serverless-LambdaDLQ',
      'Failed asynchronous invocations go to an on-failure destination (the RecipeUploadDeadLetters queue), which keeps the event and the error; a dead-letter queue would keep only the event.',
    );
    for (const type of [s3.EventType.OBJECT_CREATED_PUT, s3.EventType.OBJECT_CREATED_POST, s3.EventType.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD]) {
      for (const suffix of ['.tgz', '.tar.gz']) {
        this.imsBucket.addEventNotification(type, new s3n.LambdaDestination(fn.fn), { prefix: RECIPE_PREFIX, suffix });
      }
    }
    acknowledgeBucketNotifications(this);
    // The stack's own writers there: soft delete and undelete move archives out and back.
    const writers = [this.apiFunctions.recipes, this.apiFunctions.deleted, ...this.workerFunctions()].map((f) => f.fn.role!.roleArn);
    this.imsBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'RecipeUploadsOnlyByNamedPrincipals',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [this.imsBucket.arnForObjects(`${RECIPE_PREFIX}*`)],
        conditions: { ArnNotLike: { 'aws:PrincipalArn': [...(this.settings.recipeUploadPrincipals ?? []), ...writers] } },
      }),
    );
    return [fn, deadLetters];
  }

  /** Each setting's environment variable, to the functions of its audience (infra/stacks/settings.ts). */
  private applyEnvironment(): void {
    const api = Object.values(this.apiFunctions);
    const upload = this.recipeUploadFunction ? [this.recipeUploadFunction] : [];
    const jobs = [...this.workerFunctions(), this.apiFunctions.jobs, ...upload];
    const audiences: Record<Audience, ImsFunction[]> = {
      all: this.allFunctions(),
      api,
      data: this.allFunctions().filter((f) => f !== this.apiFunctions.service && f !== this.authorizerFunction),
      jobs,
      pods: this.workerFunctions(),
      nodes: [...jobs, this.apiFunctions['remote-build-nodes']],
    };
    for (const [audience, variables] of Object.entries(this.settings.environment) as [Audience, Record<string, string>][]) {
      for (const f of audiences[audience]) for (const [name, value] of Object.entries(variables)) f.fn.addEnvironment(name, value);
    }
  }

  /**
   * Every log group of the stack (the functions', the job workflow's, the API's access logs)
   * keeps its events logRetentionDays, and is encrypted with the stack's key when there is one.
   */
  private applyLogGroupSettings(): void {
    for (const group of this.node.findAll().filter((c): c is logs.LogGroup => c instanceof logs.LogGroup)) {
      const resource = group.node.defaultChild as logs.CfnLogGroup;
      resource.retentionInDays = this.settings.logRetentionDays;
      if (this.key) resource.kmsKeyId = this.key.keyArn;
      else acknowledgeLogGroupKey(group);
    }
  }

  /** What AWS Control Tower's proactive controls ask of the functions. */
  private applyControls(): void {
    // Service principals (API Gateway, S3) may invoke a function only for this account's
    // resources: a resource of another account with the same name cannot.
    for (const permission of this.node.findAll().filter((c): c is lambda.CfnPermission => c instanceof lambda.CfnPermission)) {
      if (!permission.sourceAccount) permission.sourceAccount = this.account;
      acknowledgeControl(
        permission,
        'CT.LAMBDA.PR.2',
        'lambda_function_public_access_prohibited_check',
        "Not public: the principal is a service (API Gateway, S3), limited by SourceArn to this stack's API or bucket and by SourceAccount to this account. The rule reads only literal values, and both are references resolved at deploy time.",
      );
    }
    const inVpc = new Set(this.network ? this.nodeFunctions() : []);
    for (const f of this.allFunctions().filter((f) => !inVpc.has(f))) {
      acknowledgeOutsideVpc(
        f.fn,
        this.network
          ? 'It reaches only AWS services (DynamoDB, S3, Secrets Manager), over their endpoints with IAM: a VPC would add network interfaces and no isolation. The functions that reach the cluster and the nodes run in the VPC.'
          : "No VPC is given (vpcId): the functions reach AWS services and the cluster's and nodes' public endpoints directly, a trial setup; with vpcId those that reach the cluster and the nodes run in it.",
      );
    }
  }

  /** Every function of the stack. */
  allFunctions(): ImsFunction[] {
    return [...Object.values(this.apiFunctions), this.authorizerFunction, ...this.workerFunctions(), ...(this.recipeUploadFunction ? [this.recipeUploadFunction] : [])];
  }

  /** The functions that connect to the remote build nodes (and so check their host keys). */
  nodeFunctions(): ImsFunction[] {
    return [...this.workerFunctions(), this.apiFunctions.jobs, this.apiFunctions['remote-build-nodes'], ...(this.recipeUploadFunction ? [this.recipeUploadFunction] : [])];
  }

  /**
   * The S3 signing identity: an IAM user with a long-lived access key, so pre-signed URLs live as
   * long as S3_URL_EXPIRATION says (a role's temporary credentials expire within hours and take
   * their URLs with them), and the key job pods get to upload artifacts. It may read and write
   * the boot-images bucket's objects (the pods' uploads, HEADs and rollback deletes, and rootfs
   * URLs) and read recipe archives (recipe URLs); nothing else. The key lives in a secret that
   * outlives the stack, like the data it signs for.
   */
  private createS3SigningIdentity(): [iam.User, secretsmanager.Secret] {
    const user = new iam.User(this, 'S3SigningUser');
    user.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [this.bootImagesBucket.arnForObjects('*')],
      }),
    );
    user.addToPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket', 's3:GetBucketLocation'], resources: [this.bootImagesBucket.bucketArn] }));
    user.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [this.imsBucket.arnForObjects(`${RECIPE_PREFIX}*`)] }));
    // The jobs function signs with this key: the URLs of its whole-list objects too.
    user.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [this.imsBucket.arnForObjects(`${LIST_OBJECT_PREFIX}*`)] }));
    this.grantKeyUse(user);
    acknowledgeListObjects(user, this.imsBucket, LIST_OBJECT_PREFIX);
    const key = new iam.AccessKey(this, 'S3SigningKey', { user });
    const secret = new secretsmanager.Secret(this, 'S3SigningKeySecret', {
      description: 'IMS: S3 access key that signs pre-signed URLs and that job pods upload with (JSON accessKeyId, secretAccessKey)',
      secretObjectValue: { accessKeyId: SecretValue.unsafePlainText(key.accessKeyId), secretAccessKey: key.secretAccessKey },
      // It holds the key of a user the stack deletes with itself: kept, it would hold a dead key.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledgeS3SigningIdentity(user, secret, this.bootImagesBucket, this.imsBucket);
    return [user, secret];
  }

  /** Each function gets what its use cases touch, nothing more (service: only its logs). */
  private grantAccess(): void {
    const api = this.apiFunctions;
    const upload = this.recipeUploadFunction ? [this.recipeUploadFunction] : [];
    for (const group of ['public-keys', 'recipes', 'images', 'deleted', 'remote-build-nodes', 'jobs'] as const) {
      this.grantTable(api[group]);
      // A whole list too large for a Lambda response is written under lists/ and read through a pre-signed URL.
      api[group].fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'], resources: [this.imsBucket.arnForObjects(`${LIST_OBJECT_PREFIX}*`)] }),
      );
      acknowledgeListObjects(api[group].fn, this.imsBucket, LIST_OBJECT_PREFIX);
      this.grantKeyUse(api[group].fn);
    }
    // Recipes live in the ims bucket, image manifests and artifacts in boot-images; soft delete
    // and undelete rename objects in place, hence write.
    this.grantBucket(api.recipes, this.imsBucket, true);
    // Recipe links are refused outside what the signing user may read (createS3SigningIdentity),
    // or their download URLs would answer 403 to every job.
    api.recipes.fn.addEnvironment('IMS_RECIPE_LINK_PREFIXES', `s3://${this.imsBucket.bucketName}/${RECIPE_PREFIX}`);
    this.grantBucket(api.images, this.bootImagesBucket, true);
    this.grantBucket(api.deleted, this.imsBucket, true);
    this.grantBucket(api.deleted, this.bootImagesBucket, true);
    // A new job reads the recipe or the image's manifest and presigns its download URL.
    this.grantBucket(api.jobs, this.imsBucket, false);
    this.grantBucket(api.jobs, this.bootImagesBucket, false);
    // Deleting a job removes the logs it kept (jobs/<id>/logs/ in boot-images), and nothing else.
    api.jobs.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: [this.bootImagesBucket.arnForObjects(`${JOB_LOG_PREFIX}*`)] }));
    acknowledgeJobLogDeletion(api.jobs.fn, this.bootImagesBucket, JOB_LOG_PREFIX);
    this.stateMachine.grantStartExecution(api.jobs.fn);
    // Deleting a job removes what its worker made (Kubernetes objects, a node's leftovers), and
    // creating one probes the remote build nodes to place it: the secret ARNs, read at run time.
    for (const f of [api.jobs, ...this.workerFunctions()]) this.grantSecret(f, 'KUBECONFIG_SECRET_ARN', this.kubeconfigSecret);
    for (const f of this.nodeFunctions()) this.grantSecret(f, 'REMOTE_NODE_KEY_SECRET_ARN', this.remoteNodeKeySecret);
    this.grantKnownHosts();
    // The stages mint the job report tokens, the jobs API verifies them.
    for (const f of [api.jobs, ...this.workerFunctions()]) this.grantSecret(f, 'IMS_JOB_REPORT_SECRET_ARN', this.jobReportKeySecret);
    // Creating a job pre-signs its download URL with the signing key; the stage functions hand the
    // key to the job pods (ims-s3-credentials).
    for (const f of [api.jobs, ...upload, ...this.workerFunctions()]) {
      this.grantSecret(f, 'S3_SIGNING_SECRET_ARN', this.s3SigningKeySecret);
    }
    for (const f of upload) {
      this.grantTable(f);
      this.grantBucket(f, this.imsBucket, false);
      this.stateMachine.grantStartExecution(f.fn);
    }
    this.stateMachine.grantExecution(api.jobs.fn, 'states:StopExecution');
    acknowledgeExecutionAccess(api.jobs.fn, this.stateMachine);

    for (const f of this.workerFunctions()) {
      this.grantTable(f);
      this.grantBucket(f, this.imsBucket, true);
      this.grantBucket(f, this.bootImagesBucket, true);
    }
  }

  /**
   * The known_hosts text from a secret or a parameter: each function that connects to a node may
   * read exactly that one (the text itself, when given as context, is in their environment).
   */
  private grantKnownHosts(): void {
    const { remoteNodeKnownHostsSecretArn: secretArn, remoteNodeKnownHostsParameter: parameter } = this.settings;
    const statement = secretArn
      ? new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], resources: [secretArn] })
      : parameter
        ? new iam.PolicyStatement({
            actions: ['ssm:GetParameter'],
            resources: [this.formatArn({ service: 'ssm', resource: 'parameter', resourceName: parameter.replace(/^\//, '') })],
          })
        : undefined;
    if (statement) for (const f of this.nodeFunctions()) f.fn.addToRolePolicy(statement);
  }

  /** The functions that run the workers' code: the stages and the reconciler. */
  private workerFunctions(): ImsFunction[] {
    return [...STAGES.map((stage) => this.stageFunctions[stage]), this.reconcileFunction];
  }

  /** Objects encrypted with the stack's key (customerManagedKey): reads decrypt, writes (in parts too) make data keys. */
  private grantKeyUse(grantee: iam.IGrantable): void {
    if (this.key) grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [this.key.keyArn] }));
  }

  private grantSecret(f: ImsFunction, variable: string, secret: secretsmanager.Secret): void {
    f.fn.addEnvironment(variable, secret.secretArn);
    secret.grantRead(f.fn);
  }

  private grantTable(f: ImsFunction): void {
    this.table.grantReadWriteData(f.fn);
    acknowledgeTableAccess(f.fn, this.table);
    if (this.key) acknowledgeKeyUse(f.fn, this.key);
  }

  private grantBucket(f: ImsFunction, bucket: s3.Bucket, write: boolean): void {
    if (write) bucket.grantReadWrite(f.fn);
    else bucket.grantRead(f.fn);
    acknowledgeBucketAccess(f.fn, bucket, write);
    if (this.key && write) acknowledgeKeyUse(f.fn, this.key);
  }
}
