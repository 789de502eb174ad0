/**
 * Customize jobs on the local worker, for real: the embedded service downloads a tiny busybox
 * image, unsquashes it, serves it through a real Debian sshd on 127.0.0.1, and the real
 * OpenSSH client logs in with the job's key, changes the image and signals. The new image is
 * squashed and registered. After every job nothing of it is left on the host: no process, no
 * work directory, no mount. Create jobs run kiwi-ng on recipes it refuses at once (the real
 * build is `npm run test:build`). Without squashfs-tools, openssh-server, openssh-client,
 * busybox-static or kiwi the tests fail and say what to install.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startTestService, type TestService } from '../helpers/service.js';
import { BUSYBOX_REQUIREMENT, buildTinyImage, registerTinyImage, requireHostTools, unsquash, type TinyImage } from '../helpers/tiny-image.js';
import { leftovers, NOTHING_LEFT } from '../helpers/host-leftovers.js';
import { untilWith } from '../helpers/until.js';
import { customizeUntilShell as postUntilShell, shellClient, type ShellClient } from '../helpers/job-shell.js';

const until = untilWith({ ms: 30_000, everyMs: 100 });

const SSH_TIMEOUT_S = 12;
const workRoot = `/var/lib/ims/test-${process.pid}-${Date.now()}`;
let svc: TestService;
let scratch: string;
let image: TinyImage;
let keyFile: string;
let keyId: string;
let imageId: string;

const md5 = (path: string) => createHash('md5').update(readFileSync(path)).digest('hex');

const job = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}`).then((r) => r.body);
const ended = (j: any) => j?.status === 'success' || j?.status === 'error';
const history = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}/history`).then((r) => r.body);

let client: ShellClient;
const sshArgs = (host: string, port: number) => client.sshArgs(host, port);
const ssh = (host: string, port: number, command: string) => client.ssh(host, port, command);
const sftp = (host: string, port: number, batch: string) => client.sftp(host, port, batch);

/** Posts a customize job and waits until its shell is served; returns the job and where the shell is. */
const customizeUntilShell = (name: string, extra: Record<string, unknown> = {}) =>
  postUntilShell(svc, until, { artifact_id: imageId, public_key_id: keyId, image_root_archive_name: name, ...extra });

async function download(bucket: string, key: string, to: string): Promise<string> {
  const out = await svc.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const { writeFile } = await import('node:fs/promises');
  await writeFile(to, Buffer.from(await out.Body!.transformToByteArray()));
  return to;
}

