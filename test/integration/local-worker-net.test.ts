/**
 * The net under the local worker's reports: with its reports dropped (wakes off), the reconciler
 * alone still finishes customize and create jobs. And where the image root cannot be an overlay
 * (forced here with IMS_LOCAL_OVERLAY=off, as on a kernel without loop devices or overlayfs), the
 * rootfs is unsquashed instead, the job's history and log say so, and the job still succeeds.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestService, type TestService } from '../helpers/service.js';
import { leftovers, NOTHING_LEFT } from '../helpers/host-leftovers.js';
import { customizeUntilShell, shellClient, type ShellClient } from '../helpers/job-shell.js';
import { registerStubRecipe, stubKiwiOnPath } from '../helpers/stub-recipe.js';
import { untilWith } from '../helpers/until.js';

const until = untilWith({ ms: 30_000, everyMs: 100 });

const workRoot = `/var/lib/ims/test-net-${process.pid}-${Date.now()}`;
let restorePath: () => void = () => undefined;
let svc: TestService;
let scratch: string;
let client: ShellClient;
let keyId: string;
let imageId: string;

const job = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}`).then((r) => r.body);
const ended = (j: any) => j?.status === 'success' || j?.status === 'error';
const history = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}/history`).then((r) => r.body);

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'ims-local-net-'));
  restorePath = stubKiwiOnPath(scratch);
  const tiny = await import('../helpers/tiny-image.js');
  tiny.requireHostTools(['mksquashfs', 'unsquashfs', 'sshd', 'ssh-keygen', 'sftp-server', 'curl', 'tar', 'unshare', 'flock'], [tiny.BUSYBOX_REQUIREMENT, { path: '/usr/bin/ssh', pkg: 'openssh-client' }]);
  const image = tiny.buildTinyImage(join(scratch, 'image'));
  const keyFile = join(scratch, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  client = shellClient(keyFile);
  Object.assign(process.env, { IMS_JOB_WORKER: 'local', IMS_WORK_ROOT: workRoot, IMS_LOCAL_OVERLAY: 'off' });
  svc = await startTestService({ wakes: false, reconcileMs: 300 });
  imageId = await tiny.registerTinyImage(svc, image, 'tiny-net');
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'tester', public_key: readFileSync(`${keyFile}.pub`, 'utf8') })).body.id;
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  restorePath();
  for (const name of ['IMS_JOB_WORKER', 'IMS_WORK_ROOT', 'IMS_LOCAL_OVERLAY']) delete process.env[name];
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  rmSync(workRoot, { recursive: true, force: true });
});

describe('with the reports dropped, the reconciler finishes local jobs', () => {
  test('customize, the overlay off: unsquashed, said in history and log, and a success', async () => {
    const shell = await customizeUntilShell(svc, until, { artifact_id: imageId, public_key_id: keyId, image_root_archive_name: 'tiny-net' });
    // No overlay, no loop device: the image root is a plain directory.
    const serving = leftovers(shell.id, workRoot);
    expect([serving.mounts, serving.loops]).toEqual([[], []]);
    const prepared = (await history(shell.id)).events.find((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'prepare');
    expect(prepared.detail).toBe('the rootfs was unsquashed into the image root: the overlay could not be used (IMS_LOCAL_OVERLAY is off)');
    expect(readFileSync(join(workRoot, shell.id, 'logs', 'worker.log'), 'utf8')).toContain(prepared.detail);
    expect(readFileSync(join(workRoot, shell.id, 'logs', 'prepare.log'), 'utf8')).toContain('unsquashing it instead');
    expect((await client.ssh(shell.host, shell.port, 'echo net > etc/motd; rm etc/motd; echo net > etc/net')).code).toBe(0);
    // The shell ends when the job sees the verdict: the command's exit status may go with it.
    await client.ssh(shell.host, shell.port, 'touch /mnt/image/complete');
    const done = await until(() => job(shell.id), ended);
    expect(done.status).toBe('success');
    expect(await svc.getObjectText('boot-images', `${done.resultant_image_id}/kernel`)).toBe('not really a kernel\n');
    await until(() => history(shell.id), (h) => h.events.some((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'cleanup'));
    expect(leftovers(shell.id, workRoot)).toEqual(NOTHING_LEFT);
  }, 60_000);

  test('create: built, packaged and registered', async () => {
    const recipeId = await registerStubRecipe(svc, scratch, 'net');
    const created = await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'built' });
    const done = await until(() => job(created.body.id), ended);
    expect([done.status, (await history(created.body.id)).reason]).toEqual(['success', null]);
    expect(await svc.getObjectText('boot-images', `${done.resultant_image_id}/initrd`)).toBe('initrd 6.1.0-2\n');
  }, 60_000);
});
