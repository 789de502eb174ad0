/**
 * Request-body validation with the semantics of the original's marshmallow schemas
 * (`unknown=RAISE`, lenient booleans and integers, UUIDs echoed canonical) and its error maps.
 *
 * The schemas themselves are the request schemas of api/openapi.yaml, resolved ahead of time by
 * `npm run generate` into shared/domain/contract/request-schemas.ts. JSON Schema alone cannot say
 * "accept the string 'yes' as true" or "truncate 2.7 to 2" the way the original does, so the
 * documented `x-ims-*` extensions carry those rules and the custom error texts.
 */
import type { FieldSchema } from './contract/field-schema.js';
import type { ErrorMap } from './errors.js';

export type { FieldSchema };


export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: ErrorMap };

type FieldErrors = string[] | ErrorMap;
type Checked = { value?: unknown; errors?: FieldErrors };

const MSG = {
  unknown: 'Unknown field.',
  required: 'Missing data for required field.',
  notNull: 'Field may not be null.',
  string: 'Not a valid string.',
  boolean: 'Not a valid boolean.',
  integer: 'Not a valid integer.',
  uuid: 'Not a valid UUID.',
  list: 'Not a valid list.',
  mapping: 'Not a valid mapping type.',
  inputType: 'Invalid input type.',
};

const TRUTHY = new Set(['t', 'T', 'true', 'True', 'TRUE', 'on', 'On', 'ON', 'y', 'Y', 'yes', 'Yes', 'YES', '1']);
const FALSY = new Set(['f', 'F', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF', 'n', 'N', 'no', 'No', 'NO', '0']);

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Sets an own, enumerable member, whatever its name: a body may carry keys such as `__proto__`
 * or `constructor`, which plain assignment and `in` would mistake for Object.prototype members.
 */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Parses what Python's `uuid.UUID()` accepts and returns the canonical lower-case dashed form. */
export function canonicalUuid(input: string): string | undefined {
  const hex = input.replaceAll('urn:', '').replaceAll('uuid:', '').replace(/^[{}]+|[{}]+$/g, '').replaceAll('-', '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined;
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** marshmallow's Boolean: true/false, 1/0 and a fixed set of strings. */
export function parseLenientBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 1) return true;
  if (value === 0) return false;
  if (typeof value === 'string') {
    if (TRUTHY.has(value)) return true;
    if (FALSY.has(value)) return false;
  }
  return undefined;
}

/** marshmallow's Integer (non-strict): integers, integral numeric strings, floats truncated. */
export function parseLenientInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : undefined;
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) {
    const n = Number(value.trim());
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

function checkScalar(schema: FieldSchema, value: unknown): Checked {
  const messages = schema['x-ims-messages'] ?? {};
  switch (schema.type) {
    case 'boolean': {
      const b = schema['x-ims-lenient'] ? parseLenientBoolean(value) : typeof value === 'boolean' ? value : undefined;
      return b === undefined ? { errors: [MSG.boolean] } : { value: b };
    }
    case 'integer': {
      const n = schema['x-ims-lenient'] ? parseLenientInteger(value) : Number.isSafeInteger(value) ? (value as number) : undefined;
      if (n === undefined) return { errors: [MSG.integer] };
      if (schema.minimum !== undefined && n < schema.minimum) {
        return { errors: [messages.minimum ?? `Must be greater than or equal to ${schema.minimum}.`] };
      }
      return { value: n };
    }
    case 'string': {
      if (schema.format === 'uuid') {
        const id = typeof value === 'string' ? canonicalUuid(value) : undefined;
        return id === undefined ? { errors: [MSG.uuid] } : { value: id };
      }
      if (typeof value !== 'string') return { errors: [MSG.string] };
      if (schema.minLength !== undefined && value.length < schema.minLength) {
        return { errors: [messages.minLength ?? `Shorter than minimum length ${schema.minLength}.`] };
      }
      if (schema.enum && !schema.enum.includes(value)) {
        return { errors: [messages.enum ?? `Must be one of: ${schema.enum.join(', ')}.`] };
      }
      return { value };
    }
    default:
      return { value };
  }
}

function checkObject(schema: FieldSchema, value: unknown): Checked {
  if (!isPlainObject(value)) return { errors: { _schema: [MSG.inputType] } };
  const errors: ErrorMap = {};
  const out: Record<string, unknown> = {};
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  for (const [name, field] of Object.entries(properties)) {
    if (!Object.hasOwn(value, name)) {
      if (required.has(name)) setOwn(errors, name, [MSG.required]);
      else if (field.default !== undefined) setOwn(out, name, structuredClone(field.default));
      continue;
    }
    const checked = checkField(field, value[name]);
    if (checked.errors) setOwn(errors, name, checked.errors);
    else setOwn(out, name, checked.value);
  }
  for (const name of Object.keys(value)) {
    if (!Object.hasOwn(properties, name)) setOwn(errors, name, [MSG.unknown]);
  }
  return Object.keys(errors).length > 0 ? { errors } : { value: out };
}

function checkMap(valueSchema: FieldSchema, value: unknown): Checked {
  if (!isPlainObject(value)) return { errors: [MSG.mapping] };
  const errors: ErrorMap = {};
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const checked = checkField(valueSchema, item);
    if (checked.errors) setOwn(errors, key, { value: checked.errors as string[] });
    else setOwn(out, key, checked.value);
  }
  return Object.keys(errors).length > 0 ? { errors } : { value: out };
}

function checkArray(schema: FieldSchema, value: unknown): Checked {
  if (!Array.isArray(value)) return { errors: [MSG.list] };
  const errors: ErrorMap = {};
  const out: unknown[] = [];
  value.forEach((item, index) => {
    const checked = checkField(schema.items ?? {}, item);
    if (checked.errors) errors[String(index)] = checked.errors;
    else out.push(checked.value);
  });
  return Object.keys(errors).length > 0 ? { errors } : { value: out };
}

function checkField(schema: FieldSchema, value: unknown): Checked {
  if (value === null) return schema.nullable ? { value: null } : { errors: [MSG.notNull] };
  if (schema.type === 'object') {
    if (schema.properties) return checkObject(schema, value);
    if (isPlainObject(schema.additionalProperties)) return checkMap(schema.additionalProperties, value);
    return isPlainObject(value) ? { value } : { errors: [MSG.mapping] };
  }
  if (schema.type === 'array') return checkArray(schema, value);
  return checkScalar(schema, value);
}

export type Validator<T> = (body: unknown) => ValidationResult<T>;

/** Turns one resolved request schema into a validator for a whole request body. */
export function compileValidator<T>(schema: FieldSchema): Validator<T> {
  return (body: unknown) => {
    const checked = checkField(schema, body);
    if (checked.errors) {
      return { ok: false, errors: Array.isArray(checked.errors) ? { _schema: checked.errors } : checked.errors };
    }
    return { ok: true, value: checked.value as T };
  };
}
