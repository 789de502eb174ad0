/**
 * A restarted service picks its local jobs up (and the embedded runtime's default worker is the
 * local one): the embedded runtime (records and artifacts
 * persisted in a data directory) is stopped while a customize job waits for its user; the
 * job's sshd keeps serving, and once the service is back the user's `complete` is noticed and
 * the image registered, as if nothing had happened.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startEmbedded, type EmbeddedService } from '#infra/local/embedded.js';
import { makeS3Client } from '#shared/clients.js';
import { readSettings } from '#shared/config.js';
import { BUSYBOX_REQUIREMENT, buildTinyImage, registerTinyImage, requireHostTools, type ImageApi } from '../helpers/tiny-image.js';
import { leftovers, NOTHING_LEFT } from '../helpers/host-leftovers.js';
import { untilWith } from '../helpers/until.js';

const until = untilWith({ ms: 30_000, everyMs: 100 });

const workRoot = `/var/lib/ims/test-restart-${process.pid}-${Date.now()}`;
let scratch: string;
let running: EmbeddedService | undefined;

function api(service: EmbeddedService): ImageApi & { stop(): void } {
  const s3 = makeS3Client(readSettings());
  return {
    request: async (method, path, body) => {
      const res = await fetch(`${service.url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    putObject: async (bucket, key, body, metadata) => {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
    },
    stop: () => s3.destroy(),
  };
}

function ssh(keyFile: string, host: string, port: number, command: string): Promise<number> {
  const args = ['-F', '/dev/null', '-i', keyFile, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `root@${host}`, command];
  return new Promise((resolve) => execFile('ssh', args, { timeout: 30_000 }, (error) => resolve(error ? Number((error as { code?: number }).code ?? 1) : 0)));
}

beforeAll(() => {
  requireHostTools(['mksquashfs', 'unsquashfs', 'sshd', 'ssh-keygen', 'sftp-server', 'curl', 'unshare'], [BUSYBOX_REQUIREMENT, { path: '/usr/bin/ssh', pkg: 'openssh-client' }]);
  scratch = mkdtempSync(join(tmpdir(), 'ims-restart-'));
  process.env.TABLE_NAME = `ims-restart-${randomUUID().slice(0, 8)}`;
  // No IMS_JOB_WORKER: the embedded runtime's default is the local worker.
  delete process.env.IMS_JOB_WORKER;
  process.env.IMS_WORK_ROOT = workRoot;
});

afterAll(async () => {
  await running?.stop();
  delete process.env.IMS_WORK_ROOT;
  rmSync(scratch, { recursive: true, force: true });
  rmSync(workRoot, { recursive: true, force: true });
});

test('a job waiting for its user survives a restart of the service and completes after it', async () => {
  const dataDir = join(scratch, 'data');
  const start = () => startEmbedded({ port: 0, dataDir, reconcileMs: 200, workflow: { retryMs: 10 } });
  const image = buildTinyImage(join(scratch, 'image'));
  const keyFile = join(scratch, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);

  running = await start();
  let client = api(running);
  const imageId = await registerTinyImage(client, image, 'restart-source');
  const keyId = (await client.request('POST', '/v3/public-keys', { name: 'k', public_key: readFileSync(`${keyFile}.pub`, 'utf8') })).body.id;
  const id: string = (await client.request('POST', '/v3/jobs', { job_type: 'customize', artifact_id: imageId, public_key_id: keyId, image_root_archive_name: 'restarted' })).body.id;
  const waiting = await until(() => client.request('GET', `/v3/jobs/${id}`).then((r) => r.body), (j) => j.status === 'waiting_on_user' || j.status === 'error');
  expect(waiting.status).toBe('waiting_on_user');
  expect((await client.request('GET', `/v3/jobs/${id}/history`)).body.worker).toBe('local');
  const { host, port } = waiting.ssh_containers[0].connection_info.customer_access;

  client.stop();
  await running.stop();
  running = undefined;
  // The service is down; the job's sshd is not.
  expect(await ssh(keyFile, host, port, 'echo restarted > etc/motd')).toBe(0);

  running = await start();
  client = api(running);
  // The shell ends the moment the job sees the verdict: the command's exit status may go with it.
  await ssh(keyFile, host, port, 'touch /mnt/image/complete');
  const done = await until(() => client.request('GET', `/v3/jobs/${id}`).then((r) => r.body), (j) => j.status === 'success' || j.status === 'error');
  expect(done.status).toBe('success');
  expect((await client.request('GET', `/v3/images/${done.resultant_image_id}`)).body.name).toBe('restarted');
  const cleaned = await until(
    () => client.request('GET', `/v3/jobs/${id}/history`).then((r) => r.body.events as { event: string; stage?: string }[]),
    (events) => events.some((e) => e.event === 'stage-finished' && e.stage === 'cleanup'),
  );
  expect(cleaned.at(-1)).toMatchObject({ event: 'stage-finished', stage: 'cleanup' });
  const left = await until(async () => leftovers(id, workRoot), (l) => l.processes.length === 0 && !l.workDir, 15_000);
  expect(left).toEqual(NOTHING_LEFT);
  client.stop();
}, 120_000);
