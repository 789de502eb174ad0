/**
 * `npm run bench`: starts the embedded server in its own process, loads it, and writes
 * bench/results.md and bench/results.json. Not a test: it measures, it does not pass or fail.
 *
 *   BENCH_LEVELS=1000,10000,100000   record counts to measure at (default all three)
 *   BENCH_PARTS=records,listprofile,dynamolist,deployedlist,cold,artifacts,jobs,jobcost,changereport,softdelete,jobwrites,joblatency
 *                                    (and joblatencyremote: podman and sshd on this host)
 *   BENCH_ARTIFACT_MIB=1024          size of the image root for the artifact part
 *   BENCH_PROFILE_RECORDS=10000      images of the whole list the listprofile part profiles
 *   BENCH_SERVER_NODE_OPTIONS=...    node options of the server (default: those of `npm start`)
 *   BENCH_PORT=18180                 the server's port (its S3 the next one; default: ports of the system's choosing), BENCH_SERVER_PORT also
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, createReadStream } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { changeReportMarkdown } from './change-report.js';
import { jobWritesMarkdown } from './job-writes.js';
import { remoteLatencyTable } from './job-latency-remote-table.js';
import { joblatencyMarkdown } from './joblatency.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const tmp = join(root, 'bench/tmp');
const levels = (process.env.BENCH_LEVELS ?? '1000,10000,100000').split(',').map(Number);
/** Ports of the system's choosing (other servers, another bench, may run on this machine) unless the run names one. */
const SERVER_PORT = Number(process.env.BENCH_PORT || process.env.BENCH_SERVER_PORT || 0);
const parts = new Set((process.env.BENCH_PARTS ?? 'records,listprofile,dynamolist,deployedlist,cold,artifacts,jobs,jobcost,changereport,softdelete,jobwrites,joblatency').split(','));
const artifactMiB = Number(process.env.BENCH_ARTIFACT_MIB ?? 1024);

interface Server {
  proc: ChildProcess;
  url: string;
  s3: string;
  /** Absent when the server keeps records in its memory store. */
  dynamo?: string;
}

function startNodeOptions(): string {
  const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const match = /NODE_OPTIONS='([^']*)'/.exec(scripts.start);
  if (!match) throw new Error('package.json scripts.start sets no NODE_OPTIONS');
  return match[1];
}

const serverNodeOptions = () => process.env.BENCH_SERVER_NODE_OPTIONS ?? startNodeOptions();

/** The server of `npm start` on the bench's own data directory (`second`: another one, for a server beside it). */
async function startServer(options: { nodeArgs?: string[]; keepData?: boolean; second?: boolean } = {}): Promise<Server> {
  const data = join(tmp, options.second ? 'data-2' : 'data');
  if (!options.keepData) rmSync(data, { recursive: true, force: true });
  // What `npm start` runs: the sources compiled to dist/local, then plain node (no tsx loader).
  execFileSync(process.execPath, ['scripts/build-local.mjs'], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' }, stdio: 'inherit' });
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), 'dist/local/infra/local/main.js'], {
    cwd: root,
    env: {
      ...process.env,
      // The node options of `npm start` (read from package.json), unless the run says otherwise.
      NODE_OPTIONS: serverNodeOptions(),
      IMS_DATA_DIR: data,
      // `npm start` sweeps its work root of unknown jobs' work at start: the bench's own, never the host's.
      IMS_WORK_ROOT: join(tmp, 'jobs'),
      // A second server beside the first takes the two ports after the first's.
      PORT: SERVER_PORT ? String(SERVER_PORT + (options.second ? 2 : 0)) : '0',
      S3_PORT: SERVER_PORT ? String(SERVER_PORT + 1 + (options.second ? 2 : 0)) : '0',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"IMS is listening"'));
      if (line) {
        const info = JSON.parse(line);
        resolve({ proc, url: info.url, s3: info.s3Endpoint, dynamo: info.dynamoEndpoint });
      }
    });
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

