import { ProblemError, REASON_PHRASES } from '../domain/errors.js';
import { toJsonText } from '../domain/json-text.js';
import type { HttpResult } from './types.js';

/** The RFC 7807 body of a problem: empty members are left out, as the original does. */
export function problemBody(error: ProblemError, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const body: Record<string, unknown> = { ...extra, status: error.status, title: error.title };
  if (error.detail) body.detail = error.detail;
  if (error.errors && (Array.isArray(error.errors) ? error.errors.length > 0 : Object.keys(error.errors).length > 0)) {
    body.errors = error.errors;
  }
  return body;
}

export function problemResponse(error: ProblemError, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): HttpResult {
  return {
    statusCode: error.status,
    headers: { 'content-type': 'application/problem+json', ...headers },
    body: toJsonText(problemBody(error, extra)),
  };
}

/**
 * Failures the original answered with a framework body (`{"message": ...}`) are problems here,
 * keeping `message` so that clients reading it still find it.
 */
export function frameworkProblem(status: number, message: string, headers: Record<string, string> = {}): HttpResult {
  return problemResponse(new ProblemError(status, message, { title: REASON_PHRASES[status] }), headers, { message });
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  if (body === undefined) return { statusCode: status, headers, body: '' };
  return { statusCode: status, headers: { 'content-type': 'application/json', ...headers }, body: toJsonText(body) };
}

/** A failure at the HTTP layer (unknown URL, method, media type, malformed JSON). */
export class HttpProtocolError extends ProblemError {
  constructor(
    status: number,
    message: string,
    override readonly headers: Record<string, string> = {},
    readonly withMessage = true,
  ) {
    super(status, message);
  }
}
