/**
 * The job workflow, written once with aws-cdk-lib. infra/ deploys it as a Step Functions state
 * machine; `npm run generate` synthesizes the same definition to ASL
 * (shared/workflow/generated/job-workflow.asl.json), which the embedded runtime runs with
 * aws-local-stepfunctions.
 *
 *   Prepare → Build → Ssh → Package → Register → CleanupSuccess → Succeeded
 *
 * prepare, build, ssh and package wait on outside work: each is one Lambda task with a task token
 * (`.waitForTaskToken`). The stage's entry parks the token in the job's state; the execution then
 * waits, at no cost, until a check resumes it (a pod's PATCH, the reconciler, the entry itself),
 * so the history of a job does not grow with its duration. A stage whose work stops reporting is
 * ended by HeartbeatSeconds (the reconciler heartbeats living work once a minute). Every task
 * error is retried, then caught into the error cleanup, which records the reason.
 */
import { Duration } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';

export interface JobWorkflowFunctions {
  prepare: IFunction;
  build: IFunction;
  ssh: IFunction;
  package: IFunction;
  register: IFunction;
  cleanup: IFunction;
}

export interface JobWorkflowOptions {
  /** Upper bound of one Lambda invocation of a stage. */
  taskTimeoutSeconds?: number;
  /** Upper bound of a whole execution (the stages' own limits are shorter). */
  executionTimeout?: Duration;
  /** A waiting stage fails when no check has heartbeated it for this long (the reconciler runs every minute). */
  heartbeatSeconds?: number;
}

export const DEFAULT_EXECUTION_TIMEOUT = Duration.hours(36);
export const DEFAULT_HEARTBEAT_SECONDS = 600;

/** Errors worth a second try: a failed invocation, or a stage that went without heartbeat (it is entered again with a new token). */
const RETRIED = ['States.TaskFailed', 'States.HeartbeatTimeout'];

function invoke(scope: Construct, id: string, fn: IFunction, payload: Record<string, unknown>, taskTimeoutSeconds: number, resultPath = '$.stage') {
  const task = new tasks.LambdaInvoke(scope, id, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject(payload),
    payloadResponseOnly: true,
    resultPath,
    taskTimeout: sfn.Timeout.duration(Duration.seconds(taskTimeoutSeconds)),
    retryOnServiceExceptions: false,
  });
  task.addRetry({ errors: RETRIED, maxAttempts: 2, interval: Duration.seconds(2), backoffRate: 2 });
  return task;
}

export function buildJobWorkflow(scope: Construct, fns: JobWorkflowFunctions, options: JobWorkflowOptions = {}): sfn.DefinitionBody {
  const taskTimeout = options.taskTimeoutSeconds ?? 300;
  const executionTimeout = options.executionTimeout ?? DEFAULT_EXECUTION_TIMEOUT;
  const heartbeat = options.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
  const jobId = sfn.JsonPath.stringAt('$.jobId');

  const failed = new sfn.Fail(scope, 'JobFailed', { error: 'JobFailed', causePath: '$.stage.reason' });
  const failedHard = new sfn.Fail(scope, 'JobFailedWithoutCleanup', { error: 'CleanupFailed' });
  const succeeded = new sfn.Succeed(scope, 'Succeeded');
  const gone = new sfn.Succeed(scope, 'JobDeleted', { comment: 'The job record was deleted while the workflow ran.' });

  const cleanupAfterFailure = invoke(scope, 'CleanupAfterFailure', fns.cleanup, { jobId, outcome: 'error', reason: sfn.JsonPath.stringAt('$.stage.reason') }, taskTimeout, '$.cleanup');
  cleanupAfterFailure.addCatch(failedHard, { resultPath: '$.cleanupError' }).next(failed);
  const cleanupAfterError = invoke(scope, 'CleanupAfterError', fns.cleanup, { jobId, outcome: 'error', error: sfn.JsonPath.objectAt('$.error') }, taskTimeout, '$.cleanup');
  cleanupAfterError.addCatch(failedHard, { resultPath: '$.cleanupError' }).next(new sfn.Fail(scope, 'JobErrored', { error: 'JobFailed', causePath: '$.error.Cause' }));

  const cleanupSuccess = invoke(scope, 'CleanupSuccess', fns.cleanup, { jobId, outcome: 'success' }, taskTimeout, '$.cleanup');
  cleanupSuccess.addCatch(failedHard, { resultPath: '$.cleanupError' }).next(succeeded);

  const register = invoke(scope, 'Register', fns.register, { jobId }, taskTimeout);
  register.addCatch(cleanupAfterError, { resultPath: '$.error' });
  register.next(
    new sfn.Choice(scope, 'RegisterOutcome')
      .when(sfn.Condition.stringEquals('$.stage.outcome', 'done'), cleanupSuccess)
      .when(sfn.Condition.stringEquals('$.stage.outcome', 'gone'), gone)
      .otherwise(cleanupAfterFailure),
  );

  const waiting = (name: 'Prepare' | 'Build' | 'Ssh' | 'Package', fn: IFunction, next: sfn.IChainable): sfn.TaskStateBase => {
    const task = new tasks.LambdaInvoke(scope, name, {
      lambdaFunction: fn,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      payload: sfn.TaskInput.fromObject({ jobId, taskToken: sfn.JsonPath.taskToken }),
      resultPath: '$.stage',
      heartbeatTimeout: sfn.Timeout.duration(Duration.seconds(heartbeat)),
      // The stage's own limit is enforced by its checks, with the reason; this only bounds the wait.
      taskTimeout: sfn.Timeout.duration(executionTimeout),
      retryOnServiceExceptions: false,
    });
    task.addRetry({ errors: RETRIED, maxAttempts: 2, interval: Duration.seconds(2), backoffRate: 2 });
    task.addCatch(cleanupAfterError, { resultPath: '$.error' });
    task.next(
      new sfn.Choice(scope, `${name}Outcome`)
        .when(sfn.Condition.stringEquals('$.stage.outcome', 'done'), next)
        .when(sfn.Condition.stringEquals('$.stage.outcome', 'gone'), gone)
        .otherwise(cleanupAfterFailure),
    );
    return task;
  };

  const pack = waiting('Package', fns.package, register);
  const ssh = waiting('Ssh', fns.ssh, pack);
  const build = waiting('Build', fns.build, ssh);
  const prepare = waiting('Prepare', fns.prepare, build);
  return sfn.DefinitionBody.fromChainable(prepare);
}