/** Fields of /proc/<pid>/status in MiB, from one read. */
function statusMiB(pid: number, ...fields: string[]): number[] {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return fields.map((field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024);
}

/** The kernel's high-water mark of the server's resident set (VmHWM). */
const peakRssMiB = (pid: number) => statusMiB(pid, 'VmHWM')[0];

/** The processes the server started, and theirs (from /proc/<pid>/task/<tid>/children). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const visit = (parent: number) => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return; // gone meanwhile
    }
    for (const tid of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of children.split(' ').filter(Boolean).map(Number)) {
        out.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return out;
}

/**
 * What the resident set is made of, sampled every 200 ms: anonymous memory (heaps, buffers: what
 * the process holds) and file-backed pages (the node binary, and the embedded LevelDB's
 * memory-mapped table files, which grow with the database and which the kernel can drop); and
 * the resident sets of the server's child processes, if any, which the peak counts too.
 */
function sampleRss(pid: number) {
  const peak = { anon: 0, file: 0, children: 0, tree: 0 };
  const timer = setInterval(() => {
    try {
      const [anon, file, rss] = statusMiB(pid, 'RssAnon', 'RssFile', 'VmRSS');
      let children = 0;
      for (const child of descendants(pid)) {
        try {
          children += statusMiB(child, 'VmRSS')[0];
        } catch {
          // ended between the listing and the read
        }
      }
      peak.anon = Math.max(peak.anon, anon);
      peak.file = Math.max(peak.file, file);
      peak.children = Math.max(peak.children, children);
      peak.tree = Math.max(peak.tree, rss + children);
    } catch {
      // the server is gone; the run fails elsewhere
    }
  }, 200);
  return { peak, stop: () => clearInterval(timer) };
}

interface Measure {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Server CPU time (user + system) per request, ms, when measured. */
  cpuMs?: number;
}

/** CPU time (user + system) the process has used, ms, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuTimeMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** `load`, with the server's CPU time per request. */
async function loadWithCpu(pid: number, concurrency: number, count: number, one: (i: number) => Promise<boolean>): Promise<Measure> {
  const before = cpuTimeMs(pid);
  const measure = await load(concurrency, count, one);
  return { ...measure, cpuMs: Number(((cpuTimeMs(pid) - before) / count).toFixed(3)) };
}

/**
 * The contention race of the issue: `writers` clients each set `keys` distinct metadata keys on
 * ONE image, one request after another. Lost = keys missing afterwards; 5xx = answers ≥ 500.
 */
async function metadataRace(server: Server, writers: number, keys: number) {
  const res = await call(`${server.url}/v3/images`, 'POST', { name: 'race', metadata: {} });
  const id = ((await res.json()) as { id: string }).id;
  const latencies: number[] = [];
  let serverErrors = 0;
  let otherErrors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let k = 0; k < keys; k++) {
        const t = performance.now();
        const answer = await call(`${server.url}/v3/images/${id}`, 'PATCH', { metadata: { operation: 'set', key: `w${w}-k${k}`, value: String(k) } });
        await answer.arrayBuffer();
        latencies.push(performance.now() - t);
        if (answer.status >= 500) serverErrors++;
        else if (answer.status !== 200) otherErrors++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const final = (await (await call(`${server.url}/v3/images/${id}`, 'GET')).json()) as { metadata: Record<string, string> };
  let lost = 0;
  for (let w = 0; w < writers; w++) for (let k = 0; k < keys; k++) if (final.metadata[`w${w}-k${k}`] !== String(k)) lost++;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => Number(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2));
  return { writers, keys, changes: writers * keys, kept: writers * keys - lost, lost, serverErrors, otherErrors, seconds: Number(seconds.toFixed(2)), p50: q(0.5), p99: q(0.99) };
}

async function load(concurrency: number, count: number, one: (i: number) => Promise<boolean>): Promise<Measure> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t = performance.now();
        if (!(await one(i))) errors++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => Number(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2));
  return { requests: count, seconds: Number(seconds.toFixed(2)), rps: Math.round(count / seconds), p50: q(0.5), p99: q(0.99), errors };
}

async function call(url: string, method: string, body?: unknown): Promise<Response> {
  return fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
}

