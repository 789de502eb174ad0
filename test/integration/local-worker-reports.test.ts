/**
 * Local jobs move on by the reports of their own work alone: the reconciler never runs here
 * (reconcileMs 0, and a pass would be counted). A customize job's image root is an overlay on
 * the downloaded rootfs, loop-mounted read-only (no unsquash); the plain and the jailed shell
 * change it, and the registered rootfs has what they added and changed, and lacks what they
 * deleted. A create job (kiwi-ng stood in for by the tests' stub) is packaged and uploaded in one
 * pass. After success, a user's `failed` and a DELETE mid-stage, findmnt and losetup show
 * nothing of the job and its directory is gone.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startTestService, type TestService } from '../helpers/service.js';
import { leftovers, NOTHING_LEFT } from '../helpers/host-leftovers.js';
import { customizeUntilShell as postUntilShell, shellClient, type ShellClient } from '../helpers/job-shell.js';
import { registerStubRecipe, stubKiwiOnPath } from '../helpers/stub-recipe.js';
import { untilWith } from '../helpers/until.js';

const until = untilWith({ ms: 30_000, everyMs: 50 });

const workRoot = `/var/lib/ims/test-reports-${process.pid}-${Date.now()}`;
let restorePath: () => void = () => undefined;
let svc: TestService;
let scratch: string;
let client: ShellClient;
let keyId: string;
let imageId: string;
let reconcilerPasses = 0;
let tiny: typeof import('../helpers/tiny-image.js');

const dpkgEntry = (name: string, version: string) => `Package: ${name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${version}\n`;
/** The tiny image's dpkg database, and the one the plain shell leaves: one package upgraded, one removed, one installed. */
const DPKG_BEFORE = [dpkgEntry('busybox', '1:1.35.0-4'), dpkgEntry('curl', '7.88.1-10'), dpkgEntry('vim', '2:9.0.1378-2')].join('\n');
const DPKG_AFTER = [dpkgEntry('busybox', '1:1.35.0-4'), dpkgEntry('curl', '7.88.1-10+deb12u5'), dpkgEntry('htop', '3.2.2-2')].join('\n');

const job = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}`).then((r) => r.body);
const ended = (j: any) => j?.status === 'success' || j?.status === 'error';
const history = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}/history`).then((r) => r.body);
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

async function object(key: string): Promise<{ body: Buffer; md5sum?: string }> {
  const out = await svc.s3.send(new GetObjectCommand({ Bucket: 'boot-images', Key: key }));
  return { body: Buffer.from(await out.Body!.transformToByteArray()), md5sum: out.Metadata?.md5sum };
}

/** The registered image's rootfs, unsquashed into a fresh directory; its md5sum checked against its bytes. */
async function registeredRoot(imageId: string, name: string): Promise<string> {
  const rootfs = await object(`${imageId}/rootfs`);
  expect(rootfs.md5sum).toBe(md5(rootfs.body));
  const manifest = JSON.parse((await svc.getObjectText('boot-images', `${imageId}/manifest.json`))!);
  expect(manifest.artifacts[0]).toMatchObject({ type: 'application/vnd.cray.image.rootfs.squashfs', md5: md5(rootfs.body), link: { path: `s3://boot-images/${imageId}/rootfs` } });
  const file = join(scratch, `${name}.sqsh`);
  writeFileSync(file, rootfs.body);
  return tiny.unsquash(file, join(scratch, `${name}-root`));
}

const customizeUntilShell = (name: string, extra: Record<string, unknown> = {}) =>
  postUntilShell(svc, until, { artifact_id: imageId, public_key_id: keyId, image_root_archive_name: name, ...extra });

/**
 * The user's verdict: the shell ends the moment the job sees it (sshd and its sessions are ended
 * at once), so the command's own exit status may be lost with the connection.
 */
const signal = (shell: { host: string; port: number }, command: string) => client.ssh(shell.host, shell.port, command);

