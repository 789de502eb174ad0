/**
 * node:http in front of the Lambda handlers: the embedded stand-in for API Gateway. With
 * IMS_AUTH_SCOPES=on it also stands in for the API's Lambda authorizer: a bearer token is
 * checked as the authorizer checks it (shared/http/jwt.ts) and its claims handed to the handler
 * where API Gateway puts the authorizer's context; the probes and the job report routes (their
 * own token) are never checked.
 */
import { createServer, type Server } from 'node:http';
import type { AuthSettings } from '#shared/config.js';
import { AuthorizationError, authorizationProblem } from '#shared/http/middleware/authorize.js';
import { accessRule, matchRoute, withoutJwt, type HandlerGroup, type RouteDef } from '#shared/http/routes.js';
import type { ApiHandler, HttpEvent, HttpResult } from '#shared/http/types.js';
import { frameworkProblem, ProblemError, problemResponse } from '#shared/http/problem.js';
import { markStreaming } from '#shared/http/streaming.js';
import { logger } from '#shared/logger.js';
import { authorizerResponse, bearerChecker, NO_ISSUERS } from '#shared/http/jwt.js';
import { lambdaContext, toEvent, writeResult } from './lambda-adapter.js';

/** API Gateway's payload limit for a request body. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Lambda's limit on a synchronous invocation's response (the result as JSON). */
export const LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024;

/**
 * What API Gateway and the Lambda authorizer do before a handler runs: a token that does not
 * verify is refused (403, as API Gateway answers an authorizer's refusal; here with the reason);
 * a valid one's claims go in `requestContext.authorizer.lambda`. No Authorization header: the
 * handler answers the 401 (shared/http/middleware/authorize.ts), as API Gateway does deployed.
 */
function tokenChecker(auth: AuthSettings): (event: HttpEvent, route: RouteDef | undefined) => Promise<HttpResult | undefined> {
  if (auth.issuers.length === 0) throw new Error(`IMS_AUTH_SCOPES=on under npm start needs IMS_AUTH_ISSUERS: ${NO_ISSUERS.replace(/ \(.*/, '')}, whose keys sign the bearer tokens`);
  const check = bearerChecker(auth);
  return async (event, route) => {
    if (!route || withoutJwt(accessRule(route, event.requestContext.http.method.toUpperCase()))) return undefined;
    const authorization = event.headers.authorization;
    if (!authorization) return undefined;
    try {
      const checked = await check(authorization);
      if ('refused' in checked) return authorizationProblem(new AuthorizationError(403, `The bearer token was refused: ${checked.refused}.`));
      Object.assign(event.requestContext, { authorizer: { lambda: authorizerResponse(checked).context } });
      return undefined;
    } catch (error) {
      logger.warn('bearer token not checked', { error: (error as Error).message });
      return problemResponse(new ProblemError(503, 'The keys that sign bearer tokens are unavailable right now. Retry the request later.'));
    }
  };
}

export interface ApiServerOptions {
  /** IMS_AUTH_*: with scopes on, bearer tokens are checked here as API Gateway would. */
  auth?: AuthSettings;
  /**
   * Answer as API Gateway in front of Lambda does: no streamed responses, and a handler result
   * over Lambda's response limit fails the request (502), as the invocation would.
   */
  lambdaLimits?: boolean;
}

export function createApiServer(handlers: Record<HandlerGroup, ApiHandler>, options: ApiServerOptions = {}): Server {
  const checkToken = options.auth?.scopes ? tokenChecker(options.auth) : undefined;
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      void (async () => {
        if (size > MAX_BODY_BYTES) {
          void writeResult(res, frameworkProblem(413, `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`));
          return;
        }
        const event = toEvent(req, Buffer.concat(chunks));
        if (!options.lambdaLimits) markStreaming(event);
        const route = matchRoute(event.rawPath, event.requestContext.http.method)?.route;
        const refused = await checkToken?.(event, route);
        if (refused) {
          await writeResult(res, refused);
          return;
        }
        // Unknown URLs go to the service handler, which answers them with the original's 404 problem.
        const group = route?.group ?? 'service';
        const result = await handlers[group](event, lambdaContext(`ims-${group}`));
        if (options.lambdaLimits && Buffer.byteLength(JSON.stringify(result)) > LAMBDA_RESPONSE_BYTES) {
          logger.error('handler result over the Lambda response limit', { path: event.rawPath, limit: LAMBDA_RESPONSE_BYTES });
          await writeResult(res, { statusCode: 502, headers: { 'content-type': 'application/json' }, body: '{"message":"Internal Server Error"}' });
          return;
        }
        await writeResult(res, result);
      })().catch((error: unknown) => {
        logger.error('embedded server failure', { error: error as Error });
        if (!res.headersSent) void writeResult(res, frameworkProblem(500, 'Internal Server Error'));
      });
    });
  });
}
