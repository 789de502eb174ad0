/**
 * Jobs on remote build nodes, for real: the embedded service places each job on a "node" (a real
 * OpenSSH sshd on 127.0.0.1, root login with a generated key) and the remote-node worker runs it
 * there with the node's podman over SSH. Every image is built on the node FROM a local base image
 * made here with `podman import`; nothing is pulled.
 *
 * The create flow uses a STUB kiwi-ng inside that base image (test/helpers/podman-node.ts): it
 * writes a tiny root instead of running a real kiwi build (minutes, and the Debian mirror); the
 * worker's own build script, templating, squash, transfer and register all run for real. The
 * real build runs in `npm run test:build` (test/build/remote-create.build.ts).
 *
 * Every stage invocation runs as Lambda runs it (infra/local/lambda-sandbox.ts): a process of its
 * own, the deployed timeout, and a TMPDIR of only 64 MiB, so a stage that brought an image
 * through the function would fail here. One customize job works on an image of more than 1 GiB.
 *
 * After every job nothing of it is left on the node: no job directory, no container, no image.
 * Without podman, runc, openssh-server, squashfs-tools or busybox-static the tests fail and say
 * what to install (npm test installs them first, scripts/host-setup.mjs).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { FUNCTION_SIZING } from '#infra/constructs/function-sizing.js';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createReadStream, statSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LambdaSandbox } from '#infra/local/lambda-sandbox.js';
import { TASK_STATES } from '#shared/workflow/definition-names.js';
import { getJobState } from '#shared/domain/job-state.js';
import type { NodeLoad } from '#shared/domain/node-placement.js';
import { openSession } from '#shared/workers/remote-node/ssh-session.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { freePort, generateKey, sshdNode, type SshdNode, type TestKey } from '../helpers/sshd-node.js';
import { importTestBaseImage, leftOnNode as jobLeftOnNode, NOTHING_ON_NODE, podmanSandbox, requirePodman, TEST_BASE_IMAGE, type PodmanSandbox } from '../helpers/podman-node.js';
import { buildTinyImage, unsquash } from '../helpers/tiny-image.js';
import { untilWith } from '../helpers/until.js';

/** A dpkg database the customize shell writes into an image that had none: one package installed. */
const DPKG_HTOP = 'Package: htop\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.2.2-2\n';
const until = untilWith({ ms: 60_000, everyMs: 100 });

const NODE_A = 'x3000c0s1b0n0';
const NODE_B = 'x3000c0s2b0n0';
// Above two sandboxed invocations (a poll, then the cleanup that records the error) on a busy host.
const HEARTBEAT_TIMEOUT_S = 6;
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

let svc: TestService;
let scratch: string;
let workDir: string;
let localDir: string;
let podman: PodmanSandbox;
let nodes: SshdNode[];
let userKey: TestKey;
let keyId: string;
let imageId: string;
let tinyKernel: string;
let sandbox: LambdaSandbox;
/**
 * Whether the reconciler's passes run. Off, only the stage entries and the node's reports
 * (node-reports.ts: POST /v3/jobs/{id}/checks) move a job on.
 */
let reconciling = true;

/** Runs `body` with the reconciler off: the job must be driven by its node's reports alone. */
async function withoutReconciler<T>(body: () => Promise<T>): Promise<T> {
  reconciling = false;
  try {
    return await body();
  } finally {
    reconciling = true;
  }
}

/** The stage invocations' TMPDIR, as small as this so that no image can pass through a stage. */
const STAGE_TMP_MIB = 64;

const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

/** Passes bytes through while hashing them. */
function md5Stream(): { stream: Transform; md5: () => string } {
  const hash = createHash('md5');
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { stream, md5: () => hash.digest('hex') };
}

async function streamMd5(source: Readable): Promise<string> {
  const hashed = md5Stream();
  await pipeline(source, hashed.stream, async (hashedSource: AsyncIterable<Buffer>) => {
    for await (const _chunk of hashedSource) void _chunk;
  });
  return hashed.md5();
}

const fileMd5 = (path: string) => streamMd5(createReadStream(path));

const job = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}`).then((r) => r.body);
const ended = (j: any) => j?.status === 'success' || j?.status === 'error';
const history = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}/history`).then((r) => r.body);

