/** shared/domain/validation.ts: marshmallow-compatible field rules and error maps. */
import { describe, expect, test } from '@jest/globals';
import {
  canonicalUuid,
  compileValidator,
  isPlainObject,
  parseLenientBoolean,
  parseLenientInteger,
  type FieldSchema,
} from '#shared/domain/validation.js';
import { requestSchemas } from '#shared/domain/contract/request-schemas.js';

const ID = '5a1b1a3e-3b8f-4c43-a2a4-1c1b9f3f7a10';
const HEX = ID.replaceAll('-', '');

describe('canonicalUuid', () => {
  test.each([
    [ID, ID],
    [ID.toUpperCase(), ID],
    [HEX, ID],
    [HEX.toUpperCase(), ID],
    [`{${ID}}`, ID],
    [`{{${HEX}}}`, ID],
    [`urn:uuid:${ID}`, ID],
    [`urn:uuid:${ID.toUpperCase()}`, ID],
    [`uuid:${ID}`, ID],
    [`{urn:uuid:${ID}}`, ID],
    ['5a1b1a3e3b8f-4c43a2a4-1c1b9f3f7a10', ID],
  ])('%s → %s', (input, expected) => {
    expect(canonicalUuid(input)).toBe(expected);
  });

  test.each([
    '',
    'not-a-uuid',
    ID.slice(0, -1),
    `${ID}0`,
    ID.replace('5', 'g'),
    `${HEX}  `,
    `(${ID})`,
    'urn:uuid:',
    `urn:isbn:${ID}`,
  ])('%j is not a UUID', (input) => {
    expect(canonicalUuid(input)).toBeUndefined();
  });
});

describe('parseLenientBoolean', () => {
  test.each(['t', 'T', 'true', 'True', 'TRUE', 'on', 'On', 'ON', 'y', 'Y', 'yes', 'Yes', 'YES', '1', 1, true])('%j → true', (value) => {
    expect(parseLenientBoolean(value)).toBe(true);
  });

  test.each(['f', 'F', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF', 'n', 'N', 'no', 'No', 'NO', '0', 0, false])('%j → false', (value) => {
    expect(parseLenientBoolean(value)).toBe(false);
  });

  test.each(['maybe', 'tRuE', 'yES', ' true', '', 2, -1, 0.5, null, undefined, [], {}, [true]])('%j is not a boolean', (value) => {
    expect(parseLenientBoolean(value)).toBeUndefined();
  });
});

describe('parseLenientInteger', () => {
  test.each([
    [7, 7],
    [0, 0],
    [-3, -3],
    [2.7, 2],
    [-2.7, -2],
    [1e3, 1000],
    ['7', 7],
    [' 7 ', 7],
    ['+7', 7],
    ['-12', -12],
    ['007', 7],
  ])('%j → %j', (value, expected) => {
    expect(parseLenientInteger(value)).toBe(expected);
  });

  test.each([true, false, '7.5', '2.0', 'big', '', '1e3', null, undefined, [], {}, [7], Number.NaN, Number.POSITIVE_INFINITY, '99999999999999999999'])(
    '%j is not an integer',
    (value) => {
      expect(parseLenientInteger(value)).toBeUndefined();
    },
  );
});

describe('isPlainObject', () => {
  test('objects only', () => {
    expect(isPlainObject({})).toBe(true);
    expect(isPlainObject({ a: 1 })).toBe(true);
    expect(isPlainObject([])).toBe(false);
    expect(isPlainObject(null)).toBe(false);
    expect(isPlainObject('x')).toBe(false);
  });
});

