/**
 * The errors the use cases throw, named for what went wrong, not for how it is answered.
 * shared/http/middleware/problem-errors.ts maps each class to the RFC 7807 problem the original
 * service emits for it; `detail` is the problem's text, word for word.
 */

export type ErrorMap = { [field: string]: string[] | ErrorMap };

export const NO_INPUT_DETAIL =
  'No input provided. Determine the specific information that is missing or invalid and then re-run the request with valid information.';
export const NOT_FOUND_DETAIL = 'Requested resource does not exist. Re-run request with valid ID.';
export const CONFLICT_DETAIL =
  'Requested resource exists, but cannot be patched due to a patch conflict. Re-run request with valid input values.';
export const SCHEMA_DETAIL =
  'Input data was understood, but failed validation. Re-run request with valid input values for the fields indicated in the response.';

/** Base of every error a use case means to report to its caller. */
export abstract class DomainError extends Error {
  constructor(readonly detail: string) {
    super(detail);
    this.name = new.target.name;
  }
}

/** The record asked for does not exist (or is not in the state asked for). */
export class NotFoundError extends DomainError {
  constructor(detail = NOT_FOUND_DETAIL) {
    super(detail);
  }
}

export class RecordNotFoundError extends NotFoundError {}

/** The record exists but the change cannot be made to it as it is now. */
export class ConflictError extends DomainError {}

export class PatchConflictError extends ConflictError {
  constructor(detail = CONFLICT_DETAIL) {
    super(detail);
  }
}

/** The request cannot be carried out as given: a missing body, a bad reference, a bad query. */
export class InvalidRequestError extends DomainError {}

export class NoInputError extends InvalidRequestError {
  constructor() {
    super(NO_INPUT_DETAIL);
  }
}

/** A list cursor that this service did not issue for this query. */
export class InvalidCursorError extends InvalidRequestError {
  constructor() {
    super('The cursor is not valid for this list. Start again without a cursor and follow the Link header of each page.');
  }
}

/** The input was understood but fails validation; `fields` says which fields and why. */
export class InvalidInputError extends DomainError {
  constructor(
    detail: string,
    readonly fields?: ErrorMap,
  ) {
    super(detail);
  }
}

export class SchemaValidationError extends InvalidInputError {
  constructor(errors: ErrorMap) {
    super(SCHEMA_DETAIL, errors);
  }
}

/** An S3 artifact named by a link could not be found or read. */
export class ArtifactValidationError extends InvalidInputError {}

/** A manifest.json that fails the checks of the original's image validation. */
export class ManifestValidationError extends InvalidInputError {}

/** Something the use case depends on cannot serve it now: retrying later may help. */
export class UnavailableError extends DomainError {
  constructor(
    detail: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(detail);
  }
}

/** The artifact store or record store could not be reached. */
export class DependencyUnavailableError extends UnavailableError {
  constructor(what: string) {
    super(`${what} is unavailable right now. Retry the request later.`);
  }
}

/**
 * A dependency refused the service's own credentials (S3's AccessDenied): the deployment's
 * permissions lack something, so this is an error to fix, never "not found", and retrying will
 * not help until an operator grants it.
 */
export class DependencyAccessDeniedError extends UnavailableError {
  constructor(what: string) {
    super(`Access to ${what} was denied to the service: its permissions do not allow this operation. Retrying will not help until an operator grants it.`);
  }
}

/** The operation was attempted and failed part-way; `errors` lists what failed. */
export class OperationFailedError extends DomainError {
  constructor(
    detail: string,
    readonly errors: string[],
  ) {
    super(detail);
  }
}
