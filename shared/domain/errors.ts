/**
 * The error hierarchy the use cases throw. Each maps to one RFC 7807 problem body as the
 * original service emits it: `status`, `title` (the reason phrase unless overridden), `detail`
 * (omitted when empty) and `errors` (only when given).
 */

export type ErrorMap = { [field: string]: string[] | ErrorMap };

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

export const NO_INPUT_DETAIL =
  'No input provided. Determine the specific information that is missing or invalid and then re-run the request with valid information.';
export const NOT_FOUND_DETAIL = 'Requested resource does not exist. Re-run request with valid ID.';
export const CONFLICT_DETAIL =
  'Requested resource exists, but cannot be patched due to a patch conflict. Re-run request with valid input values.';
export const SCHEMA_DETAIL =
  'Input data was understood, but failed validation. Re-run request with valid input values for the fields indicated in the response.';
export const URL_NOT_FOUND_DETAIL =
  'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.';

export class NoInputError extends ProblemError {
  constructor() {
    super(400, NO_INPUT_DETAIL);
  }
}

export class RecordNotFoundError extends ProblemError {
  constructor() {
    super(404, NOT_FOUND_DETAIL);
  }
}

export class PatchConflictError extends ProblemError {
  constructor(detail = CONFLICT_DETAIL) {
    super(409, detail);
  }
}

export class SchemaValidationError extends ProblemError {
  constructor(errors: ErrorMap) {
    super(422, SCHEMA_DETAIL, { errors });
  }
}

/** An S3 artifact named by a link could not be found or read. */
export class ArtifactValidationError extends ProblemError {
  constructor(detail: string) {
    super(422, detail);
  }
}

/** A manifest.json that fails the checks of the original's image validation. */
export class ManifestValidationError extends ProblemError {
  constructor(detail: string, status = 422) {
    super(status, detail);
  }
}

/** The artifact store or record store could not be reached: retrying later may help. */
export class DependencyUnavailableError extends ProblemError {
  constructor(what: string) {
    super(503, `${what} is unavailable right now. Retry the request later.`);
  }
}

/** A list cursor that this service did not issue for this query. */
export class InvalidCursorError extends ProblemError {
  constructor() {
    super(400, 'The cursor is not valid for this list. Start again without a cursor and follow the Link header of each page.');
  }
}
