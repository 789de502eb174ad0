/**
 * What a job costs the deployed workflow, by its duration: the synthesized state machine runs on
 * the embedded runtime in virtual time (as test/integration/workflow-history.test.ts does), with
 * a worker whose build or SSH session lasts 10 minutes to 24 hours. Per job: Step Functions
 * history events and state transitions (billed), stage function invocations, and the worker
 * checks the reconciler makes (one per minute of waiting, inside its one shared pass a minute).
 * Part of `npm run bench` (BENCH_PARTS=jobcost).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TimedWorker, type JobPlan } from '../test/helpers/timed-worker.js';
import { countHistory } from '../test/helpers/history-events.js';
import { embeddedPart } from './embedded-part.js';

const HOUR = 3600;

export async function benchJobCost(): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ims-bench-jobcost-'));
  const cases: { name: string; type: 'create' | 'customize'; waits: string; seconds: number; plan: JobPlan }[] = [
    { name: 'b10m', type: 'create', waits: 'build', seconds: 600, plan: { seconds: { build: 600 } } },
    { name: 'b1h', type: 'create', waits: 'build', seconds: HOUR, plan: { seconds: { build: HOUR } } },
    { name: 'b4h', type: 'create', waits: 'build', seconds: 4 * HOUR, plan: { seconds: { build: 4 * HOUR } } },
    { name: 's10m', type: 'customize', waits: 'ssh', seconds: 600, plan: { seconds: { ssh: 600 } } },
    { name: 's24h', type: 'customize', waits: 'ssh', seconds: 24 * HOUR, plan: { seconds: { ssh: 24 * HOUR } } },
  ];
  let now = Date.parse('2026-12-01T00:00:00Z');
  const { startEmbedded, PutObjectCommand, s3Client } = await embeddedPart({ IMS_JOB_WORKER: 'timed', TABLE_NAME: 'ims-bench-jobcost', POWERTOOLS_LOG_LEVEL: 'SILENT', IMS_STAGE_TIMEOUT_BUILD: String(5 * HOUR), IMS_STAGE_TIMEOUT_SSH: String(25 * HOUR) });
  const invocations = new Map<string, number>();
  const svc = await startEmbedded({
    workers: { timed: () => worker },
    port: 0,
    s3Port: 0,
    scratchDir: join(dir, 's3'),
    reconcileMs: 0,
    workflow: {
      clock: { nowMs: () => now },
      retryMs: 1,
      wrapTask: (_state, handler) => async (input) => {
        const jobId = input.jobId ?? input.Payload?.jobId;
        invocations.set(jobId, (invocations.get(jobId) ?? 0) + 1);
        return handler(input);
      },
    },
  });
  const s3 = s3Client();
  const put = async (bucket: string, key: string, body: string, metadata: Record<string, string> = {}) => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
  };
  const worker = new TimedWorker(Object.fromEntries(cases.map((c) => [c.name, c.plan])), () => now, put);
  const call = async (method: string, path: string, body?: unknown) =>
    (await fetch(`${svc.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })).json() as Promise<any>;
  await put('ims', 'recipes/b/recipe.tgz', 'x');
  await put('boot-images', 'src/rootfs', 'squashfs');
  await put('boot-images', 'src/manifest.json', JSON.stringify({ version: '1.0', artifacts: [{ type: 'application/vnd.cray.image.rootfs.squashfs', md5: 'm', link: { path: 's3://boot-images/src/rootfs', type: 's3' } }] }));
  const recipe = await call('POST', '/v3/recipes', { name: 'b', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/b/recipe.tgz', type: 's3' } });
  const image = await call('POST', '/v3/images', { name: 'src', link: { path: 's3://boot-images/src/manifest.json', type: 's3' } });
  const key = await call('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' });
  const ids = new Map<string, string>();
  for (const c of cases) {
    const job = await call('POST', '/v3/jobs', { job_type: c.type, artifact_id: c.type === 'create' ? recipe.id : image.id, public_key_id: key.id, image_root_archive_name: c.name });
    ids.set(c.name, job.id);
  }
  // The reconciler's pass once a (virtual) minute, as EventBridge Scheduler runs it deployed.
  let passes = 0;
  for (let t = 0; t <= 25 * HOUR; t += 60) {
    now += 60_000;
    await svc.reconcile();
    passes++;
    await new Promise((r) => setTimeout(r, 2));
    if (t % 3600 === 0) {
      const states = await Promise.all([...ids.values()].map((id) => call('GET', `/v3/jobs/${id}`)));
      if (states.every((s) => s.status === 'success' || s.status === 'error')) break;
    }
  }
  await svc.workflow.drain();
  const definition = JSON.parse(readFileSync(new URL('../shared/workflow/generated/job-workflow.asl.json', import.meta.url), 'utf8'));
  const rows = [];
  for (const c of cases) {
    const id = ids.get(c.name)!;
    const execution = [...svc.workflow.executions.values()].find((e) => e.jobId === id)!;
    const history = countHistory(execution.events, definition);
    const status = (await call('GET', `/v3/jobs/${id}`)).status;
    rows.push({
      job: `${c.type}, ${c.waits} ${c.seconds >= HOUR ? `${c.seconds / HOUR} h` : `${c.seconds / 60} min`}`,
      status,
      historyEvents: history.events,
      stateTransitions: history.transitions,
      stageInvocations: invocations.get(id) ?? 0,
      reconcilerChecks: worker.checks.get(id) ?? 0,
      // The workflow this replaced polled: Wait 5 s → Task → Choice, about 9 events and 3 transitions per poll.
      pollingDesignEvents: Math.round((9 * c.seconds) / 5),
    });
  }
  process.stderr.write(`job cost: ${passes} reconciler passes over ${ids.size} jobs\n`);
  await svc.stop();
  rmSync(dir, { recursive: true, force: true });
  return rows;
}
