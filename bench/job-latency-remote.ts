/**
 * Job latency on a remote build node, as users feel it: POST /v3/jobs → the shell answers
 * (`waiting_on_user`), and the user's `complete` → `success`, for a customize job of a 1 MiB and
 * of a 1 GiB image, with the reconciler at its deployed 60 s, so what moves the job is the node's
 * own reports (POST /v3/jobs/{id}/checks). The "node" is this host: a real OpenSSH sshd on
 * 127.0.0.1 and podman, as test/integration/remote-node-jobs.test.ts sets it up. Beside each
 * figure: the work's own parts run alone on the same machine (download with MD5, the loop and
 * overlay mounts, mksquashfs of the merged view, MD5, upload), one SSH round trip, and the ratio. Part of `npm run bench`
 * (BENCH_PARTS=joblatencyremote; JOB_LATENCY_REMOTE_MIB=1,1024 sets the sizes).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, generateKey, sshdNode } from '../test/helpers/sshd-node.js';
import { importTestBaseImage, podmanSandbox, requirePodman, TEST_BASE_IMAGE } from '../test/helpers/podman-node.js';
import { buildTinyImage } from '../test/helpers/tiny-image.js';
import { embeddedPart } from './embedded-part.js';

const NODE = 'x3000c0s9b0n0';
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const SQUASHFS_OPTIONS = ['-noI', '-noD', '-noF', '-noX'];

export interface RemoteLatencyRow {
  imageMiB: number;
  reconcilerSeconds: number;
  postToShellMs: number;
  completeToSuccessMs: number;
  /** The work alone: download (curl, MD5 on the way) + the view's mounts + sshd's start (the script's 1 s wait). */
  shellWorkMs: number;
  /** The work alone: mksquashfs + MD5 of the result + upload. */
  successWorkMs: number;
  sshRoundTripMs: number;
  shellRatio: number;
  successRatio: number;
}

const ms = (from: bigint) => Number((process.hrtime.bigint() - from) / 1_000_000n);
/** For what talks to the embedded S3 of this process: its event loop must go on serving. */
async function timedAsync(command: string, args: string[]): Promise<number> {
  const t = process.hrtime.bigint();
  await promisify(execFile)(command, args, { maxBuffer: 1024 * 1024 });
  return ms(t);
}
function timed(command: string, args: string[]): number {
  const t = process.hrtime.bigint();
  execFileSync(command, args, { stdio: 'ignore' });
  return ms(t);
}

