/**
 * Host key verification of remote build nodes (REMOTE_NODE_KNOWN_HOSTS) against real OpenSSH sshd
 * on 127.0.0.1: a node whose host key is listed (by its address, or hashed by its xname) is
 * probed as usual; a node presenting a key that is not listed, or that is @revoked, is reported
 * unreachable in the original status format, and the reason names the node, its address, the
 * key's type and fingerprint. The remote-node worker refuses such a node too: its job sees the
 * node as lost. Without the setting any host key is accepted under `npm start`
 * (remote-node-health.test.ts); deployed (a Lambda function) every node is refused unless the
 * operator opts out, and the known hosts may come from a Secrets Manager secret instead.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { remoteNodeSettingsFromEnv } from '#shared/workers/remote-node/settings.js';
import { knownHostsSourceFor, NO_KNOWN_HOSTS } from '#shared/workers/remote-node/known-hosts-source.js';
import { SshNodeProber } from '#shared/workers/remote-node/node-prober.js';
import { RemoteNodeWorker } from '#shared/workers/remote-node/remote-node-worker.js';
import type { WorkerJob } from '#shared/domain/worker-port.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { freePort, generateKey, sshdNode, type SshdNode } from '../helpers/sshd-node.js';

/** Listed by address with its real key. */
const LISTED = 'x2000c0s0b0n0';
/** Listed by xname (hashed, `[xname]:port`) with its real key. */
const HASHED = 'x2000c0s1b0n0';
/** Listed by address with some other key. */
const WRONG_KEY = 'x2000c0s2b0n0';
/** Listed with its real key, which is also @revoked. */
const REVOKED = 'x2000c0s3b0n0';
const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
const SETTINGS = ['REMOTE_NODE_SSH_KEY_FILE', 'REMOTE_NODE_HOST_MAP', 'REMOTE_NODE_WORK_DIR', 'REMOTE_NODE_KNOWN_HOSTS', 'REMOTE_NODE_PROBE_TIMEOUT_MS'] as const;

let svc: TestService;
let scratch: string;
let nodes: Record<string, SshdNode>;
/** The known_hosts text the service is configured with. */
let knownHostsText: string;
const saved: Partial<Record<(typeof SETTINGS)[number], string>> = {};

/** `keytype base64` of a .pub line (its comment dropped). */
const keyOf = (pub: string) => pub.split(/\s+/).slice(0, 2).join(' ');

function hashedName(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

/** The fingerprint of a public key as ssh-keygen prints it. */
function fingerprint(pub: string): string {
  const file = join(scratch, `fp-${randomBytes(4).toString('hex')}.pub`);
  writeFileSync(file, `${pub}\n`);
  return execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split(' ')[1];
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'ims-rnkh-'));
  const workDir = join(scratch, 'node-tmp');
  mkdirSync(workDir);
  const key = generateKey(scratch, 'ims_remote_key');
  const other = generateKey(scratch, 'other_host_key');
  nodes = {};
  for (const xname of [LISTED, HASHED, WRONG_KEY, REVOKED]) nodes[xname] = sshdNode(join(scratch, xname), key.publicKey, await freePort());
  await Promise.all(Object.values(nodes).map((n) => n.start()));
  const address = (xname: string) => `[127.0.0.1]:${nodes[xname].port}`;

  for (const name of SETTINGS) saved[name] = process.env[name];
  Object.assign(process.env, {
    REMOTE_NODE_SSH_KEY_FILE: key.privatePath,
    REMOTE_NODE_HOST_MAP: Object.entries(nodes)
      .map(([xname, node]) => `${xname}=127.0.0.1:${node.port}`)
      .join(','),
    REMOTE_NODE_WORK_DIR: workDir,
    // Host keys are under test here, not the probe's timeout: a loaded machine may take seconds per probe.
    REMOTE_NODE_PROBE_TIMEOUT_MS: '15000',
    REMOTE_NODE_KNOWN_HOSTS: (knownHostsText = [
      '# remote build nodes',
      `${address(LISTED)} ${nodes[LISTED].hostPublicKey}`,
      `${hashedName(`[${HASHED}]:${nodes[HASHED].port}`)} ${keyOf(nodes[HASHED].hostPublicKey)}`,
      `${address(WRONG_KEY)} ${keyOf(other.publicKey)}`,
      `${address(REVOKED)},${REVOKED} ${keyOf(nodes[REVOKED].hostPublicKey)}`,
      `@revoked ${address(REVOKED)} ${keyOf(nodes[REVOKED].hostPublicKey)}`,
      '',
    ].join('\n')),
  });
  svc = await startTestService();
}, 30_000);

afterAll(async () => {
  await svc?.stop();
  await Promise.all(Object.values(nodes ?? {}).map((n) => n.stop()));
  for (const name of SETTINGS) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
  rmSync(scratch, { recursive: true, force: true });
});

async function registerOnly(...xnames: string[]) {
  expect((await svc.request('DELETE', '/v3/remote-build-nodes')).status).toBe(204);
  for (const xname of xnames) expect((await svc.request('POST', '/v3/remote-build-nodes', { xname })).status).toBe(201);
}

const healthy = (xname: string) => ({
  xname,
  sshStatus: 'SSH connection established.',
  podmanStatus: 'Podman present at /usr/bin/podman',
  nodeArch: ARCH,
  numCurrentJobs: 0,
  ableToRunJobs: true,
});

const refused = (xname: string, why: string) => ({
  xname,
  sshStatus: `Unable to connect to node. Error: the host key of ${xname} (127.0.0.1:${nodes[xname].port}, ssh-ed25519 ${fingerprint(nodes[xname].hostPublicKey)}) ${why} REMOTE_NODE_KNOWN_HOSTS`,
  podmanStatus: 'Unknown',
  nodeArch: 'Unknown',
  numCurrentJobs: -1,
  ableToRunJobs: false,
});

