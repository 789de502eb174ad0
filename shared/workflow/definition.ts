/**
 * The job workflow, written once with aws-cdk-lib. infra/ deploys it as a Step Functions state
 * machine; `npm run generate` synthesizes the same definition to ASL
 * (shared/workflow/generated/job-workflow.asl.json), which the embedded runtime runs with
 * aws-local-stepfunctions.
 *
 *   Prepare → Build → Ssh → Package → Register → CleanupSuccess → Succeeded
 *
 * Each polled stage is a Lambda task in a bounded loop (task → choice → wait → task); the stage
 * handler enforces the stage's time limit, so every path ends in Succeeded or JobFailed. Any task
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
  /** Seconds between two polls of a running stage. */
  pollSeconds?: number;
  /** Upper bound of one Lambda invocation of a stage. */
  taskTimeoutSeconds?: number;
  /** Upper bound of a whole execution (the stages' own limits are shorter). */
  executionTimeout?: Duration;
}

export const DEFAULT_EXECUTION_TIMEOUT = Duration.hours(36);

function invoke(scope: Construct, id: string, fn: IFunction, payload: Record<string, unknown>, taskTimeoutSeconds: number, resultPath = '$.stage') {
  const task = new tasks.LambdaInvoke(scope, id, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject(payload),
    payloadResponseOnly: true,
    resultPath,
    taskTimeout: sfn.Timeout.duration(Duration.seconds(taskTimeoutSeconds)),
    retryOnServiceExceptions: false,
  });
  task.addRetry({ errors: ['States.ALL'], maxAttempts: 2, interval: Duration.seconds(2), backoffRate: 2 });
  return task;
}

export function buildJobWorkflow(scope: Construct, fns: JobWorkflowFunctions, options: JobWorkflowOptions = {}): sfn.DefinitionBody {
  const poll = options.pollSeconds ?? 5;
  const taskTimeout = options.taskTimeoutSeconds ?? 300;
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

  const polled = (name: 'Prepare' | 'Build' | 'Ssh' | 'Package', fn: IFunction, next: sfn.IChainable): sfn.TaskStateBase => {
    const task = invoke(scope, name, fn, { jobId }, taskTimeout);
    task.addCatch(cleanupAfterError, { resultPath: '$.error' });
    const wait = new sfn.Wait(scope, `${name}Wait`, { time: sfn.WaitTime.duration(Duration.seconds(poll)) });
    wait.next(task);
    task.next(
      new sfn.Choice(scope, `${name}Outcome`)
        .when(sfn.Condition.stringEquals('$.stage.outcome', 'done'), next)
        .when(sfn.Condition.stringEquals('$.stage.outcome', 'running'), wait)
        .when(sfn.Condition.stringEquals('$.stage.outcome', 'gone'), gone)
        .otherwise(cleanupAfterFailure),
    );
    return task;
  };

  const pack = polled('Package', fns.package, register);
  const ssh = polled('Ssh', fns.ssh, pack);
  const build = polled('Build', fns.build, ssh);
  const prepare = polled('Prepare', fns.prepare, build);
  return sfn.DefinitionBody.fromChainable(prepare);
}
