/**
 * Reading errors from @kubernetes/client-node 1.x: an ApiException carries the HTTP code and the
 * server's Status object as text; network failures are node-fetch errors with an errno code.
 */

export interface ApiFailure {
  /** HTTP status, when the server answered. */
  code?: number;
  /** The Status object's reason (NotFound, AlreadyExists, Forbidden, Timeout, ...). */
  reason?: string;
  message: string;
}

interface ApiExceptionLike {
  code: number;
  body?: unknown;
}

function isApiException(error: unknown): error is ApiExceptionLike {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'number' && 'body' in error;
}

function statusOf(body: unknown): { reason?: string; message?: string } {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return { message: body.trim() || undefined };
    }
  }
  if (typeof value !== 'object' || value === null) return {};
  const { reason, message } = value as { reason?: unknown; message?: unknown };
  return {
    reason: typeof reason === 'string' && reason ? reason : undefined,
    message: typeof message === 'string' && message ? message : undefined,
  };
}

export function apiFailure(error: unknown): ApiFailure {
  if (isApiException(error)) {
    const status = statusOf(error.body);
    return { code: error.code, reason: status.reason, message: status.message ?? `HTTP ${error.code}` };
  }
  if (error instanceof Error) {
    const errno = (error as { code?: unknown }).code;
    return { message: typeof errno === 'string' ? `${errno}: ${error.message}` : error.message };
  }
  return { message: String(error) };
}

export function isNotFound(error: unknown): boolean {
  return apiFailure(error).code === 404;
}

/** 409 on a create means the object is there already (a retried prepare). */
export function isAlreadyExists(error: unknown): boolean {
  const failure = apiFailure(error);
  return failure.code === 409 && (failure.reason === undefined || failure.reason === 'AlreadyExists');
}

const TIMEOUT_ERRNOS = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNRESET', 'EPIPE']);

/**
 * Worth retrying: the original retried when the reason mentioned a timeout; we also count the
 * gateway/request timeout codes and a connection that timed out or was cut before an answer.
 */
export function isTimeout(error: unknown): boolean {
  if (isApiException(error)) {
    const { code } = error;
    const reason = statusOf(error.body).reason ?? '';
    return code === 408 || code === 504 || /timeout/i.test(reason);
  }
  if (error instanceof Error) {
    const { code, type } = error as { code?: unknown; type?: unknown };
    return type === 'request-timeout' || (typeof code === 'string' && TIMEOUT_ERRNOS.has(code));
  }
  return false;
}

/** "HTTP 403 Forbidden: jobs.batch is forbidden: ..." — short enough for a job history entry. */
export function describeApiError(error: unknown): string {
  const { code, reason, message } = apiFailure(error);
  if (code === undefined) return message;
  const head = reason ? `HTTP ${code} ${reason}` : `HTTP ${code}`;
  return message === `HTTP ${code}` ? head : `${head}: ${message}`;
}