async function benchRecords(server: Server) {
  const ids: string[] = [];
  const rows: Record<string, unknown>[] = [];
  const create = async () => {
    const res = await call(`${server.url}/v3/images`, 'POST', { name: `img-${ids.length}`, arch: 'x86_64', metadata: { team: 'bench' } });
    if (res.status !== 201) return false;
    ids.push(((await res.json()) as { id: string }).id);
    return true;
  };
  const rssParts = sampleRss(server.proc.pid!);
  for (const level of levels) {
    // Fill up to just under the level with concurrency 16, then measure creates that reach it.
    const fill = level - ids.length - 1200;
    if (fill > 0) await load(16, fill, create);
    const measured: Record<string, Measure> = {};
    measured['create c=1'] = await load(1, 200, create);
    measured['create c=16'] = await load(16, Math.max(0, level - ids.length), create);
    const pick = () => ids[Math.floor(Math.random() * ids.length)];
    const get = async () => (await call(`${server.url}/v3/images/${pick()}`, 'GET')).status === 200;
    const patch = async (i: number) =>
      (await call(`${server.url}/v3/images/${pick()}`, 'PATCH', { metadata: { operation: 'set', key: 'k', value: String(i) } })).status === 200;
    let cursorUrl: string | undefined;
    const page = async () => {
      const res = await call(`${server.url}${cursorUrl ?? '/v3/images?limit=100'}`, 'GET');
      const link = res.headers.get('link');
      cursorUrl = link ? /<([^>]+)>/.exec(link)![1] : undefined;
      await res.arrayBuffer();
      return res.status === 200;
    };
    const pid = server.proc.pid!;
    const whole = async () => {
      const res = await call(`${server.url}/v3/images`, 'GET');
      const bytes = (await res.arrayBuffer()).byteLength;
      return res.status === 200 && bytes > level * 50;
    };
    measured['get c=1'] = await loadWithCpu(pid, 1, 500, get);
    measured['get c=16'] = await load(16, 2000, get);
    measured['patch c=1'] = await loadWithCpu(pid, 1, 300, patch);
    measured['patch c=16'] = await load(16, 1000, patch);
    cursorUrl = undefined;
    measured['list page of 100 c=1'] = await load(1, 100, page);
    cursorUrl = undefined;
    measured['list page of 100 c=16'] = await load(16, 160, page);
    measured['whole list (unpaginated) c=1'] = await loadWithCpu(pid, 1, level >= 100_000 ? 5 : level >= 10_000 ? 20 : 50, whole);
    // The create c=1 row measured POST's latency; its CPU cost alone:
    measured['create c=1 (CPU)'] = await loadWithCpu(pid, 1, 100, create);
    // The kernel's peak of the server, or the sampled peak of the server with its children when higher.
    const rss = Math.max(peakRssMiB(server.proc.pid!), rssParts.peak.tree);
    for (const [op, m] of Object.entries(measured)) rows.push({ level, op, ...m });
    const race = await metadataRace(server, 16, 20);
    rows.push({ level, op: 'race: 16 writers × 20 metadata keys on one image', race });
    process.stderr.write(`race at ${level}: ${race.kept}/${race.changes} kept, ${race.lost} lost, ${race.serverErrors} × 5xx, p99 ${race.p99} ms\n`);
    rows.push({ level, op: 'server peak RSS (MiB)', value: Number(rss.toFixed(1)) });
    rows.push({ level, op: '  of it at most: anonymous memory (MiB)', value: Number(rssParts.peak.anon.toFixed(1)) });
    rows.push({ level, op: '  of it at most: file-backed pages (MiB)', value: Number(rssParts.peak.file.toFixed(1)) });
    rows.push({ level, op: '  of it at most: child processes (MiB)', value: Number(rssParts.peak.children.toFixed(1)) });
    process.stderr.write(
      `records at ${level}: get p50 ${measured['get c=1'].p50} ms, patch p50 ${measured['patch c=1'].p50} ms, RSS ${rss.toFixed(0)} MiB (anonymous ≤ ${rssParts.peak.anon.toFixed(0)}, file-backed ≤ ${rssParts.peak.file.toFixed(0)})\n`,
    );
  }
  rssParts.stop();
  return rows;
}

const HANDLERS = [
  ...readdirSync(join(root, 'functions/api')).map((f) => `functions/api/${f}`),
  ...readdirSync(join(root, 'functions/workflow')).map((f) => `functions/workflow/${f}`),
  ...readdirSync(join(root, 'functions/events')).map((f) => `functions/events/${f}`),
];

function sampleEvent(file: string): unknown {
  const name = basename(file, '.ts');
  if (file.startsWith('functions/events/')) return { Records: [] };
  if (file.startsWith('functions/workflow/')) return name === 'cleanup' ? { jobId: 'no-such-job', outcome: 'success' } : { jobId: 'no-such-job' };
  const path = { service: '/healthz/ready', 'public-keys': '/v3/public-keys?limit=10', recipes: '/v3/recipes?limit=10', images: '/v3/images?limit=10', deleted: '/v3/deleted/images?limit=10', 'remote-build-nodes': '/v3/remote-build-nodes', jobs: '/v3/jobs?limit=10' }[name] ?? '/healthz/live';
  const [rawPath, rawQueryString = ''] = path.split('?');
  return { version: '2.0', routeKey: '$default', rawPath, rawQueryString, headers: {}, requestContext: { http: { method: 'GET', path: rawPath } }, isBase64Encoded: false };
}

/**
 * The handler bundles exactly as the stack deploys them: each handler through ImsFunction in a
 * throw-away CDK app, so the esbuild settings, the SDK inside and the lazily loaded libraries
 * beside the bundle are the deployed ones.
 */
