import type { MiddlewareObj } from '@middy/core';
import { NoInputError, SchemaValidationError } from '../../domain/errors.js';
import { compileValidator, type FieldSchema, type Validator } from '../../domain/validation.js';
import { requestSchemas, type RequestSchemaName } from '../../domain/contract/request-schemas.js';
import type { HttpEvent, HttpResult } from '../types.js';
import { imsState } from './route-request.js';

const validators = new Map<RequestSchemaName, Validator<unknown>>();

function validatorFor(name: RequestSchemaName): Validator<unknown> {
  let validator = validators.get(name);
  if (!validator) {
    validator = compileValidator(requestSchemas[name] as FieldSchema);
    validators.set(name, validator);
  }
  return validator;
}

/** Python's truthiness: `{}`, `[]`, `null`, `""`, `0` and `false` are "no input". */
function isFalsy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0;
  if (value && typeof value === 'object') return Object.keys(value).length === 0;
  return !value;
}

/** No input → 400, then the request schema → 422 with the field error map. */
export function validateBody(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      const state = imsState(request);
      const spec = state.operation?.body;
      if (!spec || !state.request) return;
      const raw = state.request.rawBody;
      if (isFalsy(raw)) throw new NoInputError();
      const result = validatorFor(spec.schema)(spec.prepare ? spec.prepare(raw) : raw);
      if (!result.ok) throw new SchemaValidationError(result.errors);
      state.request.body = result.value;
    },
  };
}
