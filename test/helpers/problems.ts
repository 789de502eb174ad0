/** Assertions on the RFC 7807 problems and other wire conventions of the original (§1.3). */
import { expect } from '@jest/globals';
import type { TestResponse } from './service.js';

export const NO_INPUT =
  'No input provided. Determine the specific information that is missing or invalid and then re-run the request with valid information.';
export const NOT_FOUND = 'Requested resource does not exist. Re-run request with valid ID.';
export const CONFLICT =
  'Requested resource exists, but cannot be patched due to a patch conflict. Re-run request with valid input values.';
export const SCHEMA =
  'Input data was understood, but failed validation. Re-run request with valid input values for the fields indicated in the response.';
export const URL_NOT_FOUND =
  'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.';
export const METHOD_NOT_ALLOWED = 'The method is not allowed for the requested URL.';
export const RETRY = 'Please determine the specific information that is missing or invalid and then re-run the request with valid information.';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  503: 'Service Unavailable',
};

/** A problem body: exact status/title/detail, problem content type, no `type`/`instance`, `errors` only when expected. */
export function expectProblem(res: TestResponse, status: number, detail?: string, errors?: unknown): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { status, title: TITLES[status] } });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).not.toHaveProperty('type');
  expect(res.body).not.toHaveProperty('instance');
  if (detail !== undefined) expect(res.body.detail).toBe(detail);
  if (errors === undefined) expect(res.body).not.toHaveProperty('errors');
  else expect(res.body.errors).toEqual(errors);
}

export const expectNotFound = (res: TestResponse) => expectProblem(res, 404, NOT_FOUND);
export const expectNoInput = (res: TestResponse) => expectProblem(res, 400, NO_INPUT);
export const expectSchemaErrors = (res: TestResponse, errors: unknown) => expectProblem(res, 422, SCHEMA, errors);

/** 405 inside the API: `message` plus the problem members, and an `Allow` header listing exactly `allow`. */
export function expectMethodNotAllowed(res: TestResponse, allow: string[]): void {
  expect(res.status).toBe(405);
  expect(res.headers.get('content-type')).toMatch(/^application\/(problem\+)?json/);
  expect(res.body).toEqual({ message: METHOD_NOT_ALLOWED, status: 405, title: 'Method Not Allowed', detail: METHOD_NOT_ALLOWED });
  const header = res.headers.get('allow') ?? '';
  expect(header.split(',').map((m) => m.trim()).sort()).toEqual([...allow].sort());
}

/** A 204 with an empty body. */
export function expectNoContent(res: TestResponse): void {
  expect(res.status).toBe(204);
  expect(res.text).toBe('');
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const TIMESTAMP_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$/;