async function synthBundles(): Promise<Map<string, string>> {
  const [{ App, Stack }, { Template }, { ImsFunction }] = await Promise.all([import('aws-cdk-lib'), import('aws-cdk-lib/assertions'), import('#infra/constructs/ims-function.js')]);
  const outdir = join(tmp, 'bundles');
  rmSync(outdir, { recursive: true, force: true });
  const cdkJson = JSON.parse(readFileSync(join(root, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const app = new App({ outdir, context: cdkJson.context });
  const stack = new Stack(app, 'BenchBundles');
  const fns = HANDLERS.map((file, i) => [file, new ImsFunction(stack, `F${i}`, { entry: file, kind: file.startsWith('functions/api/') ? 'api' : 'workflow', description: file })] as const);
  const resources = Template.fromStack(stack).toJSON().Resources as Record<string, { Properties: { Code: { S3Key: string } } }>;
  return new Map(
    fns.map(([file, f]) => [file, join(outdir, `asset.${resources[stack.getLogicalId(f.fn.node.defaultChild as never)].Properties.Code.S3Key.replace(/\.zip$/, '')}`)]),
  );
}

/**
 * Median of three fresh processes: milliseconds from process start to the end of `script`. One
 * untimed run goes first, so that the embedded server's own first query of an index (not the
 * handler's start) is not counted: the first handler measured used to pay for it.
 */
function freshProcessMs(script: string, cwd: string, env: NodeJS.ProcessEnv): { ms: number; status: unknown } {
  const runs = [0, 1, 2, 3].map(() => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd, env }).toString()) as { ms: number; status: unknown });
  const timed = runs.slice(1).sort((a, b) => a.ms - b.ms);
  return timed[1];
}

/**
 * A DynamoDB for handlers run outside the server: the server's, or (when the server keeps its
 * records in its memory store, as `npm start` does) a dynalite of the bench's own with the table,
 * in a process of its own (the cold-start runs block this process while they wait).
 */
let ownDynamo: Promise<{ endpoint: string; proc: ChildProcess }> | undefined;
async function dynamoEndpoint(server: Server): Promise<string> {
  if (server.dynamo) return server.dynamo;
  ownDynamo ??= (async () => {
    const script = "const d=(await import('dynalite')).default({createTableMs:0,deleteTableMs:0,updateTableMs:0});d.listen(0,'127.0.0.1',()=>process.stdout.write(d.address().port+'\\n'))";
    const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<string>((ok, fail) => {
      proc.stdout!.once('data', (chunk: Buffer) => ok(chunk.toString().trim()));
      proc.once('exit', (code) => fail(new Error(`dynalite exited with ${code}`)));
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const [{ DynamoDBClient }, { ensureTable }] = await Promise.all([import('@aws-sdk/client-dynamodb'), import('#shared/store/ensure-table.js')]);
    const client = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    await ensureTable(client, process.env.TABLE_NAME || 'ims');
    client.destroy();
    return { endpoint, proc };
  })();
  return (await ownDynamo).endpoint;
}

async function benchColdStart(server: Server) {
  const assets = await synthBundles();
  const env = { ...process.env, DYNAMODB_ENDPOINT: await dynamoEndpoint(server), S3_ENDPOINT: server.s3, S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER', POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', NODE_OPTIONS: '' };
  const rows: Record<string, unknown>[] = [];
  const libraries = new Map<string, { bytes: number; dir: string }>();
  for (const [file, dir] of assets) {
    const size = statSync(join(dir, 'index.mjs')).size;
    const script = `const m=await import('./index.mjs');const r=await m.handler(${JSON.stringify(sampleEvent(file))},{getRemainingTimeInMillis:()=>30000,functionName:'bench',awsRequestId:'1'});process.stdout.write(JSON.stringify({ms:performance.now(),status:r?.statusCode??r?.outcome??(r===undefined||typeof r==='object'?'done':r)}))`;
    const { ms, status } = freshProcessMs(script, dir, env);
    rows.push({ handler: file, bytes: size, firstRequestMs: Number(ms.toFixed(1)), answered: status });
    process.stderr.write(`cold start ${file}: ${(size / 1024).toFixed(0)} KiB, ${ms.toFixed(0)} ms\n`);
    for (const name of ['@kubernetes/client-node', 'ssh2']) {
      const lib = join(dir, 'node_modules', name, 'index.mjs');
      if (!libraries.has(name) && existsSync(lib)) libraries.set(name, { bytes: statSync(lib).size, dir });
    }
  }
  // The libraries a handler loads on first use only (a job reaching that worker).
  for (const [name, { bytes, dir }] of libraries) {
    const { ms } = freshProcessMs(`await import(${JSON.stringify(name)});process.stdout.write(JSON.stringify({ms:performance.now()}))`, dir, env);
    rows.push({ handler: `(on first use) ${name}`, bytes, firstRequestMs: Number(ms.toFixed(1)), answered: 'imported' });
    process.stderr.write(`lazy library ${name}: ${(bytes / 1024).toFixed(0)} KiB, import in a fresh process ${ms.toFixed(0)} ms\n`);
  }
  return rows;
}

function makeImageRoot(dir: string, mib: number) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'boot'), { recursive: true });
  mkdirSync(join(dir, 'usr/share'), { recursive: true });
  writeFileSync(join(dir, 'boot/vmlinuz'), randomBytes(8 * 1024 * 1024));
  writeFileSync(join(dir, 'boot/initrd'), randomBytes(16 * 1024 * 1024));
  writeFileSync(join(dir, 'boot/kernel-parameters'), 'console=ttyS0 root=live:squashfs\n');
  // Half incompressible (binaries, packages), half text-like (docs, configs), as an image root is.
  const words = Buffer.from(Array.from({ length: 4096 }, (_, i) => `word${i % 97} line ${i}\n`).join(''));
  for (let i = 0, written = 24; written < mib; i++, written += 16) {
    const body = i % 2 === 0 ? randomBytes(16 * 1024 * 1024) : Buffer.concat(Array.from({ length: Math.ceil((16 * 1024 * 1024) / words.length) }, () => words)).subarray(0, 16 * 1024 * 1024);
    writeFileSync(join(dir, 'usr/share', `file-${i}`), body);
  }
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

