/**
 * One contract for both record stores: the memory store of the embedded runtime and the DynamoDB
 * adapter (on dynalite here, on DynamoDB Local when DYNAMODB_ENDPOINT is set, as CI does). The
 * same operations must give the same answers, so the two cannot drift apart.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import dynalite from 'dynalite';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { InvalidCursorError } from '#shared/domain/errors.js';
import { toJsonText } from '#shared/domain/json-text.js';
import type { ListQuery, RecordStore } from '#shared/domain/ports.js';
import { indexRecord } from '#shared/domain/record-index.js';
import type { RecordState } from '#shared/domain/records.js';
import { DynamoRecordStore } from '#shared/store/dynamo-record-store.js';
import { ensureTable } from '#shared/store/ensure-table.js';
import { MemoryRecordStore } from '#shared/store/memory-record-store.js';
import { RecordJournal } from '#shared/store/record-journal.js';

let db: ReturnType<typeof dynalite> | undefined;
let client: DynamoDBClient;
const dirs: string[] = [];

beforeAll(async () => {
  let endpoint = process.env.DYNAMODB_ENDPOINT;
  if (!endpoint) {
    db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((ok) => db!.listen(0, '127.0.0.1', () => ok()));
    endpoint = `http://127.0.0.1:${(db.address() as AddressInfo).port}`;
  }
  client = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
});

afterAll(async () => {
  client.destroy();
  if (db) await new Promise<void>((r) => db!.close(() => r()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ims-records-'));
  dirs.push(dir);
  return dir;
}

const stores: [string, () => Promise<RecordStore>][] = [
  ['memory', async () => new MemoryRecordStore(indexRecord)],
  ['memory with a journal', async () => new MemoryRecordStore(indexRecord, new RecordJournal(scratch()))],
  [
    'dynamodb',
    async () => {
      const table = `contract-${randomUUID().slice(0, 8)}`;
      await ensureTable(client, table);
      return new DynamoRecordStore(client, table, indexRecord);
    },
  ],
];

const image = (id: string, name: string | undefined, arch = 'x86_64', metadata: Record<string, string> = {}) => ({ id, created: '2026-01-01T00:00:00', name, arch, link: null, metadata });

/** Every page of a list, followed by its cursors; fails on a cursor that yields nothing new forever. */
async function allPages(store: RecordStore, state: RecordState, query: ListQuery, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list<{ id: string }>('image', state, { ...query, limit, cursor });
    pages.push(page.items.map((s) => s.record.id));
    cursor = page.cursor;
    if (pages.length > 100) throw new Error('cursors never end');
  } while (cursor);
  return pages;
}

/** A whole list as the store streams it: the ids, and the text each record is served with. */
async function streamed(store: RecordStore, state: RecordState, query: ListQuery = {}): Promise<{ ids: string[]; texts: string[]; batches: number }> {
  const ids: string[] = [];
  const texts: string[] = [];
  let batches = 0;
  for await (const batch of store.stream<{ id: string }>('image', state, query)) {
    batches++;
    const own: string[] = [];
    for (const listed of batch.records) {
      ids.push(listed.record.id);
      own.push(listed.json ?? toJsonText(listed.record));
    }
    // The text a store keeps for a batch is its records' texts, comma-separated.
    if (batch.text) expect(Buffer.from(batch.text).toString('utf8')).toBe(own.join(','));
    texts.push(...own);
  }
  return { ids, texts, batches };
}

