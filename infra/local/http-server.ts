/** node:http in front of the Lambda handlers: the embedded stand-in for API Gateway. */
import { createServer, type Server } from 'node:http';
import { matchRoute } from '#shared/http/routes.js';
import { frameworkProblem } from '#shared/http/problem.js';
import { markStreaming } from '#shared/http/streaming.js';
import { logger } from '#shared/logger.js';
import type { HandlerGroup } from '#shared/http/routes.js';
import type { ApiHandler } from '#shared/http/types.js';
import { lambdaContext, toEvent, writeResult } from './lambda-adapter.js';

/** API Gateway's payload limit for a request body. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

export function createApiServer(handlers: Record<HandlerGroup, ApiHandler>): Server {
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
        markStreaming(event);
        // Unknown URLs go to the service handler, which answers them with the original's 404 problem.
        const group = matchRoute(event.rawPath, event.requestContext.http.method)?.route.group ?? 'service';
        const result = await handlers[group](event, lambdaContext(`ims-${group}`));
        await writeResult(res, result);
      })().catch((error: unknown) => {
        logger.error('embedded server failure', { error: error as Error });
        if (!res.headersSent) void writeResult(res, frameworkProblem(500, 'Internal Server Error'));
      });
    });
  });
}
