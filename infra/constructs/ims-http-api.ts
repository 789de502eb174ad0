/**
 * The HTTP API: one Lambda integration per handler group, one `ANY` route per path of ROUTES under
 * each base path (`/` and `/apis/ims`; the handlers answer 405 themselves, with the original's
 * problem body and Allow header), and `$default` to the service function, which answers unknown
 * URLs with the original's 404. Every route but the probes needs a bearer token, checked by a
 * Lambda authorizer: API Gateway's JWT authorizer trusts a single issuer, and the tokens of job
 * pods and of operators come from two (functions/api/authorizer.ts).
 */
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { Duration } from 'aws-cdk-lib';
import { HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { accessRule, ROUTES, servedPaths, withoutJwt, type HandlerGroup } from '#shared/http/routes.js';
import { acknowledgeJobReportRoute, acknowledgePublicRoute } from './nag.js';

/** Probes and the version answer without a token, as the original's do behind its gateway (under `/apis/ims` too). */
export const PUBLIC_PATHS: readonly string[] = ['/healthz/ready', '/healthz/live', '/version'];

export interface ImsHttpApiProps {
  handlers: Record<HandlerGroup, IFunction>;
  /** The Lambda authorizer (simple responses): it refuses a token, or passes its claims on. */
  authorizer: IFunction;
}

/**
 * How long API Gateway reuses an authorizer's answer for the same Authorization header: a token
 * that expires meanwhile is still taken for at most this long, the clock leeway of the check.
 */
export const AUTHORIZER_CACHE_TTL = Duration.seconds(60);

/** One JSON line per request; HTTP APIs accept only `$context` variables of their own. */
const ACCESS_LOG_FORMAT = apigw.AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    ip: '$context.identity.sourceIp',
    requestTime: '$context.requestTime',
    method: '$context.httpMethod',
    path: '$context.path',
    routeKey: '$context.routeKey',
    status: '$context.status',
    responseLength: '$context.responseLength',
    latency: '$context.responseLatency',
    integrationError: '$context.integrationErrorMessage',
    authorizerError: '$context.authorizer.error',
  }),
);

export class ImsHttpApi extends Construct {
  readonly api: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  /** The routes that need no token (see PUBLIC_PATHS). */
  readonly publicRoutes: apigwv2.HttpRoute[] = [];
  /**
   * The job report routes (`/v3/jobs/{job_id}/checks`): no JWT authorizer, since remote build
   * nodes hold no OAuth token; the handler checks the job's own report token.
   */
  readonly jobReportRoutes: apigwv2.HttpRoute[] = [];

  constructor(scope: Construct, id: string, props: ImsHttpApiProps) {
    super(scope, id);
    const integrations = new Map<HandlerGroup, HttpLambdaIntegration>();
    const integrationFor = (group: HandlerGroup) => {
      let integration = integrations.get(group);
      if (!integration) {
        integration = new HttpLambdaIntegration(`${group}-integration`, props.handlers[group]);
        integrations.set(group, integration);
      }
      return integration;
    };

    const authorizer = new HttpLambdaAuthorizer('TokenAuthorizer', props.authorizer, {
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      identitySource: ['$request.header.Authorization'],
      resultsCacheTtl: AUTHORIZER_CACHE_TTL,
    });
    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'Image Management Service (IMS) API',
      defaultIntegration: integrationFor('service'),
      defaultAuthorizer: authorizer,
      // Created below, so that it gets access logs and throttling.
      createDefaultStage: false,
    });

    for (const route of ROUTES) {
      const isPublic = PUBLIC_PATHS.includes(route.path);
      const isJobReport = !isPublic && route.methods.every((m) => withoutJwt(accessRule(route, m)));
      for (const path of servedPaths(route)) {
        const routes = this.api.addRoutes({
          path,
          methods: [apigwv2.HttpMethod.ANY],
          integration: integrationFor(route.group),
          ...(isPublic || isJobReport ? { authorizer: new apigwv2.HttpNoneAuthorizer() } : {}),
        });
        if (isPublic) {
          this.publicRoutes.push(...routes);
          routes.forEach(acknowledgePublicRoute);
        }
        if (isJobReport) {
          this.jobReportRoutes.push(...routes);
          routes.forEach(acknowledgeJobReportRoute);
        }
      }
    }

    // Retention and encryption: the stack's, as for every log group (logRetentionDays, customerManagedKey).
    const accessLogs = new logs.LogGroup(this, 'AccessLogs');
    this.stage = new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      accessLogSettings: { destination: new apigwv2.LogGroupLogDestination(accessLogs), format: ACCESS_LOG_FORMAT },
      throttle: { rateLimit: 200, burstLimit: 400 },
    });
  }

  get url(): string {
    return this.stage.url;
  }
}