describe.each(stores)('the %s record store', (_, open) => {
  let store: RecordStore;
  beforeAll(async () => {
    store = await open();
  });

  test('a kind listed by a part (jobs: the wire record): get reads the whole, lists and filters the part, at version 0', async () => {
    const job = (id: string, status: string) => ({ id, status, job_type: 'create', arch: 'x86_64', image_root_archive_name: 'listed' });
    const state = (id: string, status: string, history: number) => ({ job: job(id, status), worker: 'w', input: { secret: 'x' }, stage: { name: 'build', token: 't' }, history: Array.from({ length: history }, (_, i) => ({ n: i })) });
    expect(await store.create('job', 'j1', state('j1', 'creating', 1), '00000000000000000500')).toBe(true);
    expect(await store.update('job', 'j1', 1, state('j1', 'creating', 2), 'live')).toBe(true);
    expect(await store.update('job', 'j1', 2, state('j1', 'building_image', 3), 'live')).toBe(true);
    expect(await store.get('job', 'j1')).toMatchObject({ record: state('j1', 'building_image', 3), version: 3 });
    const listed = await store.list('job', 'live', { slots: [undefined, 'job_type=create'] });
    expect(listed.items.map((i) => ({ record: i.record, version: i.version, state: i.state, order: i.order }))).toEqual([
      { record: { job: job('j1', 'building_image') }, version: 0, state: 'live', order: '00000000000000000500' },
    ]);
    expect((await store.list('job', 'live', { slots: ['status=building_image'] })).items.map((i) => i.record)).toEqual([{ job: job('j1', 'building_image') }]);
    expect((await store.list('job', 'live', { slots: ['status=creating'] })).items).toEqual([]);
    expect((await store.list('job', 'live', { name: 'listed' })).items).toHaveLength(1);
    expect(await store.remove('job', 'j1', 3)).toBe(true);
    expect((await store.list('job', 'live', { name: 'listed' })).items).toEqual([]);
  });

  test('a kind listed by a part, in a whole list: each record as the text of its part; gets still read the whole', async () => {
    const job = (id: string, status: string) => ({ image_root_archive_name: 'streamed', status, id, job_type: 'create', arch: 'x86_64', zz: 'ünï', aa: 1 });
    const state = (id: string, status: string) => ({ worker: 'w', job: job(id, status), input: { secret: 'x' }, stage: { name: 'build', token: 't' }, history: [{ n: 0 }] });
    const ids = ['s1', 's2', 's3'];
    for (const [i, id] of ids.entries()) expect(await store.create('job', id, state(id, 'creating'), `0000000000000000060${i}`)).toBe(true);
    const whole = async (query: ListQuery = {}) => {
      const texts: string[] = [];
      for await (const batch of store.stream<{ job: { id: string } }>('job', 'live', query)) {
        const own = batch.records.map((listed) => listed.json ?? toJsonText(listed.record));
        if (batch.text) expect(Buffer.from(batch.text).toString('utf8')).toBe(own.join(','));
        expect(batch.records.map((listed) => listed.record)).toEqual(own.map((text) => JSON.parse(text)));
        texts.push(...own);
      }
      return texts;
    };
    expect(await whole()).toEqual(ids.map((id) => toJsonText({ job: job(id, 'creating') })));
    expect(await whole({ slots: ['status=creating'] })).toEqual(ids.map((id) => toJsonText({ job: job(id, 'creating') })));
    // After a whole list (the memory store's block then holds the parts) a get is the whole record still.
    const got = await store.get('job', 's2');
    expect(got).toMatchObject({ record: state('s2', 'creating'), version: 1 });
    if (got?.json !== undefined) expect(got.json).toBe(toJsonText(state('s2', 'creating')));
    expect((await store.list('job', 'live', { limit: 2 })).items.map((i) => [i.json ?? toJsonText(i.record), i.version])).toEqual([
      [toJsonText({ job: job('s1', 'creating') }), 0],
      [toJsonText({ job: job('s2', 'creating') }), 0],
    ]);
    expect(await store.update('job', 's2', 1, state('s2', 'building_image'), 'live')).toBe(true);
    expect(await whole()).toEqual([toJsonText({ job: job('s1', 'creating') }), toJsonText({ job: job('s2', 'building_image') }), toJsonText({ job: job('s3', 'creating') })]);
    expect((await store.get('job', 's1'))?.record).toEqual(state('s1', 'creating'));
    expect((await store.get('job', 's2'))).toMatchObject({ record: state('s2', 'building_image'), version: 2 });
    for (const [id, version] of [['s1', 1], ['s2', 2], ['s3', 1]] as const) expect(await store.remove('job', id, version)).toBe(true);
    expect(await whole()).toEqual([]);
  });

  test('conditional writes: create once, update and remove only at the version read', async () => {
    const record = { ...image('a1', 'first'), ['__proto__']: 'kept', ['ünïcode 😀']: [1, { z: 1, a: null }] };
    expect(await store.create('image', 'a1', record, '00000000000000000100')).toBe(true);
    expect(await store.create('image', 'a1', image('a1', 'again'), '00000000000000000101')).toBe(false);
    const stored = await store.get<Record<string, unknown>>('image', 'a1');
    expect(stored).toMatchObject({ state: 'live', version: 1, order: '00000000000000000100' });
    expect(toJsonText(stored!.record)).toBe(toJsonText(record));
    expect(Object.hasOwn(stored!.record, '__proto__')).toBe(true);
    if (stored!.json !== undefined) expect(stored!.json).toBe(toJsonText(record));
    expect(await store.update('image', 'a1', 2, image('a1', 'stale'), 'live')).toBe(false);
    expect(await store.update('image', 'a1', 1, image('a1', 'second'), 'live')).toBe(true);
    expect(await store.update('image', 'a1', 1, image('a1', 'lost'), 'live')).toBe(false);
    expect(await store.get('image', 'a1')).toMatchObject({ record: { name: 'second' }, version: 2, order: '00000000000000000100' });
    expect(await store.update('image', 'missing', 1, image('missing', 'x'), 'live')).toBe(false);
    expect(await store.remove('image', 'a1', 1)).toBe(false);
    expect(await store.remove('image', 'a1', 2)).toBe(true);
    expect(await store.get('image', 'a1')).toBeUndefined();
    expect(await store.remove('image', 'a1', 2)).toBe(false);
    expect(await store.get('image', 'x'.repeat(3000))).toBeUndefined();
  });

  test('lists: creation order, pages that add up to the whole, filters combined, state changes move records', async () => {
    const names = ['delta', 'alpha', 'charlie', 'bravo', 'alpha', 'echo', 'alphabet', undefined];
    // Created out of order: lists follow the order key, not the time of the write.
    const ids = names.map((_, i) => `l${i}`);
    for (const i of [3, 0, 7, 5, 1, 6, 2, 4]) {
      const arch = i % 2 ? 'aarch64' : 'x86_64';
      expect(await store.create('image', ids[i], image(ids[i], names[i], arch, { team: i < 4 ? 'red' : 'blue', [`k${i}`]: 'v' }), `0000000000000000020${i}`)).toBe(true);
    }
    const whole = await store.list<{ id: string }>('image', 'live');
    expect(whole.items.map((s) => s.record.id)).toEqual(ids);
    expect(whole.cursor).toBeUndefined();
    for (const limit of [1, 3, 8]) expect((await allPages(store, 'live', {}, limit)).flat()).toEqual(ids);
    expect((await allPages(store, 'live', {}, 3)).length).toBe(3);

    // A whole list (stream) is the list's pages, whatever the filter.
    const query = async (q: ListQuery) => {
      const paged = (await allPages(store, 'live', q, 2)).flat();
      expect((await streamed(store, 'live', q)).ids).toEqual(paged);
      return paged;
    };
    expect(await query({ name: 'alpha' })).toEqual(['l1', 'l4']);
    expect(await query({ namePrefix: 'alpha' })).toEqual(['l1', 'l4', 'l6']);
    // A name-prefix query alone is in name order (then id); unnamed records are not in it.
    expect(await query({ namePrefix: '' })).toEqual(['l1', 'l4', 'l6', 'l3', 'l2', 'l0', 'l5']);
    expect(await query({ slots: ['arch=aarch64'] })).toEqual(['l1', 'l3', 'l5', 'l7']);
    expect(await query({ meta: { key: 'team', value: 'red' } })).toEqual(['l0', 'l1', 'l2', 'l3']);
    expect(await query({ meta: { key: 'k5', value: 'v' } })).toEqual(['l5']);
    expect(await query({ meta: { key: 'team', value: 'blue' }, namePrefix: 'alpha' })).toEqual(['l4', 'l6']);
    expect(await query({ slots: ['arch=x86_64'], meta: { key: 'team', value: 'blue' } })).toEqual(['l4', 'l6']);
    expect(await query({ slots: ['arch=x86_64'], name: 'alpha' })).toEqual(['l4']);
    expect(await query({ name: 'nobody' })).toEqual([]);

    const l2 = await store.get('image', 'l2');
    expect(await store.update('image', 'l2', l2!.version, image('l2', 'charlie', 'x86_64', { team: 'green' }), 'deleted')).toBe(true);
    expect(await query({})).toEqual(ids.filter((id) => id !== 'l2'));
    expect(await query({ meta: { key: 'team', value: 'red' } })).toEqual(['l0', 'l1', 'l3']);
    expect((await allPages(store, 'deleted', { meta: { key: 'team', value: 'green' } }, 5)).flat()).toEqual(['l2']);
    expect((await allPages(store, 'deleted', { namePrefix: 'c' }, 5)).flat()).toEqual(['l2']);
    expect(await store.update('image', 'l2', l2!.version + 1, image('l2', 'charlie', 'x86_64', { team: 'red' }), 'live')).toBe(true);
    expect(await query({ meta: { key: 'team', value: 'red' } })).toEqual(['l0', 'l1', 'l2', 'l3']);
    expect((await allPages(store, 'deleted', {}, 5)).flat()).toEqual([]);
  });

  test('a whole list of more than one batch: every record once, in order, each as its text in code point order', async () => {
    // Padded so that DynamoDB's pages (1 MB read a Query) are more than one too.
    const pad = 'p'.repeat(600);
    const count = 1_500;
    const ids = Array.from({ length: count }, (_, i) => `w${String(i).padStart(5, '0')}`);
    const wide = (i: number) => ({ ...image(ids[i], `wide-${i}`), zz: pad, aa: 'ünï' });
    for (let at = 0; at < count; at += 50) {
      await Promise.all(ids.slice(at, at + 50).map((id, i) => store.create('image', id, wide(at + i), `00000000000009${String(at + i).padStart(6, '0')}`)));
    }
    const byName = ids.map((id, i) => [`wide-${i}`, id]).sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, id]) => id);
    const named = await streamed(store, 'live', { namePrefix: 'wide-' });
    expect(named.ids).toEqual(byName);
    expect(named.batches).toBeGreaterThan(1);
    const all = await streamed(store, 'live');
    expect(all.batches).toBeGreaterThan(1);
    expect(all.ids.filter((id) => id.startsWith('w'))).toEqual(ids);
    const first = all.texts[all.ids.indexOf(ids[0])];
    expect(first).toBe(toJsonText(wide(0)));
    expect(first.indexOf('"aa"')).toBeLessThan(first.indexOf('"zz"'));
    // Changes after a whole list was read show in the next one: in place, moved out, added at the end.
    expect(await store.update('image', ids[3], 1, { ...wide(3), aa: 'changed' }, 'live')).toBe(true);
    expect(await store.update('image', ids[1200], 1, { ...wide(1200), aa: 'changed too' }, 'live')).toBe(true);
    expect(await store.update('image', ids[10], 1, wide(10), 'deleted')).toBe(true);
    expect(await store.create('image', 'w99999', { ...image('w99999', 'wide-last'), zz: pad, aa: 'ünï' }, '00000000000009999999')).toBe(true);
    const again = await streamed(store, 'live');
    const expected = all.ids.filter((id) => id !== ids[10]).concat('w99999');
    expect(again.ids).toEqual(expected);
    expect(again.texts[again.ids.indexOf(ids[3])]).toBe(toJsonText({ ...wide(3), aa: 'changed' }));
    expect(again.texts[again.ids.indexOf(ids[1200])]).toBe(toJsonText({ ...wide(1200), aa: 'changed too' }));
    expect(again.texts[again.ids.indexOf(ids[11])]).toBe(toJsonText(wide(11)));
  }, 60_000);

  test('names order by code point (as DynamoDB orders keys), whatever their UTF-16 form', async () => {
    const names = ['n\u{1F600}', 'n\uFF21', 'n\u00e9', 'nz'];
    for (const [i, name] of names.entries()) await store.create('image', `u${i}`, image(`u${i}`, name), `0000000000000000030${i}`);
    expect((await allPages(store, 'live', { namePrefix: 'n' }, 10)).flat()).toEqual(['u3', 'u2', 'u1', 'u0']);
  });

  test('a cursor works only for the query it was issued for', async () => {
    const page = await store.list('image', 'live', { limit: 1 });
    expect(page.cursor).toBeDefined();
    await expect(store.list('image', 'live', { namePrefix: 'a', cursor: page.cursor })).rejects.toBeInstanceOf(InvalidCursorError);
    await expect(store.list('image', 'live', { cursor: 'not a cursor' })).rejects.toBeInstanceOf(InvalidCursorError);
    await expect(store.list('image', 'live', { cursor: Buffer.from(JSON.stringify({ index: 'by-state', key: { listSk: 1 } })).toString('base64url') })).rejects.toBeInstanceOf(InvalidCursorError);
  });

  test('claims: one holder, its age, released only by it', async () => {
    expect(await store.claim('link', 's3://b/k', 'one')).toBeUndefined();
    expect(await store.claim('link', 's3://b/k', 'one')).toBeUndefined();
    const other = await store.claim('link', 's3://b/k', 'two');
    expect(other?.owner).toBe('one');
    expect(other!.ageMs).toBeGreaterThanOrEqual(0);
    expect(other!.ageMs).toBeLessThan(60_000);
    expect((await store.claimHolder('link', 's3://b/k'))?.owner).toBe('one');
    await store.release('link', 's3://b/k', 'two');
    expect((await store.claimHolder('link', 's3://b/k'))?.owner).toBe('one');
    await store.release('link', 's3://b/k', 'one');
    expect(await store.claimHolder('link', 's3://b/k')).toBeUndefined();
    expect(await store.claim('link', 's3://b/k', 'two')).toBeUndefined();
    expect(await store.claimHolder('other-scope', 's3://b/k')).toBeUndefined();
  });
});

