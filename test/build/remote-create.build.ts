/**
 * `npm run test:build`, remote build nodes: one real create job on the remote-node worker. The
 * node is this host, reached through a real OpenSSH sshd on 127.0.0.1 (test/helpers/sshd-node.ts),
 * its podman set up as in the remote-node integration tests (test/helpers/podman-node.ts: own
 * storage, runc, explicit ulimits, no network unless asked). Its builder image is made here and
 * never pulled: `debootstrap --variant=minbase bookworm` from the host's Debian mirror (first
 * URIs of /etc/apt/sources.list.d/debian.sources), `podman import`ed, then `podman build
 * --network=host` FROM it with kiwi installed from the mirror. The recipe in
 * test/fixtures/kiwi-debian-bookworm is built on the node by kiwi-ng, squashed there, fetched
 * back and registered with rootfs, kernel, initrd and package list; afterwards nothing of the
 * job is left on the node. Prints the wall time of making the builder image and of each stage.
 * Takes several minutes and needs the mirror: it is kept out of `npm test`.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startTestService, type TestService } from '../helpers/service.js';
import { requireHostTools } from '../helpers/tiny-image.js';
import { leftovers, NOTHING_LEFT } from '../helpers/host-leftovers.js';
import { freePort, generateKey, sshdNode, type SshdNode } from '../helpers/sshd-node.js';
import { leftOnNode, NOTHING_ON_NODE, podmanSandbox, type PodmanSandbox } from '../helpers/podman-node.js';
import { until } from '../helpers/until.js';
import { debianMirror, jobEnd, printFailure, registerDebianRecipe, stageTimes } from './create-job.js';

const NODE = 'x3000c0s3b0n0';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const BASE_IMAGE = 'localhost/ims-test-debian:bookworm-minbase';
const BUILDER_IMAGE = 'localhost/ims-test-kiwi-builder:1';
// Not under /tmp, which may be a small tmpfs: the builder image and the kiwi root take a few GiB.
const scratchRoot = '/var/lib/ims';

let svc: TestService;
let scratch: string;
let workDir: string;
let localDir: string;
let podman: PodmanSandbox;
let node: SshdNode;
const builderTimes: string[] = [];

const exec = promisify(execFile);
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');


/** Runs a bash script (pipefail); rejects with its stderr. */
function bash(script: string): Promise<unknown> {
  return exec('bash', ['-o', 'pipefail', '-c', script], { maxBuffer: 64 * 1024 * 1024 });
}

async function timed(what: string, work: () => Promise<unknown>): Promise<void> {
  const started = Date.now();
  await work();
  builderTimes.push(`  ${what.padEnd(14)} ${((Date.now() - started) / 1000).toFixed(1).padStart(7)} s`);
}

/** The node's builder image, made from the mirror alone: debootstrap, import, build FROM it. */
async function makeBuilderImage(): Promise<void> {
  const mirror = debianMirror();
  const root = join(scratch, 'builder-root');
  // A private mount namespace: debootstrap's mounts in the new root go with it, even when it is killed.
  await timed('debootstrap', () =>
    exec('unshare', ['--mount', '--propagation', 'private', 'debootstrap', '--variant=minbase', `--keyring=${KEYRING}`, 'bookworm', root, mirror], {
      maxBuffer: 64 * 1024 * 1024,
    }),
  );
  await timed('podman import', () => bash(`tar -C '${root}' -c . | ${podman.prefix} import - ${BASE_IMAGE}`));
  rmSync(root, { recursive: true, force: true });
  const context = join(scratch, 'builder-context');
  mkdirSync(context);
  writeFileSync(
    join(context, 'Containerfile'),
    [
      `FROM ${BASE_IMAGE}`,
      // kiwi-ng and what the worker's build script runs (mksquashfs; the rest is in minbase), from
      // the mirror that debootstrap wrote into the image's sources.list.
      'RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kiwi kiwi-systemdeps-core squashfs-tools xz-utils zstd \\',
      '  && apt-get clean && rm -rf /var/lib/apt/lists/*',
      '',
    ].join('\n'),
  );
  await timed('podman build', () => bash(`${podman.prefix} build --pull=never --network=host --tag ${BUILDER_IMAGE} '${context}'`));
}

beforeAll(async () => {
  requireHostTools(
    ['sshd', 'ssh-keygen', 'tar', 'unsquashfs', 'unshare'],
    [
      { path: '/usr/sbin/debootstrap', pkg: 'debootstrap' },
      { path: '/usr/bin/podman', pkg: 'podman' },
      { path: '/usr/sbin/runc', pkg: 'runc' },
      { path: KEYRING, pkg: 'debian-archive-keyring' },
    ],
  );
  mkdirSync(scratchRoot, { recursive: true });
  scratch = mkdtempSync(join(scratchRoot, 'remote-create-'));
  workDir = join(scratch, 'node-work');
  localDir = join(scratch, 'local');
  mkdirSync(workDir);
  podman = podmanSandbox(join(scratch, 'podman'));
  await makeBuilderImage();

  const imsKey = generateKey(scratch, 'ims_remote_key');
  node = sshdNode(join(scratch, 'node'), imsKey.publicKey, await freePort());
  await node.start();
  Object.assign(process.env, {
    // A job that is not placed on the node goes to no worker and fails at once.
    IMS_JOB_WORKER: 'none',
    REMOTE_NODE_SSH_KEY_FILE: imsKey.privatePath,
    REMOTE_NODE_HOST_MAP: `${NODE}=127.0.0.1:${node.port}`,
    REMOTE_NODE_WORK_DIR: workDir,
    REMOTE_NODE_LOCAL_DIR: localDir,
    REMOTE_NODE_PODMAN: podman.prefix,
    REMOTE_NODE_BUILDER_IMAGE: BUILDER_IMAGE,
    // kiwi in the builder container reaches the mirror through the node's network.
    REMOTE_NODE_BUILD_NETWORK: 'host',
  });
  svc = await startTestService({ reconcileMs: 1000 });
}, 30 * 60_000);