describe('REMOTE_NODE_KNOWN_HOSTS', () => {
  test('a node presenting the host key listed for [127.0.0.1]:<port> is reachable and healthy', async () => {
    await registerOnly(LISTED);
    const res = await svc.request('GET', `/v3/remote-build-nodes/status/${LISTED}`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['ableToRunJobs', 'nodeArch', 'numCurrentJobs', 'podmanStatus', 'sshStatus', 'xname']);
    expect(res.body).toEqual(healthy(LISTED));
  });

  test('a key listed under the xname, hashed as OpenSSH hashes names, is found too', async () => {
    await registerOnly(HASHED);
    const res = await svc.request('GET', `/v3/remote-build-nodes/status/${HASHED}`);
    expect(res.body).toEqual(healthy(HASHED));
  });

  test('a node presenting another key than the listed one is not reachable: the status says its host key is not in REMOTE_NODE_KNOWN_HOSTS', async () => {
    await registerOnly(WRONG_KEY);
    const res = await svc.request('GET', `/v3/remote-build-nodes/status/${WRONG_KEY}`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['ableToRunJobs', 'nodeArch', 'numCurrentJobs', 'podmanStatus', 'sshStatus', 'xname']);
    expect(res.body).toEqual(refused(WRONG_KEY, 'is not in'));
  });

  test('a revoked key is refused even where another line lists it', async () => {
    await registerOnly(REVOKED);
    const res = await svc.request('GET', `/v3/remote-build-nodes/status/${REVOKED}`);
    expect(res.body).toEqual(refused(REVOKED, 'is marked @revoked in'));
  });

  test('the collection reports each node on its own', async () => {
    await registerOnly(LISTED, WRONG_KEY);
    const res = await svc.request('GET', '/v3/remote-build-nodes/status');
    const byName = Object.fromEntries((res.body as { xname: string }[]).map((s) => [s.xname, s]));
    expect(byName).toEqual({ [LISTED]: healthy(LISTED), [WRONG_KEY]: refused(WRONG_KEY, 'is not in') });
  });

  test('the remote-node worker refuses the node too: its job sees the node as lost, and why', async () => {
    const worker = new RemoteNodeWorker(remoteNodeSettingsFromEnv(process.env), { results: { artifacts: svc.app.artifacts, bucket: 'boot-images', urlExpirySeconds: 3600 } });
    const job = { job: { id: 'c0ffee00-0000-4000-8000-000000000001', job_type: 'create', remote_build_node: WRONG_KEY } } as unknown as WorkerJob;
    expect(await worker.advance('prepare', job)).toEqual({
      state: 'running',
      lost: {
        reason: `remote build node ${WRONG_KEY} is unreachable: ${refused(WRONG_KEY, 'is not in').sshStatus.replace('Unable to connect to node. Error: ', '')}`,
        timeoutSeconds: 60,
      },
    });
  });
});

describe('deployed: failing closed, and known hosts from a secret', () => {
  const SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ims-known-hosts';
  /** The service's settings as a Lambda function would read them, without REMOTE_NODE_KNOWN_HOSTS. */
  const deployedEnv = (extra: Record<string, string> = {}) => ({ ...process.env, REMOTE_NODE_KNOWN_HOSTS: '', AWS_LAMBDA_FUNCTION_NAME: 'ims-build', ...extra });
  const job = (xname: string) => ({ job: { id: 'c0ffee00-0000-4000-8000-000000000002', job_type: 'create', remote_build_node: xname } }) as unknown as WorkerJob;
  const results = () => ({ artifacts: svc.app.artifacts, bucket: 'boot-images', urlExpirySeconds: 3600 });

  test('without known hosts the node is refused: its status says why, and a job on it fails with that reason', async () => {
    const settings = remoteNodeSettingsFromEnv(deployedEnv());
    const status = await new SshNodeProber(settings).probe(LISTED);
    expect(status).toMatchObject({ xname: LISTED, sshStatus: `Unable to connect to node. Error: ${NO_KNOWN_HOSTS}`, ableToRunJobs: false });
    const worker = new RemoteNodeWorker(settings, { results: results() });
    expect(await worker.advance('prepare', job(LISTED))).toEqual({ state: 'failed', reason: `remote build node ${LISTED} is refused: ${NO_KNOWN_HOSTS}` });
  });

  test('REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS=true opts out: the node is reached whatever its host key', async () => {
    const status = await new SshNodeProber(remoteNodeSettingsFromEnv(deployedEnv({ REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS: 'true' }))).probe(WRONG_KEY);
    expect(status).toMatchObject(healthy(WRONG_KEY));
  });

  test('known hosts from the secret: a listed node is healthy, another key is refused naming the secret', async () => {
    const read: string[] = [];
    const settings = remoteNodeSettingsFromEnv(deployedEnv({ REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN: SECRET }));
    const knownHosts = knownHostsSourceFor(settings, { secrets: async (id) => (read.push(id), knownHostsText) });
    const fromSecret = new SshNodeProber(settings, { knownHosts });
    expect(await fromSecret.probe(LISTED)).toMatchObject(healthy(LISTED));
    const wrong = await fromSecret.probe(WRONG_KEY);
    expect(wrong.sshStatus).toBe(refused(WRONG_KEY, 'is not in').sshStatus.replace('REMOTE_NODE_KNOWN_HOSTS', `the secret ${SECRET}`));
    expect(read).toEqual([SECRET, SECRET]);
  });
});
