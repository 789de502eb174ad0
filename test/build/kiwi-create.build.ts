/**
 * `npm run test:build`: one real create job on the local worker. The recipe in
 * test/fixtures/kiwi-debian-bookworm is uploaded as a recipe archive, with the host's Debian
 * mirror (first URIs of /etc/apt/sources.list.d/debian.sources) as a template value; POST
 * /v3/jobs builds it with kiwi-ng from the mirror, squashes the root and registers the image
 * with rootfs, kernel, initrd and the package list. Prints the wall time of each stage. Takes
 * a few minutes and needs the mirror: it is kept out of `npm test`.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startTestService, type TestService } from '../helpers/service.js';
import { requireHostTools } from '../helpers/tiny-image.js';
import { leftovers, NOTHING_LEFT } from '../helpers/host-leftovers.js';
import { sleep } from '../helpers/until.js';
import { jobEnd, printFailure, registerDebianRecipe, stageTimes } from './create-job.js';

const workRoot = `/var/lib/ims/build-test-${process.pid}`;
let svc: TestService;
let scratch: string;

beforeAll(async () => {
  requireHostTools(['kiwi-ng', 'gpg', 'rsync', 'mksquashfs', 'unsquashfs', 'curl', 'tar', 'unshare', 'flock', 'dpkg-query']);
  scratch = mkdtempSync(join(tmpdir(), 'ims-build-'));
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

describe('a real create job', () => {
  test('kiwi-ng builds the Debian recipe; the image is registered with rootfs, kernel, initrd and package list', async () => {
    const { recipeId, keyId } = await registerDebianRecipe(svc, scratch);
    const started = Date.now();
    const created = await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'debian12-minimal' });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    const { job: current, seconds: total } = await jobEnd(svc, id, started);
    const history = (await svc.request('GET', `/v3/jobs/${id}/history`)).body;
    if (current.status !== 'success') await printFailure(svc, id, history.events);
    expect({ status: current.status, reason: history.reason }).toEqual({ status: 'success', reason: null });
    const statuses = history.events.filter((e: { event: string }) => e.event === 'status').map((e: { status: string }) => e.status);
    expect(statuses).toEqual(['fetching_recipe', 'waiting_for_repos', 'building_image', 'packaging_artifacts', 'success']);

    const imageId: string = current.resultant_image_id;
    const manifest = JSON.parse((await svc.getObjectText('boot-images', `${imageId}/manifest.json`))!);
    const byType = Object.fromEntries(manifest.artifacts.map((a: { type: string; link: { path: string } }) => [a.type, a.link.path]));
    expect(Object.keys(byType)).toEqual([
      'application/vnd.cray.image.rootfs.squashfs',
      'application/vnd.cray.image.kernel',
      'application/vnd.cray.image.initrd',
      'application/vnd.ims.image.packages',
    ]);
    const fetch = async (name: string) => {
      const out = await svc.s3.send(new GetObjectCommand({ Bucket: 'boot-images', Key: `${imageId}/${name}` }));
      const path = join(scratch, name);
      writeFileSync(path, Buffer.from(await out.Body!.transformToByteArray()));
      return path;
    };
    const kernel = readFileSync(await fetch('kernel'));
    expect(kernel.subarray(0x202, 0x206).toString('latin1')).toBe('HdrS'); // the x86 boot protocol's magic
    expect(readFileSync(await fetch('initrd')).length).toBeGreaterThan(1024 * 1024);
    expect(readFileSync(await fetch('packages'), 'utf8')).toMatch(/^linux-image-amd64\|None\|/m);
    const listing = execFileSync('unsquashfs', ['-l', await fetch('rootfs')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(listing).toContain('squashfs-root/usr/bin/systemctl');
    expect(listing).not.toContain('squashfs-root/image/config.xml');

    const logs = (await svc.request('GET', `/v3/jobs/${id}/logs`)).body.logs as { name: string }[];
    expect(logs.map((l) => l.name)).toEqual(expect.arrayContaining(['build.log', 'kiwi.log', 'package.log', 'prepare.log', 'worker.log']));
    // The cleanup stage ends the job's processes and removes its work directory after `success`.
    for (const end = Date.now() + 120_000; Date.now() < end; await sleep(1000)) {
      const events = (await svc.request('GET', `/v3/jobs/${id}/history`)).body.events as { event: string; stage?: string }[];
      if (events.some((e) => e.event === 'stage-finished' && e.stage === 'cleanup')) break;
    }
    const final = (await svc.request('GET', `/v3/jobs/${id}/history`)).body;
    process.stdout.write(`\nwall time per stage of create job ${id}:\n${stageTimes(final.events)}\njob ended after ${total} s\n`);
    expect(leftovers(id, workRoot)).toEqual(NOTHING_LEFT);
  }, 60 * 60_000);
});