describe('the memory store’s journal', () => {
  async function contents(store: RecordStore) {
    const live = await store.list<{ id: string }>('image', 'live');
    const deleted = await store.list<{ id: string }>('image', 'deleted');
    return { live: live.items.map((s) => [s.record, s.version, s.order]), deleted: deleted.items.map((s) => [s.record, s.version]), claim: (await store.claimHolder('s', 'v'))?.owner };
  }

  test('a store opened on the directory again has the same records, versions, states and claims', async () => {
    const dir = scratch();
    const first = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    for (let i = 0; i < 5; i++) await first.create('image', `j${i}`, image(`j${i}`, `name-${i}`), `0000000000000000040${i}`);
    await first.update('image', 'j1', 1, image('j1', 'renamed'), 'live');
    await first.update('image', 'j2', 1, image('j2', 'gone'), 'deleted');
    await first.remove('image', 'j3', 1);
    await first.claim('s', 'v', 'me');
    await first.claim('s', 'w', 'me');
    await first.release('s', 'w', 'me');
    const before = await contents(first);
    first.close();
    const again = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    expect(await contents(again)).toEqual(before);
    expect(before.live.map(([r]) => (r as { id: string }).id)).toEqual(['j0', 'j1', 'j4']);
    expect(await again.claimHolder('s', 'w')).toBeUndefined();
    expect((await again.list('image', 'live', { namePrefix: 'ren' })).items.length).toBe(1);
    again.close();
  });

  test('a whole list read back from the journal is byte for byte the one written', async () => {
    const dir = scratch();
    const first = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    const records = [
      { ...image('b0', 'plain'), metadata: { z: '1', a: '2' } },
      { ...image('b1', 'ünïcödé 😀 \u2028'), metadata: { ['__proto__']: 'kept', quote: '"\\"', 'k,"r":': ',"r":{' } },
      image('b2', undefined, 'aarch64'),
    ];
    for (const [i, r] of records.entries()) await first.create('image', r.id, r, `0000000000000000070${i}`);
    await first.update('image', 'b0', 1, { ...records[0], name: 'plain-2' }, 'live');
    await first.update('image', 'b2', 1, records[2], 'deleted');
    const text = async (store: RecordStore, state: RecordState, q: ListQuery = {}) => (await streamed(store, state, q)).texts.join(',');
    const before = [await text(first, 'live'), await text(first, 'deleted'), await text(first, 'live', { slots: ['arch=x86_64'] }), await text(first, 'live', { namePrefix: 'ü' })];
    first.close();
    const again = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    expect([await text(again, 'live'), await text(again, 'deleted'), await text(again, 'live', { slots: ['arch=x86_64'] }), await text(again, 'live', { namePrefix: 'ü' })]).toEqual(before);
    expect(before[0]).toBe([{ ...records[0], name: 'plain-2' }, records[1]].map(toJsonText).join(','));
    expect(before[3]).toBe(toJsonText(records[1]));
    again.close();
  });

  test('a torn last line is ignored, and the next change is not appended to it', async () => {
    const dir = scratch();
    const first = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    await first.create('image', 't0', image('t0', 'kept'), '00000000000000000500');
    first.close();
    appendFileSync(join(dir, 'records.jsonl'), '{"k":"image","i":"t1","s":"live","v":1,"o":"0000000000000000');
    const second = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    expect((await second.list<{ id: string }>('image', 'live')).items.map((s) => s.record.id)).toEqual(['t0']);
    await second.create('image', 't2', image('t2', 'after'), '00000000000000000502');
    second.close();
    const third = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    expect((await third.list<{ id: string }>('image', 'live')).items.map((s) => s.record.id)).toEqual(['t0', 't2']);
    third.close();
  });

  test('a damaged line before the last is an error, not a silent loss', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'records.jsonl'), '{"k":"image","i":"x","s":\n{"c":"s","x":"v","w":"me","t":1}\n');
    expect(() => new MemoryRecordStore(indexRecord, new RecordJournal(dir))).toThrow(/line 1 is not a change/);
  });

  test('a journal much longer than its records is rewritten with one line per record', async () => {
    const dir = scratch();
    const store = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    await store.create('image', 'c0', image('c0', 'busy'), '00000000000000000600');
    for (let v = 1; v <= 10_050; v++) expect(await store.update('image', 'c0', v, image('c0', `busy-${v}`), 'live')).toBe(true);
    const lines = readFileSync(join(dir, 'records.jsonl'), 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeLessThan(100);
    store.close();
    const again = new MemoryRecordStore(indexRecord, new RecordJournal(dir));
    expect(await again.get('image', 'c0')).toMatchObject({ version: 10_051, record: { name: 'busy-10050' } });
    again.close();
  });
});