describe('compileValidator', () => {
  const schema: FieldSchema = {
    type: 'object',
    required: ['name'],
    properties: {
      name: { type: 'string', minLength: 1, 'x-ims-messages': { minLength: 'name field must not be blank' } },
      label: { type: 'string', minLength: 2 },
      kind: { type: 'string', enum: ['a', 'b'] },
      strictKind: { type: 'string', enum: ['a', 'b'], 'x-ims-messages': { enum: 'Kind must be one of: a, b.' } },
      id: { type: 'string', format: 'uuid' },
      flag: { type: 'boolean', 'x-ims-lenient': true, default: true },
      strictFlag: { type: 'boolean' },
      size: { type: 'integer', 'x-ims-lenient': true, minimum: 1, 'x-ims-messages': { minimum: 'size must be greater than or equal to 1' } },
      count: { type: 'integer', 'x-ims-lenient': true, minimum: 0 },
      strictCount: { type: 'integer' },
      tags: { type: 'array', items: { type: 'string' }, default: [], nullable: true },
      pairs: {
        type: 'array',
        items: { type: 'object', required: ['key', 'value'], properties: { key: { type: 'string' }, value: { type: 'string' } } },
      },
      link: {
        type: 'object',
        nullable: true,
        default: null,
        required: ['path'],
        properties: { path: { type: 'string' }, etag: { type: 'string', default: '' } },
      },
      metadata: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
      anything: { type: 'object' },
    },
  };
  const validate = compileValidator<Record<string, unknown>>(schema);

  test('defaults fill absent fields; given fields are kept', () => {
    expect(validate({ name: 'n' })).toEqual({ ok: true, value: { name: 'n', flag: true, tags: [], link: null, metadata: {} } });
    expect(validate({ name: 'n', flag: false, tags: ['x'] })).toEqual({
      ok: true,
      value: { name: 'n', flag: false, tags: ['x'], link: null, metadata: {} },
    });
  });

  test('defaults are copies, never the schema object itself', () => {
    const first = validate({ name: 'n' });
    if (!first.ok) throw new Error('expected ok');
    (first.value.tags as string[]).push('mutated');
    (first.value.metadata as Record<string, string>).k = 'v';
    expect(validate({ name: 'n' })).toMatchObject({ ok: true, value: { tags: [], metadata: {} } });
  });

  test('nested defaults apply inside nested objects', () => {
    expect(validate({ name: 'n', link: { path: 's3://b/k' } })).toMatchObject({ ok: true, value: { link: { path: 's3://b/k', etag: '' } } });
  });

  test('coercions: lenient booleans and integers, canonical UUIDs', () => {
    const result = validate({ name: 'n', flag: 'yes', size: '7', count: 2.7, id: `{${ID.toUpperCase()}}` });
    expect(result).toMatchObject({ ok: true, value: { flag: true, size: 7, count: 2, id: ID } });
  });

  test('integers: true, "7.5" and strings are invalid; minimum uses the custom message', () => {
    expect(validate({ name: 'n', size: true, count: '7.5', strictCount: 2.5 })).toEqual({
      ok: false,
      errors: { size: ['Not a valid integer.'], count: ['Not a valid integer.'], strictCount: ['Not a valid integer.'] },
    });
    expect(validate({ name: 'n', size: 0, count: -1 })).toEqual({
      ok: false,
      errors: { size: ['size must be greater than or equal to 1'], count: ['Must be greater than or equal to 0.'] },
    });
    expect(validate({ name: 'n', size: '0.9' })).toEqual({ ok: false, errors: { size: ['Not a valid integer.'] } });
    expect(validate({ name: 'n', size: 0.9 })).toEqual({ ok: false, errors: { size: ['size must be greater than or equal to 1'] } });
  });

  test('a boolean without x-ims-lenient takes JSON booleans only', () => {
    expect(validate({ name: 'n', strictFlag: 'yes' })).toEqual({ ok: false, errors: { strictFlag: ['Not a valid boolean.'] } });
    expect(validate({ name: 'n', strictFlag: 1 })).toEqual({ ok: false, errors: { strictFlag: ['Not a valid boolean.'] } });
    expect(validate({ name: 'n', strictFlag: false })).toMatchObject({ ok: true, value: { strictFlag: false } });
    expect(validate({ name: 'n', flag: 'maybe' })).toEqual({ ok: false, errors: { flag: ['Not a valid boolean.'] } });
  });

  test('strings are not coerced; min length and enum messages, default and custom', () => {
    expect(validate({ name: 5 })).toEqual({ ok: false, errors: { name: ['Not a valid string.'] } });
    expect(validate({ name: '' })).toEqual({ ok: false, errors: { name: ['name field must not be blank'] } });
    expect(validate({ name: 'n', label: 'x' })).toEqual({ ok: false, errors: { label: ['Shorter than minimum length 2.'] } });
    expect(validate({ name: 'n', kind: 'A' })).toEqual({ ok: false, errors: { kind: ['Must be one of: a, b.'] } });
    expect(validate({ name: 'n', strictKind: 'c' })).toEqual({ ok: false, errors: { strictKind: ['Kind must be one of: a, b.'] } });
    expect(validate({ name: 'n', kind: 1 })).toEqual({ ok: false, errors: { kind: ['Not a valid string.'] } });
  });

  test('UUIDs', () => {
    expect(validate({ name: 'n', id: 'nope' })).toEqual({ ok: false, errors: { id: ['Not a valid UUID.'] } });
    expect(validate({ name: 'n', id: 7 })).toEqual({ ok: false, errors: { id: ['Not a valid UUID.'] } });
    expect(validate({ name: 'n', id: `urn:uuid:${HEX}` })).toMatchObject({ ok: true, value: { id: ID } });
  });

  test('null: only where nullable', () => {
    expect(validate({ name: 'n', tags: null, link: null })).toMatchObject({ ok: true, value: { tags: null, link: null } });
    expect(validate({ name: null, flag: null, size: null, pairs: null, metadata: null, id: null })).toEqual({
      ok: false,
      errors: {
        name: ['Field may not be null.'],
        flag: ['Field may not be null.'],
        size: ['Field may not be null.'],
        pairs: ['Field may not be null.'],
        metadata: ['Field may not be null.'],
        id: ['Field may not be null.'],
      },
    });
  });

  test('missing required and unknown fields, every level', () => {
    expect(validate({ extra: 1 })).toEqual({ ok: false, errors: { name: ['Missing data for required field.'], extra: ['Unknown field.'] } });
    expect(validate({ name: 'n', link: { etag: 'e', md5: 'x' } })).toEqual({
      ok: false,
      errors: { link: { path: ['Missing data for required field.'], md5: ['Unknown field.'] } },
    });
    expect(validate({ name: 'n', pairs: [{ key: 'k', value: 'v', other: 1 }] })).toEqual({
      ok: false,
      errors: { pairs: { '0': { other: ['Unknown field.'] } } },
    });
  });

  test.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])('an unknown key named %s is reported', (key) => {
    const body = JSON.parse(`{"name": "n", "${key}": "x"}`);
    const result = validate(body);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(Object.keys(result.errors)).toEqual([key]);
    expect(Object.getOwnPropertyDescriptor(result.errors, key)?.value).toEqual(['Unknown field.']);
    expect(JSON.parse(JSON.stringify(result.errors))).toEqual(JSON.parse(`{"${key}": ["Unknown field."]}`));
  });

  test('map keys named like Object.prototype members are kept as data', () => {
    const result = validate(JSON.parse('{"name": "n", "metadata": {"__proto__": "p", "constructor": "c"}}'));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const metadata = result.value.metadata as Record<string, string>;
    expect(Object.keys(metadata).sort()).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(JSON.stringify(metadata)).toBe('{"__proto__":"p","constructor":"c"}');
  });

  test('nested error maps: objects nest, list items are keyed by index', () => {
    const result = validate({
      name: 'n',
      tags: ['ok', 1, 'ok', null],
      pairs: [{ key: 'k', value: 'v' }, { key: 'k' }, 'x'],
      link: { path: 5 },
      metadata: { a: 'ok', b: 1 },
    });
    expect(result).toEqual({
      ok: false,
      errors: {
        tags: { '1': ['Not a valid string.'], '3': ['Field may not be null.'] },
        pairs: { '1': { value: ['Missing data for required field.'] }, '2': { _schema: ['Invalid input type.'] } },
        link: { path: ['Not a valid string.'] },
        metadata: { b: { value: ['Not a valid string.'] } },
      },
    });
  });

  test('wrong container types', () => {
    expect(validate({ name: 'n', tags: 'x', link: 'x', metadata: ['x'], anything: 3 })).toEqual({
      ok: false,
      errors: {
        tags: ['Not a valid list.'],
        link: { _schema: ['Invalid input type.'] },
        metadata: ['Not a valid mapping type.'],
        anything: ['Not a valid mapping type.'],
      },
    });
    expect(validate({ name: 'n', anything: { free: ['form'] } })).toMatchObject({ ok: true, value: { anything: { free: ['form'] } } });
  });

  // (A null body never gets here: it is "no input", a 400, before validation.)
  test('a body that is not an object → {"_schema": ["Invalid input type."]}', () => {
    for (const body of [[{ name: 'n' }], 'text', 7, true]) {
      expect(validate(body)).toEqual({ ok: false, errors: { _schema: ['Invalid input type.'] } });
    }
  });

  test('a top-level non-object schema reports its messages under _schema', () => {
    const flag = compileValidator({ type: 'boolean' });
    expect(flag('x')).toEqual({ ok: false, errors: { _schema: ['Not a valid boolean.'] } });
    expect(flag(true)).toEqual({ ok: true, value: true });
  });

  test('the input is not modified', () => {
    const body = { name: 'n', id: ID.toUpperCase(), flag: 'yes' };
    const copy = structuredClone(body);
    validate(body);
    expect(body).toEqual(copy);
  });
});

