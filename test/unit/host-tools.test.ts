/**
 * The table of host tools and what the setup script and `npm start` make of it, on a pretend
 * host (which paths exist is a function here): no apt-get runs.
 */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { aptGetInstallLine, findHostTool, hostTool, HOST_TOOLS, missingHostTools, setupPlan, toolsFor, USES, type HostToolUse } from '../../shared/host-tools.mjs';
import { remoteNodeSettingsFromEnv } from '#shared/workers/remote-node/settings.js';
import { jobKindsReport } from '#infra/local/job-kinds.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A host that has every tool of the table except the given paths; the search path is /usr/bin:/usr/sbin. */
function hostWithout(...absent: string[]) {
  const present = new Set(HOST_TOOLS.map((t) => t.path).filter((p) => !absent.includes(p)));
  return { path: '/usr/bin:/usr/sbin', isThere: (p: string) => present.has(p) };
}

// The Debian machine of the issue: podman, runc, busybox-static and squashfs-tools removed.
const STRIPPED = hostWithout('/usr/bin/podman', '/usr/sbin/runc', '/bin/busybox', '/usr/bin/mksquashfs', '/usr/bin/unsquashfs');

describe('the table', () => {
  test('each tool and path once, each use known, a reason for each', () => {
    expect(new Set(HOST_TOOLS.map((t) => t.tool)).size).toBe(HOST_TOOLS.length);
    expect(new Set(HOST_TOOLS.map((t) => t.path)).size).toBe(HOST_TOOLS.length);
    for (const t of HOST_TOOLS) {
      expect(t.for.length).toBeGreaterThan(0);
      for (const use of t.for) expect(Object.keys(USES)).toContain(use);
      expect(t.why).not.toBe('');
      expect(t.path).toMatch(/^\//);
    }
  });

  test('npm test needs what the remote-node and local-worker tests check for', () => {
    const test = toolsFor(['test']).map((t) => t.path);
    for (const path of ['/usr/bin/podman', '/usr/sbin/runc', '/bin/busybox', '/usr/sbin/sshd', '/usr/bin/mksquashfs', '/usr/bin/kiwi-ng', '/usr/lib/openssh/sftp-server']) {
      expect(test).toContain(path);
    }
    expect(toolsFor(['customize']).map((t) => t.tool)).not.toContain('kiwi-ng');
    expect(toolsFor(['create']).map((t) => t.tool)).toContain('kiwi-ng');
    expect(() => toolsFor(['tests' as HostToolUse])).toThrow(/unknown use 'tests'/);
    expect(() => hostTool('/usr/bin/nothing')).toThrow(/not in the table/);
  });

  test('a tool is found by name on the search path, an exact one only at its path', () => {
    const elsewhere = (p: string) => p === '/opt/kiwi/bin/kiwi-ng' || p === '/opt/bin/podman';
    expect(findHostTool(hostTool('kiwi-ng'), '/opt/kiwi/bin', elsewhere)).toBe('/opt/kiwi/bin/kiwi-ng');
    expect(findHostTool(hostTool('podman'), '/opt/bin', elsewhere)).toBeUndefined();
    expect(findHostTool(hostTool('podman'), '', (p) => p === '/usr/bin/podman')).toBe('/usr/bin/podman');
    expect(missingHostTools(['test'], STRIPPED.path, STRIPPED.isThere).map((t) => t.tool)).toEqual(['unsquashfs', 'mksquashfs', 'busybox', 'podman', 'runc']);
  });
});

describe('the setup plan', () => {
  test('root on Debian: installs the missing packages, each once, one line each saying what and why', () => {
    const plan = setupPlan(['test'], { isRoot: true, isDebian: true, ...STRIPPED });
    expect(plan.action).toBe('install');
    expect(plan.packages).toEqual(['squashfs-tools', 'busybox-static', 'podman', 'runc']);
    expect(plan.command).toBe('apt-get install -y --no-install-recommends squashfs-tools busybox-static podman runc');
    expect(plan.lines).toHaveLength(4);
    expect(plan.lines[0]).toBe(
      'squashfs-tools: unsquashfs (unpacks the rootfs of the image a customize job starts from); mksquashfs (squashes the image root into the rootfs a job registers); for npm test',
    );
    expect(plan.lines[2]).toMatch(/^podman: podman \(runs the job containers .*\); for npm test$/);
  });

  test('not root, not Debian, or only checking: reports the exact apt-get line instead', () => {
    const notRoot = setupPlan(['test'], { isRoot: false, isDebian: true, ...STRIPPED });
    expect(notRoot).toMatchObject({ action: 'report', why: 'not root: as root, run', command: 'apt-get install -y --no-install-recommends squashfs-tools busybox-static podman runc' });
    expect(setupPlan(['test'], { isRoot: true, isDebian: false, ...STRIPPED }).why).toMatch(/not Debian/);
    expect(setupPlan(['test'], { isRoot: true, isDebian: true, check: true, ...STRIPPED }).action).toBe('report');
  });

  test('only the uses asked for count: a customize host needs no podman', () => {
    const plan = setupPlan(['customize'], { isRoot: true, isDebian: true, ...STRIPPED });
    expect(plan.packages).toEqual(['squashfs-tools']);
    expect(plan.lines[0]).toMatch(/; for customize jobs on the local worker$/);
    expect(setupPlan(['customize'], { isRoot: false, isDebian: false, ...hostWithout() })).toMatchObject({ action: 'nothing', packages: [] });
    expect(aptGetInstallLine(['kiwi', 'kiwi-systemdeps-core'])).toBe('apt-get install -y --no-install-recommends kiwi kiwi-systemdeps-core');
  });

  test('the script: a wrong use is a usage error; IMS_HOST_SETUP=skip does nothing', () => {
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, ['scripts/host-setup.mjs', ...args], { cwd: root, env: { ...process.env, NODE_OPTIONS: '', ...env }, encoding: 'utf8' });
    const wrong = run(['tests']);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/^usage: .*customize, create, test, test:build, ci/);
    expect(run(['test'], { IMS_HOST_SETUP: 'skip', PATH: '/nonexistent' })).toMatchObject({ status: 0, stderr: '' });
  });
});

