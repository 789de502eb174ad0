/**
 * Query parameters of list routes: `limit` and `cursor` for pages (the next page's URL comes in a
 * `Link: <...>; rel="next"` header), and filters by `name`, `name_prefix`, `arch`, image
 * `metadata_key`+`metadata_value`, job `status` and `job_type`. Without them a list answers the
 * whole collection as the original does. Bad values are 400 problems.
 */
import { ProblemError } from './problem.js';
import type { ListFilter } from '../domain/record-index.js';
import { JOB_STATUSES } from '../domain/records.js';
import type { ApiRequest } from './types.js';

export const MAX_LIMIT = 1000;

export interface ListParams {
  filter: ListFilter;
  limit?: number;
  cursor?: string;
}

function bad(detail: string): ProblemError {
  return new ProblemError(400, detail);
}

function one(request: ApiRequest, name: string): string | undefined {
  return request.query[name]?.[0];
}

export function parseListParams(request: ApiRequest, allowed: { arch?: boolean; metadata?: boolean; job?: boolean } = {}): ListParams {
  const params: ListParams = { filter: {} };
  const limit = one(request, 'limit');
  if (limit !== undefined) {
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_LIMIT) {
      throw bad(`limit must be a whole number from 1 to ${MAX_LIMIT}; got '${limit}'.`);
    }
    params.limit = Number(limit);
  }
  const cursor = one(request, 'cursor');
  if (cursor !== undefined) {
    if (params.limit === undefined) throw bad('cursor goes with limit: follow the Link header of the previous page.');
    params.cursor = cursor;
  }
  const name = one(request, 'name');
  if (name !== undefined) params.filter.name = name;
  const prefix = one(request, 'name_prefix');
  if (prefix !== undefined) params.filter.namePrefix = prefix;
  const facets: Record<string, string> = {};
  const arch = one(request, 'arch');
  if (arch !== undefined && allowed.arch) {
    if (arch !== 'x86_64' && arch !== 'aarch64') throw bad(`arch must be one of: aarch64, x86_64; got '${arch}'.`);
    facets.arch = arch;
  }
  if (allowed.job) {
    const status = one(request, 'status');
    if (status !== undefined) {
      if (!(JOB_STATUSES as readonly string[]).includes(status)) throw bad(`status must be one of: ${JOB_STATUSES.join(', ')}; got '${status}'.`);
      facets.status = status;
    }
    const jobType = one(request, 'job_type');
    if (jobType !== undefined) {
      if (jobType !== 'create' && jobType !== 'customize') throw bad(`job_type must be one of: create, customize; got '${jobType}'.`);
      facets.job_type = jobType;
    }
  }
  if (Object.keys(facets).length > 0) params.filter.facets = facets;
  if (allowed.metadata) {
    const key = one(request, 'metadata_key');
    const value = one(request, 'metadata_value');
    if ((key === undefined) !== (value === undefined)) throw bad('metadata_key and metadata_value go together.');
    if (key !== undefined && value !== undefined) params.filter.meta = { key, value };
  }
  return params;
}

/** The URL of the next page: this request's path and filters with the new cursor. */
export function nextPageLink(request: ApiRequest, path: string, cursor: string): string {
  const search = new URLSearchParams();
  for (const [key, values] of Object.entries(request.query)) {
    if (key === 'cursor') continue;
    for (const value of values) search.append(key, value);
  }
  search.set('cursor', cursor);
  return `<${path}?${search.toString()}>; rel="next"`;
}
