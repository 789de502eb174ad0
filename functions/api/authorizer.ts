/**
 * The HTTP API's Lambda authorizer (simple responses, payload 2.0): a bearer token from any of
 * the trusted issuers (IMS_AUTH_ISSUERS, each with its JWKS) for the audiences
 * (IMS_AUTH_AUDIENCE) is authorized, and its claims go to the handlers in the context; any other
 * is refused (API Gateway answers 403; a request without an Authorization header never gets
 * here: 401). API Gateway's own JWT authorizer trusts one issuer only, and job pods' tokens come
 * from the cluster-internal Keycloak, whose `iss` differs from the operators'. The keys are
 * cached for the life of the container (shared/http/jwt.ts).
 */
import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { readAuthSettings } from '#shared/config.js';
import { authorizerResponse, bearerChecker, type AuthorizerResponse } from '#shared/http/jwt.js';
import { logger } from '#shared/logger.js';
import { lambdaHandler } from '#shared/observability.js';

export function authorizerWith(check: ReturnType<typeof bearerChecker>): (event: APIGatewayRequestAuthorizerEventV2) => Promise<AuthorizerResponse> {
  return async (event) => {
    const checked = await check(event.headers?.authorization);
    if ('refused' in checked) logger.info('bearer token refused', { reason: checked.refused, routeKey: event.routeKey });
    return authorizerResponse(checked);
  };
}

/** The Lambda entry point: the issuers and audiences come from the function's environment. */
export const handler = lambdaHandler(authorizerWith(bearerChecker(readAuthSettings(process.env))));