/** The image root is the overlay, on a loop-mounted squashfs: nothing was unsquashed. */
async function expectOverlay(id: string): Promise<void> {
  const mounts = leftovers(id, workRoot).mounts;
  expect(mounts.some((m) => m.startsWith(`${workRoot}/${id}/image-root `) && m.endsWith(' overlay'))).toBe(true);
  expect(mounts.some((m) => m.startsWith(`${workRoot}/${id}/rootfs-lower /dev/loop`) && m.endsWith(' squashfs'))).toBe(true);
  expect(leftovers(id, workRoot).loops).toEqual([expect.stringContaining(`${workRoot}/${id}/rootfs-source.sqsh`)]);
  const prepared = (await history(id)).events.find((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'prepare');
  expect(prepared.detail).toBe('the image root is an overlay on the rootfs, mounted read-only');
  expect(readFileSync(join(workRoot, id, 'logs', 'prepare.log'), 'utf8')).not.toContain('unsquash');
}

async function expectNothingLeft(id: string): Promise<void> {
  const cleaned = await until(() => history(id), (h) => h.events.some((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'cleanup'), 15_000);
  expect(cleaned.stage).toBe('cleanup');
  expect(leftovers(id, workRoot)).toEqual(NOTHING_LEFT);
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'ims-local-reports-'));
  restorePath = stubKiwiOnPath(scratch);
  tiny = await import('../helpers/tiny-image.js');
  tiny.requireHostTools(['mksquashfs', 'unsquashfs', 'sshd', 'ssh-keygen', 'sftp-server', 'curl', 'tar', 'unshare', 'flock', 'mount', 'umount'], [tiny.BUSYBOX_REQUIREMENT, { path: '/usr/bin/ssh', pkg: 'openssh-client' }]);
  const image = tiny.buildTinyImage(join(scratch, 'image'), (root) => {
    writeFileSync(join(root, 'etc', 'to-change'), 'before\n');
    writeFileSync(join(root, 'etc', 'to-delete'), 'doomed\n');
    mkdirSync(join(root, 'var', 'lib', 'dpkg'), { recursive: true });
    writeFileSync(join(root, 'var', 'lib', 'dpkg', 'status'), DPKG_BEFORE);
  });
  const keyFile = join(scratch, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  client = shellClient(keyFile);
  Object.assign(process.env, { IMS_JOB_WORKER: 'local', IMS_WORK_ROOT: workRoot });
  svc = await startTestService({ reconcileMs: 0, reconcile: async () => void reconcilerPasses++ });
  imageId = await tiny.registerTinyImage(svc, image, 'tiny-reports');
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'tester', public_key: readFileSync(`${keyFile}.pub`, 'utf8') })).body.id;
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  restorePath();
  for (const name of ['IMS_JOB_WORKER', 'IMS_WORK_ROOT']) delete process.env[name];
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  rmSync(workRoot, { recursive: true, force: true });
  expect(reconcilerPasses).toBe(0);
});

