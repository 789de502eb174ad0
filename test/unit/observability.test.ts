/**
 * The Powertools wrapper of the Lambda entry points, as in a Lambda function: the invocation's
 * context in every log line, a ColdStart metric, and the reconciler's ReconcilerFailedJobs count
 * in namespace IMS with the single default dimension service=ims (the alarm's metric).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Context } from 'aws-lambda';

const SET = { AWS_LAMBDA_FUNCTION_NAME: 'ims-reconcile', AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand', POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_LOG_LEVEL: 'INFO' };
const saved: Record<string, string | undefined> = {};
let lines: string[] = [];
const write = process.stdout.write.bind(process.stdout);

beforeAll(() => {
  for (const [name, value] of Object.entries(SET)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
  // Metrics (EMF) and logs go to stdout: collect them instead.
  process.stdout.write = ((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  }) as typeof process.stdout.write;
});
afterAll(() => {
  process.stdout.write = write;
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const context = { functionName: 'ims-reconcile', functionVersion: '$LATEST', awsRequestId: 'req-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:1:function:ims-reconcile', memoryLimitInMB: '512', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

describe('lambdaHandler', () => {
  test('logs carry the request id and cold start; metrics are written as EMF with service=ims in namespace IMS', async () => {
    // Imported once the environment says "Lambda": the settings are read when the module loads.
    const { lambdaHandler, countMetric } = await import('#shared/observability.js');
    const { logger } = await import('#shared/logger.js');
    logger.setLogLevel('INFO');
    const handler = lambdaHandler(async () => {
      logger.info('inside');
      countMetric('ReconcilerFailedJobs');
      countMetric('ReconcilerFailedJobs');
      return 'done';
    });
    expect(await handler({}, context)).toBe('done');
    const json = lines.map((l) => JSON.parse(l) as Record<string, any>);
    const log = json.find((l) => l.message === 'inside');
    expect(log).toMatchObject({ function_request_id: 'req-1', cold_start: true, function_name: 'ims-reconcile', service: 'ims' });

    const emf = json.filter((l) => l._aws);
    const coldStart = emf.find((l) => l.ColdStart !== undefined);
    expect(coldStart?._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'IMS', Metrics: [{ Name: 'ColdStart', Unit: 'Count' }] });
    const failed = emf.find((l) => l.ReconcilerFailedJobs !== undefined);
    expect(failed?._aws.CloudWatchMetrics[0]).toEqual({ Namespace: 'IMS', Dimensions: [['service']], Metrics: [{ Name: 'ReconcilerFailedJobs', Unit: 'Count' }] });
    // Two counts in one invocation: one EMF entry with both values (CloudWatch sums them).
    expect(failed).toMatchObject({ service: 'ims', ReconcilerFailedJobs: [1, 1] });

    // A second invocation is warm.
    lines = [];
    await handler({}, { ...context, awsRequestId: 'req-2' } as Context);
    expect(lines.map((l) => JSON.parse(l)).some((l: Record<string, unknown>) => l.ColdStart !== undefined)).toBe(false);
  });
});