async function registerOnly(...xnames: string[]) {
  expect((await svc.request('DELETE', '/v3/remote-build-nodes')).status).toBe(204);
  for (const xname of xnames) expect((await svc.request('POST', '/v3/remote-build-nodes', { xname })).status).toBe(201);
}

/** What a job may have left on the node (found with podman and the file system, not with the worker). */
const leftOnNode = (id: string) => jobLeftOnNode(podman, { workDir, localDir }, id);

const NOTHING = NOTHING_ON_NODE;

async function expectNothingLeft(id: string): Promise<void> {
  // The cleanup stage runs right after the job's status is final; give it its moment.
  expect(await until(() => leftOnNode(id), (l) => JSON.stringify(l) === JSON.stringify(NOTHING), 20_000)).toEqual(NOTHING);
}

async function s3Bytes(path: string): Promise<Buffer> {
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(path)!;
  const out = await svc.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** The artifacts of a job's resultant image, by manifest type suffix, and its rootfs unsquashed. */
async function resultOf(done: any): Promise<{ files: Record<string, Buffer>; root: string }> {
  const image = (await svc.request('GET', `/v3/images/${done.resultant_image_id}`)).body;
  const manifest = JSON.parse((await s3Bytes(image.link.path)).toString('utf8'));
  const files: Record<string, Buffer> = {};
  for (const a of manifest.artifacts) files[a.type.split('.').pop()] = await s3Bytes(a.link.path);
  const dir = mkdtempSync(join(scratch, 'result-'));
  writeFileSync(join(dir, 'rootfs.sqsh'), files.squashfs);
  return { files, root: unsquash(join(dir, 'rootfs.sqsh'), join(dir, 'root')) };
}

/** Success, or the job's reason in the failure message. */
async function expectSuccess(done: any): Promise<void> {
  expect({ status: done.status, reason: (await history(done.id)).reason }).toEqual({ status: 'success', reason: null });
}

async function nodeLoad(xname: string): Promise<NodeLoad | undefined> {
  return (await svc.app.store.get<NodeLoad>('node-load', xname))?.record;
}

beforeAll(async () => {
  requirePodman();
  scratch = mkdtempSync(join(tmpdir(), 'ims-rnj-'));
  workDir = join(scratch, 'node-tmp');
  mkdirSync(workDir);
  sandbox = await LambdaSandbox.create({ tmpMiB: STAGE_TMP_MIB });
  localDir = join(sandbox.tmpDir, 'ims-remote-node');
  podman = podmanSandbox(join(scratch, 'podman'));
  importTestBaseImage(podman, scratch);

  const imsKey = generateKey(scratch, 'ims_remote_key');
  userKey = generateKey(scratch, 'user_key');
  nodes = [sshdNode(join(scratch, 'a'), imsKey.publicKey, await freePort()), sshdNode(join(scratch, 'b'), imsKey.publicKey, await freePort())];
  await Promise.all(nodes.map((n) => n.start()));

  Object.assign(process.env, {
    IMS_JOB_WORKER: 'scripted',
    REMOTE_NODE_SSH_KEY_FILE: imsKey.privatePath,
    REMOTE_NODE_HOST_MAP: `${NODE_A}=127.0.0.1:${nodes[0].port},${NODE_B}=127.0.0.1:${nodes[1].port}`,
    // The stages run as Lambda functions, which refuse nodes whose host keys are not known.
    REMOTE_NODE_KNOWN_HOSTS: nodes.map((n) => `[127.0.0.1]:${n.port} ${n.hostPublicKey}`).join('\n'),
    REMOTE_NODE_WORK_DIR: workDir,
    REMOTE_NODE_LOCAL_DIR: localDir,
    REMOTE_NODE_PODMAN: podman.prefix,
    REMOTE_NODE_BUILDER_IMAGE: TEST_BASE_IMAGE,
    REMOTE_NODE_SSHD_IMAGE: TEST_BASE_IMAGE,
    REMOTE_NODE_BUILD_NETWORK: 'none',
    REMOTE_NODE_SHELL_LISTEN: '127.0.0.1',
    REMOTE_NODE_SHELL_PORT_BASE: String(await freePort()),
    REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS: String(HEARTBEAT_TIMEOUT_S),
    REMOTE_NODE_PROBE_CACHE_MS: '1',
    // Placement probes the nodes; on a loaded machine a probe takes seconds, and a node that misses
    // the timeout is not placed on (remote-node-health.test.ts tests the timeout itself).
    REMOTE_NODE_PROBE_TIMEOUT_MS: '15000',
    // Squashing without compression keeps the large image's job quick (random data does not compress).
    IMS_SQUASHFS_OPTIONS: '-noI -noD -noF -noX',
  });
  // The default worker: a job that lands there was not placed, which these tests would notice.
  const worker = new ScriptedWorker((bucket, k, body, metadata) => svc.putObject(bucket, k, body, metadata));
  // Every task of the workflow, and every reconciler pass, is one Lambda invocation of its handler, in the sandbox.
  const invoke = (state: string) => (input: unknown) => sandbox.invoke(`functions/workflow/${TASK_STATES[state as keyof typeof TASK_STATES]}`, input);
  svc = await startTestService({
    workers: { scripted: () => worker },
    // The stage handlers run in processes of their own: records where they can reach them.
    recordStore: 'dynalite',
    reconcileMs: 1000,
    reconcile: async () => (reconciling ? sandbox.invoke('functions/workflow/reconcile', {}) : undefined),
    workflow: { wrapTask: (state) => invoke(state) },
  });

  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'user', public_key: userKey.publicKey })).body.id;
  const tiny = buildTinyImage(join(scratch, 'tiny'));
  tinyKernel = readFileSync(tiny.kernel, 'utf8');
  const rootfs = readFileSync(tiny.squashfs);
  await svc.putObject('boot-images', 'tiny/rootfs', rootfs, { md5sum: md5(rootfs) });
  await svc.putObject('boot-images', 'tiny/kernel', tinyKernel);
  await svc.putObject('boot-images', 'tiny/initrd', readFileSync(tiny.initrd));
  const artifact = (name: string, type: string) => ({ link: { path: `s3://boot-images/tiny/${name}`, type: 's3' }, type });
  await svc.putObject(
    'boot-images',
    'tiny/manifest.json',
    JSON.stringify({
      version: '1.0',
      created: '2026-01-02 03:04:05',
      artifacts: [artifact('rootfs', 'application/vnd.cray.image.rootfs.squashfs'), artifact('kernel', 'application/vnd.cray.image.kernel'), artifact('initrd', 'application/vnd.cray.image.initrd')],
    }),
  );
  imageId = (await svc.request('POST', '/v3/images', { name: 'tiny', arch: ARCH, link: { path: 's3://boot-images/tiny/manifest.json', type: 's3' } })).body.id;
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  await sandbox?.close();
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  try {
    podman?.reset();
  } finally {
    for (const name of Object.keys(process.env).filter((n) => n.startsWith('REMOTE_NODE_') || n === 'IMS_JOB_WORKER' || n === 'IMS_SQUASHFS_OPTIONS')) delete process.env[name];
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}, 30_000);