describe('the DynamoDB store’s metadata index items', () => {
  test('a metadata item write from an older record version that arrives late does not replace the newer one', async () => {
    const table = `contract-${randomUUID().slice(0, 8)}`;
    await ensureTable(client, table);
    const store = new DynamoRecordStore(client, table, indexRecord);
    await store.create('image', 'm1', image('m1', 'late-index', 'x86_64', { team: 'red' }), '00000000000000000700');
    expect(await store.update('image', 'm1', 1, image('m1', 'late-index', 'x86_64', { team: 'green' }), 'live')).toBe(true);
    expect(await store.update('image', 'm1', 2, image('m1', 'late-index', 'x86_64', { team: 'blue' }), 'live')).toBe(true);
    // The index writes of version 2 (red → green), as a slower process would deliver them now.
    const late = store as unknown as { syncMeta(...args: unknown[]): Promise<void> };
    await late.syncMeta('image', 'm1', 'live', '00000000000000000700', { team: 'red' }, { team: 'green' }, 2);
    expect((await store.list<{ id: string }>('image', 'live', { meta: { key: 'team', value: 'blue' } })).items.map((s) => s.record.id)).toEqual(['m1']);
    expect((await store.list('image', 'live', { meta: { key: 'team', value: 'green' } })).items).toEqual([]);
  });
});