async function timedAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function readOnce(path: string): Promise<void> {
  for await (const _chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    // one sequential read of every byte
  }
}

async function benchArtifacts(server: Server) {
  const dir = join(tmp, 'image-root');
  makeImageRoot(dir, artifactMiB);
  execFileSync('sync');
  const squash = (out: string) => execFileSync('mksquashfs', [dir, out, '-noappend', '-quiet', '-no-progress'], { stdio: 'ignore' });
  const limitSquash = timed(() => squash(join(tmp, 'limit.sqsh')));
  const limitRead = await timedAsync(() => readOnce(join(tmp, 'limit.sqsh')));
  rmSync(join(tmp, 'limit.sqsh'));

  process.env.S3_ENDPOINT = server.s3;
  process.env.S3_ACCESS_KEY = 'S3RVER';
  process.env.S3_SECRET_KEY = 'S3RVER';
  process.env.DYNAMODB_ENDPOINT = await dynamoEndpoint(server);
  const { buildContext } = await import('#shared/wiring.js');
  const { registerArtifacts } = await import('#shared/workflow/register-artifacts.js');
  const { createImageWithId, resultImageIdFor } = await Promise.all([import('#shared/domain/images.js'), import('#shared/domain/job-create.js')]).then(([a, b]) => ({ ...a, ...b }));
  const ctx = buildContext();
  const jobId = '00000000-0000-4000-8000-000000000001';
  const job = { job: { id: jobId, image_root_archive_name: 'bench' }, resultImageId: resultImageIdFor(jobId) } as never;
  const rootfs = join(tmp, 'image.sqsh');
  const ourSquash = timed(() => squash(rootfs));
  const ourRegister = await timedAsync(async () => {
    const link = await registerArtifacts(ctx, job, { kind: 'files', rootfs, kernel: join(dir, 'boot/vmlinuz'), initrd: join(dir, 'boot/initrd'), parameters: join(dir, 'boot/kernel-parameters') });
    await createImageWithId(ctx, resultImageIdFor(jobId), { name: 'bench', link, arch: 'x86_64', metadata: {} });
  });
  const sqshBytes = statSync(rootfs).size;
  rmSync(rootfs);
  rmSync(dir, { recursive: true, force: true });
  const limit = limitSquash + limitRead;
  const ours = ourSquash + ourRegister;
  process.stderr.write(`artifacts: limit ${limit.toFixed(1)} s, ours ${ours.toFixed(1)} s\n`);
  return {
    imageRootMiB: artifactMiB,
    squashfsMiB: Number((sqshBytes / 1024 / 1024).toFixed(1)),
    limit: { mksquashfsSeconds: Number(limitSquash.toFixed(2)), sequentialReadSeconds: Number(limitRead.toFixed(2)), totalSeconds: Number(limit.toFixed(2)) },
    ours: { mksquashfsSeconds: Number(ourSquash.toFixed(2)), uploadAndRegisterSeconds: Number(ourRegister.toFixed(2)), totalSeconds: Number(ours.toFixed(2)) },
    ratio: Number((limit / ours).toFixed(3)),
  };
}

