import type { MiddlewareObj } from '@middy/core';
import {
  ConflictError,
  DomainError,
  InvalidInputError,
  InvalidRequestError,
  NotFoundError,
  OperationFailedError,
  UnavailableError,
} from '../../domain/errors.js';
import { logger } from '../../logger.js';
import { HttpProtocolError, ProblemError, problemResponse } from '../problem.js';
import type { HttpEvent, HttpResult } from '../types.js';
import { AuthorizationError, authorizationProblem } from './authorize.js';

/** The status each kind of domain error is answered with, most specific kinds first. */
const STATUS_OF: [abstract new (...args: never[]) => DomainError, number][] = [
  [InvalidRequestError, 400],
  [NotFoundError, 404],
  [ConflictError, 409],
  [InvalidInputError, 422],
  [OperationFailedError, 500],
  [UnavailableError, 503],
];

/** The problem a domain error is answered with: the same status, detail and errors as the original's. */
export function problemOf(error: DomainError): ProblemError {
  const status = STATUS_OF.find(([kind]) => error instanceof kind)?.[1] ?? 500;
  const errors = error instanceof InvalidInputError ? error.fields : error instanceof OperationFailedError ? error.errors : undefined;
  const headers = error instanceof UnavailableError && error.retryAfterSeconds !== undefined ? { 'retry-after': String(error.retryAfterSeconds) } : undefined;
  return new ProblemError(status, error.detail, { errors, headers });
}

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
      const problem = error instanceof DomainError ? problemOf(error) : error;
      if (problem instanceof ProblemError) {
        if (problem.status >= 500) logger.warn('request failed', { status: problem.status, detail: problem.detail });
        request.response = problemResponse(problem, problem.headers);
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