describe('local jobs driven by their own reports, with the reconciler off', () => {
  test('a plain shell changes the overlay; the registered rootfs has the additions and changes, and not the deletion', async () => {
    const shell = await customizeUntilShell('tiny-overlay');
    await expectOverlay(shell.id);
    const session = await client.ssh(
      shell.host,
      shell.port,
      `cat IMS_TINY_IMAGE etc/to-change; echo after > etc/to-change; rm etc/to-delete; mkdir -p opt && echo added > opt/added; printf '${DPKG_AFTER.replace(/\n/g, '\\n')}' > var/lib/dpkg/status; stat -c %F /mnt/image/overlay/upper/etc/to-delete`,
    );
    expect(session).toMatchObject({ code: 0, stdout: 'marker\nbefore\ncharacter special file\n' });
    await signal(shell, 'touch /mnt/image/complete');
    const done = await until(() => job(shell.id), ended);
    expect(done.status).toBe('success');
    const root = await registeredRoot(done.resultant_image_id, 'plain');
    expect(readFileSync(join(root, 'etc', 'to-change'), 'utf8')).toBe('after\n');
    expect(readFileSync(join(root, 'opt', 'added'), 'utf8')).toBe('added\n');
    expect(existsSync(join(root, 'etc', 'to-delete'))).toBe(false);
    expect(readFileSync(join(root, 'IMS_TINY_IMAGE'), 'utf8')).toBe('marker\n');
    expect((await object(`${done.resultant_image_id}/boot_parameters`)).body.toString()).toBe('console=ttyS0 root=live:tiny\n');
    // The change report lists exactly what the shell did: nothing of sshd, the signals or the job's own files.
    const changes = await svc.request('GET', `/v3/images/${done.resultant_image_id}/changes`);
    expect(changes.status).toBe(200);
    expect(changes.body).toEqual({
      parent_id: imageId,
      job_id: shell.id,
      files: {
        added: [
          { path: 'opt', type: 'directory', size: 0 },
          { path: 'opt/added', type: 'file', size: 6 },
        ],
        modified: [
          { path: 'etc/to-change', type: 'file', size: 6 },
          { path: 'var/lib/dpkg/status', type: 'file', size: DPKG_AFTER.length },
        ],
        deleted: [{ path: 'etc/to-delete', type: 'file', size: 0 }],
      },
      packages: {
        added: [{ name: 'htop', version: '3.2.2-2', arch: 'amd64' }],
        removed: [{ name: 'vim', version: '2:9.0.1378-2', arch: 'amd64' }],
        changed: [{ name: 'curl', arch: 'amd64', from: '7.88.1-10', to: '7.88.1-10+deb12u5' }],
      },
    });
    const packages = await svc.request('GET', `/v3/images/${done.resultant_image_id}/packages`);
    expect(packages.body.map((p: { name: string; version: string }) => `${p.name} ${p.version}`)).toEqual(['busybox 1:1.35.0-4', 'curl 7.88.1-10+deb12u5', 'htop 3.2.2-2']);
    expect((await svc.request('GET', `/v3/images/${done.resultant_image_id}/lineage`)).body.ancestors).toEqual([
      { id: imageId, name: 'tiny', kind: 'image', job_id: null, created: expect.any(String), deleted: false },
    ]);
    await expectNothingLeft(shell.id);
  }, 60_000);

  test('a jailed shell works in the overlay too, and signals from its /tmp', async () => {
    const shell = await customizeUntilShell('tiny-overlay-jailed', { ssh_containers: [{ name: 'jailed', jail: true }] });
    await expectOverlay(shell.id);
    const session = await client.ssh(shell.host, shell.port, 'ls /; cat /etc/to-change; echo jailed > /etc/to-change; rm /etc/to-delete; echo added > /root/added');
    expect(session.code).toBe(0);
    await signal(shell, 'touch /tmp/complete');
    expect(session.stdout.split('\n')).toEqual(expect.arrayContaining(['IMS_TINY_IMAGE', 'before']));
    expect(session.stdout.split('\n')).not.toContain('rootfs-lower');
    const done = await until(() => job(shell.id), ended);
    expect(done.status).toBe('success');
    const root = await registeredRoot(done.resultant_image_id, 'jailed');
    expect(readFileSync(join(root, 'etc', 'to-change'), 'utf8')).toBe('jailed\n');
    expect(readFileSync(join(root, 'root', 'added'), 'utf8')).toBe('added\n');
    expect(existsSync(join(root, 'etc', 'to-delete'))).toBe(false);
    expect(existsSync(join(root, 'tmp', 'complete'))).toBe(false);
    // Changed from inside the jail: the same report, without the signal left in /tmp.
    const changes = (await svc.request('GET', `/v3/images/${done.resultant_image_id}/changes`)).body;
    expect(changes.files).toEqual({
      added: [{ path: 'root/added', type: 'file', size: 6 }],
      modified: [{ path: 'etc/to-change', type: 'file', size: 7 }],
      deleted: [{ path: 'etc/to-delete', type: 'file', size: 0 }],
    });
    expect(changes.packages).toEqual({ added: [], removed: [], changed: [] });
    await expectNothingLeft(shell.id);
  }, 60_000);

  test('a create job is built, packaged and uploaded in one pass, and registered', async () => {
    const recipeId = await registerStubRecipe(svc, scratch, 'reports');
    const created = await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'built' });
    expect(created.status).toBe(201);
    const done = await until(() => job(created.body.id), ended);
    expect([done.status, (await history(created.body.id)).reason]).toEqual(['success', null]);
    const root = await registeredRoot(done.resultant_image_id, 'built');
    expect(existsSync(join(root, 'etc', 'recipe-config.xml'))).toBe(true);
    // kiwi's description is left out of the image, as kiwi's own packaging does.
    expect(existsSync(join(root, 'image', 'config.xml'))).toBe(false);
    expect((await object(`${done.resultant_image_id}/kernel`)).body.toString()).toBe('kernel 6.1.0-2\n');
    expect((await object(`${done.resultant_image_id}/initrd`)).body.toString()).toBe('initrd 6.1.0-2\n');
    // The package list went up with the results and is listed in the manifest.
    expect((await object(`${done.resultant_image_id}/packages`)).body.toString()).toBe('busybox|None|1.36|None|amd64|None|None\n');
    const manifest = JSON.parse((await svc.getObjectText('boot-images', `${done.resultant_image_id}/manifest.json`))!);
    expect(manifest.artifacts.map((a: { type: string }) => a.type)).toContain('application/vnd.ims.image.packages');
    await expectNothingLeft(created.body.id);
  }, 60_000);

  test("the user's `failed` ends the job in error; nothing of it is left", async () => {
    const shell = await customizeUntilShell('tiny-overlay-failed');
    await signal(shell, 'echo broken > etc/to-change; echo no > /mnt/image/failed');
    const done = await until(() => job(shell.id), ended);
    expect(done.status).toBe('error');
    expect((await history(shell.id)).reason).toBe('the user marked the job failed: no');
    await expectNothingLeft(shell.id);
  }, 60_000);

  test('an image root that is no longer mounted (the host restarted) fails the job instead of packaging an empty root', async () => {
    const shell = await customizeUntilShell('tiny-overlay-lost');
    await expectOverlay(shell.id);
    // As after a reboot: the host's mounts are gone (sshd's namespace keeps its own copy).
    execFileSync('umount', [join(workRoot, shell.id, 'image-root')]);
    execFileSync('umount', ['--lazy', join(workRoot, shell.id, 'rootfs-lower')]);
    await signal(shell, 'touch /mnt/image/complete');
    const done = await until(() => job(shell.id), ended);
    expect(done.status).toBe('error');
    expect((await history(shell.id)).reason).toBe('the image root (an overlay on the rootfs) is no longer mounted: the host restarted since the job prepared it');
    await expectNothingLeft(shell.id);
  }, 60_000);

  test('DELETE while the shell is served unmounts the overlay and the rootfs and frees the loop device', async () => {
    const shell = await customizeUntilShell('tiny-overlay-deleted');
    await expectOverlay(shell.id);
    expect((await svc.request('DELETE', `/v3/jobs/${shell.id}`)).status).toBe(204);
    expect(leftovers(shell.id, workRoot)).toEqual(NOTHING_LEFT);
  }, 60_000);
});