async function expectNothingLeft(id: string): Promise<void> {
  // The cleanup stage runs right after the job's status is final; give it its moment.
  const cleaned = await until(() => history(id), (h) => h.events.some((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'cleanup'), 15_000);
  expect(cleaned.stage).toBe('cleanup');
  const left = await until(async () => leftovers(id, workRoot), (l) => l.processes.length === 0 && !l.workDir && l.mounts.length === 0, 15_000);
  expect(left).toEqual(NOTHING_LEFT);
}

/** A recipe archive whose description kiwi refuses at once (no <preferences>), with a template variable. */
async function brokenRecipe(): Promise<string> {
  const recipe = mkdtempSync(join(scratch, 'recipe-'));
  writeFileSync(
    join(recipe, 'config.xml'),
    '<?xml version="1.0"?>\n<image schemaversion="7.5" name="{{ IMAGE_NAME }}"><description type="system"><author>a</author><contact>a@example.invalid</contact><specification>broken</specification></description></image>\n',
  );
  writeFileSync(join(recipe, '.ims_recipe_template.yaml'), 'template_files: [config.xml]\n');
  const archive = join(scratch, `${recipe.split('/').pop()}.tgz`);
  execFileSync('tar', ['-czf', archive, '-C', recipe, '.']);
  const key = `broken/${recipe.split('/').pop()}/recipe.tgz`;
  await svc.putObject('ims', key, readFileSync(archive), { md5sum: md5(archive) });
  const created = await svc.request('POST', '/v3/recipes', {
    name: 'broken',
    recipe_type: 'kiwi-ng',
    linux_distribution: 'sles15',
    link: { path: `s3://ims/${key}`, type: 's3' },
    template_dictionary: [{ key: 'IMAGE_NAME', value: 'templated-name' }],
  });
  expect(created.status).toBe(201);
  return created.body.id;
}

beforeAll(async () => {
  requireHostTools(['mksquashfs', 'unsquashfs', 'sshd', 'ssh-keygen', 'sftp-server', 'curl', 'tar', 'unshare', 'flock', 'kiwi-ng', 'gpg', 'rsync'], [BUSYBOX_REQUIREMENT, { path: '/usr/bin/ssh', pkg: 'openssh-client' }]);
  scratch = mkdtempSync(join(tmpdir(), 'ims-local-worker-'));
  image = buildTinyImage(scratch);
  keyFile = join(scratch, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  client = shellClient(keyFile);
  Object.assign(process.env, { IMS_JOB_WORKER: 'local', IMS_WORK_ROOT: workRoot, IMS_STAGE_TIMEOUT_SSH: String(SSH_TIMEOUT_S) });
  svc = await startTestService({ reconcileMs: 200 });

  imageId = await registerTinyImage(svc, image, 'tiny-source');
  const key = await svc.request('POST', '/v3/public-keys', { name: 'tester', public_key: readFileSync(`${keyFile}.pub`, 'utf8') });
  keyId = key.body.id;
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  for (const name of ['IMS_JOB_WORKER', 'IMS_WORK_ROOT', 'IMS_STAGE_TIMEOUT_SSH']) delete process.env[name];
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  rmSync(workRoot, { recursive: true, force: true });
});

describe('the local worker runs jobs for real', () => {
  test('a shell in the image root through OpenSSH; `touch /mnt/image/complete` registers the changed image', async () => {
    const shell = await customizeUntilShell('tiny-customized');
    expect(shell.host).toBe('127.0.0.1');
    expect(shell.port).toBeGreaterThan(0);
    expect(shell.container.status).toBe('running');
    expect(shell.job.ssh_containers[0].connection_info['cluster.local']).toEqual({ host: '127.0.0.1', port: shell.port });
    // While the job runs its logs are read from the work directory.
    const live = (await svc.request('GET', `/v3/jobs/${shell.id}/logs`)).body;
    expect(live.logs.map((l: { name: string; location: string }) => [l.name, l.location])).toEqual([
      ['prepare.log', 'worker'],
      ['sshd.log', 'worker'],
      ['worker.log', 'worker'],
    ]);
    expect(live.logs[1].text).toContain(`Server listening on 127.0.0.1 port ${shell.port}`);

    // sftp starts in the image root too.
    expect(await sftp(shell.host, shell.port, 'ls boot\n')).toMatch(/boot\/vmlinuz/);
    const session = await ssh(shell.host, shell.port, 'pwd; cat IMS_TINY_IMAGE; echo customized > etc/motd');
    expect(session).toMatchObject({ code: 0 });
    expect(session.stdout).toBe('/mnt/image/image-root\nmarker\n');
    // The shell ends the moment the job sees the verdict: the command's exit status may go with it.
    await ssh(shell.host, shell.port, 'touch /mnt/image/complete');

    const done = await until(() => job(shell.id), ended);
    expect(done.status).toBe('success');
    expect(done.ssh_containers[0].status).toBe('complete');
    const newId: string = done.resultant_image_id;
    const registered = (await svc.request('GET', `/v3/images/${newId}`)).body;
    expect(registered).toMatchObject({ name: 'tiny-customized', metadata: { origin: 'test' } });
    const manifest = JSON.parse((await svc.getObjectText('boot-images', `${newId}/manifest.json`))!);
    expect(manifest.artifacts.map((a: { type: string }) => a.type)).toEqual([
      'application/vnd.cray.image.rootfs.squashfs',
      'application/vnd.cray.image.kernel',
      'application/vnd.cray.image.initrd',
      'application/vnd.cray.image.parameters.boot',
      'application/vnd.ims.image.packages',
      'application/vnd.ims.image.changes+json',
    ]);

    const rootfs = unsquash(await download('boot-images', `${newId}/rootfs`, join(scratch, 'new.sqsh')), join(scratch, 'new-root'));
    expect(readFileSync(join(rootfs, 'etc', 'motd'), 'utf8')).toBe('customized\n');
    expect(existsSync(join(rootfs, 'bin', 'busybox'))).toBe(true);
    expect(await svc.getObjectText('boot-images', `${newId}/kernel`)).toBe('not really a kernel\n');
    expect(await svc.getObjectText('boot-images', `${newId}/boot_parameters`)).toBe('console=ttyS0 root=live:tiny\n');
    // The source image is untouched.
    const source = unsquash(await download('boot-images', 'tiny-source/rootfs', join(scratch, 'src.sqsh')), join(scratch, 'src-root'));
    expect(readFileSync(join(source, 'etc', 'motd'), 'utf8')).toBe('tiny image\n');
    expect((await svc.request('GET', `/v3/images/${imageId}`)).body.link.path).toBe('s3://boot-images/tiny-source/manifest.json');

    await expectNothingLeft(shell.id);
    // The logs outlive the work directory.
    const logs = (await svc.request('GET', `/v3/jobs/${shell.id}/logs`)).body.logs as { name: string; location: string; text: string }[];
    expect(logs.map((l) => l.name)).toEqual(['package.log', 'prepare.log', 'sshd.log', 'worker.log']);
    expect(logs.every((l) => l.location === `s3://boot-images/jobs/${shell.id}/logs/${l.name}`)).toBe(true);
    expect(logs.find((l) => l.name === 'sshd.log')!.text).toContain('Accepted publickey for root');
    expect(logs.find((l) => l.name === 'prepare.log')!.text).toContain('verified');
  }, 90_000);

  test('a jailed shell (and sftp) sees only the image and signals with /tmp/complete', async () => {
    const shell = await customizeUntilShell('tiny-jailed', { ssh_containers: [{ name: 'jailed', jail: true }] });
    const uploaded = join(scratch, 'uploaded.txt');
    writeFileSync(uploaded, 'put through sftp\n');
    await sftp(shell.host, shell.port, `put ${uploaded} /root/uploaded.txt\n`);
    const session = await ssh(shell.host, shell.port, 'ls /; echo jailed > /etc/motd');
    expect(session.code).toBe(0);
    await ssh(shell.host, shell.port, 'touch /tmp/complete');
    const listing = session.stdout.split('\n');
    expect(listing).toContain('IMS_TINY_IMAGE');
    expect(listing).not.toContain('usr');

    const done = await until(() => job(shell.id), ended);
    expect(done.status).toBe('success');
    const rootfs = unsquash(await download('boot-images', `${done.resultant_image_id}/rootfs`, join(scratch, 'jailed.sqsh')), join(scratch, 'jailed-root'));
    expect(readFileSync(join(rootfs, 'etc', 'motd'), 'utf8')).toBe('jailed\n');
    expect(readFileSync(join(rootfs, 'root', 'uploaded.txt'), 'utf8')).toBe('put through sftp\n');
    expect(existsSync(join(rootfs, 'tmp', 'complete'))).toBe(false);
    await expectNothingLeft(shell.id);
  }, 90_000);

  test('`failed` ends the job in error with the user\'s reason; nothing is registered, the logs are kept', async () => {
    const before = (await svc.request('GET', '/v3/images')).body.length;
    const shell = await customizeUntilShell('tiny-failed');
    await ssh(shell.host, shell.port, 'echo "the package did not install" > /mnt/image/failed');
    const done = await until(() => job(shell.id), ended);
    expect(done.status).toBe('error');
    expect(done.resultant_image_id).toBeNull();
    expect((await history(shell.id)).reason).toBe('the user marked the job failed: the package did not install');
    expect((await svc.request('GET', '/v3/images')).body.length).toBe(before);
    await expectNothingLeft(shell.id);
    const logs = (await svc.request('GET', `/v3/jobs/${shell.id}/logs`)).body.logs as { name: string; text: string }[];
    expect(logs.find((l) => l.name === 'worker.log')!.text).toContain("the user signalled 'failed'");
  }, 90_000);

  test('a user who never signals: the ssh stage times out, the job ends in error, sshd is gone', async () => {
    const shell = await customizeUntilShell('tiny-abandoned');
    const done = await until(() => job(shell.id), ended, (SSH_TIMEOUT_S + 20) * 1000);
    expect(done.status).toBe('error');
    expect((await history(shell.id)).reason).toBe(`stage ssh timed out after ${SSH_TIMEOUT_S} s`);
    await expectNothingLeft(shell.id);
    const refused = await ssh(shell.host, shell.port, 'true');
    expect(refused.code).toBe(255);
  }, 90_000);

  test('DELETE while the user is logged in ends the session, sshd and the work directory', async () => {
    const shell = await customizeUntilShell('tiny-deleted');
    const session = spawn('ssh', [...sshArgs(shell.host, shell.port), 'echo in; sleep 300'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => session.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => session.stdout.once('data', () => resolve()));
    expect(existsSync(join(workRoot, shell.id, 'image-root'))).toBe(true);

    expect((await svc.request('DELETE', `/v3/jobs/${shell.id}`)).status).toBe(204);
    expect((await svc.request('GET', `/v3/jobs/${shell.id}`)).status).toBe(404);
    expect(leftovers(shell.id, workRoot)).toEqual(NOTHING_LEFT);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(() => resolve('still running'), 10_000)))]);
    clearTimeout(timer);
    expect(code).not.toBe('still running');
  }, 90_000);

  test('create with enable_debug: a failed kiwi build opens the debug shell, the job ends in error when the user is done', async () => {
    const recipeId = await brokenRecipe();
    const created = await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'broken', enable_debug: true });
    const id: string = created.body.id;
    const waiting = await until(() => job(id), (j) => j.status === 'waiting_on_user' || ended(j));
    expect(waiting.status).toBe('waiting_on_user');
    expect(waiting.ssh_containers[0]).toMatchObject({ name: 'debug', jail: false, status: 'running' });
    const { host, port } = waiting.ssh_containers[0].connection_info.customer_access;
    const session = await ssh(host, port, 'pwd; grep -o "name=.[a-z-]*" recipe/config.xml; grep -c KiwiDescriptionInvalid logs/build.log');
    expect(session.stdout).toBe('/mnt/image\nname="templated-name\n1\n');
    await ssh(host, port, 'touch /mnt/image/complete');

    const done = await until(() => job(id), ended);
    expect(done.status).toBe('error');
    const { reason } = await history(id);
    expect(reason).toMatch(/^kiwi-ng system prepare failed \(exit status 1\): .*KiwiDescriptionInvalid.* \(the debug shell was closed with 'complete'\)$/);
    const statuses = (await history(id)).events.filter((e: { event: string }) => e.event === 'status').map((e: { status: string }) => e.status);
    expect(statuses).toEqual(['fetching_recipe', 'waiting_for_repos', 'building_image', 'waiting_on_user', 'error']);
    await expectNothingLeft(id);
    const logs = (await svc.request('GET', `/v3/jobs/${id}/logs`)).body.logs as { name: string; text: string }[];
    expect(logs.find((l) => l.name === 'kiwi.log')?.text).toContain('KiwiDescriptionInvalid');
  }, 90_000);

  test('create without enable_debug: a failed kiwi build ends the job in error at once', async () => {
    const recipeId = await brokenRecipe();
    const created = await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'broken' });
    const done = await until(() => job(created.body.id), ended);
    expect(done.status).toBe('error');
    expect((await history(created.body.id)).reason).toMatch(/^kiwi-ng system prepare failed \(exit status 1\): .*KiwiDescriptionInvalid/);
    await expectNothingLeft(created.body.id);
  }, 60_000);

  test('a bad MD5 fails the prepare stage with the reason and leaves nothing', async () => {
    await svc.putObject('boot-images', 'tiny-bad/rootfs', readFileSync(image.squashfs), { md5sum: '0123456789abcdef0123456789abcdef' });
    await svc.putObject('boot-images', 'tiny-bad/manifest.json', JSON.stringify({ version: '1.0', artifacts: [{ type: 'application/vnd.cray.image.rootfs.squashfs', md5: 'x', link: { path: 's3://boot-images/tiny-bad/rootfs', type: 's3' } }] }));
    const bad = (await svc.request('POST', '/v3/images', { name: 'tiny-bad', link: { path: 's3://boot-images/tiny-bad/manifest.json', type: 's3' } })).body.id;
    const created = await svc.request('POST', '/v3/jobs', { job_type: 'customize', artifact_id: bad, public_key_id: keyId, image_root_archive_name: 'never' });
    const done = await until(() => job(created.body.id), ended);
    expect(done.status).toBe('error');
    expect((await history(created.body.id)).reason).toMatch(/^fetching the image failed \(exit status 3\): .*MD5 mismatch: the downloaded image has MD5 [0-9a-f]{32}, expected 0123456789abcdef0123456789abcdef/);
    await expectNothingLeft(created.body.id);
  }, 60_000);
});