export async function benchJobLatencyRemote(sizes = (process.env.JOB_LATENCY_REMOTE_MIB ?? '1,1024').split(',').map(Number)): Promise<RemoteLatencyRow[]> {
  requirePodman();
  const scratch = mkdtempSync(join(tmpdir(), 'ims-bench-remote-'));
  const workDir = join(scratch, 'node-tmp');
  mkdirSync(workDir);
  const podman = podmanSandbox(join(scratch, 'podman'));
  importTestBaseImage(podman, scratch);
  const imsKey = generateKey(scratch, 'ims_key');
  const userKey = generateKey(scratch, 'user_key');
  const node = sshdNode(join(scratch, 'node'), imsKey.publicKey, await freePort());
  await node.start();
  const { startEmbedded, PutObjectCommand, s3Client } = await embeddedPart({
    IMS_JOB_WORKER: 'none',
    TABLE_NAME: 'ims-bench-remote',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    REMOTE_NODE_SSH_KEY_FILE: imsKey.privatePath,
    REMOTE_NODE_HOST_MAP: `${NODE}=127.0.0.1:${node.port}`,
    REMOTE_NODE_KNOWN_HOSTS: `[127.0.0.1]:${node.port} ${node.hostPublicKey}`,
    REMOTE_NODE_WORK_DIR: workDir,
    REMOTE_NODE_LOCAL_DIR: join(scratch, 'local'),
    REMOTE_NODE_PODMAN: podman.prefix,
    REMOTE_NODE_SSHD_IMAGE: TEST_BASE_IMAGE,
    REMOTE_NODE_BUILDER_IMAGE: TEST_BASE_IMAGE,
    REMOTE_NODE_SHELL_LISTEN: '127.0.0.1',
    REMOTE_NODE_SHELL_PORT_BASE: String(await freePort()),
    REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS: '300',
    REMOTE_NODE_PROBE_TIMEOUT_MS: '15000',
    IMS_SQUASHFS_OPTIONS: SQUASHFS_OPTIONS.join(' '),
  });
  const { openSession } = await import('../shared/workers/remote-node/ssh-session.js');
  const reconcilerSeconds = 60;
  const svc = await startEmbedded({ port: 0, s3Port: 0, scratchDir: join(scratch, 's3'), reconcileMs: reconcilerSeconds * 1000 });
  const s3 = s3Client();
  const call = async (method: string, path: string, body?: unknown): Promise<any> => {
    const text = await (await fetch(`${svc.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })).text();
    return text ? JSON.parse(text) : undefined;
  };
  const rows: RemoteLatencyRow[] = [];
  try {
    await call('POST', '/v3/remote-build-nodes', { xname: NODE });
    const keyId = (await call('POST', '/v3/public-keys', { name: 'u', public_key: userKey.publicKey })).id;
    const sshOnce = async (host: string, port: number, key: string, command: string) => {
      const session = await openSession({ xname: NODE, host, port, user: 'root' }, key, 10_000);
      try {
        return await session.run(command, { timeoutMs: 60_000 });
      } finally {
        session.close();
      }
    };
    const rtStart = process.hrtime.bigint();
    await sshOnce('127.0.0.1', node.port, readFileSync(imsKey.privatePath, 'utf8'), 'true');
    const sshRoundTripMs = ms(rtStart);

    for (const mib of sizes) {
      const dir = join(scratch, `img-${mib}`);
      const tiny = buildTinyImage(dir, (root) => execFileSync('sh', ['-c', `head -c ${mib * 1024 * 1024} /dev/urandom > ${join(root, 'data.bin')}`]));
      const squashfs = join(dir, 'rootfs.sqsh');
      execFileSync('mksquashfs', [tiny.root, squashfs, '-noappend', '-no-progress', '-quiet', ...SQUASHFS_OPTIONS, '-all-root'], { stdio: 'ignore' });
      const md5 = createHash('md5');
      for await (const chunk of createReadStream(squashfs)) md5.update(chunk as Buffer);
      const sum = md5.digest('hex');
      const size = statSync(squashfs).size;
      const prefix = `bench-${mib}`;
      await s3.send(new PutObjectCommand({ Bucket: 'boot-images', Key: `${prefix}/rootfs`, Body: createReadStream(squashfs), ContentLength: size, Metadata: { md5sum: sum } }));
      for (const name of ['kernel', 'initrd']) {
        await s3.send(new PutObjectCommand({ Bucket: 'boot-images', Key: `${prefix}/${name}`, Body: readFileSync(name === 'kernel' ? tiny.kernel : tiny.initrd) }));
      }
      const artifact = (name: string, type: string) => ({ link: { path: `s3://boot-images/${prefix}/${name}`, type: 's3' }, md5: name === 'rootfs' ? sum : '', type });
      const manifest = { version: '1.0', created: '2026-01-02 03:04:05', artifacts: [artifact('rootfs', 'application/vnd.cray.image.rootfs.squashfs'), artifact('kernel', 'application/vnd.cray.image.kernel'), artifact('initrd', 'application/vnd.cray.image.initrd')] };
      await s3.send(new PutObjectCommand({ Bucket: 'boot-images', Key: `${prefix}/manifest.json`, Body: JSON.stringify(manifest) }));
      const imageId = (await call('POST', '/v3/images', { name: prefix, arch: ARCH, link: { path: `s3://boot-images/${prefix}/manifest.json`, type: 's3' } })).id;

      // The job, as a user sees it.
      const posted = process.hrtime.bigint();
      const job = await call('POST', '/v3/jobs', { job_type: 'customize', artifact_id: imageId, public_key_id: keyId, image_root_archive_name: `${prefix}-custom` });
      const until = async (want: (j: any) => boolean, what: string) => {
        for (const deadline = Date.now() + 900_000; ; ) {
          const j = await call('GET', `/v3/jobs/${job.id}`);
          if (want(j)) return j;
          if (j.status === 'error' || Date.now() > deadline) throw new Error(`job ${job.id} did not reach ${what}: ${j.status} ${(await call('GET', `/v3/jobs/${job.id}/history`)).reason ?? ''}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      const waiting = await until((j) => j.status === 'waiting_on_user', 'waiting_on_user');
      const postToShellMs = ms(posted);
      const { host, port } = waiting.ssh_containers[0].connection_info.customer_access;
      const completed = process.hrtime.bigint();
      await sshOnce(host, port, readFileSync(userKey.privatePath, 'utf8'), 'echo bench > /mnt/image/image-root/etc/motd; touch /mnt/image/complete');
      await until((j) => j.status === 'success', 'success');
      const completeToSuccessMs = ms(completed);

      // The work's own parts, alone, on the same machine.
      const alone = join(dir, 'alone');
      mkdirSync(alone);
      const url = await svc.app.artifacts.presignGet({ bucket: 'boot-images', key: `${prefix}/rootfs` }, 3600);
      const download = await timedAsync('sh', ['-c', `curl -sS -f -o - '${url}' | tee ${alone}/image.sqsh | md5sum >/dev/null`]);
      // The copy-on-write view, as the node mounts it (customize-view.ts), squashed as the container does.
      for (const d of ['lower', 'upper', 'work', 'root']) mkdirSync(join(alone, d));
      const mount = timed('sh', ['-c', `mount -t squashfs -o loop,ro ${alone}/image.sqsh ${alone}/lower && mount -t overlay overlay -o lowerdir=${alone}/lower,upperdir=${alone}/upper,workdir=${alone}/work ${alone}/root`]);
      let squash: number;
      try {
        squash = timed('mksquashfs', [join(alone, 'root'), join(alone, 'new.sqsh'), '-noappend', '-no-progress', '-quiet', ...SQUASHFS_OPTIONS]);
      } finally {
        execFileSync('sh', ['-c', `umount ${alone}/root; umount ${alone}/lower`]);
      }
      const sums = timed('md5sum', [join(alone, 'new.sqsh')]);
      const put = process.hrtime.bigint();
      await s3.send(new PutObjectCommand({ Bucket: 'boot-images', Key: `${prefix}/alone`, Body: createReadStream(join(alone, 'new.sqsh')), ContentLength: statSync(join(alone, 'new.sqsh')).size }));
      const upload = ms(put);
      const shellWorkMs = download + mount + 1000;
      const successWorkMs = squash + sums + upload;
      rows.push({
        imageMiB: mib,
        reconcilerSeconds,
        postToShellMs,
        completeToSuccessMs,
        shellWorkMs,
        successWorkMs,
        sshRoundTripMs,
        shellRatio: Math.round((postToShellMs / shellWorkMs) * 10) / 10,
        successRatio: Math.round((completeToSuccessMs / successWorkMs) * 10) / 10,
      });
      rmSync(dir, { recursive: true, force: true });
      await call('DELETE', `/v3/jobs/${job.id}`);
    }
  } finally {
    await svc.stop();
    await node.stop();
    // A job the run did not see to its end may still have its view mounted: never remove across it.
    execFileSync('sh', ['-c', `findmnt -rn -o TARGET | grep -F '${scratch}/' | sort -r | xargs -r -n1 umount -l`]);
    try {
      podman.reset();
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  return rows;
}
