import type { MiddlewareObj } from '@middy/core';
import { ProblemError } from '../../domain/errors.js';
import { logger } from '../../logger.js';
import { HttpProtocolError, problemResponse } from '../problem.js';
import type { HttpEvent, HttpResult } from '../types.js';
import { AuthorizationError, authorizationProblem } from './authorize.js';

/** Last in the chain: every failure becomes an RFC 7807 problem; unexpected ones are logged as 500s. */
export function problemErrors(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: async (request) => {
      const error = request.error;
      if (error instanceof HttpProtocolError) {
        request.response = problemResponse(error, error.headers, error.withMessage ? { message: error.detail } : {});
        return;
      }
      if (error instanceof AuthorizationError) {
        request.response = authorizationProblem(error);
        return;
      }
      if (error instanceof ProblemError) {
        if (error.status >= 500) logger.warn('request failed', { status: error.status, detail: error.detail });
        request.response = problemResponse(error, error.headers);
        return;
      }
      logger.error('unhandled error', { error: error as Error, path: request.event?.rawPath });
      request.response = problemResponse(
        new ProblemError(500, 'An unexpected error occurred. The failure has been logged; retry the request, and report it if it persists.'),
        {},
        { message: 'Internal Server Error' },
      );
    },
  };
}
