/**
 * The pieces of remote-node health and placement that a live node cannot show on demand: the
 * original's texts for an unknown arch, a missing podman, a node that stops answering halfway;
 * the probe script itself (run by this host's sh); the host map; the job view; a node's load.
 */
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeLoad, RESERVATION_TTL_MS } from '#shared/domain/node-placement.js';
import { unknownStatus, type NodeHealth } from '#shared/domain/remote-build-nodes.js';
import { checkNode, parseProbeOutput, probeScript } from '#shared/workers/remote-node/node-checks.js';
import { parseHostMap, remoteNodeSettingsFromEnv, targetOf } from '#shared/workers/remote-node/settings.js';
import type { ExecResult, NodeSession } from '#shared/workers/remote-node/ssh-session.js';
import { parseView } from '#shared/workers/remote-node/job-view.js';
import { partSizeFor } from '#shared/workers/remote-node/results-upload.js';

const settings = remoteNodeSettingsFromEnv({});
const b64 = (text: string) => Buffer.from(text).toString('base64');
const step = (name: string, rc: number, out: string, err = '') => `@ims ${name} ${rc} ${b64(out)} ${b64(err)}`;

function sessionAnswering(result: ExecResult): NodeSession {
  const unused = async () => {
    throw new Error('not used');
  };
  return { target: { xname: 'x', host: 'x', port: 22, user: 'root' }, connectionLost: false, exec: async () => result, run: unused, writeFile: unused, upload: unused, uploadFile: unused, download: unused, close: () => undefined };
}

async function statusFor(result: ExecResult): Promise<NodeHealth> {
  const status: NodeHealth = { ...unknownStatus('x1'), sshStatus: 'SSH connection established.', probedAtMs: 0 };
  await checkNode(sessionAnswering(result), status, settings, 100);
  return status;
}

describe('node checks', () => {
  test('the probe script, run by sh, reports every step with its exit code and output', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ims-probe-'));
    try {
      mkdirSync(join(dir, 'ims_job-a'));
      mkdirSync(join(dir, 'ims_job-b'));
      mkdirSync(join(dir, 'not-a-job'));
      const script = probeScript({ ...settings, workDir: dir, podman: 'echo podman version 9.8.7' });
      const steps = parseProbeOutput(execFileSync('sh', ['-c', script], { encoding: 'utf8' }));
      expect(steps.arch).toEqual({ rc: 0, stdout: `${execFileSync('uname', ['-m'], { encoding: 'utf8' })}`, stderr: '' });
      expect(steps.version).toEqual({ rc: 0, stdout: 'podman version 9.8.7 --version\n', stderr: '' });
      expect(steps.jobs?.stdout.trim()).toBe('2');
      expect(steps.which).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unknown architecture: the original text with the raw output; podman is not looked at', async () => {
    const status = await statusFor({ code: 0, stdout: [step('arch', 0, 'ppc64le\n'), step('which', 0, '/usr/bin/podman\n')].join('\n'), stderr: '' });
    expect(status).toMatchObject({ nodeArch: 'Undefined architecture type for node, result: ppc64le\n', podmanStatus: 'Unknown', ableToRunJobs: false, numCurrentJobs: -1 });
  });

  test('no podman: `which` fails, and the node cannot run jobs', async () => {
    const status = await statusFor({ code: 0, stdout: [step('arch', 0, 'aarch64\n'), step('which', 1, '', '')].join('\n'), stderr: '' });
    expect(status).toMatchObject({ nodeArch: 'aarch64', podmanStatus: 'Unable to determine if podman is installed on node. Error:  ', ableToRunJobs: false });
  });

  test('podman elsewhere than /usr/bin: the original refuses the node', async () => {
    const status = await statusFor({ code: 0, stdout: [step('arch', 0, 'x86_64\n'), step('which', 0, '/opt/bin/podman\n')].join('\n'), stderr: '' });
    expect(status).toMatchObject({ nodeArch: 'x86_64', podmanStatus: 'Podman not installed on node.', ableToRunJobs: false });
  });

  test('a node that stops answering after the arch: the answers so far, then the timeout as the error', async () => {
    const status = await statusFor({ code: null, stdout: step('arch', 0, 'x86_64\n'), stderr: '', timedOut: true });
    expect(status).toMatchObject({
      nodeArch: 'x86_64',
      podmanStatus: 'Unable determine if tools are installed on node. Error: the node did not answer within 100 ms',
      ableToRunJobs: false,
    });
  });

  test('a healthy node whose jobs cannot be counted still takes jobs (count unknown, -1)', async () => {
    const status = await statusFor({
      code: 0,
      stdout: [step('arch', 0, 'x86_64\n'), step('which', 0, '/usr/bin/podman\n'), step('version', 0, 'podman version 4.3.1\n'), step('jobs', 1, '', 'find: boom')].join('\n'),
      stderr: '',
    });
    expect(status).toMatchObject({ podmanStatus: 'Podman present at /usr/bin/podman', ableToRunJobs: true, numCurrentJobs: -1, podmanVersion: '4.3.1' });
  });
});

