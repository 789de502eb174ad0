/**
 * Jobs end to end on the kubernetes worker with a pod-playing fake cluster: the embedded service
 * creates the original's objects through the real @kubernetes/client-node against the fake API
 * server (every object validated against the Kubernetes schemas), and test/helpers/pod-player.ts
 * plays each Job's pod from the Job's own spec: its environment (API_GATEWAY_HOSTNAME, IMS_URL,
 * IMS_JOB_ID, the S3 endpoint and key from the `ims-s3-credentials` Secret the worker wrote), the
 * download of its pre-signed URL, and ims-python-helper's calls under `/apis/ims`.
 *
 * Not covered (needs a real cluster): the container images and their scripts, scheduling, OAuth.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { EMBEDDED_S3_CREDENTIALS } from '#infra/local/embedded.js';
import { collections, FakeKubeApi, validateWithKubernetesModels } from '../helpers/fake-kube-api.js';
import { PodPlayer } from '../helpers/pod-player.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { until } from '../helpers/until.js';

const NS = 'ims';
const RECIPE = 'a kiwi-ng recipe archive';
let fake: FakeKubeApi;
let player: PodPlayer;
let svc: TestService;
let dir: string;
let recipeId: string;
let keyId: string;
const saved = { ...process.env };

function kubeconfigFile(url: string): string {
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'tester', user: { token: 't' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'tester' } }],
      'current-context': 'fake',
    }),
  );
  return path;
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ims-pod-player-'));
  fake = await FakeKubeApi.start({ validate: validateWithKubernetesModels });
  fake.putSigningKeys();
  player = PodPlayer.attach(fake);
  process.env.KUBECONFIG = kubeconfigFile(fake.url);
  process.env.IMS_JOB_WORKER = 'kubernetes';
  // No reconciler: the jobs must move on through the pods' reports alone (the callback path).
  svc = await startTestService({ reconcileMs: 0 });
  // Where the pods reach IMS: the embedded server, over plain HTTP (the worker reads these when
  // the first job needs it).
  process.env.API_GATEWAY_HOSTNAME = new URL(svc.url).host;
  process.env.IMS_JOB_API_SCHEME = 'http';
  await svc.putObject('ims', 'recipes/pods/recipe.tgz', RECIPE, { md5sum: md5(RECIPE) });
  recipeId = (await svc.request('POST', '/v3/recipes', { name: 'pods', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/pods/recipe.tgz', type: 's3' } })).body.id;
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' })).body.id;
});

// Every call the worker made is one the shipped Role (deploy/kubernetes) allows.
afterEach(() => fake.assertWithinRole());

afterAll(async () => {
  await Promise.all(player.pods.map((p) => p.done));
  await svc.stop();
  await fake.stop();
  for (const name of ['KUBECONFIG', 'IMS_JOB_WORKER', 'API_GATEWAY_HOSTNAME', 'IMS_JOB_API_SCHEME']) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
  rmSync(dir, { recursive: true, force: true });
});

async function finished(id: string) {
  return until(
    async () => (await svc.request('GET', `/v3/jobs/${id}/history`)).body,
    (h) => h.events.some((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'cleanup'),
  );
}

/** What ims-python-helper's image_upload_artifacts sends after `packaging_artifacts`. */
function uploadCalls(jobId: string, imageId: string): string[] {
  const s3 = (key: string) => [`S3 PUT boot-images/${imageId}/${key}`, `S3 HEAD boot-images/${imageId}/${key}`];
  return [
    'POST /images',
    ...['rootfs', 'kernel', 'initrd', 'boot_parameters', 'manifest.json'].flatMap(s3),
    `PATCH /images/${imageId}`,
    `PATCH /jobs/${jobId}`,
    `PATCH /jobs/${jobId}`,
  ];
}

let createdImageId: string;

