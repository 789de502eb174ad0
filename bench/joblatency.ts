/**
 * Job latency as a user feels it: POST /v3/jobs → the shell is served, and the user's
 * `complete` → the job's `success`, with the reconciler at its deployed period (60 s), so what
 * moves a job on is the work's own reports. Beside each figure, the time of the work's own
 * parts run alone on the same machine (download, mount, sshd start; mksquashfs, upload) and the
 * ratio, which is what the service adds. Part of `npm run bench` (BENCH_PARTS=joblatency).
 * `measureCustomizeJob` measures one job whatever runs it, so other workers' rows can be added.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { embeddedPart } from './embedded-part.js';

const run = promisify(execFile);
const REPORT_PERIOD_MS = 60_000;
const POLL_MS = 20;

export interface JobLatency {
  /** POST /v3/jobs → the job shows waiting_on_user with its endpoint. */
  postToShellMs: number;
  /** The user's `complete` (as the shell's own clock says) → the job shows success. */
  completeToSuccessMs: number;
  jobId: string;
  resultantImageId: string;
}

export interface CustomizeJobSpec {
  /** The service's base URL. */
  url: string;
  /** The job's POST body. */
  body: Record<string, unknown>;
  /** Runs in the user's shell: must touch the job's `complete` and print the time of it (ms since the epoch) as its last line. */
  complete(host: string, port: number): Promise<number>;
  /** Called the moment the shell is served (e.g. to read when the download ended). */
  onShell?(jobId: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJob(url: string, id: string): Promise<any> {
  return (await fetch(`${url}/v3/jobs/${id}`)).json();
}

async function waitFor(url: string, id: string, ok: (job: any) => boolean, what: string, ms = 15 * 60_000): Promise<any> {
  for (const deadline = Date.now() + ms; ; await sleep(POLL_MS)) {
    const job = await getJob(url, id);
    if (ok(job)) return job;
    if (job.status === 'error' || Date.now() > deadline) {
      const history = await (await fetch(`${url}/v3/jobs/${id}/history`)).json();
      throw new Error(`job ${id} did not reach ${what}: ${job.status} ${(history as { reason?: string }).reason ?? ''}`);
    }
  }
}

/** One customize job, end to end, timed from the outside as a user would time it. */
export async function measureCustomizeJob(spec: CustomizeJobSpec): Promise<JobLatency> {
  const posted = Date.now();
  const created = (await (await fetch(`${spec.url}/v3/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ job_type: 'customize', ...spec.body }) })).json()) as { id: string };
  const waiting = await waitFor(spec.url, created.id, (j) => j.status === 'waiting_on_user', 'its shell');
  const shellAt = Date.now();
  spec.onShell?.(created.id);
  const { host, port } = waiting.ssh_containers[0].connection_info.customer_access;
  const completedAt = await spec.complete(host, port);
  const done = await waitFor(spec.url, created.id, (j) => j.status === 'success', 'success');
  return { postToShellMs: shellAt - posted, completeToSuccessMs: Date.now() - completedAt, jobId: created.id, resultantImageId: done.resultant_image_id };
}

function timed(work: () => void): number {
  const start = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function timedAsync(work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** sshd started alone with a job-like configuration, until it logs that it listens. */
async function sshdStartMs(dir: string): Promise<number> {
  const key = join(dir, 'host_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const config = join(dir, 'sshd_config');
  writeFileSync(config, `ListenAddress 127.0.0.1\nPort ${port}\nHostKey ${key}\nPidFile none\nUsePAM no\n`, { mode: 0o600 });
  mkdirSync('/run/sshd', { recursive: true });
  const start = process.hrtime.bigint();
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    sshd.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('Server listening')) resolve();
    });
    sshd.on('exit', () => reject(new Error(`sshd exited: ${text}`)));
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  sshd.kill('SIGTERM');
  return ms;
}

export interface PartsAlone {
  downloadMs: number;
  mountMs: number;
  sshdStartMs: number;
  mksquashfsMs: number;
  uploadMs: number;
}

export interface JobLatencyRow extends JobLatency, PartsAlone {
  image: string;
  worker: string;
  imageMiB: number;
  /** When the shell was served after the download's last byte was written (local worker). */
  downloadEndToShellMs?: number;
}

export async function benchJoblatency(): Promise<JobLatencyRow[]> {
  const workRoot = `/var/lib/ims/bench-joblatency-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'ims-bench-joblatency-'));
  const { startEmbedded, PutObjectCommand, s3Client } = await embeddedPart({ IMS_JOB_WORKER: 'local', IMS_WORK_ROOT: workRoot, IMS_RECONCILE_MS: String(REPORT_PERIOD_MS), TABLE_NAME: 'ims-bench-joblatency', POWERTOOLS_LOG_LEVEL: 'SILENT' });
  const { buildTinyImage, registerTinyImage } = await import('../test/helpers/tiny-image.js');
  const { uploadWithMd5 } = await import('../shared/workers/local/results-upload.js');
  const { squashfsOptionsFromEnv } = await import('../shared/workers/squashfs-options.js');
  const svc = await startEmbedded({ port: 0, s3Port: 0, scratchDir: join(dir, 's3'), reconcileMs: REPORT_PERIOD_MS });
  const s3 = s3Client();
  const api = {
    request: async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${svc.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
    },
    putObject: async (bucket: string, key: string, body: Buffer, metadata?: Record<string, string>) => {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
    },
  };
  const keyFile = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  const keyId = (await api.request('POST', '/v3/public-keys', { name: 'bench', public_key: readFileSync(`${keyFile}.pub`, 'utf8') })).body.id;
  const complete = (host: string, port: number) =>
    new Promise<number>((resolve, reject) => {
      const args = ['-F', '/dev/null', '-i', keyFile, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `root@${host}`];
      execFile('ssh', [...args, 'touch /mnt/image/complete && date +%s%3N'], (error, stdout) => (error ? reject(error) : resolve(Number(stdout.trim().split('\n').at(-1)))));
    });

  const rows: JobLatencyRow[] = [];
  const cases = [
    { image: '1 MiB (busybox)', extraMiB: 0 },
    { image: '1 GiB, incompressible', extraMiB: 1024 },
  ];
  try {
    for (const [index, c] of cases.entries()) {
      const imageDir = join(dir, `image-${index}`);
      const image = buildTinyImage(imageDir, (root) => {
        if (c.extraMiB) execFileSync('sh', ['-c', `head -c ${c.extraMiB}M /dev/urandom > ${join(root, 'payload')}`]);
      });
      const imageMiB = statSync(image.squashfs).size / 1024 / 1024;
      const imageId = await registerTinyImage(api, image, `bench-${index}`);
      rmSync(join(imageDir, 'root'), { recursive: true, force: true });
      process.stderr.write(`joblatency: ${c.image} (${imageMiB.toFixed(1)} MiB squashfs)\n`);

      // Each phase starts with the page cache's dirty pages written back, so none pays for another's writes.
      execFileSync('sync');
      let downloadEndToShellMs: number | undefined;
      const latency = await measureCustomizeJob({
        url: svc.url,
        body: { artifact_id: imageId, public_key_id: keyId, image_root_archive_name: `bench-${index}` },
        complete,
        onShell: (jobId) => {
          downloadEndToShellMs = Date.now() - statSync(join(workRoot, jobId, 'rootfs-source.sqsh')).mtimeMs;
        },
      });

      // The work's own parts, alone: what the job's download, mount, sshd, mksquashfs and upload take.
      execFileSync('sync');
      const alone = join(dir, `alone-${index}`);
      for (const sub of ['lower', 'upper', 'work', 'merged', 'sshd']) mkdirSync(join(alone, sub), { recursive: true });
      const url = await svc.app.artifacts.presignGet({ bucket: 'boot-images', key: `bench-${index}/rootfs` }, 600);
      const download = join(alone, 'rootfs.sqsh');
      // Asynchronous: the embedded S3 answering it runs in this process.
      const downloadMs = await timedAsync(() => run('sh', ['-c', `curl --fail --silent "$0" | tee "$1" | md5sum > /dev/null`, url, download]));
      const merged = join(alone, 'merged');
      const mountMs = timed(() => {
        execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', download, join(alone, 'lower')]);
        execFileSync('mount', ['-t', 'overlay', 'ims-overlay', '-o', `lowerdir=${alone}/lower,upperdir=${alone}/upper,workdir=${alone}/work`, merged]);
      });
      const sshd = await sshdStartMs(join(alone, 'sshd'));
      execFileSync('sync');
      const squashed = join(alone, 'new.sqsh');
      const script = join(process.cwd(), 'shared/workers/local/scripts/package.sh');
      const mksquashfsMs = timed(() => execFileSync('/bin/sh', [script], { env: { PATH: process.env.PATH, ROOT: merged, OUT: squashed, SQUASHFS_OPTIONS: squashfsOptionsFromEnv({}).join(' ') }, stdio: 'ignore' }));
      const uploadMs = await timedAsync(() => uploadWithMd5(svc.app.artifacts, { bucket: 'boot-images', key: `bench-alone-${index}/rootfs` }, squashed, {}));
      execFileSync('umount', [merged]);
      execFileSync('umount', [join(alone, 'lower')]);
      rmSync(alone, { recursive: true, force: true });
      rmSync(imageDir, { recursive: true, force: true });
      rows.push({ image: c.image, worker: 'local', imageMiB: Number(imageMiB.toFixed(1)), ...latency, downloadEndToShellMs, downloadMs, mountMs, sshdStartMs: sshd, mksquashfsMs, uploadMs });
      process.stderr.write(`joblatency: ${JSON.stringify(rows.at(-1))}\n`);
    }
  } catch (error) {
    process.stderr.write(`joblatency failed: ${(error as Error).stack}\n`);
    throw error;
  } finally {
    s3.destroy();
    await svc.stop();
    // A job that failed midway may still hold its mounts: never delete through them.
    const points = execFileSync('findmnt', ['--raw', '--noheadings', '--output', 'TARGET'], { encoding: 'utf8' }).split('\n');
    for (const point of points.filter((p) => p.startsWith(`${workRoot}/`) || p.startsWith(`${dir}/`)).reverse()) execFileSync('umount', ['--lazy', point]);
    rmSync(dir, { recursive: true, force: true });
    rmSync(workRoot, { recursive: true, force: true });
  }
  return rows;
}

const s = (ms: number | undefined) => (ms === undefined ? '' : (ms / 1000).toFixed(2));
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

/** The "Job latency" section of bench/results.md. */
export function joblatencyMarkdown(rows: JobLatencyRow[]): string[] {
  const lines = [
    '## Job latency (customize, reconciler at the deployed 60 s)',
    '',
    'What a user waits for: POST /v3/jobs → the shell is served (waiting_on_user with its endpoint), and the user\'s `complete` → `success`, polled from outside every 20 ms, with the reconciler once a minute, so only the work\'s own reports move the job. Beside each, the work\'s own parts run alone on the same machine: download (curl | tee | md5sum), mount (loop squashfs + overlay), sshd start (until it listens); mksquashfs of the merged view (the job\'s options and excludes) and the upload (MD5, then parallel multipart parts). The ratio is the figure over its parts: what the service adds on top of the work. Seconds.',
    '',
    '| image | worker | POST → shell | download + mount + sshd alone | ratio | download end → shell | complete → success | mksquashfs + upload alone | ratio |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const before = r.downloadMs + r.mountMs + r.sshdStartMs;
    const after = r.mksquashfsMs + r.uploadMs;
    lines.push(`| ${r.image} | ${r.worker} | ${s(r.postToShellMs)} | ${s(before)} (${s(r.downloadMs)} + ${s(r.mountMs)} + ${s(r.sshdStartMs)}) | ${ratio(r.postToShellMs, before)} | ${s(r.downloadEndToShellMs)} | ${s(r.completeToSuccessMs)} | ${s(after)} (${s(r.mksquashfsMs)} + ${s(r.uploadMs)}) | ${ratio(r.completeToSuccessMs, after)} |`);
  }
  lines.push('', '### Against the targets', '', '| image | worker | target | measured | met |', '|---|---|---|---:|---|');
  for (const r of rows) {
    const small = r.imageMiB < 64;
    const targets: [string, number, number][] = small
      ? [
          ['shell ≤ 3 s after POST', r.postToShellMs, 3000],
          ['success ≤ 3 s after complete', r.completeToSuccessMs, 3000],
        ]
      : [
          ['shell ≤ 2 s after the download ends', r.downloadEndToShellMs ?? Infinity, 2000],
          ['success ≤ 1.3 × (mksquashfs + upload alone)', r.completeToSuccessMs, 1.3 * (r.mksquashfsMs + r.uploadMs)],
        ];
    for (const [what, measured, limit] of targets) lines.push(`| ${r.image} | ${r.worker} | ${what} (${s(limit)} s) | ${s(measured)} | ${measured <= limit ? 'yes' : 'no'} |`);
  }
  lines.push('');
  return lines;
}