describe('settings', () => {
  test('the host map: host with or without port, IPv6 in brackets; unmapped xnames are their own host on port 22 as root', () => {
    const hosts = parseHostMap('x1=127.0.0.1:2201, x2=node2.example  x3=[::1]:2203');
    expect([...hosts]).toEqual([
      ['x1', { host: '127.0.0.1', port: 2201 }],
      ['x2', { host: 'node2.example' }],
      ['x3', { host: '::1', port: 2203 }],
    ]);
    const s = { ...settings, hosts };
    expect(targetOf(s, 'x2')).toEqual({ xname: 'x2', host: 'node2.example', port: 22, user: 'root' });
    expect(targetOf(s, 'x9')).toEqual({ xname: 'x9', host: 'x9', port: 22, user: 'root' });
    expect(() => parseHostMap('x1')).toThrow("REMOTE_NODE_HOST_MAP entry 'x1' is not xname=host[:port]");
  });
});

describe('job view', () => {
  test('markers, reasons, port and container state from the node’s answer', () => {
    const view = parseView(['dir=present', 'has=prepared', 'has=image/ready', 'image/remote_error=sshd exited: bind failed ', 'port=2024', 'container=exited 137', ''].join('\n'));
    expect(view).toEqual({
      present: true,
      markers: new Set(['prepared', 'image/ready']),
      reasons: { 'image/remote_error': 'sshd exited: bind failed' },
      port: 2024,
      container: { kind: 'stopped', status: 'exited', exitCode: 137 },
      tasks: { fetch: { kind: 'absent' }, sums: { kind: 'absent' }, upload: { kind: 'absent' }, changes: { kind: 'absent' } },
      sums: new Map(),
    });
    expect(parseView('dir=absent\n')).toMatchObject({ present: false, container: { kind: 'absent' } });
    expect(parseView('dir=present\ncontainer=created 0\n').container).toEqual({ kind: 'running', status: 'created' });
  });

  test('the node’s background transfers and the results’ checksums', () => {
    const view = parseView(
      [
        'dir=present',
        'task.fetch=done',
        'task.sums=running checksumming rootfs.sqsh',
        'task.upload=dead curl: (7) Failed to connect',
        `sum=rootfs.sqsh 1073807360 ${'a'.repeat(32)}`,
        'sum=kernel x not-a-sum',
        '',
      ].join('\n'),
    );
    expect(view.tasks).toEqual({
      fetch: { kind: 'done' },
      sums: { kind: 'running', progress: 'checksumming rootfs.sqsh' },
      upload: { kind: 'failed', reason: 'it stopped without a result (curl: (7) Failed to connect)' },
      changes: { kind: 'absent' },
    });
    expect(view.sums).toEqual(new Map([['rootfs.sqsh', { size: 1073807360, md5: 'a'.repeat(32) }]]));
    expect(parseView('task.upload=failed S3 answered part 3 of kernel without an ETag\n').tasks.upload).toEqual({ kind: 'failed', reason: 'S3 answered part 3 of kernel without an ETag' });
  });
});

describe('result upload plan', () => {
  test('64 MiB parts, larger when a file would need more than 1000', () => {
    expect(partSizeFor(10)).toBe(64 * 1024 ** 2);
    expect(partSizeFor(10 * 1024 ** 3)).toBe(64 * 1024 ** 2);
    const huge = 200 * 1024 ** 3;
    expect(Math.ceil(huge / partSizeFor(huge))).toBeLessThanOrEqual(1000);
    expect(partSizeFor(huge) % (1024 * 1024)).toBe(0);
  });
});

describe('node load', () => {
  const health = (numCurrentJobs: number): NodeHealth => ({ ...unknownStatus('x1'), numCurrentJobs, ableToRunJobs: true, probedAtMs: 1_000_000 });

  test('the probe’s count plus reservations plus jobs started after the probe looked', () => {
    const now = 1_000_500;
    const load = {
      xname: 'x1',
      jobs: {
        reserved: { reservedMs: 999_000 },
        startedBefore: { reservedMs: 990_000, startedMs: 995_000 },
        startedAfter: { reservedMs: 990_000, startedMs: 1_000_100 },
        expired: { reservedMs: now - RESERVATION_TTL_MS - 1 },
      },
    };
    expect(nodeLoad(health(3), load, now)).toBe(3 + 1 + 1);
    expect(nodeLoad(health(0), undefined, now)).toBe(0);
  });

  test('a node whose jobs could not be counted ranks after every node that could', () => {
    expect(nodeLoad(health(-1), undefined, 0)).toBeGreaterThan(nodeLoad(health(500), undefined, 0));
  });
});
