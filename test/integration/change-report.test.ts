/**
 * The change report from a real copy-on-write view: a squashfs image mounted read-only through a
 * loop device under overlayfs (as a customize shell works in it), changed through the merged
 * view, then listed by the same script the workers run. Needs root, a loop device and overlayfs,
 * as customize jobs do; it fails (never skips) without them.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync, appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { CHANGE_LISTING_SCRIPT, changeReportFrom, formatPackageList, parseDpkgStatus } from '#shared/workers/change-report.js';
import { parsePackageList } from '#shared/domain/image-contents.js';

const dir = mkdtempSync(join(tmpdir(), 'ims-change-report-'));
const sqsh = join(dir, 'rootfs.sqsh');
const upper = join(dir, 'upper');
const work = join(dir, 'work');
const lower = join(dir, 'lower');
const merged = join(dir, 'merged');
const out = join(dir, 'listing');

function dpkgEntry(name: string, version: string, status = 'install ok installed'): string {
  return `Package: ${name}\nStatus: ${status}\nPriority: optional\nArchitecture: amd64\nVersion: ${version}\nDescription: ${name}\n multi-line description\n`;
}

let mounted = false;
beforeAll(() => {
  const root = join(dir, 'root');
  for (const sub of ['etc', 'opt/app/lib', 'var/lib/dpkg', 'srv/old', 'usr/bin', 'dev/pts']) mkdirSync(join(root, sub), { recursive: true });
  writeFileSync(join(root, 'etc/motd'), 'before\n');
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(root, 'opt/app/lib/one.so'), 'one');
  writeFileSync(join(root, 'opt/app/lib/two.so'), 'two');
  writeFileSync(join(root, 'opt/app/config'), 'old config');
  writeFileSync(join(root, 'srv/old/data'), 'data');
  writeFileSync(join(root, 'usr/bin/tool'), 'tool');
  symlinkSync('tool', join(root, 'usr/bin/tool-link'));
  writeFileSync(
    join(root, 'var/lib/dpkg/status'),
    [dpkgEntry('base-files', '12.4'), dpkgEntry('curl', '7.88.1-10'), dpkgEntry('vim', '2:9.0.1378-2'), dpkgEntry('gone', '1.0', 'deinstall ok config-files')].join('\n'),
  );
  execFileSync('mksquashfs', [root, sqsh, '-quiet', '-noappend', '-no-progress'], { stdio: 'ignore' });
  for (const d of [upper, work, lower, merged]) mkdirSync(d);
  execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', sqsh, lower]);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
  mounted = true;

  // What a user does in the shell, through the merged view.
  writeFileSync(join(merged, 'etc/motd'), 'after, customized\n'); // modified
  unlinkSync(join(merged, 'etc/hosts')); // deleted: a whiteout
  writeFileSync(join(merged, 'etc/new.conf'), 'twelve bytes'); // added
  mkdirSync(join(merged, 'opt/extra')); // added directory with a file
  writeFileSync(join(merged, 'opt/extra/readme'), 'x');
  rmSync(join(merged, 'srv/old'), { recursive: true }); // a deleted directory: a whiteout
  rmSync(join(merged, 'opt/app/lib'), { recursive: true }); // replaced: an opaque directory
  mkdirSync(join(merged, 'opt/app/lib'));
  writeFileSync(join(merged, 'opt/app/lib/one.so'), 'one again');
  unlinkSync(join(merged, 'usr/bin/tool-link')); // a symlink replaced by another target
  symlinkSync('/opt/extra/readme', join(merged, 'usr/bin/tool-link'));
  // A package installed, one upgraded, one removed: the dpkg database changes in the upper layer.
  const status = readFileSync(join(merged, 'var/lib/dpkg/status'), 'utf8')
    .replace(dpkgEntry('curl', '7.88.1-10'), dpkgEntry('curl', '7.88.1-10+deb12u5'))
    .replace(dpkgEntry('vim', '2:9.0.1378-2'), dpkgEntry('vim', '2:9.0.1378-2', 'deinstall ok config-files'));
  writeFileSync(join(merged, 'var/lib/dpkg/status'), status);
  appendFileSync(join(merged, 'var/lib/dpkg/status'), `\n${dpkgEntry('htop', '3.2.2-2')}`);
  // What the job itself makes in the image root, not the user: left out by the worker's ignore list.
  writeFileSync(join(merged, 'dev/pts/ptmx-marker'), '');

  execFileSync('umount', [merged]);
  execFileSync('umount', [lower]);
  mounted = false;
  execFileSync('bash', ['-c', CHANGE_LISTING_SCRIPT, 'listing', sqsh, upper, out]);
});

afterAll(() => {
  if (mounted) {
    execFileSync('umount', ['-l', merged]);
    execFileSync('umount', ['-l', lower]);
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('the change report of a customize shell', () => {
  test('lists exactly the files added, modified and deleted, whiteouts and opaque directories read as deletions', async () => {
    const { report } = await changeReportFrom({ listing: out, upper, parentId: 'p', jobId: 'j', ignore: ['dev/pts'] });
    expect(report.files).toEqual({
      added: [
        { path: 'etc/new.conf', type: 'file', size: 12 },
        { path: 'opt/extra', type: 'directory', size: 0 },
        { path: 'opt/extra/readme', type: 'file', size: 1 },
      ],
      modified: [
        { path: 'etc/motd', type: 'file', size: 18 },
        { path: 'opt/app/lib/one.so', type: 'file', size: 9 },
        { path: 'usr/bin/tool-link', type: 'symlink', size: 0, target: '/opt/extra/readme' },
        { path: 'var/lib/dpkg/status', type: 'file', size: expect.any(Number) },
      ],
      deleted: [
        { path: 'etc/hosts', type: 'file', size: 0 },
        { path: 'opt/app/lib/two.so', type: 'file', size: 0 },
        { path: 'srv/old', type: 'directory', size: 0 },
      ],
    });
    expect(report.parent_id).toBe('p');
    expect(report.job_id).toBe('j');
  });

  test('lists the packages added, removed and changed, from the dpkg databases before and after', async () => {
    const { report, packages } = await changeReportFrom({ listing: out, upper, parentId: 'p', jobId: 'j', ignore: ['dev/pts'] });
    expect(report.packages).toEqual({
      added: [{ name: 'htop', version: '3.2.2-2', arch: 'amd64' }],
      removed: [{ name: 'vim', version: '2:9.0.1378-2', arch: 'amd64' }],
      changed: [{ name: 'curl', arch: 'amd64', from: '7.88.1-10', to: '7.88.1-10+deb12u5' }],
    });
    expect(packages.map((p) => p.name)).toEqual(['base-files', 'curl', 'htop']);
    // The package list artifact reads back as the same packages.
    expect(parsePackageList(formatPackageList(packages))).toEqual(packages);
  });

  test('without the ignore list the job\'s own paths would show: the list is what keeps them out', async () => {
    const { report } = await changeReportFrom({ listing: out, upper, parentId: 'p', jobId: 'j' });
    expect(report.files.added.map((f) => f.path)).toContain('dev/pts/ptmx-marker');
  });

  test('an image with no package database has files only', async () => {
    const noDb = join(dir, 'nodb');
    mkdirSync(join(noDb, 'root/etc'), { recursive: true });
    writeFileSync(join(noDb, 'root/etc/a'), 'a');
    const image = join(noDb, 'r.sqsh');
    execFileSync('mksquashfs', [join(noDb, 'root'), image, '-quiet', '-noappend', '-no-progress'], { stdio: 'ignore' });
    const up = join(noDb, 'upper');
    mkdirSync(join(up, 'etc'), { recursive: true });
    writeFileSync(join(up, 'etc/b'), 'bb');
    execFileSync('bash', ['-c', CHANGE_LISTING_SCRIPT, 'listing', image, up, join(noDb, 'out')]);
    const { report, packages } = await changeReportFrom({ listing: join(noDb, 'out'), upper: up, parentId: 'p', jobId: 'j' });
    expect(report.files.added).toEqual([{ path: 'etc/b', type: 'file', size: 2 }]);
    expect(report.packages).toEqual({ added: [], removed: [], changed: [] });
    expect(packages).toEqual([]);
  });
});

describe('dpkg status', () => {
  test('only installed packages count', () => {
    const text = [dpkgEntry('a', '1'), dpkgEntry('b', '2', 'deinstall ok config-files'), dpkgEntry('c', '3', 'install ok half-installed'), dpkgEntry('d', '4', 'purge ok not-installed')].join('\n');
    expect(parseDpkgStatus(text)).toEqual([{ name: 'a', version: '1', arch: 'amd64' }]);
  });
});
