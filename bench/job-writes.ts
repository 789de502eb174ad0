/**
 * What a running job writes to DynamoDB: the embedded runtime on dynalite, reached through a
 * counting proxy, runs one create job whose build waits an hour of virtual time, with the
 * reconciler's pass once a (virtual) minute as deployed. For every write the proxy reads the item
 * before and after it and prices it as DynamoDB on-demand does: a write unit per started KB of
 * the larger item version on the table, and per started KB of the projected item on each index
 * the write changes (two when the item moves between index keys). Reported: the writes and write
 * units of the job's waiting hour (from its first reconciler pass in build to the 60th after it),
 * those of the job's whole life, and the job item's size at the end. Part of `npm run bench`
 * (BENCH_PARTS=jobwrites).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TimedWorker } from '../test/helpers/timed-worker.js';
import { embeddedPart } from './embedded-part.js';

const HOUR = 3600;

type AttributeValue = { S?: string; N?: string; B?: string; BOOL?: boolean; NULL?: boolean; L?: AttributeValue[]; M?: Record<string, AttributeValue>; SS?: string[]; NS?: string[]; BS?: string[] };
type RawItem = Record<string, AttributeValue>;

/** DynamoDB's item size: attribute names plus values (numbers about a byte per two digits). */
function valueSize(v: AttributeValue): number {
  if (v.S !== undefined) return Buffer.byteLength(v.S);
  if (v.N !== undefined) return Math.ceil(v.N.replace(/^-|\.|^0+/g, '').length / 2) + 1;
  if (v.B !== undefined) return Buffer.from(v.B, 'base64').length;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.L) return 3 + v.L.reduce((n, e) => n + 1 + valueSize(e), 0);
  if (v.M) return 3 + Object.entries(v.M).reduce((n, [k, e]) => n + 1 + Buffer.byteLength(k) + valueSize(e), 0);
  if (v.SS) return v.SS.reduce((n, e) => n + Buffer.byteLength(e), 0);
  if (v.NS) return v.NS.reduce((n, e) => n + e.length, 0);
  if (v.BS) return v.BS.reduce((n, e) => n + Buffer.from(e, 'base64').length, 0);
  return 0;
}
const itemSize = (item: RawItem): number => Object.entries(item).reduce((n, [k, v]) => n + Buffer.byteLength(k) + valueSize(v), 0);
const units = (bytes: number): number => Math.max(1, Math.ceil(bytes / 1024));

interface IndexDesign {
  IndexName: string;
  KeySchema: readonly { AttributeName: string }[];
  Projection: { ProjectionType: string; NonKeyAttributes?: readonly string[] };
}

