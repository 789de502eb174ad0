/**
 * `npm run test:build`, second part: a customize job of an image of about 1 GiB on the local
 * worker (busybox, 512 MiB of random data, a copy of the host's /usr/share: many small files),
 * through the real OpenSSH client, printing the wall time of each stage. Kept out of `npm test`
 * for its size and time.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startTestService, type TestService } from '../helpers/service.js';
import { BUSYBOX_REQUIREMENT, buildTinyImage, registerTinyImage, requireHostTools } from '../helpers/tiny-image.js';
import { leftovers, NOTHING_LEFT } from '../helpers/host-leftovers.js';
import { stageTimes } from './create-job.js';
import { sleep } from '../helpers/until.js';

const workRoot = `/var/lib/ims/build-test-large-${process.pid}`;
// Not under /tmp, which may be a small tmpfs: the image, its squashfs and the S3 copies take a few GiB.
const scratchRoot = '/var/lib/ims';
let svc: TestService;
let scratch: string;

beforeAll(async () => {
  requireHostTools(['mksquashfs', 'unsquashfs', 'sshd', 'ssh-keygen', 'sftp-server', 'curl', 'unshare'], [BUSYBOX_REQUIREMENT, { path: '/usr/bin/ssh', pkg: 'openssh-client' }]);
  mkdirSync(scratchRoot, { recursive: true });
  scratch = mkdtempSync(join(scratchRoot, 'large-image-'));
  Object.assign(process.env, { IMS_JOB_WORKER: 'local', IMS_WORK_ROOT: workRoot });
  svc = await startTestService({ reconcileMs: 1000 });
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  delete process.env.IMS_JOB_WORKER;
  delete process.env.IMS_WORK_ROOT;
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  rmSync(workRoot, { recursive: true, force: true });
});

describe('a customize job of a ~1 GiB image', () => {
  test('is served, changed through OpenSSH, squashed and registered', async () => {
    const before = Date.now();
    const image = buildTinyImage(join(scratch, 'image'), (root) => {
      mkdirSync(join(root, 'data'));
      execFileSync('/bin/sh', ['-c', `for i in $(seq 1 64); do head -c 8388608 /dev/urandom > "${root}/data/random-$i.bin"; done`]);
      execFileSync('cp', ['-a', '/usr/share', join(root, 'data', 'share')]);
    });
    const size = Number(execFileSync('du', ['-sb', image.root], { encoding: 'utf8' }).split('\t')[0]);
    const sqsh = Number(execFileSync('stat', ['-c', '%s', image.squashfs], { encoding: 'utf8' }));
    const imageId = await registerTinyImage(svc, image, 'large-source', 'large');
    const prepared = Date.now();
    const keyFile = join(scratch, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
    const key = (await svc.request('POST', '/v3/public-keys', { name: 'k', public_key: readFileSync(`${keyFile}.pub`, 'utf8') })).body.id;

    const started = Date.now();
    const id: string = (await svc.request('POST', '/v3/jobs', { job_type: 'customize', artifact_id: imageId, public_key_id: key, image_root_archive_name: 'large-customized' })).body.id;
    let current: any;
    for (; Date.now() - started < 20 * 60_000; await sleep(500)) {
      current = (await svc.request('GET', `/v3/jobs/${id}`)).body;
      if (current.status === 'waiting_on_user' || current.status === 'error') break;
    }
    expect(current.status).toBe('waiting_on_user');
    const { host, port } = current.ssh_containers[0].connection_info.customer_access;
    const args = ['-F', '/dev/null', '-i', keyFile, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `root@${host}`];
    const out = await new Promise<string>((resolve, reject) =>
      execFile('ssh', [...args, 'du -sm data | cut -f1; echo large > etc/motd; touch /mnt/image/complete'], (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    expect(Number(out.trim())).toBeGreaterThan(900);
    for (; Date.now() - started < 30 * 60_000; await sleep(500)) {
      current = (await svc.request('GET', `/v3/jobs/${id}`)).body;
      if (current.status === 'success' || current.status === 'error') break;
    }
    const ended = Date.now();
    expect(current.status).toBe('success');
    expect((await svc.request('GET', `/v3/images/${current.resultant_image_id}`)).body.name).toBe('large-customized');
    for (let i = 0; i < 120; i++, await sleep(1000)) {
      const events = (await svc.request('GET', `/v3/jobs/${id}/history`)).body.events as { event: string; stage?: string }[];
      if (events.some((e) => e.event === 'stage-finished' && e.stage === 'cleanup')) break;
    }
    const history = (await svc.request('GET', `/v3/jobs/${id}/history`)).body;
    process.stdout.write(
      `\ncustomize of a ${(size / 2 ** 30).toFixed(2)} GiB image (squashfs ${(sqsh / 2 ** 20).toFixed(0)} MiB; made and uploaded in ${((prepared - before) / 1000).toFixed(1)} s), job ${id}:\n` +
        `${stageTimes(history.events)}\njob ended after ${((ended - started) / 1000).toFixed(1)} s\n`,
    );
    expect(leftovers(id, workRoot)).toEqual(NOTHING_LEFT);
  }, 40 * 60_000);
});
