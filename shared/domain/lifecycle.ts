/**
 * Record life cycle shared by every kind: look-ups that tell live from soft-deleted records,
 * whole-collection walks, and optimistic read-modify-write so two concurrent writers never lose
 * an update.
 */
import { RecordNotFoundError } from './errors.js';
import type { RecordStore, StoredRecord } from './ports.js';
import type { RecordKind, RecordState } from './records.js';
import { toListQuery, type ListFilter } from './record-index.js';

/**
 * Optimistic writes lose to concurrent writers; each retry waits a random, growing delay (full
 * jitter) so that a burst of writers to one record spreads out instead of colliding again.
 */
const MAX_ATTEMPTS = 20;
const BACKOFF_BASE_MS = 5;
const BACKOFF_CAP_MS = 250;

function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function getInState<T>(store: RecordStore, kind: RecordKind, id: string, state: RecordState): Promise<StoredRecord<T>> {
  const stored = await store.get<T>(kind, id);
  if (!stored || stored.state !== state) throw new RecordNotFoundError();
  return stored;
}

/** Every record of a kind in a state, read a page at a time: a collection is never held whole. */
export async function* walkRecords<T>(store: RecordStore, kind: RecordKind, state: RecordState): AsyncGenerator<StoredRecord<T>> {
  let cursor: string | undefined;
  do {
    const page = await store.list<T>(kind, state, { cursor });
    yield* page.items;
    cursor = page.cursor;
  } while (cursor);
}

/** For small collections only (remote build nodes): the whole list in memory. */
export async function listAll<T>(store: RecordStore, kind: RecordKind, state: RecordState): Promise<StoredRecord<T>[]> {
  const out: StoredRecord<T>[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list<T>(kind, state, { cursor });
    out.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

export class ConcurrentUpdateError extends Error {
  constructor(kind: RecordKind, id: string) {
    super(`${kind} ${id} kept changing under ${MAX_ATTEMPTS} attempts to update it`);
  }
}

/**
 * Reads the record in `state`, lets `change` compute the whole new record (it may throw a
 * problem, in which case nothing is written), and writes it conditionally on the version read.
 * A lost race re-reads and re-runs `change`, so every accepted change sees the latest record.
 */
export async function mutate<T, R = T>(
  store: RecordStore,
  kind: RecordKind,
  id: string,
  state: RecordState,
  change: (current: StoredRecord<T>) => Promise<{ record: R; state: RecordState } | undefined>,
): Promise<R | undefined> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await getInState<T>(store, kind, id, state);
    const next = await change(current);
    if (!next) return undefined;
    if (await store.update(kind, id, current.version, next.record, next.state)) return next.record;
    await backoff(attempt);
  }
  throw new ConcurrentUpdateError(kind, id);
}

/** Removes the record in `state` for good, retrying if it changed between read and delete. */
export async function removeInState<T>(
  store: RecordStore,
  kind: RecordKind,
  id: string,
  state: RecordState,
  before?: (current: StoredRecord<T>) => Promise<void>,
): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await getInState<T>(store, kind, id, state);
    if (before) await before(current);
    if (await store.remove(kind, id, current.version)) return;
    await backoff(attempt);
  }
  throw new ConcurrentUpdateError(kind, id);
}

/** One page of a filtered list (see record-index.ts for what can be filtered). */
export async function listPage<T>(
  store: RecordStore,
  kind: RecordKind,
  state: RecordState,
  filter: ListFilter,
  page: { limit?: number; cursor?: string },
): Promise<{ items: T[]; cursor?: string }> {
  const result = await store.list<T>(kind, state, toListQuery(kind, filter, page));
  return { items: result.items.map((s) => s.record), cursor: result.cursor };
}

/** Every record matching the filter, a page at a time, without holding the collection in memory. */
export async function* streamRecords<T>(store: RecordStore, kind: RecordKind, state: RecordState, filter: ListFilter): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await store.list<T>(kind, state, toListQuery(kind, filter, { cursor }));
    for (const item of page.items) yield item.record;
    cursor = page.cursor;
  } while (cursor);
}
