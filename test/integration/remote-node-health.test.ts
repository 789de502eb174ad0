/**
 * Remote build nodes over real SSH: two OpenSSH sshd on 127.0.0.1 (two ports = two nodes, root
 * login with a generated key), a port where nothing listens (a node that is down) and a port
 * that accepts TCP but never speaks SSH (a hung node). Status fields and texts as the original's;
 * probes bounded and cached; placement of a burst of 20 jobs spread evenly over the two nodes
 * through the reservations in the store; a job whose arch no node has runs on the default worker.
 * The live node's podmanStatus needs podman installed (npm test installs it first, scripts/host-setup.mjs).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJob } from '#shared/domain/job-create.js';
import { getJobState, type JobContext } from '#shared/domain/job-state.js';
import { markNodeJobStarted, releaseNodeJob, reserveLeastLoaded, type NodeLoad } from '#shared/domain/node-placement.js';
import type { NodeHealth } from '#shared/domain/remote-build-nodes.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { freePort, generateKey, sshdNode, type SshdNode } from '../helpers/sshd-node.js';

const NODE_A = 'x1000c0s0b0n0';
const NODE_B = 'x1000c0s1b0n0';
const DOWN = 'x1000c0s2b0n0';
const HUNG = 'x1000c0s3b0n0';
// A probe is four SSH commands; the test process also runs the embedded service (and its
// reconciler), so the timeout leaves room for a busy event loop. Answers stay cached for the
// whole file unless a test invalidates them, so the cache tests do not race the clock.
const PROBE_TIMEOUT_MS = 3000;
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const OTHER_ARCH = ARCH === 'x86_64' ? 'aarch64' : 'x86_64';

let svc: TestService;
let scratch: string;
let workDir: string;
let nodes: SshdNode[];
let hung: Server;
const hungSockets: Socket[] = [];
let keyId: string;
const recipes: Record<string, string> = {};

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'ims-rbn-'));
  workDir = join(scratch, 'node-tmp');
  mkdirSync(workDir);
  const key = generateKey(scratch, 'ims_remote_key');
  nodes = [sshdNode(join(scratch, 'a'), key.publicKey, await freePort()), sshdNode(join(scratch, 'b'), key.publicKey, await freePort())];
  await Promise.all(nodes.map((n) => n.start()));
  // Accepts connections and never sends the SSH banner: a node whose sshd hangs.
  hung = createServer((socket) => hungSockets.push(socket));
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
  const hungPort = (hung.address() as { port: number }).port;

  Object.assign(process.env, {
    IMS_JOB_WORKER: 'scripted',
    REMOTE_NODE_SSH_KEY_FILE: key.privatePath,
    REMOTE_NODE_HOST_MAP: `${NODE_A}=127.0.0.1:${nodes[0].port},${NODE_B}=127.0.0.1:${nodes[1].port},${DOWN}=127.0.0.1:${await freePort()},${HUNG}=127.0.0.1:${hungPort}`,
    REMOTE_NODE_WORK_DIR: workDir,
    REMOTE_NODE_PROBE_TIMEOUT_MS: String(PROBE_TIMEOUT_MS),
    REMOTE_NODE_PROBE_CACHE_MS: '30000',
  });
  const worker = new ScriptedWorker((bucket, k, body, metadata) => svc.putObject(bucket, k, body, metadata));
  svc = await startTestService({ workers: { scripted: () => worker } });
  for (const arch of ['x86_64', 'aarch64']) {
    await svc.putObject('ims', `recipes/rbn-${arch}/recipe.tgz`, 'recipe archive', { md5sum: 'abc' });
    const res = await svc.request('POST', '/v3/recipes', { name: `r-${arch}`, recipe_type: 'kiwi-ng', linux_distribution: 'sles15', arch, link: { path: `s3://ims/recipes/rbn-${arch}/recipe.tgz`, type: 's3' } });
    expect(res.status).toBe(201);
    recipes[arch] = res.body.id;
  }
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'k', public_key: key.publicKey })).body.id;
}, 30_000);

afterAll(async () => {
  await svc?.stop();
  await Promise.all((nodes ?? []).map((n) => n.stop()));
  hungSockets.forEach((s) => s.destroy());
  await new Promise((resolve) => hung?.close(resolve));
  for (const name of ['IMS_JOB_WORKER', 'REMOTE_NODE_SSH_KEY_FILE', 'REMOTE_NODE_HOST_MAP', 'REMOTE_NODE_WORK_DIR', 'REMOTE_NODE_PROBE_TIMEOUT_MS', 'REMOTE_NODE_PROBE_CACHE_MS']) delete process.env[name];
  rmSync(scratch, { recursive: true, force: true });
});

async function registerOnly(...xnames: string[]) {
  expect((await svc.request('DELETE', '/v3/remote-build-nodes')).status).toBe(204);
  for (const xname of xnames) expect((await svc.request('POST', '/v3/remote-build-nodes', { xname })).status).toBe(201);
}

/** Waits for a job to end, so that no workflow is still writing when the service stops. */
async function settled(id: string): Promise<string> {
  const end = Date.now() + 20_000;
  for (;;) {
    const { status } = (await svc.request('GET', `/v3/jobs/${id}`)).body;
    if (status === 'success' || status === 'error' || Date.now() > end) return status;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function timed<T>(what: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await what();
  return { value, ms: performance.now() - start };
}

describe('GET /v3/remote-build-nodes/status', () => {
  test('a live node: SSH, arch, podman and the number of IMS job directories, in the original keys and order', async () => {
    await registerOnly(NODE_A);
    mkdirSync(join(workDir, 'ims_11111111-job-one'));
    mkdirSync(join(workDir, 'ims_22222222-job-two'));
    writeFileSync(join(workDir, 'ims_not-a-directory'), '');
    mkdirSync(join(workDir, 'other_dir'));
    try {
      const { value: res, ms } = await timed(() => svc.request('GET', `/v3/remote-build-nodes/status/${NODE_A}`));
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['ableToRunJobs', 'nodeArch', 'numCurrentJobs', 'podmanStatus', 'sshStatus', 'xname']);
      expect(res.body).toEqual({
        xname: NODE_A,
        sshStatus: 'SSH connection established.',
        podmanStatus: 'Podman present at /usr/bin/podman',
        nodeArch: ARCH,
        numCurrentJobs: 2,
        ableToRunJobs: true,
      });
      expect(ms).toBeLessThan(PROBE_TIMEOUT_MS);
    } finally {
      for (const name of ['ims_11111111-job-one', 'ims_22222222-job-two', 'ims_not-a-directory', 'other_dir']) rmSync(join(workDir, name), { recursive: true, force: true });
    }
  });

  test('a node that is down answers at once with the original texts and initial values', async () => {
    await registerOnly(DOWN);
    const { value: res, ms } = await timed(() => svc.request('GET', `/v3/remote-build-nodes/status/${DOWN}`));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      xname: DOWN,
      sshStatus: expect.stringMatching(/^Unable to connect to node\. Error: .*ECONNREFUSED/),
      podmanStatus: 'Unknown',
      nodeArch: 'Unknown',
      numCurrentJobs: -1,
      ableToRunJobs: false,
    });
    expect(ms).toBeLessThan(500);
  });

  test('a hung node costs at most the probe timeout, once: the collection answers for every node, then from the cache', async () => {
    await registerOnly(NODE_A, NODE_B, DOWN, HUNG);
    const first = await timed(() => svc.request('GET', '/v3/remote-build-nodes/status'));
    expect(first.value.status).toBe(200);
    const byName = Object.fromEntries((first.value.body as { xname: string }[]).map((s) => [s.xname, s]));
    expect(Object.keys(byName).sort()).toEqual([NODE_A, NODE_B, DOWN, HUNG].sort());
    expect(byName[HUNG]).toEqual({
      xname: HUNG,
      sshStatus: expect.stringMatching(/^Unable to connect to node\. Error: .*(Timed out|handshake)/i),
      podmanStatus: 'Unknown',
      nodeArch: 'Unknown',
      numCurrentJobs: -1,
      ableToRunJobs: false,
    });
    expect(byName[NODE_B]).toMatchObject({ sshStatus: 'SSH connection established.', ableToRunJobs: true });
    // Probes run side by side: the hung node bounds the answer, not the sum of the nodes.
    expect(first.ms).toBeLessThan(PROBE_TIMEOUT_MS + 1000);
    const again = await timed(() => svc.request('GET', '/v3/remote-build-nodes/status'));
    expect(again.value.body).toEqual(first.value.body);
    expect(again.ms).toBeLessThan(300);
  });

  test('an unknown node → 404', async () => {
    await registerOnly(NODE_A);
    expect((await svc.request('GET', '/v3/remote-build-nodes/status/x9999c0s0b0n0')).status).toBe(404);
  });
});

