import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import { authorize, authorizeBody } from './middleware/authorize.js';
import { jsonBody } from './middleware/json-body.js';
import { precheck } from './middleware/precheck.js';
import { problemErrors } from './middleware/problem-errors.js';
import { imsState, routeRequest } from './middleware/route-request.js';
import { validateBody } from './middleware/validate-body.js';
import { withPowertools } from '../observability.js';
import { bufferedList } from './list-response.js';
import { jsonResponse } from './problem.js';
import { canStream, RESPONSE_STREAM, type StreamingResult } from './streaming.js';
import type { HandlerGroup } from './routes.js';
import type { ApiHandler, HttpEvent, HttpResult, Operations } from './types.js';
import type { AppContext } from '../wiring.js';

/**
 * One Lambda handler for one resource group: normalize headers → route → authorize (the route's
 * scope) → precheck → parse JSON → validate → authorize by the body (job kinds) → the operation;
 * RFC 7807 problems for every failure. Powertools first (shared/observability.ts): the
 * invocation's context in the logs, its trace and its metrics. `context` gives the adapters the
 * operations use, built by the entry point.
 */
export function createApiHandler(group: HandlerGroup, operations: Operations, context: () => AppContext): ApiHandler {
  return withPowertools(middy<HttpEvent, HttpResult>())
    .use(httpHeaderNormalizer())
    .use(routeRequest(group, operations, context))
    .use(authorize())
    .use(precheck())
    .use(jsonBody())
    .use(validateBody())
    .use(authorizeBody())
    .use(problemErrors())
    .handler(async (event) => {
      const state = imsState(event);
      const result = await state.operation!.run(state.request!);
      if (event.requestContext.http.method.toUpperCase() === 'HEAD') return { statusCode: result.status, headers: { 'content-type': 'application/json', ...result.headers }, body: '' };
      if (!result.stream) return jsonResponse(result.status, result.body, result.headers);
      if (canStream(event)) {
        const response: StreamingResult = { statusCode: result.status, headers: { 'content-type': 'application/json', ...result.headers } };
        response[RESPONSE_STREAM] = result.stream;
        return response;
      }
      const { app } = state.request!;
      return bufferedList(result.stream, result.headers ?? {}, { artifacts: app.artifacts, bucket: app.config.imsBucket, inlineMaxBytes: app.config.listInlineMaxBytes });
    }) as ApiHandler;
}