describe('the DynamoDB store’s record items', () => {
  test('the listed text in recText (a job: its wire record, its whole state in stateJson); older job items read and rewritten so', async () => {
    const table = `contract-${randomUUID().slice(0, 8)}`;
    await ensureTable(client, table);
    const store = new DynamoRecordStore(client, table, indexRecord);
    const doc = DynamoDBDocumentClient.from(client);
    const item = async (pk: string) => (await doc.send(new GetCommand({ TableName: table, Key: { pk } }))).Item!;
    const job = { status: 'creating', id: 'j1', job_type: 'create', arch: 'x86_64', image_root_archive_name: 'j' };
    const state = { stage: { name: 'build' }, job, history: [] };
    expect(await store.create('job', 'j1', state, '00000000000000000901')).toBe(true);
    expect(await store.create('image', 'i1', image('i1', 'one'), '00000000000000000902')).toBe(true);
    const written = await item('job#j1');
    expect(written).toMatchObject({ recText: toJsonText({ job }), stateJson: JSON.stringify(state), version: 1 });
    expect(Object.keys(written).filter((k) => k.startsWith('rec') || k === 'listVersion')).toEqual(['recText']);
    expect(await item('image#i1')).toMatchObject({ recText: toJsonText(image('i1', 'one')), listVersion: 1 });
    expect(Object.keys(await item('image#i1'))).not.toContain('stateJson');
    // A job item as it was written before its text was kept in code point order.
    const older = { stage: { name: 'older' }, job: { ...job, id: 'j0' }, history: [] };
    await doc.send(
      new PutCommand({
        TableName: table,
        Item: { pk: 'job#j0', kind: 'job', id: 'j0', state: 'live', version: 4, order: '00000000000000000900', listPk: 'job#live', listSk: '00000000000000000900#j0', recJson: JSON.stringify({ job: older.job }), stateJson: JSON.stringify(older) },
      }),
    );
    expect(await store.get('job', 'j0')).toMatchObject({ record: older, version: 4 });
    expect((await store.get('job', 'j0'))?.json).toBeUndefined();
    expect((await store.list('job', 'live')).items.map((i) => [i.record, i.version])).toEqual([
      [{ job: older.job }, 0],
      [{ job }, 0],
    ]);
    const texts: string[] = [];
    for await (const batch of store.stream('job', 'live')) texts.push(...batch.records.map((listed) => listed.json ?? toJsonText(listed.record)));
    expect(texts).toEqual([toJsonText({ job: older.job }), toJsonText({ job })]);
    expect(await store.update('job', 'j0', 4, { ...older, stage: { name: 'newer' } }, 'live')).toBe(true);
    const rewritten = await item('job#j0');
    expect(Object.keys(rewritten).filter((k) => k.startsWith('rec'))).toEqual(['recText']);
    expect(rewritten).toMatchObject({ recText: toJsonText({ job: older.job }), stateJson: JSON.stringify({ ...older, stage: { name: 'newer' } }), version: 5 });
  });
});

