/**
 * Read-modify-write under contention (shared/domain/lifecycle.ts), against an in-memory store
 * with the RecordStore's versioned writes: every change of a burst lands, the writers that lost
 * their first race retry in the order they arrived; a writer that keeps losing to other processes
 * gives up only after the write budget, with a 503 problem carrying Retry-After, and writes nothing.
 * test/integration/concurrency.test.ts runs the same races through the HTTP API and DynamoDB.
 */
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { mutate, removeInState, RecordBusyError, WRITE_BUDGET_MS, BUSY_RETRY_AFTER_SECONDS } from '#shared/domain/lifecycle.js';
import { problemErrors, problemOf } from '#shared/http/middleware/problem-errors.js';
import type { RecordStore, StoredRecord } from '#shared/domain/ports.js';
import type { RecordKind, RecordState } from '#shared/domain/records.js';

interface Doc {
  keys: Record<string, string>;
  applied: string[];
}

/** Only what mutate and removeInState use; `rivals` makes that many writes from elsewhere land first. */
class MemoryStore {
  readonly items = new Map<string, StoredRecord<unknown>>();
  lostUpdates = 0;
  rivals = 0;

  async get<T>(kind: RecordKind, id: string): Promise<StoredRecord<T> | undefined> {
    await Promise.resolve();
    const item = this.items.get(`${kind}#${id}`);
    return item ? (structuredClone(item) as StoredRecord<T>) : undefined;
  }

  async update<T>(kind: RecordKind, id: string, expected: number, record: T, state: RecordState): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    const item = this.items.get(`${kind}#${id}`);
    if (this.rivals > 0 && item) {
      this.rivals--;
      item.version++;
    }
    if (!item || item.version !== expected) {
      this.lostUpdates++;
      return false;
    }
    this.items.set(`${kind}#${id}`, { ...item, record, state, version: expected + 1 });
    return true;
  }

  async remove(kind: RecordKind, id: string, expected: number): Promise<boolean> {
    const item = this.items.get(`${kind}#${id}`);
    if (!item || item.version !== expected) return false;
    this.items.delete(`${kind}#${id}`);
    return true;
  }

  seed(id: string): void {
    this.items.set(`image#${id}`, { record: { keys: {}, applied: [] } satisfies Doc, state: 'live', version: 1, order: '1' });
  }
}

const asStore = (s: MemoryStore) => s as unknown as RecordStore;

function setKey(store: MemoryStore, id: string, key: string) {
  return mutate<Doc>(asStore(store), 'image', id, 'live', async ({ record }) => ({
    record: { keys: { ...record.keys, [key]: `value-${key}` }, applied: [...record.applied, key] },
    state: 'live',
  }));
}

afterEach(() => {
  jest.useRealTimers();
});

describe('writers of one record in one process', () => {
  test('16 writers × 20 changes on one record: every change lands', async () => {
    const store = new MemoryStore();
    store.seed('one');
    const writers = Array.from({ length: 16 }, async (_, w) => {
      for (let k = 0; k < 20; k++) await setKey(store, 'one', `w${w}-k${k}`);
    });
    await Promise.all(writers);
    const doc = store.items.get('image#one')!.record as Doc;
    expect(Object.keys(doc.keys)).toHaveLength(320);
    expect(store.items.get('image#one')!.version).toBe(321);
  });

  test('the losers of a burst retry in the order they arrived', async () => {
    const store = new MemoryStore();
    store.seed('fifo');
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((key) => setKey(store, 'fifo', key)));
    expect((store.items.get('image#fifo')!.record as Doc).applied).toEqual(keys);
  });

  test('a change that throws leaves its turn to the next writer', async () => {
    const store = new MemoryStore();
    store.seed('throws');
    const failing = mutate<Doc>(asStore(store), 'image', 'throws', 'live', async () => {
      throw new Error('rejected change');
    });
    const next = setKey(store, 'throws', 'after');
    await expect(failing).rejects.toThrow('rejected change');
    await next;
    expect((store.items.get('image#throws')!.record as Doc).keys).toEqual({ after: 'value-after' });
  });

  test('different records do not wait for each other', async () => {
    const store = new MemoryStore();
    store.seed('a');
    store.seed('b');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = mutate<Doc>(asStore(store), 'image', 'a', 'live', async ({ record }) => {
      await held;
      return { record, state: 'live' };
    });
    await setKey(store, 'b', 'free');
    expect((store.items.get('image#b')!.record as Doc).keys).toEqual({ free: 'value-free' });
    release();
    await slow;
  });
});

describe('writers racing other processes', () => {
  test('a writer that loses some races re-reads, re-applies and lands', async () => {
    const store = new MemoryStore();
    store.seed('raced');
    store.rivals = 25;
    let runs = 0;
    await mutate<Doc>(asStore(store), 'image', 'raced', 'live', async ({ record }) => {
      runs++;
      return { record: { ...record, keys: { ...record.keys, mine: 'kept' } }, state: 'live' };
    });
    expect(runs).toBe(26);
    expect((store.items.get('image#raced')!.record as Doc).keys).toEqual({ mine: 'kept' });
  });

  test('past the write budget the writer gets a 503 with Retry-After; nothing is written', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    const store = new MemoryStore();
    store.seed('hot');
    store.rivals = Number.MAX_SAFE_INTEGER;
    const outcome = setKey(store, 'hot', 'never').then(
      () => 'written',
      (error: unknown) => error,
    );
    await jest.advanceTimersByTimeAsync(WRITE_BUDGET_MS + 1_000);
    const error = await outcome;
    expect(error).toBeInstanceOf(RecordBusyError);
    expect(problemOf(error as RecordBusyError).status).toBe(503);
    expect(problemOf(error as RecordBusyError).headers).toEqual({ 'retry-after': String(BUSY_RETRY_AFTER_SECONDS) });
    expect((store.items.get('image#hot')!.record as Doc).keys).toEqual({});
    // The record is not left locked: the next writer gets its turn.
    store.rivals = 0;
    await setKey(store, 'hot', 'later');
    expect((store.items.get('image#hot')!.record as Doc).keys).toEqual({ later: 'value-later' });
  });

  test('removeInState retries a lost race too', async () => {
    const store = new MemoryStore();
    store.seed('gone');
    let seen = 0;
    await removeInState(asStore(store), 'image', 'gone', 'live', async () => {
      // Another process writes once between this read and the delete.
      if (seen++ === 0) store.items.get('image#gone')!.version++;
    });
    expect(seen).toBe(2);
    expect(store.items.has('image#gone')).toBe(false);
  });
});

test('the API answers a busy record with an RFC 7807 503 and Retry-After', async () => {
  const request = { error: new RecordBusyError('image', 'abc'), event: { rawPath: '/v3/images/abc' }, response: undefined } as any;
  await problemErrors().onError!(request);
  expect(request.response.statusCode).toBe(503);
  expect(request.response.headers).toEqual({ 'content-type': 'application/problem+json', 'retry-after': '1' });
  expect(JSON.parse(request.response.body)).toEqual({
    status: 503,
    title: 'Service Unavailable',
    detail: 'The image abc is being changed by many requests at once; this change was not made. Retry the request in a moment.',
  });
});
