/**
 * The parts of the local worker that decide things on their own: recipe templating, the
 * repositories a recipe waits for, where kernel and initrd are, missing-tool reasons, the
 * background task state, the process sweep, and how a served SSH endpoint reaches the record.
 * The whole worker runs for real in test/integration/local-worker.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderRecipe, RecipeTemplateError } from '#shared/workers/local/recipe-template.js';
import { kiwiRepositories, probeUrl, isHttp } from '#shared/workers/local/kiwi-repos.js';
import { findBootFiles, fileInRoot, resolveInRoot } from '#shared/workers/local/boot-files.js';
import { missingTools, findTool } from '#shared/workers/local/host-tools.js';
import { startTask, taskStatus, clearTask } from '#shared/workers/local/background-task.js';
import { jobProcesses, killJobProcesses, JOB_MARKER } from '#shared/workers/local/job-processes.js';
import { withSshEndpoint } from '#shared/workflow/ssh-endpoint.js';
import type { JobState } from '#shared/domain/job-state.js';
import { sleep } from '../helpers/until.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ims-local-parts-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fresh(name: string): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  return path;
}

describe('recipe templating', () => {
  test('renders the files .ims_recipe_template.yaml lists and keeps their mode', async () => {
    const recipe = fresh('recipe-listed');
    writeFileSync(join(recipe, '.ims_recipe_template.yaml'), 'template_files:\n  - config.xml\n  - root/etc/motd\n');
    writeFileSync(join(recipe, 'config.xml'), '<source path="{{ MIRROR }}"/> {{USER}}', { mode: 0o640 });
    mkdirSync(join(recipe, 'root', 'etc'), { recursive: true });
    writeFileSync(join(recipe, 'root', 'etc', 'motd'), 'welcome to {{ SITE }}\n');
    writeFileSync(join(recipe, 'config.sh'), 'echo {{ NOT_LISTED }}\n');
    const rendered = await renderRecipe(recipe, { MIRROR: 'http://m/debian', USER: 'root', SITE: 'lab' });
    expect(rendered).toEqual(['config.xml', 'root/etc/motd']);
    expect(readFileSync(join(recipe, 'config.xml'), 'utf8')).toBe('<source path="http://m/debian"/> root');
    expect(statSync(join(recipe, 'config.xml')).mode & 0o777).toBe(0o640);
    expect(readFileSync(join(recipe, 'config.sh'), 'utf8')).toBe('echo {{ NOT_LISTED }}\n');
  });

  test('without the YAML file config.xml is rendered; a variable without a value is named', async () => {
    const recipe = fresh('recipe-unlisted');
    writeFileSync(join(recipe, 'config.xml'), '{{ A }} {{ B }} {{ C }}');
    await expect(renderRecipe(recipe, { A: '1' })).rejects.toThrow(new RecipeTemplateError("config.xml uses B, C, which the recipe's template_dictionary does not define"));
    writeFileSync(join(recipe, 'config.xml'), '{{ A }}');
    expect(await renderRecipe(recipe, { A: '1' })).toEqual(['config.xml']);
  });

  test('refuses files outside the recipe and a listed template with an empty dictionary', async () => {
    const recipe = fresh('recipe-escape');
    writeFileSync(join(dir, 'outside.txt'), '{{ X }}');
    writeFileSync(join(recipe, '.ims_recipe_template.yaml'), 'template_files: [../outside.txt]\n');
    await expect(renderRecipe(recipe, { X: 'y' })).rejects.toThrow('template file ../outside.txt is outside the recipe directory');
    await expect(renderRecipe(recipe, {})).rejects.toThrow('but its template_dictionary is empty');
    expect(readFileSync(join(dir, 'outside.txt'), 'utf8')).toBe('{{ X }}');
  });
});

describe('kiwi repositories', () => {
  const xml = `<image>
    <!-- <repository type="rpm-md"><source path="http://commented.out/"/></repository> -->
    <repository type="apt-deb" alias="debian" distribution="bookworm" components="main">
      <source path="http://deb.example/debian/"><signing key="file:///k.gpg"/></source>
    </repository>
    <repository alias="sles"><source path='https://nexus.example/repo?a=1&amp;b=2'/></repository>
    <repository type="rpm-md"><source path="obs://some/project"/></repository>
  </image>`;

  test('reads type, path and suite; probes the repository index', () => {
    const repos = kiwiRepositories(xml);
    expect(repos).toEqual([
      { type: 'apt-deb', path: 'http://deb.example/debian/', distribution: 'bookworm' },
      { type: 'rpm-md', path: 'https://nexus.example/repo?a=1&b=2' },
      { type: 'rpm-md', path: 'obs://some/project' },
    ]);
    expect(repos.filter(isHttp).map(probeUrl)).toEqual(['http://deb.example/debian/dists/bookworm/Release', 'https://nexus.example/repo?a=1&b=2/repodata/repomd.xml']);
  });
});

describe('boot files', () => {
  test('the named files, with links followed inside the image root', async () => {
    const root = fresh('root-suse');
    mkdirSync(join(root, 'boot'));
    writeFileSync(join(root, 'boot', 'vmlinuz-5.14.21'), 'k');
    symlinkSync('/boot/vmlinuz-5.14.21', join(root, 'boot', 'vmlinuz'));
    writeFileSync(join(root, 'boot', 'initrd'), 'i');
    // An absolute link means the image's file: this one points at nothing inside the root.
    symlinkSync('/etc/hostname', join(root, 'boot', 'kernel-parameters'));
    const found = await findBootFiles(root, { kernel: 'vmlinuz', initrd: 'initrd', parameters: 'kernel-parameters' });
    expect(found).toEqual({ kernel: join(root, 'boot', 'vmlinuz-5.14.21'), initrd: join(root, 'boot', 'initrd'), parameters: undefined });
    expect(await fileInRoot(root, '../../etc/passwd')).toBeUndefined();
  });

  test('no link leads out of the image: an absolute link is the image\'s path, never the host\'s', async () => {
    const root = fresh('root-hostile');
    mkdirSync(join(root, 'tmp'));
    // `boot -> /etc` on the host would expose /etc/hostname as the "kernel".
    symlinkSync('/etc', join(root, 'boot'));
    symlinkSync('/etc', join(root, 'tmp', 'up'));
    symlinkSync('../../../../../../etc/hostname', join(root, 'tmp', 'climb'));
    expect(await findBootFiles(root, { kernel: 'hostname', initrd: 'hosts', parameters: 'passwd' })).toEqual({ kernel: undefined, initrd: undefined, parameters: undefined });
    expect(await fileInRoot(root, 'tmp/up/hostname')).toBeUndefined();
    expect(await fileInRoot(root, 'tmp/climb')).toBeUndefined();
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc', 'hostname'), 'image');
    expect(await fileInRoot(root, 'boot/hostname')).toBe(join(root, 'etc', 'hostname'));
    expect(await fileInRoot(root, 'tmp/climb')).toBe(join(root, 'etc', 'hostname'));
    expect(await resolveInRoot(root, 'tmp/up')).toBe(join(root, 'etc'));
  });

  test("Debian's versioned names: the newest kernel and its own initrd", async () => {
    const root = fresh('root-debian');
    mkdirSync(join(root, 'boot'));
    for (const v of ['6.1.0-9-amd64', '6.1.0-50-amd64']) {
      writeFileSync(join(root, 'boot', `vmlinuz-${v}`), v);
      writeFileSync(join(root, 'boot', `initrd.img-${v}`), v);
    }
    const found = await findBootFiles(root, { kernel: 'vmlinuz', initrd: 'initrd', parameters: 'kernel-parameters' });
    expect(found).toEqual({ kernel: join(root, 'boot', 'vmlinuz-6.1.0-50-amd64'), initrd: join(root, 'boot', 'initrd.img-6.1.0-50-amd64'), parameters: undefined });
  });
});

describe('host tools', () => {
  test('a missing tool is reported with the Debian package that provides it', () => {
    expect(missingTools(['mksquashfs', 'unsquashfs', 'sshd'], '/nonexistent')).toBe(
      'mksquashfs, unsquashfs, sshd are not installed on this host: install the Debian packages squashfs-tools openssh-server (apt-get install -y --no-install-recommends squashfs-tools openssh-server)',
    );
    expect(missingTools(['kiwi-ng'], '/nonexistent')).toBe('kiwi-ng is not installed on this host: install the Debian package kiwi (apt-get install -y --no-install-recommends kiwi)');
    expect(findTool('tar')).toMatch(/\/tar$/);
  });
});

describe('background tasks', () => {
  test('absent, running, exited with its status; clearing forgets it', async () => {
    const tasks = fresh('tasks');
    const script = join(dir, 'task.sh');
    writeFileSync(script, 'echo "hello $WHO"; sleep 0.5; exit 7\n');
    expect(await taskStatus(tasks, 'demo')).toEqual({ state: 'absent' });
    await startTask(tasks, { name: 'demo', script, env: { PATH: '/usr/bin:/bin', WHO: 'task' }, log: join(tasks, 'demo.log') });
    expect((await taskStatus(tasks, 'demo')).state).toBe('running');
    let status = await taskStatus(tasks, 'demo');
    for (let i = 0; i < 100 && status.state === 'running'; i++, await sleep(50)) status = await taskStatus(tasks, 'demo');
    expect(status).toEqual({ state: 'exited', code: 7 });
    expect(readFileSync(join(tasks, 'demo.log'), 'utf8')).toBe('hello task\n');
    await clearTask(tasks, 'demo');
    expect(await taskStatus(tasks, 'demo')).toEqual({ state: 'absent' });
  });

  test('a task whose pid belongs to another boot is lost, not running', async () => {
    const tasks = fresh('tasks-reboot');
    writeFileSync(join(tasks, 'old.started'), String(Date.now() - 60_000));
    writeFileSync(join(tasks, 'old.pid'), `${process.pid} 00000000-0000-0000-0000-000000000000\n`);
    expect(await taskStatus(tasks, 'old')).toEqual({ state: 'lost' });
  });
});

describe('the process sweep', () => {
  test('finds the processes of a job by their marker and ends them, their children too', async () => {
    const jobId = `sweep-${process.pid}`;
    const work = fresh('sweep-work');
    const child = spawn('/bin/sh', ['-c', 'sleep 60 & sleep 60'], { detached: true, stdio: 'ignore', env: { PATH: '/usr/bin:/bin', [JOB_MARKER]: jobId } });
    child.unref();
    const exited = new Promise((resolve) => child.on('exit', resolve));
    let found: number[] = [];
    for (let i = 0; i < 50 && found.length < 3; i++, await sleep(20)) found = await jobProcesses(jobId, work);
    expect(found.length).toBe(3);
    expect(found).toContain(child.pid);
    expect(await killJobProcesses(jobId, work, 2000)).toEqual([]);
    await exited;
    expect(await jobProcesses(jobId, work)).toEqual([]);
  });
});

describe('the served SSH endpoint on the record', () => {
  const state = {
    job: {
      ssh_containers: [
        { name: 'customize', jail: false, status: 'pending', connection_info: { customer_access: { host: 'x.ims.cmn.shasta.local', port: 22 }, 'cluster.local': { host: 'svc.ims.svc.cluster.local', port: 22 } } },
      ],
    },
  } as unknown as JobState;

  test('every connection_info entry shows the host and port served, and the status', () => {
    const next = withSshEndpoint(state, { status: 'running', host: '127.0.0.1', port: 40022 });
    expect(next.job.ssh_containers).toEqual([
      { name: 'customize', jail: false, status: 'running', connection_info: { customer_access: { host: '127.0.0.1', port: 40022 }, 'cluster.local': { host: '127.0.0.1', port: 40022 } } },
    ]);
    expect(withSshEndpoint(next, { status: 'running', host: '127.0.0.1', port: 40022 })).toBe(next);
    expect(withSshEndpoint(next, { status: 'complete' }).job.ssh_containers![0]).toMatchObject({ status: 'complete', connection_info: { customer_access: { host: '127.0.0.1', port: 40022 } } });
    expect(withSshEndpoint(state, undefined)).toBe(state);
  });
});