// A test that widens the heartbeat timeout leaves the file's short one behind it, pass or fail.
afterEach(() => {
  if (process.env.REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS) process.env.REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS = String(HEARTBEAT_TIMEOUT_S);
});

/** A recipe archive with one templated config.xml, in S3 and as a recipe record. */
async function recipe(name: string, configXml: string): Promise<string> {
  const dir = join(scratch, `recipe-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.xml'), configXml);
  writeFileSync(join(dir, '.ims_recipe_template.yaml'), 'template_files:\n  - config.xml\n');
  const archive = join(scratch, `recipe-${name}.tgz`);
  execFileSync('tar', ['-czf', archive, '-C', dir, '.']);
  const bytes = readFileSync(archive);
  await svc.putObject('ims', `recipes/${name}/recipe.tgz`, bytes, { md5sum: md5(bytes) });
  const res = await svc.request('POST', '/v3/recipes', {
    name,
    recipe_type: 'kiwi-ng',
    linux_distribution: 'sles15',
    arch: ARCH,
    template_dictionary: [{ key: 'IMAGE_NAME', value: `rendered-${name}` }],
    link: { path: `s3://ims/recipes/${name}/recipe.tgz`, type: 's3' },
  });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function post(jobType: 'create' | 'customize', artifactId: string, name: string, extra: Record<string, unknown> = {}) {
  const res = await svc.request('POST', '/v3/jobs', { job_type: jobType, artifact_id: artifactId, public_key_id: keyId, image_root_archive_name: name, ...extra });
  expect(res.status).toBe(201);
  return res.body;
}