describe('the generated request schemas', () => {
  const recipe = compileValidator<Record<string, unknown>>(requestSchemas.RecipeCreate);
  const patch = compileValidator<Record<string, unknown>>(requestSchemas.RecipePatch);
  const deleted = compileValidator<Record<string, unknown>>(requestSchemas.DeletedPatch);
  const node = compileValidator<Record<string, unknown>>(requestSchemas.RemoteBuildNodeCreate);
  const key = compileValidator<Record<string, unknown>>(requestSchemas.PublicKeyCreate);

  test('RecipeCreate defaults and messages', () => {
    expect(recipe({ name: 'r', recipe_type: 'kiwi-ng', linux_distribution: 'sles15' })).toEqual({
      ok: true,
      value: {
        name: 'r',
        recipe_type: 'kiwi-ng',
        linux_distribution: 'sles15',
        link: null,
        template_dictionary: [],
        require_dkms: true,
        arch: 'x86_64',
      },
    });
    expect(recipe({ name: 'r', recipe_type: 'kiwi', linux_distribution: 'sles16', arch: 'arm', link: { path: '', type: 'S3' } })).toEqual({
      ok: false,
      errors: {
        recipe_type: ['Recipe type must be one of: kiwi-ng, packer.'],
        linux_distribution: ['Recipe type must be one of: sles12, sles15, centos7.'],
        arch: ['Must be one of: aarch64, x86_64.'],
        link: { path: ['name field must not be blank'], type: ['Type must be one of: s3.'] },
      },
    });
  });

  test('RecipePatch has no defaults and refuses a null link', () => {
    expect(patch({ arch: 'aarch64' })).toEqual({ ok: true, value: { arch: 'aarch64' } });
    expect(patch({ link: null })).toEqual({ ok: false, errors: { link: ['Field may not be null.'] } });
    expect(patch({ link: { path: 's3://b/k', type: 's3' } })).toEqual({ ok: true, value: { link: { path: 's3://b/k', etag: '', type: 's3' } } });
  });

  test('DeletedPatch, RemoteBuildNodeCreate and PublicKeyCreate messages', () => {
    expect(deleted({ operation: 'undelete' })).toEqual({ ok: true, value: { operation: 'undelete' } });
    expect(deleted({ operation: 'Undelete' })).toEqual({ ok: false, errors: { operation: ['Recipe type must be one of: undelete.'] } });
    expect(node({ xname: '' })).toEqual({ ok: false, errors: { xname: ['name field must not be blank'] } });
    expect(key({ name: '', public_key: '' })).toEqual({
      ok: false,
      errors: { name: ['name field must not be blank'], public_key: ['public_key field must not be blank'] },
    });
  });
});
