/**
 * What the change report costs a customize job: a 1 GiB image (incompressible) with 20,000 small
 * files, mounted as a customize shell sees it (squashfs on a loop device under overlayfs), 10,000
 * files changed through the merged view (added, modified, deleted), then the report made from
 * the upper layer (the workers' listing script and the parser) beside the packaging it rides
 * along with (mksquashfs of the merged view with the workers' options). Part of `npm run bench`
 * (BENCH_PARTS=changereport); needs root, a loop device and overlayfs, as customize jobs do.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHANGE_LISTING_SCRIPT, changeReportFrom } from '../shared/workers/change-report.js';
import { squashfsOptionsFromEnv } from '../shared/workers/squashfs-options.js';

const MiB = 1024 * 1024;

export async function benchChangeReport(scratch: string): Promise<Record<string, unknown>> {
  mkdirSync(scratch, { recursive: true });
  const dir = mkdtempSync(join(scratch, 'change-report-'));
  const root = join(dir, 'root');
  const [sqsh, upper, work, lower, merged, listing, out] = ['rootfs.sqsh', 'upper', 'work', 'lower', 'merged', 'listing', 'new.sqsh'].map((n) => join(dir, n));
  const mounts: string[] = [];
  try {
    mkdirSync(join(root, 'data'), { recursive: true });
    for (let i = 0; i < 16; i++) writeFileSync(join(root, 'data', `blob${i}`), randomBytes(64 * MiB));
    for (let d = 0; d < 100; d++) {
      mkdirSync(join(root, 'files', `d${d}`), { recursive: true });
      for (let f = 0; f < 200; f++) writeFileSync(join(root, 'files', `d${d}`, `f${f}`), `file ${d}/${f}\n`);
    }
    mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), Array.from({ length: 500 }, (_, i) => `Package: p${i}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.${i}\n`).join('\n'));
    const options = squashfsOptionsFromEnv(process.env);
    execFileSync('mksquashfs', [root, sqsh, '-noappend', '-quiet', '-no-progress', ...options], { stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
    for (const d of [upper, work, lower, merged]) mkdirSync(d);
    execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', sqsh, lower]);
    mounts.unshift(lower);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
    mounts.unshift(merged);
    // 10,000 changes: 4,000 files added, 4,000 modified, 2,000 deleted.
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(merged, 'new', `d${d}`), { recursive: true });
      for (let f = 0; f < 200; f++) writeFileSync(join(merged, 'new', `d${d}`, `f${f}`), `new ${d}/${f}\n`);
    }
    for (let d = 0; d < 20; d++) for (let f = 0; f < 200; f++) writeFileSync(join(merged, 'files', `d${d}`, `f${f}`), `changed ${d}/${f}\n`);
    for (let d = 20; d < 30; d++) for (let f = 0; f < 200; f++) unlinkSync(join(merged, 'files', `d${d}`, `f${f}`));

    const squashStart = process.hrtime.bigint();
    execFileSync('mksquashfs', [merged, out, '-noappend', '-quiet', '-no-progress', ...options], { stdio: 'ignore' });
    const squashMs = Number(process.hrtime.bigint() - squashStart) / 1e6;

    const reportStart = process.hrtime.bigint();
    execFileSync('bash', ['-c', CHANGE_LISTING_SCRIPT, 'listing', sqsh, upper, listing]);
    const { report } = await changeReportFrom({ listing, upper, parentId: 'bench', jobId: 'bench' });
    const reportMs = Number(process.hrtime.bigint() - reportStart) / 1e6;
    const bytes = Buffer.byteLength(JSON.stringify(report));
    return {
      imageMiB: 1024,
      changedFiles: report.files.added.filter((f) => f.type === 'file').length + report.files.modified.length + report.files.deleted.length,
      added: report.files.added.length,
      modified: report.files.modified.length,
      deleted: report.files.deleted.length,
      reportMs: Math.round(reportMs),
      reportKiB: Math.round(bytes / 1024),
      mksquashfsMs: Math.round(squashMs),
      addedToPackagingPct: Number(((100 * reportMs) / squashMs).toFixed(1)),
    };
  } finally {
    for (const m of mounts) execFileSync('umount', [m]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The section of bench/results.md. */
export function changeReportMarkdown(r: Record<string, any>): string[] {
  return [
    '## Change report of a customize job',
    '',
    `A ${r.imageMiB} MiB image (incompressible) under overlayfs, ${r.changedFiles} files changed through the merged view (${r.added} entries added, ${r.modified} modified, ${r.deleted} deleted). The report is made from the upper layer by the workers' listing script and parser; packaging is mksquashfs of the merged view with the workers' options, which the report rides along with.`,
    '',
    '| figure | measured | target |',
    '|---|---:|---:|',
    `| report made in | ${r.reportMs} ms | ≤ 2,000 ms |`,
    `| report size | ${r.reportKiB} KiB | |`,
    `| mksquashfs of the merged view | ${r.mksquashfsMs} ms | |`,
    `| added to packaging time | ${r.addedToPackagingPct} % | < 5 % |`,
    '',
  ];
}
