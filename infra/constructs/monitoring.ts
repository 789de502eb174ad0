/**
 * Alarms and the one dashboard of the service. Every alarm notifies one SNS topic: the
 * operator's (context alarmTopicArn), else a topic of the stack, KMS-encrypted and TLS-only.
 * docs/deploy.md ("Monitoring") says what each alarm means and what to do.
 */
import { Duration } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { denyGrantsToNonServices } from './encryption.js';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** What the reconciler emits for every job it had to fail (namespace IMS, Powertools' default dimension). */
export const RECONCILER_FAILED_JOBS = { namespace: 'IMS', metricName: 'ReconcilerFailedJobs', dimensionsMap: { service: 'ims' } } as const;

const PERIOD = Duration.minutes(5);

export interface MonitoringProps {
  /** An existing topic for the alarms; left out, one is created. */
  alarmTopicArn?: string;
  api: apigwv2.HttpApi;
  /** Name (as the dashboard shows it) → function. */
  functions: Record<string, lambda.IFunction>;
  reconciler: lambda.IFunction;
  stateMachine: sfn.StateMachine;
  /** The recipe-upload dead-letter queue, when the trigger is on. */
  deadLetters?: sqs.IQueue;
}

export class Monitoring extends Construct {
  readonly topic: sns.ITopic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = props.alarmTopicArn ? sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) : this.createTopic();
    const action = new actions.SnsAction(this.topic);
    const alarm = (name: string, metric: cloudwatch.IMetric, description: string, threshold = 1) => {
      const a = new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `IMS: ${description}`,
      });
      a.addAlarmAction(action);
      this.alarms.push(a);
      return a;
    };

    const api5xx = props.api.metricServerError({ period: PERIOD, statistic: 'Sum' });
    alarm('Api5xx', api5xx, 'the HTTP API answered 5 or more 5xx in 5 minutes', 5);
    for (const [name, fn] of Object.entries(props.functions)) {
      alarm(`${name}-Errors`, fn.metricErrors({ period: PERIOD, statistic: 'Sum' }), `function ${name} failed (Errors)`);
      alarm(`${name}-Throttles`, fn.metricThrottles({ period: PERIOD, statistic: 'Sum' }), `function ${name} was throttled`);
    }
    const failed = props.stateMachine.metricFailed({ period: PERIOD, statistic: 'Sum' });
    const timedOut = props.stateMachine.metricTimedOut({ period: PERIOD, statistic: 'Sum' });
    alarm('ExecutionsFailed', failed, 'a job workflow execution failed');
    alarm('ExecutionsTimedOut', timedOut, 'a job workflow execution timed out');
    const reconcilerFailed = new cloudwatch.Metric({ ...RECONCILER_FAILED_JOBS, statistic: 'Sum', period: PERIOD });
    alarm('ReconcilerFailedJobs', reconcilerFailed, 'the reconciler failed a job whose execution had ended, or whose worker was lost');
    const deadLetters = props.deadLetters?.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' });
    if (deadLetters) alarm('RecipeUploadDeadLetters', deadLetters, 'a recipe upload event failed after its retries (see the dead-letter queue)');

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const fns = Object.entries(props.functions);
    const perFunction = (metric: (fn: lambda.IFunction) => cloudwatch.Metric) => fns.map(([name, fn]) => metric(fn).with({ label: name, period: PERIOD }));
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }),
      new cloudwatch.GraphWidget({
        title: 'API requests and errors',
        left: [props.api.metricCount({ period: PERIOD }), props.api.metricClientError({ period: PERIOD }), api5xx],
        right: [props.api.metricLatency({ period: PERIOD, statistic: 'p99' })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({ title: 'Job workflow executions', left: [props.stateMachine.metricStarted({ period: PERIOD }), props.stateMachine.metricSucceeded({ period: PERIOD }), failed, timedOut], width: 12 }),
      new cloudwatch.GraphWidget({ title: 'Function errors', left: perFunction((fn) => fn.metricErrors({ statistic: 'Sum' })), width: 12 }),
      new cloudwatch.GraphWidget({ title: 'Function throttles', left: perFunction((fn) => fn.metricThrottles({ statistic: 'Sum' })), width: 12 }),
      new cloudwatch.GraphWidget({ title: 'Function duration (p99)', left: perFunction((fn) => fn.metricDuration({ statistic: 'p99' })), width: 12 }),
      new cloudwatch.GraphWidget({
        title: 'Reconciler',
        left: [reconcilerFailed.with({ label: 'jobs failed by the reconciler' })],
        right: [props.reconciler.metricErrors({ period: PERIOD, statistic: 'Sum' }), props.reconciler.metricDuration({ period: PERIOD, statistic: 'Maximum' })],
        width: 12,
      }),
      ...(deadLetters ? [new cloudwatch.GraphWidget({ title: 'Recipe upload dead letters', left: [deadLetters], width: 12 })] : []),
    );
  }

  private createTopic(): sns.Topic {
    const key = new kms.Key(this, 'AlarmTopicKey', { enableKeyRotation: true, description: 'IMS: encrypts the alarm topic' });
    // CloudWatch publishes alarm notifications to the encrypted topic.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    denyGrantsToNonServices(key);
    return new sns.Topic(this, 'AlarmTopic', { displayName: 'IMS alarms', masterKey: key, enforceSSL: true });
  }
}