/** Logs into the job's shell as a user would (ssh2 client, the job's public key), runs `command`. */
async function inShell(j: any, command: string): Promise<string> {
  const { host, port } = j.ssh_containers[0].connection_info.customer_access;
  const session = await openSession({ xname: 'job-shell', host, port, user: 'root' }, readFileSync(userKey.privatePath, 'utf8'), 10_000);
  try {
    return await session.run(command, { timeoutMs: 20_000 });
  } finally {
    session.close();
  }
}

async function customizeUntilShell(name: string, extra: Record<string, unknown> = {}) {
  const created = await post('customize', imageId, name, extra);
  const waiting = await until(() => job(created.id), (j) => j.status === 'waiting_on_user' || ended(j));
  expect(waiting.status).toBe('waiting_on_user');
  return waiting;
}

describe('create on a remote build node', () => {
  test('with the reconciler off, driven by the node’s reports alone: the recipe is templated, built by the node’s builder container, squashed there, registered; nothing stays on the node', () =>
    withoutReconciler(async () => {
    await registerOnly(NODE_A);
    const recipeId = await recipe('remote-ok', '<image name="{{ IMAGE_NAME }}"/>\n');
    const created = await post('create', recipeId, 'remote-built');
    expect(created.remote_build_node).toBe(NODE_A);
    const done = await until(() => job(created.id), ended);
    await expectSuccess(done);

    const h = await history(created.id);
    expect(h.worker).toBe('remote-node');
    expect(h.events.map((e: { detail?: string }) => e.detail)).toContainEqual(expect.stringMatching(new RegExp(`^placed on ${NODE_A}: 0 jobs, ${ARCH}`)));
    expect(h.events.filter((e: { event: string }) => e.event === 'status').map((e: { status: string }) => e.status)).toEqual([
      'fetching_recipe',
      'building_image',
      'packaging_artifacts',
      'success',
    ]);

    const { files, root } = await resultOf(done);
    expect(readFileSync(join(root, 'etc', 'recipe-config.xml'), 'utf8')).toBe('<image name="rendered-remote-ok"/>\n');
    // kiwi's description in the root is not part of the image; the newest kernel is.
    expect(existsSync(join(root, 'image'))).toBe(false);
    expect(files.kernel.toString()).toBe('kernel 6.1.0-2\n');
    expect(files.initrd.toString()).toBe('initrd 6.1.0-2\n');

    await expectNothingLeft(created.id);
    // The stages ran with a 64 MiB TMPDIR and left nothing of size there.
    expect(await sandbox.tmpUsedBytes()).toBeLessThan(4 * 1024 ** 2);
    // The job ended: it no longer counts on the node (released right after the node's cleanup).
    expect(await until(async () => (await nodeLoad(NODE_A))?.jobs[created.id], (entry) => entry === undefined, 10_000)).toBeUndefined();
    const state = await until(() => getJobState(svc.app, created.id), (s) => (s.logs ?? []).length > 0, 10_000);
    expect(state.logs!.map((l) => l.name)).toContain('kiwi.log');
  }), 90_000);

  test('a failed build ends in error with kiwi’s reason, and the node is cleaned up after the failure', async () => {
    await registerOnly(NODE_A);
    const recipeId = await recipe('remote-fail', '<image name="FAIL_BUILD"/>\n');
    const created = await post('create', recipeId, 'remote-fail');
    const done = await until(() => job(created.id), ended);
    expect(done.status).toBe('error');
    const h = await history(created.id);
    expect(h.reason).toMatch(new RegExp(`^the build on ${NODE_A} failed: kiwi-ng system prepare exited with status 1 \\(KiwiError: the test recipe asks the build to fail`));
    await expectNothingLeft(created.id);
  }, 60_000);
});

