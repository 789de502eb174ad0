/**
 * Record life cycle shared by every kind: look-ups that tell live from soft-deleted records,
 * whole-collection walks, and read-modify-write that loses no update under contention.
 *
 * A change is a function of the record read (`mutate`), so it is commutative with any other
 * change: a write that loses its version race re-reads the record and re-applies the same
 * change, and nothing is lost. Two mechanisms keep writers from losing again, or for long:
 *
 * - A writer that lost its first race, or finds writers of the record already waiting, joins the
 *   record's queue in this process (a FIFO per record and store) and writes in its turn, so a
 *   burst never collides with itself again: every writer keeps its place. The embedded server, which serves every request in one
 *   process, thus loses no change of a burst on one record and answers each within a few writes.
 * - Across processes (Lambda instances), the conditional write decides; a loser waits a random,
 *   growing delay (full jitter) that shrinks again the longer it has waited, so an old writer
 *   gets in before new ones, and keeps trying for WRITE_BUDGET_MS. Only then does it give up,
 *   with RecordBusyError: a 503 problem with Retry-After, never a 500, and nothing written.
 */
import { RecordNotFoundError, UnavailableError } from './errors.js';
import type { ListedBatch, RecordPage, RecordStore, StoredRecord } from './ports.js';
import type { RecordKind, RecordState } from './records.js';
import { toListQuery, type ListFilter } from './record-index.js';

/** How long one writer keeps trying (its turn in the process included) before it answers 503. */
export const WRITE_BUDGET_MS = 12_000;
/** What a writer that gave up tells its client to wait before repeating the request. */
export const BUSY_RETRY_AFTER_SECONDS = 1;
const BACKOFF_BASE_MS = 4;
const BACKOFF_CAP_MS = 100;
/** A writer that has lost for this long waits half as long between attempts as a new one. */
const SENIORITY_MS = 1_000;

function backoff(attempt: number, waitedMs: number): Promise<void> {
  const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt) / (1 + waitedMs / SENIORITY_MS);
  return new Promise((resolve) => setTimeout(resolve, Math.random() * cap));
}

/** A record kept changing under one writer for WRITE_BUDGET_MS: the request can be repeated. */
export class RecordBusyError extends UnavailableError {
  constructor(kind: RecordKind, id: string) {
    super(`The ${kind} ${id} is being changed by many requests at once; this change was not made. Retry the request in a moment.`, BUSY_RETRY_AFTER_SECONDS);
  }
}

/** The writers waiting for each record, per store: a chain of turns in arrival order. */
const turns = new WeakMap<RecordStore, Map<string, Promise<void>>>();

/**
 * Runs `work` when the writers of the record that came before it in this process are done.
 * A writer that waits past `deadline` gives up its turn with RecordBusyError.
 */
async function inTurn<R>(store: RecordStore, kind: RecordKind, id: string, deadline: number, work: () => Promise<R>): Promise<R> {
  let byRecord = turns.get(store);
  if (!byRecord) turns.set(store, (byRecord = new Map()));
  const key = `${kind}#${id}`;
  const previous = byRecord.get(key);
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = previous ? previous.then(() => mine) : mine;
  byRecord.set(key, tail);
  try {
    if (previous) {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), Math.max(0, deadline - Date.now()))));
      const outcome = await Promise.race([previous, expired]);
      clearTimeout(timer);
      if (outcome === 'expired') throw new RecordBusyError(kind, id);
    }
    return await work();
  } finally {
    release();
    if (byRecord.get(key) === tail) byRecord.delete(key);
  }
}

/**
 * Repeats `attempt` (one read and one conditional write) until it lands, within the write
 * budget; `attempt` returns done: false when its write lost the race. The first attempt runs at
 * once unless writers of the record already wait in this process; a writer that lost, or found
 * others waiting, joins the record's queue, so a burst is written in the order it arrived
 * instead of colliding again.
 */
async function withRetries<R>(store: RecordStore, kind: RecordKind, id: string, attempt: () => Promise<{ done: true; value: R } | { done: false }>): Promise<R> {
  const started = Date.now();
  const deadline = started + WRITE_BUDGET_MS;
  // Writers already queued for the record go first: a newcomer joins them instead of racing them.
  if (!turns.get(store)?.has(`${kind}#${id}`)) {
    const first = await attempt();
    if (first.done) return first.value;
  }
  return inTurn(store, kind, id, deadline, async () => {
    for (let n = 0; ; n++) {
      const outcome = await attempt();
      if (outcome.done) return outcome.value;
      if (Date.now() >= deadline) throw new RecordBusyError(kind, id);
      await backoff(n, Date.now() - started);
    }
  });
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

/**
 * Reads the record in `state`, lets `change` compute the whole new record (it may throw a
 * problem, in which case nothing is written), and writes it conditionally on the version read.
 * A lost race re-reads and re-runs `change`, so every accepted change sees the latest record and
 * none is lost; see the top of this file for how long a writer keeps trying.
 */
export async function mutate<T, R = T>(
  store: RecordStore,
  kind: RecordKind,
  id: string,
  state: RecordState,
  change: (current: StoredRecord<T>) => Promise<{ record: R; state: RecordState } | undefined>,
): Promise<R | undefined> {
  return withRetries<R | undefined>(store, kind, id, async () => {
    const current = await getInState<T>(store, kind, id, state);
    const next = await change(current);
    if (!next) return { done: true, value: undefined };
    if (await store.update(kind, id, current.version, next.record, next.state)) return { done: true, value: next.record };
    return { done: false };
  });
}

/** Removes the record in `state` for good, retrying if it changed between read and delete. */
export async function removeInState<T>(
  store: RecordStore,
  kind: RecordKind,
  id: string,
  state: RecordState,
  before?: (current: StoredRecord<T>) => Promise<void>,
): Promise<void> {
  await withRetries<void>(store, kind, id, async () => {
    const current = await getInState<T>(store, kind, id, state);
    if (before) await before(current);
    if (await store.remove(kind, id, current.version)) return { done: true, value: undefined };
    return { done: false };
  });
}

/** One page of a filtered list (see record-index.ts for what can be filtered). */
export async function listPage<T>(
  store: RecordStore,
  kind: RecordKind,
  state: RecordState,
  filter: ListFilter,
  page: { limit?: number; cursor?: string },
): Promise<RecordPage<T>> {
  return store.list<T>(kind, state, toListQuery(kind, filter, page));
}

/** Every record matching the filter, in the store's batches, without holding the collection in memory. */
export function streamRecords<T>(store: RecordStore, kind: RecordKind, state: RecordState, filter: ListFilter): AsyncIterable<ListedBatch<T>> {
  return store.stream<T>(kind, state, toListQuery(kind, filter));
}
