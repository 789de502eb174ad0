/**
 * The deployed service: the HTTP API and its handlers, the job workflow, the records table, the
 * artifact buckets and the secrets the workers need. Each function is granted only what its
 * use cases touch (docs/deploy.md lists them).
 */
import { ArnFormat, CfnOutput, CfnParameter, Duration, Fn, RemovalPolicy, SecretValue, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { HandlerGroup } from '#shared/http/routes.js';
import { LIST_OBJECT_DAYS, LIST_OBJECT_PREFIX } from '#shared/http/list-objects.js';
import { buildJobWorkflow, DEFAULT_EXECUTION_TIMEOUT, type JobWorkflowFunctions } from '#infra/workflow/definition.js';
import { knownHostsFromSetting } from '#shared/workers/remote-node/known-hosts.js';
import { ImsFunction } from '../constructs/ims-function.js';
import { ImsHttpApi } from '../constructs/ims-http-api.js';
import { createRecordsTable } from '../constructs/records-table.js';
import { createAccessLogsBucket, createDataBucket } from '../constructs/secure-bucket.js';
import {
  acknowledgeBucketNotifications,
  acknowledgeBucketAccess,
  acknowledgeExecutionAccess,
  acknowledgeReconcilerExecutions,
  acknowledgeSchedulerInvoke,
  acknowledgeExternalSecret,
  acknowledgeListObjects,
  acknowledgeS3SigningIdentity,
  acknowledgeStateMachine,
  acknowledgeTableAccess,
} from '../constructs/nag.js';

export interface ImsStackProps extends StackProps {
  /** Bucket names are global; left out, CloudFormation generates unique ones. */
  imsBucketName?: string;
  bootImagesBucketName?: string;
  /** What `GET /version` answers (IMS_VERSION). */
  imsVersion: string;
  /** The worker new jobs run on (IMS_JOB_WORKER). */
  jobWorker: string;
  /**
   * known_hosts text the remote build nodes' host keys are checked against
   * (REMOTE_NODE_KNOWN_HOSTS); left out, any host key is accepted. Host keys are public, so an
   * environment variable is fine; Lambda allows 4 KB of environment per function.
   */
  remoteNodeKnownHosts?: string;
  /**
   * Host (with `:port` when not the scheme's) the job pods reach IMS at, under `/apis/ims`
   * (API_GATEWAY_HOSTNAME); left out, the HTTP API's own endpoint host.
   */
  podApiHostname?: string;
  /** Scheme of the pods' IMS URL (IMS_JOB_API_SCHEME); default https. */
  podApiScheme?: 'https' | 'http';
}

/** The kubernetes worker renders its job manifests from these templates at run time. */
/** Where recipe archives that register themselves are uploaded (RECIPE_UPLOAD_PREFIX). */
const RECIPE_PREFIX = 'recipes/';

export const STAGE_FILES = { 'shared/workers/kubernetes/templates': 'templates' };

type Stage = keyof JobWorkflowFunctions;
const STAGES: readonly Stage[] = ['prepare', 'build', 'ssh', 'package', 'register', 'cleanup'];

export class ImsStack extends Stack {
  readonly table: dynamodb.Table;
  readonly imsBucket: s3.Bucket;
  readonly bootImagesBucket: s3.Bucket;
  readonly kubeconfigSecret: secretsmanager.Secret;
  readonly remoteNodeKeySecret: secretsmanager.Secret;
  /** The IAM user whose access key signs pre-signed URLs and is what job pods upload with. */
  readonly s3SigningUser: iam.User;
  /** JSON {accessKeyId, secretAccessKey} of that user (S3_SIGNING_SECRET_ARN); retained on stack delete. */
  readonly s3SigningKeySecret: secretsmanager.Secret;
  readonly apiFunctions: Record<HandlerGroup, ImsFunction>;
  readonly stageFunctions: Record<Stage, ImsFunction>;
  readonly recipeUploadFunction: ImsFunction;
  readonly stateMachine: sfn.StateMachine;
  /** Checks every job not yet ended once a minute (shared/workflow/reconcile.ts). */
  readonly reconcileFunction: ImsFunction;
  readonly httpApi: ImsHttpApi;

  constructor(scope: Construct, id: string, props: ImsStackProps) {
    super(scope, id, props);

    const jwtIssuer = new CfnParameter(this, 'JwtIssuer', {
      type: 'String',
      description: 'Issuer URL of the JWTs the API accepts (e.g. https://auth.example.com/realms/shasta)',
    });
    const jwtAudience = new CfnParameter(this, 'JwtAudience', {
      type: 'CommaDelimitedList',
      description: 'Audiences (aud or client_id claims) the API accepts, comma-separated',
    });

    this.table = createRecordsTable(this, 'Records');
    const accessLogs = createAccessLogsBucket(this, 'AccessLogs');
    this.imsBucket = createDataBucket(this, 'ImsBucket', { bucketName: props.imsBucketName, accessLogs, versioned: false });
    this.bootImagesBucket = createDataBucket(this, 'BootImagesBucket', { bucketName: props.bootImagesBucketName, accessLogs, versioned: true });
    this.imsBucket.addLifecycleRule({ prefix: LIST_OBJECT_PREFIX, expiration: Duration.days(LIST_OBJECT_DAYS) });

    // Created without a value (CloudFormation fills in a random placeholder); the operator puts
    // the real one in after the first deploy, so no secret ever appears in the template.
    this.kubeconfigSecret = new secretsmanager.Secret(this, 'KubeconfigSecret', {
      description: 'IMS: kubeconfig (YAML) the kubernetes job worker uses to reach the cluster',
    });
    this.remoteNodeKeySecret = new secretsmanager.Secret(this, 'RemoteNodeKeySecret', {
      description: 'IMS: SSH private key (PEM/OpenSSH) for remote build nodes',
    });
    acknowledgeExternalSecret(this.kubeconfigSecret);
    acknowledgeExternalSecret(this.remoteNodeKeySecret);
    [this.s3SigningUser, this.s3SigningKeySecret] = this.createS3SigningIdentity();

    const recordsEnv = {
      TABLE_NAME: this.table.tableName,
      S3_IMS_BUCKET: this.imsBucket.bucketName,
      S3_BOOT_IMAGES_BUCKET: this.bootImagesBucket.bucketName,
      IMS_VERSION: props.imsVersion,
      IMS_JOB_WORKER: props.jobWorker,
    };

    const apiScope = new Construct(this, 'ApiHandlers');
    const apiFunction = (group: HandlerGroup, description: string, environment: Record<string, string> = recordsEnv) =>
      new ImsFunction(apiScope, group, { entry: `functions/api/${group}.ts`, kind: 'api', description, environment });
    this.apiFunctions = {
      // Health, version and unknown URLs touch no data: only the version is passed in.
      service: apiFunction('service', 'IMS API: health, version, unknown URLs', { IMS_VERSION: props.imsVersion }),
      'public-keys': apiFunction('public-keys', 'IMS API: public keys'),
      recipes: apiFunction('recipes', 'IMS API: recipes'),
      images: apiFunction('images', 'IMS API: images'),
      deleted: apiFunction('deleted', 'IMS API: soft-deleted records'),
      'remote-build-nodes': apiFunction('remote-build-nodes', 'IMS API: remote build nodes'),
      jobs: apiFunction('jobs', 'IMS API: jobs'),
    };

    const stageScope = new Construct(this, 'WorkflowStages');
    const stageEnv = {
      ...recordsEnv,
      // ARNs only: the workers read the values at run time (shared/secrets.ts).
      KUBECONFIG_SECRET_ARN: this.kubeconfigSecret.secretArn,
      REMOTE_NODE_KEY_SECRET_ARN: this.remoteNodeKeySecret.secretArn,
    };
    this.stageFunctions = Object.fromEntries(
      STAGES.map((stage) => [
        stage,
        new ImsFunction(stageScope, stage, {
          entry: `functions/workflow/${stage}.ts`,
          kind: 'workflow',
          description: `IMS job workflow: ${stage}`,
          environment: stageEnv,
          files: STAGE_FILES,
        }),
      ]),
    ) as Record<Stage, ImsFunction>;

    // The reconciler runs the workers' checks as the waiting stages do, with the same settings.
    this.reconcileFunction = new ImsFunction(stageScope, 'reconcile', {
      entry: 'functions/workflow/reconcile.ts',
      kind: 'workflow',
      description: 'IMS job workflow: reconciler (resumes, heartbeats or fails waiting jobs)',
      environment: stageEnv,
      files: STAGE_FILES,
    });
    const schedulerRole = new iam.Role(this, 'ReconcileSchedulerRole', { assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com') });
    new scheduler.Schedule(this, 'ReconcileEveryMinute', {
      description: 'IMS: check every job not yet ended',
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      // A missed pass is made up by the next one a minute later.
      target: new schedulerTargets.LambdaInvoke(this.reconcileFunction.fn, { role: schedulerRole, retryAttempts: 0 }),
    });
    acknowledgeSchedulerInvoke(schedulerRole, this.reconcileFunction.fn);

    const workflowLogs = new logs.LogGroup(this, 'JobWorkflowLogs', { retention: logs.RetentionDays.ONE_MONTH });
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
    const stateMachineArn = this.formatArn({ service: 'states', resource: 'stateMachine', resourceName: stateMachineName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const executionsArn = this.formatArn({ service: 'states', resource: 'execution', resourceName: `${stateMachineName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    this.stateMachine = new sfn.StateMachine(this, 'JobWorkflow', {
      stateMachineName,
      definitionBody: buildJobWorkflow(this, fns),
      timeout: DEFAULT_EXECUTION_TIMEOUT,
      tracingEnabled: true,
      logs: { destination: workflowLogs, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    acknowledgeStateMachine(this.stateMachine, Object.values(fns));
    this.apiFunctions.jobs.fn.addEnvironment('STATE_MACHINE_ARN', this.stateMachine.stateMachineArn);
    // A pod's PATCH resumes the stage waiting on it.
    this.stateMachine.grantTaskResponse(this.apiFunctions.jobs.fn);
    // The waiting stages and the reconciler resume, heartbeat or fail the executions; the
    // reconciler also looks at an execution's status.
    for (const f of this.workerFunctions()) {
      f.fn.addEnvironment('STATE_MACHINE_ARN', stateMachineArn);
      f.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], resources: [stateMachineArn] }));
    }
    this.reconcileFunction.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executionsArn] }));
    acknowledgeReconcilerExecutions(this.reconcileFunction, stateMachineName);

    // Recipe archives uploaded under recipes/ register (and may build) themselves. Copies are left
    // out on purpose: undelete copies archives back and must not start builds again.
    this.recipeUploadFunction = new ImsFunction(this, 'RecipeUpload', {
      entry: 'functions/events/recipe-upload.ts',
      kind: 'api',
      description: 'IMS: registers recipe archives uploaded to the ims bucket, and starts builds they ask for',
      environment: { ...recordsEnv, STATE_MACHINE_ARN: this.stateMachine.stateMachineArn, RECIPE_UPLOAD_PREFIX: RECIPE_PREFIX },
    });
    for (const type of [s3.EventType.OBJECT_CREATED_PUT, s3.EventType.OBJECT_CREATED_POST, s3.EventType.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD]) {
      for (const suffix of ['.tgz', '.tar.gz']) {
        this.imsBucket.addEventNotification(type, new s3n.LambdaDestination(this.recipeUploadFunction.fn), { prefix: RECIPE_PREFIX, suffix });
      }
    }
    acknowledgeBucketNotifications(this);

    this.grantAccess(props.remoteNodeKnownHosts);

    this.httpApi = new ImsHttpApi(this, 'Http', {
      handlers: Object.fromEntries(Object.entries(this.apiFunctions).map(([group, f]) => [group, f.fn])) as Record<HandlerGroup, ImsFunction['fn']>,
      jwtIssuer: jwtIssuer.valueAsString,
      jwtAudience: jwtAudience.valueAsList,
    });

    // Where the job pods report: the stage functions render it into the job templates
    // (API_GATEWAY_HOSTNAME, and IMS_URL = <scheme>://<host>/apis/ims).
    const podApiHostname = props.podApiHostname ?? Fn.select(2, Fn.split('/', this.httpApi.api.apiEndpoint));
    for (const f of this.workerFunctions()) {
      f.fn.addEnvironment('API_GATEWAY_HOSTNAME', podApiHostname);
      if (props.podApiScheme) f.fn.addEnvironment('IMS_JOB_API_SCHEME', props.podApiScheme);
    }

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
    acknowledgeListObjects(user, this.imsBucket, LIST_OBJECT_PREFIX);
    const key = new iam.AccessKey(this, 'S3SigningKey', { user });
    const secret = new secretsmanager.Secret(this, 'S3SigningKeySecret', {
      description: 'IMS: S3 access key that signs pre-signed URLs and that job pods upload with (JSON accessKeyId, secretAccessKey)',
      secretObjectValue: { accessKeyId: SecretValue.unsafePlainText(key.accessKeyId), secretAccessKey: key.secretAccessKey },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledgeS3SigningIdentity(user, secret, this.bootImagesBucket, this.imsBucket);
    return [user, secret];
  }

  /** Each function gets what its use cases touch, nothing more (service: only its logs). */
  private grantAccess(remoteNodeKnownHosts: string | undefined): void {
    const api = this.apiFunctions;
    for (const group of ['public-keys', 'recipes', 'images', 'deleted', 'remote-build-nodes', 'jobs'] as const) {
      this.grantTable(api[group]);
      // A whole list too large for a Lambda response is written under lists/ and read through a pre-signed URL.
      api[group].fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'], resources: [this.imsBucket.arnForObjects(`${LIST_OBJECT_PREFIX}*`)] }),
      );
      acknowledgeListObjects(api[group], this.imsBucket, LIST_OBJECT_PREFIX);
    }
    // Recipes live in the ims bucket, image manifests and artifacts in boot-images; soft delete
    // and undelete rename objects in place, hence write.
    this.grantBucket(api.recipes, this.imsBucket, true);
    this.grantBucket(api.images, this.bootImagesBucket, true);
    this.grantBucket(api.deleted, this.imsBucket, true);
    this.grantBucket(api.deleted, this.bootImagesBucket, true);
    // A new job reads the recipe or the image's manifest and presigns its download URL.
    this.grantBucket(api.jobs, this.imsBucket, false);
    this.grantBucket(api.jobs, this.bootImagesBucket, false);
    this.stateMachine.grantStartExecution(api.jobs.fn);
    // Deleting a job removes what its worker made (Kubernetes objects, a node's leftovers), and
    // creating one probes the remote build nodes to place it: the secret ARNs, read at run time.
    const kubeconfigReaders = [api.jobs];
    const nodeKeyReaders = [api.jobs, api['remote-build-nodes'], this.recipeUploadFunction];
    for (const f of kubeconfigReaders) this.grantSecret(f, 'KUBECONFIG_SECRET_ARN', this.kubeconfigSecret);
    for (const f of nodeKeyReaders) this.grantSecret(f, 'REMOTE_NODE_KEY_SECRET_ARN', this.remoteNodeKeySecret);
    if (remoteNodeKnownHosts !== undefined) {
      // Malformed text fails the synth here, not the first connection to a node.
      knownHostsFromSetting(remoteNodeKnownHosts);
      for (const f of [...nodeKeyReaders, ...this.workerFunctions()]) {
        f.fn.addEnvironment('REMOTE_NODE_KNOWN_HOSTS', remoteNodeKnownHosts);
      }
    }
    // Creating a job pre-signs its download URL with the signing key; the stage functions hand the
    // key to the job pods (ims-s3-credentials).
    for (const f of [api.jobs, this.recipeUploadFunction, ...this.workerFunctions()]) {
      this.grantSecret(f, 'S3_SIGNING_SECRET_ARN', this.s3SigningKeySecret);
    }
    this.grantTable(this.recipeUploadFunction);
    this.grantBucket(this.recipeUploadFunction, this.imsBucket, false);
    this.stateMachine.grantStartExecution(this.recipeUploadFunction.fn);
    this.stateMachine.grantExecution(api.jobs.fn, 'states:StopExecution');
    acknowledgeExecutionAccess(api.jobs, this.stateMachine);

    for (const f of this.workerFunctions()) {
      this.grantTable(f);
      this.grantBucket(f, this.imsBucket, true);
      this.grantBucket(f, this.bootImagesBucket, true);
      this.kubeconfigSecret.grantRead(f.fn);
      this.remoteNodeKeySecret.grantRead(f.fn);
    }
  }

  /** The functions that run the workers' code: the stages and the reconciler. */
  private workerFunctions(): ImsFunction[] {
    return [...STAGES.map((stage) => this.stageFunctions[stage]), this.reconcileFunction];
  }

  private grantSecret(f: ImsFunction, variable: string, secret: secretsmanager.Secret): void {
    f.fn.addEnvironment(variable, secret.secretArn);
    secret.grantRead(f.fn);
  }

  private grantTable(f: ImsFunction): void {
    this.table.grantReadWriteData(f.fn);
    acknowledgeTableAccess(f, this.table);
  }

  private grantBucket(f: ImsFunction, bucket: s3.Bucket, write: boolean): void {
    if (write) bucket.grantReadWrite(f.fn);
    else bucket.grantRead(f.fn);
    acknowledgeBucketAccess(f, bucket, write);
  }
}