describe('customize on a remote build node', () => {
  test('with the reconciler off, driven by the node’s reports alone: the user reaches the job’s sshd through the record’s connection_info, changes the image, signals complete; the new image is registered', () =>
    withoutReconciler(async () => {
    await registerOnly(NODE_A);
    const waiting = await customizeUntilShell('remote-custom');
    expect(waiting.remote_build_node).toBe(NODE_A);
    const container = waiting.ssh_containers[0];
    expect(container.status).toBe('running');
    expect(container.connection_info.customer_access.host).toBe('127.0.0.1');
    expect(container.connection_info['cluster.local']).toEqual(container.connection_info.customer_access);

    // The image root is a copy-on-write view of the image: mounted, not unpacked.
    const h = await history(waiting.id);
    expect(h.events.map((e: { detail?: string }) => e.detail)).toContainEqual(expect.stringContaining('the image root is mounted copy-on-write'));
    expect(leftOnNode(waiting.id).mounts).toBe(true);
    const out = await inShell(
      waiting,
      `cat /mnt/image/image-root/etc/motd; echo "job $IMS_JOB_ID"; echo customized > /mnt/image/image-root/etc/motd; echo added > /mnt/image/image-root/etc/added; rm /mnt/image/image-root/IMS_TINY_IMAGE; mkdir -p /mnt/image/image-root/var/lib/dpkg; printf '${DPKG_HTOP.replace(/\n/g, '\\n')}' > /mnt/image/image-root/var/lib/dpkg/status; touch /mnt/image/complete`,
    );
    expect(out).toBe(`tiny image\njob ${waiting.id}\n`);
    // The changes are in the upper directory, the deletion as a whiteout (a 0/0 character device).
    expect(execFileSync('stat', ['-c', '%F %t:%T', join(workDir, `ims_${waiting.id}`, 'upper', 'IMS_TINY_IMAGE')], { encoding: 'utf8' }).trim()).toBe('character special file 0:0');

    const done = await until(() => job(waiting.id), ended);
    await expectSuccess(done);
    expect(done.ssh_containers[0].status).toBe('complete');
    const { files, root } = await resultOf(done);
    // Added, changed and deleted, as the user left them; the rest of the image as it was.
    expect(readFileSync(join(root, 'etc', 'motd'), 'utf8')).toBe('customized\n');
    expect(readFileSync(join(root, 'etc', 'added'), 'utf8')).toBe('added\n');
    expect(existsSync(join(root, 'IMS_TINY_IMAGE'))).toBe(false);
    expect(existsSync(join(root, 'bin', 'busybox'))).toBe(true);
    expect(files.kernel.toString()).toBe(tinyKernel);
    expect(files.boot).toBeDefined(); // the kernel parameters (…parameters.boot)
    // The change report, made on the node from the upper layer: exactly what the shell did.
    const changes = await svc.request('GET', `/v3/images/${done.resultant_image_id}/changes`);
    expect(changes.status).toBe(200);
    expect(changes.body).toEqual({
      parent_id: waiting.artifact_id,
      job_id: waiting.id,
      files: {
        added: [
          { path: 'etc/added', type: 'file', size: 6 },
          { path: 'var', type: 'directory', size: 0 },
          { path: 'var/lib', type: 'directory', size: 0 },
          { path: 'var/lib/dpkg', type: 'directory', size: 0 },
          { path: 'var/lib/dpkg/status', type: 'file', size: DPKG_HTOP.length },
        ],
        modified: [{ path: 'etc/motd', type: 'file', size: 11 }],
        deleted: [{ path: 'IMS_TINY_IMAGE', type: 'file', size: 0 }],
      },
      packages: { added: [{ name: 'htop', version: '3.2.2-2', arch: 'amd64' }], removed: [], changed: [] },
    });
    expect((await svc.request('GET', `/v3/images/${done.resultant_image_id}/packages`)).body).toEqual([{ name: 'htop', version: '3.2.2-2', arch: 'amd64' }]);
    await expectNothingLeft(waiting.id);
  }), 90_000);

  test('an image of more than 1 GiB goes from S3 to the node and back without passing through a stage: every invocation is short, TMPDIR stays empty', async () => {
    // A root with 1 GiB of random data, squashed uncompressed: the squashfs really is that large.
    const dir = join(scratch, 'large');
    const tiny = buildTinyImage(dir, (root) => execFileSync('sh', ['-c', `head -c ${1024 ** 3} /dev/urandom > ${join(root, 'large.bin')}`]));
    const squashfs = join(dir, 'large.sqsh');
    execFileSync('mksquashfs', [tiny.root, squashfs, '-noappend', '-no-progress', '-quiet', '-noI', '-noD', '-noF', '-noX', '-all-root'], { stdio: 'ignore' });
    rmSync(tiny.root, { recursive: true, force: true });
    const size = statSync(squashfs).size;
    expect(size).toBeGreaterThan(1024 ** 3);
    const sourceMd5 = await fileMd5(squashfs);
    await svc.s3.send(new PutObjectCommand({ Bucket: 'boot-images', Key: 'large/rootfs', Body: createReadStream(squashfs), ContentLength: size, Metadata: { md5sum: sourceMd5 } }));
    rmSync(squashfs);
    for (const name of ['kernel', 'initrd']) await svc.putObject('boot-images', `large/${name}`, readFileSync(join(scratch, 'tiny', 'root', 'boot', name === 'kernel' ? 'vmlinuz' : 'initrd')));
    const artifact = (name: string, type: string) => ({ link: { path: `s3://boot-images/large/${name}`, type: 's3' }, md5: name === 'rootfs' ? sourceMd5 : '', type });
    await svc.putObject(
      'boot-images',
      'large/manifest.json',
      JSON.stringify({
        version: '1.0',
        created: '2026-01-02 03:04:05',
        artifacts: [artifact('rootfs', 'application/vnd.cray.image.rootfs.squashfs'), artifact('kernel', 'application/vnd.cray.image.kernel'), artifact('initrd', 'application/vnd.cray.image.initrd')],
      }),
    );
    const largeId = (await svc.request('POST', '/v3/images', { name: 'large', arch: ARCH, link: { path: 's3://boot-images/large/manifest.json', type: 's3' } })).body.id;

    await registerOnly(NODE_A);
    // A node busy moving a gigabyte may answer a check late; this job is not about losing nodes
    // (the short timeout of this file is), so it gets a realistic one. Each invocation reads it.
    process.env.REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS = '300';
    const before = sandbox.invocations.length;
    const created = await post('customize', largeId, 'remote-large');
    const waiting = await until(() => job(created.id), (j) => j.status === 'waiting_on_user' || ended(j), 180_000);
    expect({ status: waiting.status, reason: waiting.status === 'error' ? (await history(created.id)).reason : undefined }).toEqual({ status: 'waiting_on_user', reason: undefined });
    expect(await inShell(waiting, 'stat -c %s /mnt/image/image-root/large.bin; touch /mnt/image/complete')).toBe(`${1024 ** 3}\n`);
    const done = await until(() => job(created.id), ended, 180_000);
    await expectSuccess(done);

    // The registered rootfs: its size and MD5 are the node's (recorded in the manifest and the
    // object's metadata), and its bytes hash to that MD5.
    const image = (await svc.request('GET', `/v3/images/${done.resultant_image_id}`)).body;
    const manifest = JSON.parse((await s3Bytes(image.link.path)).toString('utf8'));
    const rootfs = manifest.artifacts.find((a: { type: string }) => a.type === 'application/vnd.cray.image.rootfs.squashfs');
    expect(rootfs.link.path).toBe(`s3://boot-images/${done.resultant_image_id}/rootfs`);
    const head = await svc.s3.send(new HeadObjectCommand({ Bucket: 'boot-images', Key: `${done.resultant_image_id}/rootfs` }));
    expect(head.ContentLength).toBeGreaterThan(1024 ** 3);
    expect(head.Metadata?.md5sum).toBe(rootfs.md5);
    const out = await svc.s3.send(new GetObjectCommand({ Bucket: 'boot-images', Key: `${done.resultant_image_id}/rootfs` }));
    expect(await streamMd5(out.Body as Readable)).toBe(rootfs.md5);
    rmSync(dir, { recursive: true, force: true });

    // No stage invocation waited for a transfer, and none left anything of size behind. (The
    // bound is far above what an invocation takes on its own, about a second: here DynamoDB and
    // S3 share one process with the test, busy serving the gigabyte the node moves.)
    const invocations = sandbox.invocations.slice(before);
    expect(invocations.length).toBeGreaterThanOrEqual(10);
    expect(invocations.filter((i) => i.outcome !== 'ok')).toEqual([]);
    // None came near the deployed timeout (the sandbox would have ended it), whatever the image's
    // size; their durations here are in the bench's and the closing figures, not asserted.
    expect(Math.max(...invocations.map((i) => i.ms))).toBeLessThan(FUNCTION_SIZING.workflow.timeoutSeconds * 1000);
    expect(await sandbox.tmpUsedBytes()).toBeLessThan(4 * 1024 ** 2);
    await expectNothingLeft(created.id);
  }, 420_000);

  test('with the reconciler off: a jailed shell sees the image root as / and signals in its /tmp', () =>
    withoutReconciler(async () => {
    await registerOnly(NODE_A);
    const waiting = await customizeUntilShell('remote-jail', { ssh_containers: [{ name: 'jailed', jail: true }] });
    const out = await inShell(waiting, 'cat /IMS_TINY_IMAGE; rm /etc/motd; touch /jailed-was-here /tmp/complete');
    expect(out).toBe('marker\n');
    const done = await until(() => job(waiting.id), ended);
    await expectSuccess(done);
    const { root } = await resultOf(done);
    expect(existsSync(join(root, 'jailed-was-here'))).toBe(true);
    expect(existsSync(join(root, 'etc', 'motd'))).toBe(false);
    expect(existsSync(join(root, 'tmp', 'complete'))).toBe(false);
    // Changed from inside the jail: the report has the shell's changes, not its signal in /tmp.
    expect((await svc.request('GET', `/v3/images/${done.resultant_image_id}/changes`)).body.files).toEqual({
      added: [{ path: 'jailed-was-here', type: 'file', size: 0 }],
      modified: [],
      deleted: [{ path: 'etc/motd', type: 'file', size: 0 }],
    });
    await expectNothingLeft(waiting.id);
  }), 90_000);

  test('with the node’s reports undelivered (a report URL it cannot reach), the reconciler still finishes the job', async () => {
    await registerOnly(NODE_A);
    const own = process.env.REMOTE_NODE_REPORT_URL;
    // Read by each stage invocation: the node is told a URL where nothing listens.
    process.env.REMOTE_NODE_REPORT_URL = 'http://127.0.0.1:9';
    try {
      const waiting = await customizeUntilShell('remote-unreported');
      expect(await inShell(waiting, 'touch /mnt/image/complete; echo ok')).toBe('ok\n');
      const done = await until(() => job(waiting.id), ended);
      await expectSuccess(done);
    } finally {
      process.env.REMOTE_NODE_REPORT_URL = own;
    }
  }, 90_000);

  test('a job container that dies ends the job in error with the reason, not at waiting_on_user', async () => {
    await registerOnly(NODE_A);
    const waiting = await customizeUntilShell('remote-killed');
    podman.run(`kill ims-${waiting.id}`);
    const killedAt = Date.now();
    const done = await until(() => job(waiting.id), ended, 20_000);
    expect(done.status).toBe('error');
    expect(Date.now() - killedAt).toBeLessThan(HEARTBEAT_TIMEOUT_S * 1000);
    expect((await history(waiting.id)).reason).toBe(`the customize container on ${NODE_A} exited with exit code 137, killed before the user finished`);
    await expectNothingLeft(waiting.id);
  }, 60_000);

  test('a node that goes away ends the job in error within the heartbeat timeout; DELETE cleans the node once it is back', async () => {
    await registerOnly(NODE_B);
    const waiting = await customizeUntilShell('remote-node-lost');
    expect(waiting.remote_build_node).toBe(NODE_B);
    await nodes[1].stop();
    const lostAt = Date.now();
    const done = await until(() => job(waiting.id), ended, 30_000);
    const elapsed = Date.now() - lostAt;
    expect(done.status).toBe('error');
    // The timeout, plus a reconciler pass or two (each a fresh process here) and a refused connection.
    expect(elapsed).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_S * 1000);
    expect(elapsed).toBeLessThan(HEARTBEAT_TIMEOUT_S * 1000 + 15_000);
    expect((await history(waiting.id)).reason).toMatch(new RegExp(`^remote build node ${NODE_B} is unreachable: .*ECONNREFUSED.* \\(no contact for \\d+ s\\)$`));
    // The cleanup stage could not reach the node: its leftovers are there until the node is back.
    // (The job shows `error` before its cleanup stage ends: the node comes back only after it.)
    await until(() => history(waiting.id), (h) => h.events.some((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'cleanup'));
    expect(leftOnNode(waiting.id)).toMatchObject({ dir: true, container: true, image: true });

    await nodes[1].start();
    expect((await svc.request('DELETE', `/v3/jobs/${waiting.id}`)).status).toBe(204);
    expect(leftOnNode(waiting.id)).toEqual(NOTHING);
  }, 90_000);
});
