/**
 * What the change report costs a customize job: a 1 GiB image (incompressible) with 20,000 small
 * files, mounted as a customize shell sees it (squashfs on a loop device under overlayfs), 10,000
 * files changed through the merged view (added, modified, deleted), then the report made from
 * the upper layer (the workers' listing script and the parser) beside the packaging it rides
 * along with (mksquashfs of the merged view with the workers' options). Part of `npm run bench`
 * (BENCH_PARTS=changereport); needs root, a loop device and overlayfs, as customize jobs do.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHANGE_LISTING_COMMAND, changeReportFrom } from '../shared/workers/change-report.js';
import { squashfsOptionsFromEnv } from '../shared/workers/squashfs-options.js';

const MiB = 1024 * 1024;
const run = (file: string, args: string[]) => promisify(execFile)(file, args, { maxBuffer: 64 * MiB }).then(() => undefined);

async function timed(work: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

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

    const squash = () => run('mksquashfs', [merged, out, '-noappend', '-quiet', '-no-progress', ...options]);
    const makeReport = async () => {
      const [command, ...args] = CHANGE_LISTING_COMMAND;
      await run(command, [...args, sqsh, upper, listing]);
      return (await changeReportFrom({ listing, upper, parentId: 'bench', jobId: 'bench' })).report;
    };
    // Best of three each: the machine is shared, the least disturbed run is the closest to the work's own time.
    const squashRuns: number[] = [];
    const reportRuns: number[] = [];
    const bothRuns: number[] = [];
    let report = await makeReport();
    for (let i = 0; i < 3; i++) {
      squashRuns.push(await timed(squash));
      reportRuns.push(await timed(async () => void (report = await makeReport())));
      // As a job packages: the report is made while mksquashfs runs.
      bothRuns.push(await timed(() => Promise.all([squash(), makeReport()]).then(() => undefined)));
    }
    const squashMs = Math.min(...squashRuns);
    const reportMs = Math.min(...reportRuns);
    const bothMs = Math.min(...bothRuns);
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
      packagingWithReportMs: Math.round(bothMs),
      addedToPackagingPct: Number(((100 * Math.max(0, bothMs - squashMs)) / squashMs).toFixed(1)),
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
    `A ${r.imageMiB} MiB image (incompressible) under overlayfs, ${r.changedFiles} files changed through the merged view (${r.added} entries added, ${r.modified} modified, ${r.deleted} deleted). The report is made from the upper layer by the workers' listing script and parser; packaging is mksquashfs of the merged view with the workers' options; the package stage makes the report while mksquashfs runs. Each figure is the best of three runs.`,
    '',
    '| figure | measured | target |',
    '|---|---:|---:|',
    `| report made in | ${r.reportMs} ms | ≤ 2,000 ms |`,
    `| report size | ${r.reportKiB} KiB | |`,
    `| mksquashfs of the merged view alone | ${r.mksquashfsMs} ms | |`,
    `| mksquashfs with the report made beside it, as the package stage does | ${r.packagingWithReportMs} ms | |`,
    `| added to packaging time | ${r.addedToPackagingPct} % | < 5 % |`,
    '',
  ];
}
