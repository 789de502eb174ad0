/**
 * The reconciler's lease, on both record stores: of two passes at once only one looks at the
 * jobs, the other returns at once; a pass that died holding the lease blocks the next ones only
 * until the lease expires.
 */
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import dynalite from 'dynalite';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { RecordStore } from '#shared/domain/ports.js';
import { indexRecord } from '#shared/domain/record-index.js';
import { DynamoRecordStore } from '#shared/store/dynamo-record-store.js';
import { ensureTable } from '#shared/store/ensure-table.js';
import { MemoryRecordStore } from '#shared/store/memory-record-store.js';
import { clearReconcileLease, RECONCILE_LEASE_MS, reconcileJobs } from '#shared/workflow/reconcile.js';
import type { WorkflowContext } from '#shared/workflow/stages.js';

let db: ReturnType<typeof dynalite>;
let client: DynamoDBClient;

beforeAll(async () => {
  db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((ok) => db.listen(0, '127.0.0.1', () => ok()));
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${(db.address() as AddressInfo).port}`, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
});

afterAll(async () => {
  client.destroy();
  await new Promise<void>((r) => db.close(() => r()));
});

afterEach(() => {
  jest.restoreAllMocks();
});

const stores: [string, () => Promise<RecordStore>][] = [
  ['memory', async () => new MemoryRecordStore(indexRecord)],
  [
    'dynamodb',
    async () => {
      const table = `lease-${randomUUID().slice(0, 8)}`;
      await ensureTable(client, table);
      return new DynamoRecordStore(client, table, indexRecord);
    },
  ],
];

/** The store, whose job lists wait for `gate` (so a pass lasts as long as the test wants); `lists` counts them. */
function gated(store: RecordStore, gate: Promise<void>) {
  let lists = 0;
  const wrapped = new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'list') {
        return async (...args: Parameters<RecordStore['list']>) => {
          lists++;
          await gate;
          return target.list(...args);
        };
      }
      const value = Reflect.get(target, name, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: wrapped, lists: () => lists };
}

const contextOf = (store: RecordStore) => ({ store, ids: { newId: () => randomUUID() } }) as unknown as WorkflowContext;

const opened = () => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return { gate, open };
};

describe.each(stores)('the reconciler lease (%s store)', (_name, makeStore) => {
  test('of two concurrent passes only one runs; the other returns at once, and the next pass runs again', async () => {
    const store = await makeStore();
    const { gate, open } = opened();
    const slow = gated(store, gate);
    const first = reconcileJobs(contextOf(slow.store));
    // The first pass holds the lease and waits in its job list.
    while (slow.lists() === 0) await new Promise((r) => setTimeout(r, 5));
    const second = await reconcileJobs(contextOf(slow.store));
    expect(second).toEqual({ jobs: 0, resumed: 0, heartbeats: 0, failed: 0, errors: 0, deleted: 0, deletionsFailed: 0, skipped: true });
    expect(slow.lists()).toBe(1);
    open();
    expect(await first).toEqual({ jobs: 0, resumed: 0, heartbeats: 0, failed: 0, errors: 0, deleted: 0, deletionsFailed: 0 });
    // Released: the next pass runs.
    expect((await reconcileJobs(contextOf(store))).skipped).toBeUndefined();
  });

  test('a pass that died holding the lease blocks the next passes until the lease expires', async () => {
    const store = await makeStore();
    const { gate } = opened();
    // Never ends: stands for a pass whose process was killed.
    void reconcileJobs(contextOf(gated(store, gate).store));
    await new Promise((r) => setTimeout(r, 50));
    expect((await reconcileJobs(contextOf(store))).skipped).toBe(true);
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + RECONCILE_LEASE_MS - 10_000);
    expect((await reconcileJobs(contextOf(store))).skipped).toBe(true);
    jest.spyOn(Date, 'now').mockReturnValue(now + RECONCILE_LEASE_MS + 1_000);
    expect((await reconcileJobs(contextOf(store))).skipped).toBeUndefined();
  });

  test('a process that runs every pass itself clears a lease its predecessor left', async () => {
    const store = await makeStore();
    void reconcileJobs(contextOf(gated(store, opened().gate).store));
    await new Promise((r) => setTimeout(r, 50));
    expect((await reconcileJobs(contextOf(store))).skipped).toBe(true);
    await clearReconcileLease(store);
    expect((await reconcileJobs(contextOf(store))).skipped).toBeUndefined();
  });
});
