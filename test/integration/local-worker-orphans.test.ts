/**
 * At start, the embedded service ends the processes and removes the work directories of jobs the
 * store does not know (a job whose record was lost), says so in its log, and leaves the work of
 * known jobs, and anything outside its IMS_WORK_ROOT, alone.
 */
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startEmbedded, type EmbeddedService } from '#infra/local/embedded.js';
import { logger } from '#shared/logger.js';
import { JOB_MARKER } from '#shared/workers/local/job-processes.js';
import { leftovers, NOTHING_LEFT } from '../helpers/host-leftovers.js';
import { until } from '../helpers/until.js';

let scratch: string;
let workRoot: string;
let running: EmbeddedService | undefined;
const children: ChildProcess[] = [];

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'ims-orphans-'));
  workRoot = join(scratch, 'jobs');
  mkdirSync(workRoot);
  process.env.TABLE_NAME = `ims-orphans-${randomUUID().slice(0, 8)}`;
  process.env.IMS_WORK_ROOT = workRoot;
});

afterAll(async () => {
  await running?.stop();
  for (const child of children) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the sweep ended it
    }
  }
  delete process.env.IMS_WORK_ROOT;
  // Should the sweep have failed, nothing stays mounted here.
  const points = execFileSync('findmnt', ['--raw', '--noheadings', '--output', 'TARGET'], { encoding: 'utf8' }).split('\n');
  for (const point of points.filter((p) => p.startsWith(`${workRoot}/`)).reverse()) execFileSync('umount', ['--lazy', point]);
  rmSync(scratch, { recursive: true, force: true });
});

/** A long-running process that carries the job's marker; `cwd` and `args` say where it works. */
function jobProcess(jobId: string, cwd: string, args: string[] = []): ChildProcess {
  // `; :` keeps the shell (and its command line) alive beside its sleep; a group of its own lets the test end both.
  const child = spawn('sh', ['-c', 'sleep 300; :', ...args], { cwd, env: { PATH: process.env.PATH!, [JOB_MARKER]: jobId }, stdio: 'ignore', detached: true });
  children.push(child);
  return child;
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** What a customize job's prepare leaves mounted: its rootfs through a loop device, under an overlay that is its image root. */
function mountedImageRoot(jobId: string): void {
  const dir = join(workRoot, jobId);
  const tree = join(scratch, `tree-${jobId}`);
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'motd'), 'lost\n');
  for (const sub of ['rootfs-lower', 'overlay/upper', 'overlay/work', 'image-root']) mkdirSync(join(dir, sub), { recursive: true });
  execFileSync('mksquashfs', [tree, join(dir, 'rootfs-source.sqsh'), '-noappend', '-quiet', '-no-progress'], { stdio: 'ignore' });
  execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', join(dir, 'rootfs-source.sqsh'), join(dir, 'rootfs-lower')]);
  execFileSync('mount', ['-t', 'overlay', 'ims-overlay', '-o', `lowerdir=${dir}/rootfs-lower,upperdir=${dir}/overlay/upper,workdir=${dir}/overlay/work`, join(dir, 'image-root')]);
}

test('work of jobs the store does not know is ended and removed at start, and logged; known work stays', async () => {
  const dataDir = join(scratch, 'data');
  const start = (sweepOrphanedWork: boolean) => startEmbedded({ port: 0, dataDir, reconcileMs: 0, sweepOrphanedWork });
  const known = randomUUID();
  const lost = randomUUID();
  const lostWithoutDir = randomUUID();
  const lostMounted = randomUUID();

  running = await start(false);
  expect(await running.app.store.create('job', known, { job: { id: known, status: 'creating' }, history: [] }, '00000000000000000001')).toBe(true);
  await running.stop();
  running = undefined;

  mkdirSync(join(workRoot, known, 'logs'), { recursive: true });
  mkdirSync(join(workRoot, lost, 'image-root'), { recursive: true });
  mountedImageRoot(lostMounted);
  expect(leftovers(lostMounted, workRoot).loops).toHaveLength(1);
  const knownProcess = jobProcess(known, join(workRoot, known));
  const lostProcess = jobProcess(lost, join(workRoot, lost, 'image-root'));
  // Its directory is gone already, but its command line still names it.
  const strayProcess = jobProcess(lostWithoutDir, scratch, [join(workRoot, lostWithoutDir, 'sshd_config')]);
  // A marked process that works elsewhere (another service's root): not this service's to end.
  const elsewhere = jobProcess(randomUUID(), scratch);

  const warn = jest.spyOn(logger, 'warn');
  try {
    running = await start(true);
    await until(
      async () => [alive(lostProcess), alive(strayProcess)],
      (states) => states.every((a) => !a),
    );
    expect(existsSync(join(workRoot, lost))).toBe(false);
    // Its overlay and rootfs are unmounted, the loop device freed, the directory gone.
    expect(leftovers(lostMounted, workRoot)).toEqual(NOTHING_LEFT);
    expect(existsSync(join(workRoot, known, 'logs'))).toBe(true);
    expect(alive(knownProcess)).toBe(true);
    expect(alive(elsewhere)).toBe(true);
    const said = warn.mock.calls.filter(([message]) => String(message).includes('a job the store does not know'));
    expect(said.map(([, extra]) => (extra as { jobId: string }).jobId).sort()).toEqual([lost, lostWithoutDir, lostMounted].sort());
    for (const [, extra] of said) if ((extra as { jobId: string }).jobId !== lostMounted) expect((extra as { processes: number[] }).processes.length).toBeGreaterThan(0);
  } finally {
    warn.mockRestore();
  }
});