function markdown(results: Record<string, any>): string {
  const lines = [`# Benchmark results`, '', `Run ${results.when} on ${results.machine.cpu} × ${results.machine.cores}, ${results.machine.memoryGiB} GiB, Linux ${results.machine.kernel}, Node ${results.machine.node}.`, ''];
  if (results.records) {
    lines.push(
      '## Records (images), embedded server in its own process',
      '',
      'Server CPU is the server process\'s user + system time over the run divided by its requests (10 ms ticks), so it includes the embedded record store and S3 running in the same process. Latencies and req/s are those of a shared 2-core machine on which other work runs: server CPU per request is the stable figure.',
      '',
      '| records | operation | requests | req/s | p50 ms | p99 ms | errors | server CPU ms/req |',
      '|---:|---|---:|---:|---:|---:|---:|---:|',
    );
    for (const r of results.records) {
      if ('value' in r) lines.push(`| ${r.level} | ${r.op} | | | | | ${r.value} | |`);
      else if ('race' in r) continue;
      else lines.push(`| ${r.level} | ${r.op} | ${r.requests} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.cpuMs ?? ''} |`);
    }
    lines.push('', ...targetsTable(results.records), '');
    const races = results.records.filter((r: any) => 'race' in r);
    if (races.length) {
      lines.push(
        '### Contention: 16 writers × 20 distinct metadata keys on ONE image',
        '',
        'Each writer sends its 20 PATCHes one after another; the 16 run at once. Lost = keys missing from the image afterwards.',
        '',
        '| records | changes | kept | lost | 5xx | other non-200 | p50 ms | p99 ms | seconds |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      );
      for (const { level, race } of races) {
        lines.push(`| ${level} | ${race.changes} | ${race.kept} | ${race.lost} | ${race.serverErrors} | ${race.otherErrors} | ${race.p50} | ${race.p99} | ${race.seconds} |`);
      }
      lines.push('');
    }
  }
  for (const [key, title] of [['listProfileBefore', 'before: each record a string, an item of three async generators, concatenated per 64 KiB'], ['listProfile', 'now']] as const) {
    const p = results[key];
    if (!p) continue;
    lines.push(
      `### Where a whole list's time goes (${title})`,
      '',
      `The server under \`--cpu-prof\`, ${p.records} images, ${p.runs} whole lists of ${(p.bytes / 1024 ** 2).toFixed(2)} MiB: ${p.busyMs} ms busy in all, ${(p.busyMs / p.runs).toFixed(1)} ms a list. Self time by function:`,
      '',
      '| function | ms | share |',
      '|---|---:|---:|',
      ...p.top.map((t: { fn: string; ms: number; share: number }) => `| \`${t.fn}\` | ${t.ms} | ${t.share} % |`),
      '',
    );
  }
  if (results.dynamoList) {
    const d = results.dynamoList;
    lines.push(
      `### A whole list on DynamoDB: ${d.count} images`,
      '',
      'The DynamoDB store on dynalite, the Queries of one whole list counted on the client with the bytes of their answers (dynalite, as DynamoDB, reads at most 1 MB of the index a Query, before the projection).',
      '',
      '| read | records | Queries | KiB answered | ms (dynalite), the text made |',
      '|---|---:|---:|---:|---:|',
      `| before: pages of 1,000 through \`list\`, every attribute, each record parsed and written again | ${d.paged.records} | ${d.paged.queries} | ${d.paged.kib} | ${d.paged.ms} |`,
      `| now: \`stream\`, Queries without a Limit, only the record's text (written as it is), the next one sent ahead | ${d.streamed.records} | ${d.streamed.queries} | ${d.streamed.kib} | ${d.streamed.ms} |`,
      '',
    );
  }
  if (results.deployedList) {
    const d = results.deployedList;
    lines.push(
      '## The whole list as deployed (API Gateway + Lambda, no streaming)',
      '',
      `${d.records} images (${(d.bytes / 1024 ** 2).toFixed(1)} MiB of JSON): the handler under Lambda's limits answers ${d.firstAnswer}${d.firstAnswer === 302 ? ", the list having been written to S3 (the embedded s3rver) as it was read; the client follows the redirect to it" : ' with the list inline (it fits)'}. Median of 3, in the bench's process.`,
      '',
      '| path | ms |',
      '|---|---:|',
      `| deployed: ${d.firstAnswer === 302 ? 'handler → S3 multipart upload → 302 → GET of the pre-signed URL' : 'handler → 200 inline'} | ${d.deployedMs} |`,
      `| embedded server: streamed | ${d.streamedMs} |`,
      '',
    );
  }
  if (results.coldStart) {
    lines.push(
      '## Cold start: the bundles as CDK builds them',
      '',
      'Each handler bundle (index.mjs) in a fresh Node process: import it and answer a first request. The Kubernetes client and ssh2 are bundles of their own beside it, imported only when a job first reaches that worker; their rows give the time to import them in a fresh process.',
      '',
      '| handler | bundle KiB | first request of a fresh process, ms | answered |',
      '|---|---:|---:|---|',
    );
    for (const r of results.coldStart) lines.push(`| ${r.handler} | ${(r.bytes / 1024).toFixed(0)} | ${r.firstRequestMs} | ${r.answered} |`);
    lines.push('');
  }
  if (results.artifacts) {
    const a = results.artifacts;
    lines.push(
      '## Artifacts: package and register an image root',
      '',
      `Image root ${a.imageRootMiB} MiB → squashfs ${a.squashfsMiB} MiB.`,
      '',
      '| | mksquashfs s | then | total s |',
      '|---|---:|---|---:|',
      `| limit: mksquashfs + one sequential read | ${a.limit.mksquashfsSeconds} | read ${a.limit.sequentialReadSeconds} s | ${a.limit.totalSeconds} |`,
      `| ours: mksquashfs + upload (hash while streaming, multipart) + manifest + image record | ${a.ours.mksquashfsSeconds} | register ${a.ours.uploadAndRegisterSeconds} s | ${a.ours.totalSeconds} |`,
      '',
      `Ratio limit / ours: **${a.ratio}** (1.0 = as fast as the limit).`,
      '',
    );
  }
  if (results.jobs) {
    const j = results.jobs;
    lines.push('## Job scheduling latency (kubernetes worker, fake API server)', '', `POST /v3/jobs → build stage started, ${j.jobs} jobs one after another: p50 **${j.p50Ms} ms**, max ${j.p99Ms} ms (${j.objectsCreated} Kubernetes objects created).`, '');
  }
  if (results.jobLatencyRemote) lines.push(...remoteLatencyTable(results.jobLatencyRemote));
  if (results.jobCost) {
    lines.push(
      '## Job cost by duration (deployed workflow, virtual time)',
      '',
      'The synthesized state machine on the embedded runtime, the reconciler once a (virtual) minute. History events as Step Functions Standard writes them (25,000 at most per execution); transitions are what it bills; stage invocations are Lambda invocations of the stage functions for the job; reconciler checks are the worker checks made for the job inside the one shared reconciler pass a minute (no transition, no invocation of their own). The last column is what the polling workflow this replaced wrote (about 9 events per 5 s poll).',
      '',
      '| job | status | history events | state transitions | stage invocations | reconciler checks | polling design, events |',
      '|---|---|---:|---:|---:|---:|---:|',
    );
    for (const r of results.jobCost) lines.push(`| ${r.job} | ${r.status} | ${r.historyEvents} | ${r.stateTransitions} | ${r.stageInvocations} | ${r.reconcilerChecks} | ${r.pollingDesignEvents} |`);
    lines.push('');
  }
  if (results.changeReport) lines.push(...changeReportMarkdown(results.changeReport));
  if (results.softDelete) {
    const d = results.softDelete;
    lines.push(
      '## Soft delete of a large image (embedded server and S3)',
      '',
      `An image with a ${d.rootfsMiB} MiB rootfs, ${d.rounds} rounds: soft delete p50 **${d.softDeleteMs.p50} ms** (max ${d.softDeleteMs.max}), undelete p50 **${d.undeleteMs.p50} ms** (max ${d.undeleteMs.max}); nothing is copied. One server-side copy of the rootfs alone takes ${d.oneRootfsCopyMs} ms here: what each soft delete, and each undelete again, cost per artifact when they moved the artifacts under deleted/.`,
      '',
    );
  }
  if (results.jobWrites) lines.push(...jobWritesMarkdown(results.jobWrites));
  if (results.jobLatency) lines.push(...joblatencyMarkdown(results.jobLatency));
  return lines.join('\n');
}

/** The original's figures (Flask + gunicorn, same machine) and what this service must reach. */
const ORIGINAL = { getCpuMs: 0.98, getP50Ms: 1.25, list: { 1000: 12.2, 10000: 91.3 } as Record<number, number>, rssMiB: 141 };

function targetsTable(records: any[]): string[] {
  const row = (level: number, op: string) => records.find((r) => r.level === level && r.op === op);
  const lines = ['### Against the targets', '', '| records | figure | original | target | measured | ratio to the original | met |', '|---:|---|---:|---:|---:|---:|---|'];
  const add = (level: number, figure: string, original: number | undefined, target: number, measured: number | undefined) => {
    if (measured === undefined) return;
    const ratio = original ? `${(measured / original).toFixed(2)}×` : '';
    lines.push(`| ${level} | ${figure} | ${original ?? ''} | ≤ ${target} | ${measured} | ${ratio} | ${measured <= target ? 'yes' : 'no'} |`);
  };
  for (const level of [...new Set(records.map((r) => r.level as number))]) {
    const whole = row(level, 'whole list (unpaginated) c=1');
    const originalList = ORIGINAL.list[level] ?? (ORIGINAL.list[10000] * level) / 10000;
    add(level, 'whole list p50 ms', ORIGINAL.list[level], originalList / 2, whole?.p50);
    // The server's CPU time per list: what the latency is on a machine with nothing else to run.
    add(level, 'whole list server CPU ms', ORIGINAL.list[level], originalList / 2, whole?.cpuMs);
    add(level, 'GET server CPU ms', ORIGINAL.getCpuMs, 0.8, row(level, 'get c=1')?.cpuMs);
    add(level, 'PATCH server CPU ms', undefined, 3, row(level, 'patch c=1')?.cpuMs);
    add(level, 'POST server CPU ms', undefined, 3, row(level, 'create c=1 (CPU)')?.cpuMs);
    // At or below the original's up to 10k; at most 200 MiB at 100k.
    add(level, 'server peak RSS MiB', ORIGINAL.rssMiB, level <= 10_000 ? ORIGINAL.rssMiB : 200, row(level, 'server peak RSS (MiB)')?.value);
  }
  lines.push('', 'Beyond 10k the list target is linear: half of the original\'s time at 10k, times the growth. The original\'s figures were measured side by side with this service (Flask under gunicorn, the same load client, the same machine, one sitting). Peak RSS counts the server\'s child processes too (none run in these rows).');
  return lines;
}

mkdirSync(tmp, { recursive: true });
const server = await startServer();
// A run of some parts (BENCH_PARTS) keeps the other parts' figures from the last results.
const previous = (() => {
  try {
    return JSON.parse(readFileSync(join(root, 'bench/results.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
})();
const results: Record<string, unknown> = {
  ...previous,
  when: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 1024 ** 3), kernel: release(), node: process.version },
};
/** Written after each part, so the parts measured so far are kept if a later one fails. */
const save = () => {
  writeFileSync(join(root, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, 'bench/results.md'), markdown(results));
};
try {
  if (parts.has('records')) results.records = await benchRecords(server);
  save();
  if (parts.has('listprofile')) results.listProfile = await (await import('./list-profile.js')).profileWholeList((o) => startServer({ ...o, second: true }), root, Number(process.env.BENCH_PROFILE_RECORDS ?? 10_000));
  save();
  if (parts.has('dynamolist')) results.dynamoList = await (await import('./dynamo-list.js')).benchDynamoList(10_000);
  save();
  if (parts.has('deployedlist')) results.deployedList = await (await import('./deployed-list.js')).benchDeployedList(Math.max(...levels));
  save();
  if (parts.has('cold')) results.coldStart = await benchColdStart(server);
  save();
  if (parts.has('artifacts')) results.artifacts = await benchArtifacts(server);
  save();
  if (parts.has('jobs')) results.jobs = await (await import('./job-latency.js')).benchJobLatency();
  save();
  if (parts.has('jobcost')) results.jobCost = await (await import('./job-cost.js')).benchJobCost();
  save();
  if (parts.has('changereport')) results.changeReport = await (await import('./change-report.js')).benchChangeReport(tmp);
  if (parts.has('softdelete')) results.softDelete = await (await import('./soft-delete.js')).benchSoftDelete(Number(process.env.BENCH_SOFT_DELETE_MIB ?? 1024));
  if (parts.has('jobwrites')) results.jobWrites = await (await import('./job-writes.js')).benchJobWrites();
  if (parts.has('joblatencyremote')) results.jobLatencyRemote = await (await import('./job-latency-remote.js')).benchJobLatencyRemote();
  if (parts.has('joblatency')) results.jobLatency = await (await import('./joblatency.js')).benchJoblatency();
  save();
} finally {
  server.proc.kill('SIGTERM');
  if (ownDynamo) (await ownDynamo.catch(() => undefined))?.proc.kill('SIGTERM');
}
process.stderr.write('wrote bench/results.md and bench/results.json\n');
process.exit(0);
