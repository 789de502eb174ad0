import type { DeleteMode } from '../domain/soft-delete.js';
import type { ApiRequest, ApiResult } from './types.js';

export const ok = (body: unknown): ApiResult => ({ status: 200, body });
export const created = (body: unknown): ApiResult => ({ status: 201, body });
export const noContent = (): ApiResult => ({ status: 204 });

/** v3 DELETE soft-deletes; v2 and the unversioned aliases delete for good. */
export const deleteModeOf = (request: ApiRequest): DeleteMode => (request.version === 'v3' ? 'soft' : 'hard');

/** The original's `cascade` flag: true unless the first value is something other than true/yes/t/1. */
export function cascadeOf(request: ApiRequest): boolean {
  const value = request.query.cascade?.[0];
  return value === undefined || ['true', 'yes', 't', '1'].includes(value.toLowerCase());
}
