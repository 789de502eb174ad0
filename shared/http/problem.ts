import type { ErrorMap } from '../domain/errors.js';
import { toJsonText } from '../domain/json-text.js';
import type { HttpResult } from './types.js';

export const REASON_PHRASES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export const URL_NOT_FOUND_DETAIL =
  'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.';

/**
 * One RFC 7807 problem as the original service emits it: `status`, `title` (the reason phrase
 * unless overridden), `detail` (omitted when empty) and `errors` (only when given).
 */
export class ProblemError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail?: string;
  readonly errors?: ErrorMap | string[];
  /** Response headers the problem calls for (e.g. `retry-after` on a 503). */
  readonly headers?: Record<string, string>;

  constructor(status: number, detail?: string, options: { title?: string; errors?: ErrorMap | string[]; headers?: Record<string, string> } = {}) {
    super(detail ?? options.title ?? REASON_PHRASES[status] ?? 'Error');
    this.name = new.target.name;
    this.status = status;
    this.title = options.title ?? REASON_PHRASES[status] ?? 'Error';
    this.detail = detail;
    this.errors = options.errors;
    this.headers = options.headers;
  }
}

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