describe('a pod-playing fake cluster', () => {
  test('create: the pod reports under /apis/ims, uploads with the ims-s3-credentials key, registers its image; the job ends in success', async () => {
    const job = (await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'pod-built' })).body;
    const history = await finished(job.id);
    expect(history.status).toBe('success');

    const pod = player.pod(job.kubernetes_job)!;
    await pod.done;
    expect({ outcome: pod.outcome, reason: pod.reason }).toEqual({ outcome: 'succeeded', reason: undefined });
    expect(pod.baseUrl).toBe(`${svc.url}/apis/ims`);
    const imageId = pod.imageId!;
    expect(pod.calls).toEqual([
      `PATCH /jobs/${job.id}`,
      'GET /ims/recipes/pods/recipe.tgz',
      `PATCH /jobs/${job.id}`,
      `PATCH /jobs/${job.id}`,
      `PATCH /jobs/${job.id}`,
      ...uploadCalls(job.id, imageId),
    ]);

    // The worker wrote the pods' S3 access before the Job, from the embedded S3's key.
    const calls = fake.calls();
    expect(calls.indexOf(`POST ${collections.secrets(NS)}`)).toBeGreaterThanOrEqual(0);
    expect(calls.indexOf(`POST ${collections.secrets(NS)}`)).toBeLessThan(calls.indexOf(`POST ${collections.jobs(NS)}`));
    const secret = fake.get(collections.secrets(NS), 'ims-s3-credentials')!;
    const data = Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    expect(data).toMatchObject({ access_key: EMBEDDED_S3_CREDENTIALS.accessKeyId, secret_key: EMBEDDED_S3_CREDENTIALS.secretAccessKey, s3_endpoint: svc.s3Endpoint });
    expect(fake.rejected).toEqual([]);

    // The image is registered as the helper registers it, and is the job's result.
    const record = (await svc.request('GET', `/v3/jobs/${job.id}`)).body;
    expect(record).toMatchObject({ status: 'success', resultant_image_id: imageId });
    const image = (await svc.request('GET', `/v3/images/${imageId}`)).body;
    expect(image).toMatchObject({ name: 'pod-built', arch: 'x86_64', link: { path: `s3://boot-images/${imageId}/manifest.json`, type: 's3' } });
    const manifest = JSON.parse((await svc.getObjectText('boot-images', `${imageId}/manifest.json`))!);
    expect(manifest.version).toBe('1.0');
    expect(manifest.artifacts.map((a: { type: string }) => a.type)).toEqual([
      'application/vnd.cray.image.rootfs.squashfs',
      'application/vnd.cray.image.kernel',
      'application/vnd.cray.image.initrd',
      'application/vnd.cray.image.parameters.boot',
    ]);
    const rootfs = await svc.s3.send(new HeadObjectCommand({ Bucket: 'boot-images', Key: `${imageId}/rootfs` }));
    expect(rootfs.Metadata).toMatchObject({ 'x-shasta-ims-job-id': job.id, 'x-shasta-ims-image-id': imageId, md5sum: manifest.artifacts[0].md5 });
    createdImageId = imageId;
  });

  test('customize: the pod downloads the image rootfs from its pre-signed URL (MD5 checked), waits for the user, registers a new image', async () => {
    expect(createdImageId).toBeDefined();
    const job = (await svc.request('POST', '/v3/jobs', { job_type: 'customize', artifact_id: createdImageId, public_key_id: keyId, image_root_archive_name: 'pod-customized' })).body;
    const history = await finished(job.id);
    expect(history.status).toBe('success');
    const pod = player.pod(job.kubernetes_job)!;
    await pod.done;
    expect({ outcome: pod.outcome, reason: pod.reason }).toEqual({ outcome: 'succeeded', reason: undefined });
    const imageId = pod.imageId!;
    expect(imageId).not.toBe(createdImageId);
    expect(pod.calls).toEqual([
      `PATCH /jobs/${job.id}`,
      `GET /boot-images/${createdImageId}/rootfs`,
      `PATCH /jobs/${job.id}`,
      `PATCH /jobs/${job.id}`,
      ...uploadCalls(job.id, imageId),
    ]);
    const statuses = history.events.filter((e: { event: string }) => e.event === 'status').map((e: { status: string }) => e.status);
    expect(statuses).toEqual(expect.arrayContaining(['fetching_image', 'waiting_on_user', 'packaging_artifacts', 'success']));
    expect((await svc.request('GET', `/v3/jobs/${job.id}`)).body.resultant_image_id).toBe(imageId);
    expect((await svc.request('GET', `/v3/images/${imageId}`)).body).toMatchObject({ name: 'pod-customized', link: { path: `s3://boot-images/${imageId}/manifest.json` } });
    expect(fake.rejected).toEqual([]);
  });

  test('the fake cluster records what the worker asked of it: objects made and removed, and no poll while the jobs ran', () => {
    const calls = fake.calls();
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => /^(GET|POST|PUT|PATCH|DELETE) \//.test(c))).toBe(true);
    expect(calls.filter((c) => c === `POST ${collections.jobs(NS)}`)).toHaveLength(2);
    // From a Job's creation to its cleanup the worker reads nothing: every stage moved on at a pod's PATCH.
    for (let at = calls.indexOf(`POST ${collections.jobs(NS)}`); at >= 0; at = calls.indexOf(`POST ${collections.jobs(NS)}`, at + 1)) {
      const rest = calls.slice(at + 1);
      const cleanup = rest.findIndex((c) => c.startsWith('DELETE '));
      expect(cleanup).toBeGreaterThan(-1);
      expect(rest.slice(0, cleanup).filter((c) => c.startsWith('GET '))).toEqual([]);
    }
  });
});