/** createJob with a workflow that never runs: placement alone is under test. */
function placementContext(): JobContext {
  return { ...svc.app, workflow: {
      start: async () => 'not-started',
      stop: async () => undefined,
      resume: async () => false,
      fail: async () => false,
      heartbeat: async () => false,
      status: async () => 'UNKNOWN',
    },
  };
}

const createInput = (arch: string, name: string) => ({
  job_type: 'create' as const,
  artifact_id: recipes[arch],
  public_key_id: keyId,
  image_root_archive_name: name,
  enable_debug: false,
});

async function nodeLoad(xname: string): Promise<NodeLoad | undefined> {
  return (await svc.app.store.get<NodeLoad>('node-load', xname))?.record;
}

describe('placement', () => {
  test('20 jobs created at once spread evenly over the two healthy nodes, each reservation kept in the store', async () => {
    await registerOnly(NODE_A, NODE_B, DOWN);
    // Fresh probes: the first test's job directories on node A must not weigh on it any more.
    for (const xname of [NODE_A, NODE_B]) svc.app.nodes.invalidate?.(xname);
    const ctx = placementContext();
    const { value: jobs, ms } = await timed(() => Promise.all(Array.from({ length: 20 }, (_, i) => createJob(ctx, createInput(ARCH, `burst-${i}`)))));
    expect(ms).toBeLessThan(15_000);
    const counts = { [NODE_A]: 0, [NODE_B]: 0 } as Record<string, number>;
    for (const job of jobs) counts[job.remote_build_node] = (counts[job.remote_build_node] ?? 0) + 1;
    expect(counts).toEqual({ [NODE_A]: 10, [NODE_B]: 10 });
    expect(Object.keys((await nodeLoad(NODE_A))!.jobs)).toHaveLength(10);
    expect(Object.keys((await nodeLoad(NODE_B))!.jobs)).toHaveLength(10);

    const state = await getJobState(svc.app, jobs[0].id);
    expect(state.worker).toBe('remote-node');
    expect(state.history.map((e) => e.detail)).toContainEqual(
      expect.stringMatching(new RegExp(`^placed on ${jobs[0].remote_build_node}: \\d+ jobs?, ${ARCH}, podman \\d+\\.\\d+`)),
    );

    // Started jobs stop being reservations, ended ones stop counting; the next job goes where there is room.
    for (const job of jobs.filter((j) => j.remote_build_node === NODE_A)) await releaseNodeJob(svc.app, NODE_A, job.id);
    expect((await nodeLoad(NODE_A))!.jobs).toEqual({});
    const next = await createJob(ctx, createInput(ARCH, 'after-release'));
    expect(next.remote_build_node).toBe(NODE_A);
    await markNodeJobStarted(svc.app, NODE_A, next.id);
    expect((await nodeLoad(NODE_A))!.jobs[next.id].startedMs).toEqual(expect.any(Number));
    for (const job of jobs.filter((j) => j.remote_build_node === NODE_B)) await releaseNodeJob(svc.app, NODE_B, job.id);
    await releaseNodeJob(svc.app, NODE_A, next.id);
  });

  test('without the process taking turns (separate Lambda instances), the conditional writes alone still spread a burst evenly', async () => {
    const healthy = (xname: string): NodeHealth => ({
      xname,
      sshStatus: 'SSH connection established.',
      podmanStatus: 'Podman present at /usr/bin/podman',
      nodeArch: 'x86_64',
      numCurrentJobs: 0,
      ableToRunJobs: true,
      probedAtMs: Date.now(),
    });
    const nodes = [healthy('x9000c0s0b0n0'), { ...healthy('x9000c0s1b0n0'), numCurrentJobs: 2 }];
    const placed = await Promise.all(Array.from({ length: 12 }, (_, i) => reserveLeastLoaded(svc.app, `parallel-${i}`, 'x86_64', nodes)));
    const counts: Record<string, number> = {};
    for (const p of placed) counts[p.xname ?? 'none'] = (counts[p.xname ?? 'none'] ?? 0) + 1;
    // 2 jobs already ran on the second node: 7 + 0 = 5 + 2.
    expect(counts).toEqual({ x9000c0s0b0n0: 7, x9000c0s1b0n0: 5 });
  });

  test('a job whose arch no healthy node has runs on the default worker, and its history says why', async () => {
    await registerOnly(NODE_A, NODE_B, DOWN);
    const created = await svc.request('POST', '/v3/jobs', createInput(OTHER_ARCH, 'ok'));
    expect(created.status).toBe(201);
    expect(created.body.arch).toBe(OTHER_ARCH);
    expect(created.body.remote_build_node).toBe('');
    const history = (await svc.request('GET', `/v3/jobs/${created.body.id}/history`)).body;
    expect(history.worker).toBe('scripted');
    expect(history.events.map((e: { detail?: string }) => e.detail)).toContain(`no healthy ${OTHER_ARCH} node among 3 remote build nodes: running on scripted`);
    expect(await nodeLoad(NODE_A)).toEqual({ xname: NODE_A, jobs: {} });
    expect(await settled(created.body.id)).toBe('success');
  });

  test('with no node registered nothing is said about placement', async () => {
    await registerOnly();
    const created = await svc.request('POST', '/v3/jobs', createInput(ARCH, 'ok'));
    expect(created.body.remote_build_node).toBe('');
    const history = (await svc.request('GET', `/v3/jobs/${created.body.id}/history`)).body;
    expect(history.events[0]).toMatchObject({ event: 'created', detail: 'worker scripted' });
    expect(history.events.filter((e: { event: string }) => e.event === 'note')).toEqual([]);
    expect(await settled(created.body.id)).toBe('success');
  });
});
