/**
 * The record half of soft delete, undelete and purge, shared by every kind. The artifact half
 * (moving S3 objects under `deleted/` and back) belongs to recipes and images, which call these
 * after their copies and before removing the objects they replaced, so an interrupted request
 * can be repeated to completion without losing an artifact.
 */
import { eachConcurrently } from './concurrency.js';
import { mutate, removeInState, walkRecords } from './lifecycle.js';
import { ConflictError, DomainError, InvalidInputError, NotFoundError } from './errors.js';
import { CLAIM_LEASE_MS } from './links.js';
import { formatTimestamp } from './time.js';
import type { DomainContext } from './context.js';
import type { StoredRecord } from './ports.js';
import type { Deleted, RecordKind } from './records.js';

export type DeleteMode = 'hard' | 'soft';

/** How long a request waits for another one moving the same record's artifacts. */
const LEASE_WAIT_MS = 20_000;

/**
 * Runs `move` while holding the record's artifact lease (a claim on the record id), so that
 * two requests never move one record's artifacts at once: a soft delete running beside an
 * undelete would otherwise remove the copies the other had just made. A second request waits
 * until the first is done and then sees the record as the first left it; after LEASE_WAIT_MS it
 * gives up with a 409. A lease left by a crashed request expires like a link claim does.
 */
export async function withArtifactLease<T>(ctx: DomainContext, kind: RecordKind, id: string, move: () => Promise<T>): Promise<T> {
  const scope = `${kind}-artifacts`;
  const token = ctx.ids.newId();
  const deadline = Date.now() + LEASE_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    const holder = await ctx.store.claim(scope, id, token);
    if (!holder) break;
    if (holder.ageMs >= CLAIM_LEASE_MS) {
      await ctx.store.release(scope, id, holder.owner);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new ConflictError(`Another request is moving the artifacts of this record. Re-run the request when it has finished.`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(250, 10 * 2 ** attempt)));
  }
  try {
    return await move();
  } finally {
    await ctx.store.release(scope, id, token);
  }
}

/**
 * Marks a live record deleted, with `changes` (e.g. the moved link) applied in the same write.
 * `atMicros` is the deletion time when the caller already wrote it elsewhere (a deleted manifest).
 */
export async function markDeleted<T extends object>(ctx: DomainContext, kind: RecordKind, id: string, changes: Partial<T> = {}, atMicros?: bigint) {
  const deleted = formatTimestamp(atMicros ?? ctx.clock.nowMicros());
  return mutate<T, Deleted<T>>(ctx.store, kind, id, 'live', async (current) => ({
    record: { ...current.record, ...changes, deleted } as Deleted<T>,
    state: 'deleted',
  }));
}

/** Brings a deleted record back with `changes` applied and without its `deleted` time. */
export async function markLive<T extends object>(ctx: DomainContext, kind: RecordKind, id: string, changes: Partial<T> = {}) {
  return mutate<Deleted<T>, T>(ctx.store, kind, id, 'deleted', async (current) => {
    const { deleted: _deleted, ...rest } = current.record;
    return { record: { ...(rest as unknown as T), ...changes }, state: 'live' };
  });
}

export async function purge<T>(ctx: DomainContext, kind: RecordKind, id: string, before?: (current: StoredRecord<T>) => Promise<void>) {
  await removeInState<T>(ctx.store, kind, id, 'deleted', before);
}

/** How many records a bulk operation handles at once: a collection of hundreds answers within API Gateway's limit. */
const BULK_CONCURRENCY = 8;

/**
 * Runs `each` over every record of a kind in a state, BULK_CONCURRENCY at a time. Every record
 * is handled on its own, so a failure leaves each record wholly in one state; failures are
 * reported together at the end.
 */
export async function forEachRecord<T>(
  ctx: DomainContext,
  kind: RecordKind,
  state: 'live' | 'deleted',
  each: (id: string, stored: StoredRecord<T>) => Promise<void>,
  idOf: (record: T) => string = (record) => (record as { id: string }).id,
): Promise<void> {
  const failures: Record<string, string[]> = {};
  await eachConcurrently(walkRecords<T>(ctx.store, kind, state), BULK_CONCURRENCY, async (stored) => {
    const id = idOf(stored.record);
    try {
      await each(id, stored);
    } catch (error) {
      if (error instanceof NotFoundError) return; // removed meanwhile
      if (!(error instanceof DomainError)) throw error;
      failures[id] = [error.detail];
    }
  });
  const ids = Object.keys(failures);
  if (ids.length > 0) {
    throw new InvalidInputError(
      `${ids.length} record(s) could not be processed and were left as they were; the others were processed. See errors for each id.`,
      failures,
    );
  }
}