describe('the DynamoDB store’s items of older versions', () => {
  test('items of older versions (the record as JSON.stringify wrote it, or as a map) are read, listed in code point order, and rewritten in the current form', async () => {
    const table = `contract-${randomUUID().slice(0, 8)}`;
    await ensureTable(client, table);
    const store = new DynamoRecordStore(client, table, indexRecord);
    const doc = DynamoDBDocumentClient.from(client);
    const old = (id: string, order: string) => ({ pk: `image#${id}`, kind: 'image', id, state: 'live', version: 1, order, listPk: 'image#live', listSk: `${order}#${id}` });
    const first = { name: 'text', id: 'o1', metadata: { z: '1', a: '2' }, arch: 'x86_64' };
    const second = { name: 'map', id: 'o2', arch: 'x86_64' };
    await doc.send(new PutCommand({ TableName: table, Item: { ...old('o1', '00000000000000000801'), recJson: JSON.stringify(first) } }));
    await doc.send(new PutCommand({ TableName: table, Item: { ...old('o2', '00000000000000000802'), rec: second } }));
    expect((await streamed(store, 'live')).texts).toEqual([toJsonText(first), toJsonText(second)]);
    expect((await store.get('image', 'o1'))?.record).toEqual(first);
    expect((await store.list<{ id: string }>('image', 'live')).items.map((s) => s.record)).toEqual([first, second]);
    for (const [id, record] of [['o1', first], ['o2', second]] as const) {
      expect(await store.update('image', id, 1, { ...record, name: `${record.name}-2` }, 'live')).toBe(true);
      const { Item } = await doc.send(new GetCommand({ TableName: table, Key: { pk: `image#${id}` } }));
      expect(Object.keys(Item!).filter((k) => k.startsWith('rec'))).toEqual(['recText']);
      expect(Item!.recText).toBe(toJsonText({ ...record, name: `${record.name}-2` }));
    }
    expect((await streamed(store, 'live')).texts).toEqual([toJsonText({ ...first, name: 'text-2' }), toJsonText({ ...second, name: 'map-2' })]);
  });
});
