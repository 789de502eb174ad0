/**
 * What each kind of record is listed by (name, single-valued facets, image metadata). The store
 * keeps these as index keys, so list filters are Queries, never Scans.
 */
import type { ListQuery, RecordIndexValues } from './ports.js';
import type { RecordKind } from './records.js';

/** Facet slots per kind: the store has one index per slot. */
export const FACET_SLOTS: Partial<Record<RecordKind, readonly string[]>> = {
  recipe: ['arch'],
  image: ['arch'],
  job: ['status', 'job_type', 'arch'],
  lineage: ['parent'],
};

export function indexRecord(kind: RecordKind, record: unknown): RecordIndexValues {
  const r = record as Record<string, any>;
  switch (kind) {
    case 'public-key':
      return { name: r.name };
    case 'recipe':
      return { name: r.name, slots: [`arch=${r.arch}`] };
    case 'image':
      return { name: r.name, slots: [`arch=${r.arch}`], meta: r.metadata ?? {} };
    case 'job': {
      const job = r.job ?? r;
      // Lists of jobs serve the wire record: the workflow's part of the state stays out of the indexes.
      return { name: job.image_root_archive_name, slots: [`status=${job.status}`, `job_type=${job.job_type}`, `arch=${job.arch}`], listed: { job } };
    }
    case 'remote-build-node':
      return { name: r.xname };
    case 'node-load':
    case 'job-history':
      return {};
    case 'lineage':
      return { slots: [`parent=${r.parent_id}`] };
  }
}

export interface ListFilter {
  name?: string;
  namePrefix?: string;
  facets?: Record<string, string>;
  meta?: { key: string; value: string };
}

/** Turns a list filter into the store's query for a kind. */
export function toListQuery(kind: RecordKind, filter: ListFilter, page: { limit?: number; cursor?: string } = {}): ListQuery {
  const slots = FACET_SLOTS[kind] ?? [];
  const query: ListQuery = { ...page };
  if (filter.name !== undefined) query.name = filter.name;
  if (filter.namePrefix !== undefined) query.namePrefix = filter.namePrefix;
  if (filter.meta) query.meta = filter.meta;
  if (filter.facets && Object.keys(filter.facets).length > 0) {
    query.slots = slots.map((facet) => (filter.facets![facet] !== undefined ? `${facet}=${filter.facets![facet]}` : undefined));
  }
  return query;
}
