/**
 * Powertools around every Lambda entry point (API handlers, workflow stages, the reconciler, the
 * recipe-upload trigger): `lambdaHandler` adds the invocation's context to every log line
 * (request id, cold start, function), traces the invocation and the AWS SDK clients the
 * service builds (X-Ray, through Tracer: a no-op outside Lambda), and writes metrics as
 * CloudWatch EMF (a `ColdStart` metric, and what the code counts, e.g. `ReconcilerFailedJobs`,
 * with the default dimension service=ims). Outside a Lambda function metrics are not written.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { readObservabilitySettings } from './config.js';
import { logger } from './logger.js';

const settings = readObservabilitySettings();

export const tracer = new Tracer({ serviceName: settings.serviceName });

export const metrics = new Metrics({
  namespace: settings.metricsNamespace,
  serviceName: settings.serviceName,
  // Powertools' notice that an invocation counted nothing is no operator's concern.
  logger: {
    debug: (...args: unknown[]) => logger.debug(String(args[0])),
    info: (...args: unknown[]) => logger.info(String(args[0])),
    warn: (...args: unknown[]) => (String(args[0]).startsWith('No application metrics') ? logger.debug(String(args[0])) : logger.warn(String(args[0]))),
    error: (...args: unknown[]) => logger.error(String(args[0])),
  },
});

/** Counts `count` occurrences of `name` (unit Count) in the current invocation's metrics. */
export function countMetric(name: string, count = 1): void {
  if (settings.metrics) metrics.addMetric(name, MetricUnit.Count, count);
}

/** An AWS SDK v3 client whose calls are traced as subsegments (unchanged outside Lambda). */
export function traced<T>(client: T): T {
  return tracer.captureAWSv3Client(client);
}

/** The Powertools middlewares, in the order every entry point uses them. */
export function withPowertools<E, R>(handler: middy.MiddyfiedHandler<E, R, Error, Context>): middy.MiddyfiedHandler<E, R, Error, Context> {
  handler.use(injectLambdaContext(logger, { resetKeys: true })).use(captureLambdaHandler(tracer, { captureResponse: false }));
  if (settings.metrics) handler.use(logMetrics(metrics, { captureColdStartMetric: true }));
  return handler;
}

/** A Lambda handler with the Powertools middlewares. */
export function lambdaHandler<E, R>(handler: (event: E, context: Context) => Promise<R>): middy.MiddyfiedHandler<E, R, Error, Context> {
  return withPowertools(middy<E, R, Error, Context>(handler));
}