describe('what npm start says about job kinds', () => {
  const noNodes = remoteNodeSettingsFromEnv({});
  const missingKiwi = (kind: string) => (kind === 'create' ? 'kiwi-ng is not installed on this host: install the Debian package kiwi (apt-get install -y --no-install-recommends kiwi)' : undefined);

  test('local worker as root: the kinds whose tools are there, and for the others what to install', () => {
    const report = jobKindsReport('local', noNodes, { isRoot: true, missingFor: missingKiwi });
    expect(report.canRun).toEqual(['customize']);
    expect(report.cannotRun.create).toMatch(/^kiwi-ng is not installed .*apt-get install -y --no-install-recommends kiwi\); as root on Debian, npm start installs them itself$/);
    expect(report.remoteNodes).toMatch(/^off: set REMOTE_NODE_SSH_KEY_FILE/);
  });

  test('local worker not as root: nothing runs; kubernetes: everything; remote nodes need only the key', () => {
    expect(jobKindsReport('local', noNodes, { isRoot: false, missingFor: () => undefined })).toMatchObject({ canRun: [], cannotRun: { customize: expect.stringMatching(/as root/) } });
    const nodes = remoteNodeSettingsFromEnv({ REMOTE_NODE_SSH_KEY_FILE: '/etc/ims/node_key' });
    const kube = jobKindsReport('kubernetes', nodes, { isRoot: false, missingFor: missingKiwi });
    expect(kube).toMatchObject({ worker: 'kubernetes', canRun: ['customize', 'create'], cannotRun: {} });
    expect(kube.remoteNodes).toMatch(/^on: .*REMOTE_NODE_SSH_KEY_FILE \/etc\/ims\/node_key/);
    expect(jobKindsReport('none', noNodes, { isRoot: true, missingFor: () => undefined }).cannotRun.create).toMatch(/^no job worker \(IMS_JOB_WORKER=none\)/);
  });
});
