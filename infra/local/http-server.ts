/** node:http in front of the Lambda handlers: the embedded stand-in for API Gateway. */
import { createServer, type Server } from 'node:http';
import { matchRoute } from '#shared/http/routes.js';
import { frameworkProblem } from '#shared/http/problem.js';
import { markStreaming } from '#shared/http/streaming.js';
import { logger } from '#shared/logger.js';
import { apiHandlers } from './handlers.js';
import { lambdaContext, toEvent, writeResult } from './lambda-adapter.js';

/** API Gateway's payload limit for a request body. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Lambda's limit on a synchronous invocation's response (the result as JSON). */
export const LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024;

export interface ApiServerOptions {
  /**
   * Answer as API Gateway in front of Lambda does: no streamed responses, and a handler result
   * over Lambda's response limit fails the request (502), as the invocation would.
   */
  lambdaLimits?: boolean;
}

export function createApiServer(options: ApiServerOptions = {}): Server {
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
        // Unknown URLs go to the service handler, which answers them with the original's 404 problem.
        const group = matchRoute(event.rawPath, event.requestContext.http.method)?.route.group ?? 'service';
        const result = await apiHandlers[group](event, lambdaContext(`ims-${group}`));
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
