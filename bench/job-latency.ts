/**
 * Job scheduling latency on the embedded runtime with the kubernetes worker (against the
 * recording fake API server of the tests): from POST /v3/jobs to the workflow's build stage
 * starting, as the job history records it. Part of `npm run bench` (BENCH_PARTS=jobs).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKubeApi } from '../test/helpers/fake-kube-api.js';
import { embeddedPart } from './embedded-part.js';

export async function benchJobLatency(count = 20): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'ims-bench-jobs-'));
  const fake = await FakeKubeApi.start();
  fake.putSigningKeys();
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'f', cluster: { server: fake.url, 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'f', context: { cluster: 'f', user: 'u' } }], 'current-context': 'f' }));
  const { startEmbedded, PutObjectCommand, s3Client } = await embeddedPart({ KUBECONFIG: kubeconfig, IMS_JOB_WORKER: 'kubernetes', TABLE_NAME: 'ims-bench-jobs', POWERTOOLS_LOG_LEVEL: 'SILENT' });
  const svc = await startEmbedded({ port: 0, s3Port: 0, scratchDir: join(dir, 's3') });
  const post = async (path: string, body: unknown) =>
    (await fetch(`${svc.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<any>;
  await s3Client().send(new PutObjectCommand({ Bucket: 'ims', Key: 'recipes/b/recipe.tgz', Body: 'x' }));
  const recipe = await post('/v3/recipes', { name: 'b', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/b/recipe.tgz', type: 's3' } });
  const key = await post('/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' });
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = Date.now();
    const job = await post('/v3/jobs', { job_type: 'create', artifact_id: recipe.id, public_key_id: key.id, image_root_archive_name: `b${i}` });
    for (const deadline = Date.now() + 30_000; ; ) {
      const history = (await (await fetch(`${svc.url}/v3/jobs/${job.id}/history`)).json()) as { status: string; reason: string | null; events: { event: string; stage?: string }[] };
      if (history.events.some((e) => e.event === 'stage-started' && e.stage === 'build')) break;
      if (history.status === 'error' || Date.now() > deadline) throw new Error(`job ${job.id} did not reach build: ${history.status} ${history.reason ?? ''}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    latencies.push(Date.now() - started);
  }
  await svc.stop();
  await fake.stop();
  fake.assertWithinRole();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return { jobs: count, p50Ms: latencies[Math.floor(count / 2)], p99Ms: latencies[count - 1], objectsCreated: fake.creates().length };
}
