/**
 * What a whole list costs DynamoDB as deployed: the DynamoDB store on dynalite (in the bench's
 * process) with `count` images as the API writes them, read whole the way the list route did
 * (pages of 1,000 through `list`, as the cursor of each names the next) and the way it does now
 * (`stream`: Queries without a Limit asking only for the record's text, which is written as it
 * is). The calls are counted on the client, with the bytes of their answers; the time includes
 * making the list's text. Part of `npm run bench` (BENCH_PARTS=dynamolist).
 */
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

export async function benchDynamoList(count: number) {
  const [{ default: dynalite }, { DynamoDBClient }, { DynamoRecordStore }, { ensureTable }, { indexRecord }, { streamRecords }, { toJsonText }] = await Promise.all([
    import('dynalite'),
    import('@aws-sdk/client-dynamodb'),
    import('#shared/store/dynamo-record-store.js'),
    import('#shared/store/ensure-table.js'),
    import('#shared/domain/record-index.js'),
    import('#shared/domain/lifecycle.js'),
    import('#shared/domain/json-text.js'),
  ]);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((ok) => db.listen(0, '127.0.0.1', () => ok()));
  const client = new DynamoDBClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${(db.address() as AddressInfo).port}`, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const calls = { queries: 0, bytes: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (context.commandName === 'QueryCommand') {
        calls.queries++;
        calls.bytes += Number((out.response as { headers?: Record<string, string> }).headers?.['content-length'] ?? 0);
      }
      return out;
    },
    { step: 'deserialize', name: 'countQueries' },
  );
  try {
    await ensureTable(client, 'ims-bench-list');
    const store = new DynamoRecordStore(client, 'ims-bench-list', indexRecord);
    let next = 0;
    const base = Date.now() * 1000;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < count; i = next++) {
          const id = randomUUID();
          const record = { arch: 'x86_64', created: new Date().toISOString(), id, link: null, metadata: { team: 'bench' }, name: `img-${i}` };
          await store.create('image', id, record, String(base + i).padStart(20, '0'));
        }
      }),
    );
    const measure = async (read: () => Promise<number>) => {
      calls.queries = 0;
      calls.bytes = 0;
      const started = performance.now();
      const records = await read();
      return { records, queries: calls.queries, kib: Math.round(calls.bytes / 1024), ms: Number((performance.now() - started).toFixed(1)) };
    };
    const paged = await measure(async () => {
      let n = 0;
      let cursor: string | undefined;
      do {
        const page = await store.list('image', 'live', { cursor });
        // As the list route made its text then: each record parsed and written again.
        n += page.items.map((stored) => toJsonText(stored.record)).join(',').length > 0 ? page.items.length : 0;
        cursor = page.cursor;
      } while (cursor);
      return n;
    });
    const streamed = await measure(async () => {
      let n = 0;
      for await (const batch of streamRecords(store, 'image', 'live', {})) n += batch.records.map((listed) => listed.json ?? toJsonText(listed.record)).join(',').length > 0 ? batch.records.length : 0;
      return n;
    });
    process.stderr.write(`dynamodb whole list of ${count}: paged ${paged.queries} Queries ${paged.kib} KiB, streamed ${streamed.queries} Queries ${streamed.kib} KiB\n`);
    return { count, paged, streamed };
  } finally {
    client.destroy();
    await new Promise<void>((r) => db.close(() => r()));
  }
}