/** The item as an index holds it, or undefined when the item is not in the index. */
function projected(index: IndexDesign, item: RawItem | undefined, tableKeys: string[]): RawItem | undefined {
  if (!item || !index.KeySchema.every((k) => item[k.AttributeName] !== undefined)) return undefined;
  if (index.Projection.ProjectionType === 'ALL') return item;
  const names = new Set([...tableKeys, ...index.KeySchema.map((k) => k.AttributeName), ...(index.Projection.NonKeyAttributes ?? [])]);
  return Object.fromEntries(Object.entries(item).filter(([k]) => names.has(k)));
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export interface WriteCount {
  writes: number;
  tableUnits: number;
  indexUnits: number;
  /** Writes per kind of item: the part of its key before the first '#'. */
  byItem: Record<string, number>;
}

class CountingProxy {
  readonly count: WriteCount = { writes: 0, tableUnits: 0, indexUnits: 0, byItem: {} };
  private server?: http.Server;
  url = '';

  constructor(
    private readonly target: string,
    private readonly indexes: readonly IndexDesign[],
  ) {}

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  snapshot(): WriteCount {
    return structuredClone(this.count);
  }

  private async call(target: string, body: unknown, headers: http.IncomingHttpHeaders): Promise<{ status: number; text: string }> {
    const response = await fetch(this.target, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': target, authorization: String(headers.authorization ?? 'AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x'), 'x-amz-date': String(headers['x-amz-date'] ?? '20260101T000000Z') },
      body: JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  }

  async item(table: string, key: RawItem, headers: http.IncomingHttpHeaders): Promise<RawItem | undefined> {
    const { text } = await this.call('DynamoDB_20120810.GetItem', { TableName: table, Key: key, ConsistentRead: true }, headers);
    return (JSON.parse(text) as { Item?: RawItem }).Item;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.split('.')[1] ?? '';
    const body = text ? (JSON.parse(text) as { TableName: string; Key?: RawItem; Item?: RawItem }) : undefined;
    const write = body && ['PutItem', 'UpdateItem', 'DeleteItem'].includes(op);
    const key = write ? (body.Key ?? { pk: body.Item!.pk! }) : undefined;
    const before = write ? await this.item(body.TableName, key!, req.headers) : undefined;
    const answer = await this.call(target, body, req.headers);
    if (write && answer.status === 200) {
      const after = op === 'DeleteItem' ? undefined : await this.item(body.TableName, key!, req.headers);
      this.price(before, after, key!.pk?.S ?? '');
    }
    res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(answer.text);
  }

  private price(before: RawItem | undefined, after: RawItem | undefined, pk: string): void {
    if (same(before, after)) return;
    this.count.writes++;
    const kind = pk.split('#')[0] ?? '';
    this.count.byItem[kind] = (this.count.byItem[kind] ?? 0) + 1;
    this.count.tableUnits += units(Math.max(before ? itemSize(before) : 0, after ? itemSize(after) : 0));
    for (const index of this.indexes) {
      const old = projected(index, before, ['pk']);
      const now = projected(index, after, ['pk']);
      if (same(old, now)) continue;
      const keysMoved = old && now && index.KeySchema.some((k) => !same(old[k.AttributeName], now[k.AttributeName]));
      if (keysMoved) this.count.indexUnits += units(itemSize(old)) + units(itemSize(now));
      else this.count.indexUnits += units(itemSize((now ?? old)!));
    }
  }
}

const minus = (a: WriteCount, b: WriteCount): WriteCount => ({
  writes: a.writes - b.writes,
  tableUnits: a.tableUnits - b.tableUnits,
  indexUnits: a.indexUnits - b.indexUnits,
  byItem: Object.fromEntries(Object.entries(a.byItem).map(([k, v]) => [k, v - (b.byItem[k] ?? 0)]).filter(([, v]) => (v as number) > 0)),
});

/**
 * The same job measured by this bench on the design before: the check lease written into the job
 * item and given back (two writes of the whole item a minute, each copied into the six indexes
 * that project every attribute), the whole history inline.
 */
const BEFORE = {
  job: 'create, build waits 1 h (the earlier design: lease in the job item)',
  perRunningHour: { writes: 123, writeUnits: 2586, tableUnits: 369, indexUnits: 2217 },
  wholeJob: { writes: 145, writeUnits: 3046, tableUnits: 434, indexUnits: 2612 },
  jobItemBytes: 3505,
};

/** A worker that says which looks only read, as the kubernetes worker does past prepare. */
class ReadingTimedWorker extends TimedWorker {
  readsOnly(stage: string): boolean {
    return stage !== 'prepare';
  }
}

export async function benchJobWrites(): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [BEFORE];
  rows.push(await measure(false));
  rows.push(await measure(true));
  return rows;
}

async function measure(readsOnly: boolean): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ims-bench-jobwrites-'));
  const { default: dynalite } = await import('dynalite');
  const db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((r) => db.listen(0, '127.0.0.1', () => r()));
  const { tableKeySchema } = await import('../shared/store/table-design.js');
  const proxy = new CountingProxy(`http://127.0.0.1:${(db.address() as AddressInfo).port}`, tableKeySchema.GlobalSecondaryIndexes);
  await proxy.start();
  let now = Date.parse('2026-12-01T00:00:00Z');
  const { startEmbedded, PutObjectCommand, s3Client } = await embeddedPart({
    IMS_JOB_WORKER: 'timed',
    TABLE_NAME: 'ims-bench-jobwrites',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    IMS_STAGE_TIMEOUT_BUILD: String(5 * HOUR),
    DYNAMODB_ENDPOINT: proxy.url,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'bench',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'bench',
  });
  const svc = await startEmbedded({
    workers: { timed: () => worker },
    port: 0,
    s3Port: 0,
    scratchDir: join(dir, 's3'),
    reconcileMs: 0,
    workflow: { clock: { nowMs: () => now }, retryMs: 1 },
  });
  const s3 = s3Client();
  const put = async (bucket: string, key: string, body: string, metadata: Record<string, string> = {}) => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
  };
  const worker = new (readsOnly ? ReadingTimedWorker : TimedWorker)({ wait1h: { seconds: { build: HOUR } } }, () => now, put);
  const call = async (method: string, path: string, body?: unknown) =>
    (await fetch(`${svc.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })).json() as Promise<any>;
  await put('ims', 'recipes/b/recipe.tgz', 'x');
  const recipe = await call('POST', '/v3/recipes', { name: 'b', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/b/recipe.tgz', type: 's3' } });
  const key = await call('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' });
  const start = proxy.snapshot();
  const job = await call('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipe.id, public_key_id: key.id, image_root_archive_name: 'wait1h' });
  let hourStart: WriteCount | undefined;
  let hour: WriteCount | undefined;
  let passes = 0;
  let status = '';
  for (let t = 0; t <= 3 * HOUR; t += 60) {
    now += 60_000;
    await svc.reconcile();
    await new Promise((r) => setTimeout(r, 2));
    const history = await call('GET', `/v3/jobs/${job.id}/history`);
    status = history.status;
    if (!hourStart && history.stage === 'build') hourStart = proxy.snapshot();
    else if (hourStart && !hour && ++passes === 60) hour = minus(proxy.snapshot(), hourStart);
    if (status === 'success' || status === 'error') break;
  }
  await svc.workflow.drain();
  const life = minus(proxy.snapshot(), start);
  const jobItem = await proxy.item('ims-bench-jobwrites', { pk: { S: `job#${job.id}` } }, {});
  const jobItemBytes = jobItem ? itemSize(jobItem) : 0;
  await svc.stop();
  await proxy.stop();
  await new Promise<void>((r) => db.close(() => r()));
  delete process.env.DYNAMODB_ENDPOINT;
  rmSync(dir, { recursive: true, force: true });
  if (!hour) throw new Error(`the job did not wait an hour in build (status ${status})`);
  return {
    job: readsOnly ? 'create, build waits 1 h, a worker whose looks only read (kubernetes)' : 'create, build waits 1 h, a worker checked under the lease (local, remote-node)',
    status,
    perRunningHour: { writes: hour.writes, writeUnits: hour.tableUnits + hour.indexUnits, tableUnits: hour.tableUnits, indexUnits: hour.indexUnits, byItem: hour.byItem },
    wholeJob: { writes: life.writes, writeUnits: life.tableUnits + life.indexUnits, tableUnits: life.tableUnits, indexUnits: life.indexUnits, byItem: life.byItem },
    jobItemBytes,
  };
}

/** The part's section of bench/results.md. */
export function jobWritesMarkdown(rows: Record<string, any>[]): string[] {
  const lines = [
    '## DynamoDB writes of a running job (dynalite, virtual time)',
    '',
    "One create job whose build waits an hour, the reconciler once a (virtual) minute. Write units as DynamoDB on-demand bills them: per started KB of the item on the table, and of the projected item on each index a write changes. Per running hour: the job's hour in build; whole job: creation to cleanup. The first row is the design before (the check lease in the job item, every index projecting every attribute, the whole history inline).",
    '',
    '| job | per running hour: writes | write units (table + indexes) | whole job: writes | write units | job item bytes |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const h = r.perRunningHour;
    const w = r.wholeJob;
    lines.push(`| ${r.job} | ${h.writes} | ${h.writeUnits} (${h.tableUnits} + ${h.indexUnits}) | ${w.writes} | ${w.writeUnits} (${w.tableUnits} + ${w.indexUnits}) | ${r.jobItemBytes} |`);
  }
  lines.push('');
  return lines;
}