afterAll(async () => {
  await svc?.stop();
  await node?.stop();
  try {
    podman?.reset();
  } finally {
    for (const name of Object.keys(process.env).filter((n) => n.startsWith('REMOTE_NODE_') || n === 'IMS_JOB_WORKER')) delete process.env[name];
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}, 120_000);

async function waitForCleanup(id: string): Promise<any> {
  const finished = (h: any) => h.events.some((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'cleanup');
  return until(() => svc.request('GET', `/v3/jobs/${id}/history`).then((r) => r.body), finished, 120_000);
}

async function s3Bytes(path: string): Promise<Buffer> {
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(path)!;
  const out = await svc.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

describe('a real create job on a remote build node', () => {
  test('kiwi-ng builds the Debian recipe in the node’s builder container; the image is registered with rootfs, kernel, initrd and package list; nothing stays on the node', async () => {
    process.stdout.write(`\nbuilder image ${BUILDER_IMAGE} made on the node:\n${builderTimes.join('\n')}\n`);
    expect((await svc.request('POST', '/v3/remote-build-nodes', { xname: NODE })).status).toBe(201);
    const { recipeId, keyId } = await registerDebianRecipe(svc, scratch, { arch: 'x86_64' });

    const started = Date.now();
    const created = await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'debian12-remote' });
    expect(created.status).toBe(201);
    expect({ arch: created.body.arch, node: created.body.remote_build_node }).toEqual({ arch: 'x86_64', node: NODE });
    const id: string = created.body.id;
    const { job: current, seconds: total } = await jobEnd(svc, id, started);
    const history = (await svc.request('GET', `/v3/jobs/${id}/history`)).body;
    if (current.status !== 'success') await printFailure(svc, id, (await waitForCleanup(id)).events);
    expect({ status: current.status, reason: history.reason }).toEqual({ status: 'success', reason: null });
    expect(history.worker).toBe('remote-node');
    expect(history.events.map((e: { detail?: string }) => e.detail)).toContainEqual(expect.stringMatching(new RegExp(`^placed on ${NODE}: 0 jobs, x86_64`)));
    const statuses = history.events.filter((e: { event: string }) => e.event === 'status').map((e: { status: string }) => e.status);
    expect(statuses).toEqual(['fetching_recipe', 'building_image', 'packaging_artifacts', 'success']);

    const imageId: string = current.resultant_image_id;
    const image = (await svc.request('GET', `/v3/images/${imageId}`)).body;
    expect({ name: image.name, arch: image.arch, link: image.link.path }).toEqual({ name: 'debian12-remote', arch: 'x86_64', link: `s3://boot-images/${imageId}/manifest.json` });
    const manifest = JSON.parse((await s3Bytes(image.link.path)).toString('utf8'));
    const artifacts = manifest.artifacts as { type: string; md5: string; link: { path: string } }[];
    expect(artifacts.map((a) => a.type)).toEqual([
      'application/vnd.cray.image.rootfs.squashfs',
      'application/vnd.cray.image.kernel',
      'application/vnd.cray.image.initrd',
      'application/vnd.ims.image.packages',
    ]);
    // Each artifact where the original puts it, with the MD5 of its bytes in the manifest.
    const files: Record<string, string> = {};
    for (const [i, name] of ['rootfs', 'kernel', 'initrd', 'packages'].entries()) {
      const bytes = await s3Bytes(artifacts[i].link.path);
      expect({ path: artifacts[i].link.path, md5: artifacts[i].md5 }).toEqual({ path: `s3://boot-images/${imageId}/${name}`, md5: md5(bytes) });
      files[name] = join(scratch, name);
      writeFileSync(files[name], bytes);
    }
    expect(readFileSync(files.kernel).subarray(0x202, 0x206).toString('latin1')).toBe('HdrS'); // the x86 boot protocol's magic
    expect(readFileSync(files.initrd).length).toBeGreaterThan(1024 * 1024);
    expect(readFileSync(files.packages, 'utf8')).toMatch(/^linux-image-amd64\|None\|/m);
    const listing = execFileSync('unsquashfs', ['-l', files.rootfs], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(listing).toContain('squashfs-root/usr/bin/systemctl');
    expect(listing).not.toContain('squashfs-root/image/config.xml');

    // The cleanup stage keeps the node's logs, then removes the job's container, image and directory.
    const final = await waitForCleanup(id);
    process.stdout.write(`\nwall time per stage of create job ${id} on ${NODE}:\n${stageTimes(final.events)}\njob ended after ${total} s\n`);
    const logs = (await svc.request('GET', `/v3/jobs/${id}/logs`)).body.logs as { name: string }[];
    expect(logs.map((l) => l.name)).toEqual(expect.arrayContaining(['kiwi.log', 'kiwi.out', 'mksquashfs.log', 'container.log']));
    expect(await until(() => leftOnNode(podman, { workDir, localDir }, id), (l) => JSON.stringify(l) === JSON.stringify(NOTHING_ON_NODE), 20_000)).toEqual(NOTHING_ON_NODE);
    // Nor a process or a mount (kiwi's, in the builder container) that names the job.
    expect(leftovers(id, workDir)).toEqual(NOTHING_LEFT);
  }, 60 * 60_000);
});
