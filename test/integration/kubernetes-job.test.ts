/**
 * A whole job on the kubernetes worker: POST /jobs on the embedded server, the workflow (the
 * synthesized ASL in aws-local-stepfunctions) creating the original's objects through the real
 * @kubernetes/client-node against the recording fake API server (every object validated against
 * the Kubernetes schemas), a simulated job pod reporting over HTTP exactly as ims-python-helper
 * does (status PATCHes, artifacts to S3, POST /images, PATCH link, PATCH resultant_image_id), and
 * the objects removed at the end.
 *
 * Not covered (needs a real cluster): scheduling, RBAC, admission, the Job controller and real
 * pods (the test sets the pod's state by hand), the container images and their scripts.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { collections, FakeKubeApi, validateWithKubernetesModels } from '../helpers/fake-kube-api.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { until } from '../helpers/until.js';
import { reconcileJobs } from '#shared/workflow/reconcile.js';

const NS = 'ims';
let fake: FakeKubeApi;
let svc: TestService;
let dir: string;
let recipeId: string;
let keyId: string;
/** Off, only the stage entries and the pod's PATCHes move a job on (pod-player.test.ts runs without one throughout). */
let reconciling = true;

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

/** What the Job controller would do: a running pod labelled with the Job's name. */
function podFor(jobName: string, status: unknown = { phase: 'Running' }) {
  fake.put(collections.pods(NS), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${jobName}-x1y2z`, namespace: NS, labels: { 'job-name': jobName }, creationTimestamp: new Date().toISOString() },
    spec: { containers: [{ name: 'buildenv-sidecar', image: 'u' }, { name: 'sshd', image: 's' }], initContainers: [{ name: 'build-image', image: 'k' }] },
    status,
  });
  const job = fake.get(collections.jobs(NS), jobName)!;
  fake.put(collections.jobs(NS), { ...job, status: { active: 1, startTime: new Date().toISOString() } });
}

const names = (collection: string) => fake.names(collection).sort();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ims-k8s-job-'));
  fake = await FakeKubeApi.start({ validate: validateWithKubernetesModels });
  fake.putSigningKeys();
  process.env.KUBECONFIG = kubeconfigFile(fake.url);
  process.env.IMS_JOB_WORKER = 'kubernetes';
  svc = await startTestService({ reconcile: async () => (reconciling ? reconcileJobs(svc.app) : undefined) });
  await svc.putObject('ims', 'recipes/k8s/recipe.tgz', 'archive', { md5sum: 'abc' });
  recipeId = (await svc.request('POST', '/v3/recipes', { name: 'k8s', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/k8s/recipe.tgz', type: 's3' } })).body.id;
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' })).body.id;
});

// Every call the worker made is one the shipped Role (deploy/kubernetes) allows.
afterEach(() => fake.assertWithinRole());

afterAll(async () => {
  await svc.stop();
  await fake.stop();
  delete process.env.KUBECONFIG;
  delete process.env.IMS_JOB_WORKER;
  rmSync(dir, { recursive: true, force: true });
});

describe('a create job on the kubernetes worker', () => {
  test('with the reconciler off: objects created, pod reports like ims-python-helper, success, then every object removed', async () => {
    reconciling = false;
    const job = (await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'k8s-image' })).body;
    const id = job.id;
    // The original's set, under the names the record gives.
    await until(() => names(collections.destinationRules(NS)), (n) => n.length > 0);
    expect(names(collections.configmaps(NS))).toEqual([job.kubernetes_configmap]);
    expect(names(collections.services(NS))).toEqual([job.kubernetes_service]);
    expect(names(collections.jobs(NS))).toEqual([job.kubernetes_job]);
    expect(names(collections.pvcs(NS))).toEqual([job.kubernetes_pvc]);
    expect(names(collections.destinationRules(NS))).toEqual([job.kubernetes_service]);
    expect(fake.rejected).toEqual([]);

    // The pod runs and reports, as the original's containers do.
    podFor(job.kubernetes_job);
    for (const status of ['fetching_recipe', 'waiting_for_repos', 'building_image', 'packaging_artifacts']) {
      expect((await svc.request('PATCH', `/jobs/${id}`, { status })).status).toBe(200);
    }
    const image = (await svc.request('POST', '/images', { name: 'k8s-image', arch: 'x86_64' })).body;
    const artifacts = [];
    for (const [name, type] of [['rootfs', 'application/vnd.cray.image.rootfs.squashfs'], ['kernel', 'application/vnd.cray.image.kernel'], ['initrd', 'application/vnd.cray.image.initrd']]) {
      const body = `${name} bytes`;
      const md5 = createHash('md5').update(body).digest('hex');
      await svc.putObject('boot-images', `${image.id}/${name}`, body, { md5sum: md5 });
      artifacts.push({ link: { etag: md5, path: `s3://boot-images/${image.id}/${name}`, type: 's3' }, md5, type });
    }
    await svc.putObject('boot-images', `${image.id}/manifest.json`, JSON.stringify({ artifacts, created: '2026-11-26 10:00:00', version: '1.0' }));
    expect((await svc.request('PATCH', `/images/${image.id}`, { link: { path: `s3://boot-images/${image.id}/manifest.json`, etag: '', type: 's3' } })).status).toBe(200);
    expect((await svc.request('PATCH', `/jobs/${id}`, { resultant_image_id: image.id })).status).toBe(200);
    expect((await svc.request('PATCH', `/jobs/${id}`, { status: 'success' })).status).toBe(200);

    // The workflow registers (checks) the image and cleans up: Service, PVC, DestinationRule go;
    // the Job and ConfigMap stay so the pod's logs remain readable, as with the original.
    await until(() => names(collections.services(NS)), (n) => n.length === 0);
    const history = await until(
      async () => (await svc.request('GET', `/v3/jobs/${id}/history`)).body,
      (h) => h.events.some((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'cleanup'),
    );
    expect(history.status).toBe('success');
    expect(names(collections.pvcs(NS))).toEqual([]);
    expect(names(collections.destinationRules(NS))).toEqual([]);
    expect(names(collections.jobs(NS))).toEqual([job.kubernetes_job]);
    expect((await svc.request('GET', `/v3/jobs/${id}`)).body.resultant_image_id).toBe(image.id);

    // Deleting the job removes the rest.
    expect((await svc.request('DELETE', `/v3/jobs/${id}`)).status).toBe(204);
    expect(names(collections.jobs(NS))).toEqual([]);
    expect(names(collections.configmaps(NS))).toEqual([]);
    expect(fake.rejected).toEqual([]);
  });

  test('a pod killed for memory ends the job in error with the reason, and cleanup runs', async () => {
    // The reconciler's closer look (Worker.inspect) is what sees a pod that can no longer report.
    reconciling = true;
    fake.reset();
    fake.putSigningKeys();
    const job = (await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'oom' })).body;
    await until(() => names(collections.jobs(NS)), (n) => n.length > 0);
    await svc.request('PATCH', `/jobs/${job.id}`, { status: 'building_image' });
    podFor(job.kubernetes_job, {
      phase: 'Running',
      initContainerStatuses: [{ name: 'build-image', ready: false, restartCount: 0, image: 'k', imageID: '', state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }],
    });
    const done = await until(async () => (await svc.request('GET', `/v3/jobs/${job.id}`)).body, (j) => j.status === 'error');
    expect(done.status).toBe('error');
    const history = (await svc.request('GET', `/v3/jobs/${job.id}/history`)).body;
    expect(history.reason).toContain('OOMKilled');
    await until(() => names(collections.services(NS)), (n) => n.length === 0);
    await until(
      async () => (await svc.request('GET', `/v3/jobs/${job.id}/history`)).body,
      (h) => h.events.some((e: { event: string; stage?: string }) => e.event === 'stage-finished' && e.stage === 'cleanup'),
    );
    expect(names(collections.pvcs(NS))).toEqual([]);
  });
});
