/**
 * package: squash the image root (status packaging_artifacts) in one pass: mksquashfs of the
 * image root (a customize job's overlay: the merged view) writes the new rootfs once, then the
 * rootfs, the kernel, initrd and kernel parameters found in the root and a create job's package
 * list go up to the resultant image's keys (results-upload.ts). What went up is written to
 * artifacts.json, which `collect` hands to the register stage as objects it only registers. A
 * root without kernel or initrd fails the job, as in the original.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHANGE_LISTING_SCRIPT, changeReportFrom, formatPackageList, NOT_CHANGES, parseDpkgStatus } from '../change-report.js';
import { s3Path } from '../../domain/links.js';
import type { CollectedArtifacts, StageProgress } from '../../domain/worker-port.js';
import { findBootFiles } from './boot-files.js';
import { exists, pollStep, type LocalJob } from './local-job.js';
import { pollUploads, resultLocation, type ResultKey, type ResultsTarget } from './results-upload.js';

type ObjectArtifacts = Extract<CollectedArtifacts, { kind: 'objects' }>;

export async function packageImage(job: LocalJob, target: ResultsTarget): Promise<StageProgress> {
  if (await exists(job.paths.artifacts)) return { state: 'done', status: 'packaging_artifacts' };
  if (!(await exists(job.paths.imageRoot))) return { state: 'failed', reason: `there is no image root to package (${job.paths.imageRoot})` };
  const step = await pollStep(job, {
    name: 'package',
    script: 'package.sh',
    vars: { ROOT: job.paths.imageRoot, OUT: job.paths.rootfs, SQUASHFS_OPTIONS: job.settings.squashfsOptions.join(' '), ...(await listingVars(job)) },
    log: 'package.log',
    tools: ['mksquashfs'],
    status: 'packaging_artifacts',
    what: 'mksquashfs of the image root',
  });
  if (step) return step;

  const record = job.job.job;
  const names = { kernel: record.kernel_file_name, initrd: record.initrd_file_name, parameters: record.kernel_parameters_file_name };
  const boot = await findBootFiles(job.paths.imageRoot, names);
  const missing = [!boot.kernel && `kernel boot/${names.kernel}`, !boot.initrd && `initrd boot/${names.initrd}`].filter(Boolean);
  if (missing.length > 0) {
    const reason = `the image root has no ${missing.join(' and no ')} (nor a versioned one)`;
    await job.log(reason);
    return { state: 'failed', reason };
  }
  const files: Partial<Record<ResultKey, string>> = {
    rootfs: job.paths.rootfs,
    kernel: boot.kernel!,
    initrd: boot.initrd!,
    ...(boot.parameters ? { boot_parameters: boot.parameters } : {}),
    ...((await exists(job.paths.packages)) ? { packages: job.paths.packages } : {}),
    ...(record.job_type === 'customize' ? await customizeContents(job) : {}),
  };
  const uploads = pollUploads(job, target, files);
  if (uploads === 'running') return { state: 'running', status: 'packaging_artifacts', detail: 'uploading the results' };
  if (uploads !== 'done') {
    const reason = `uploading the results failed: ${uploads.failed}`;
    await job.log(reason);
    return { state: 'failed', reason };
  }
  const at = (key: ResultKey) => s3Path(resultLocation(target, job.job, key));
  const artifacts: ObjectArtifacts = {
    kind: 'objects',
    rootfs: at('rootfs'),
    kernel: at('kernel'),
    initrd: at('initrd'),
    ...(files.boot_parameters ? { parameters: at('boot_parameters') } : {}),
    ...(files.packages || files.changes
      ? { extras: { ...(files.packages ? { packages: at('packages') } : {}), ...(files.changes ? { changes: at('changes') } : {}) } }
      : {}),
  };
  await writeFile(job.paths.artifacts, JSON.stringify(artifacts, null, 2));
  await job.log(`packaged and uploaded: ${JSON.stringify(artifacts)}`);
  return { state: 'done', status: 'packaging_artifacts' };
}

export async function packagedArtifacts(job: LocalJob): Promise<ObjectArtifacts> {
  try {
    return JSON.parse(await readFile(job.paths.artifacts, 'utf8')) as ObjectArtifacts;
  } catch {
    throw new Error(`IMS job ${job.job.job.id} has no packaged artifacts on this host (${job.paths.artifacts})`);
  }
}

/** What package.sh needs to list a customize job's changes: only for an image root on an overlay. */
async function listingVars(job: LocalJob): Promise<Record<string, string>> {
  if (job.job.job.job_type !== 'customize') return {};
  const mode = (await readFile(job.paths.imageRootMode, 'utf8').catch(() => '')).trim();
  if (mode !== 'overlay') return {};
  return { LISTING: job.paths.changeListing, LISTING_SCRIPT: CHANGE_LISTING_SCRIPT, SOURCE: job.paths.source, UPPER: job.paths.upper };
}


/**
 * A customize job's change report (from the overlay's upper layer, listed by package.sh) and the
 * new image's package list. An image root made by unsquashfs (no overlay) has no upper layer to
 * report from: it gets its package list from the root's dpkg database, and no report.
 */
async function customizeContents(job: LocalJob): Promise<Partial<Record<ResultKey, string>>> {
  const record = job.job.job;
  // Made once (the package list last): the package stage is looked at again while the uploads run.
  if (await exists(job.paths.newPackages)) return { packages: job.paths.newPackages, ...((await exists(job.paths.changes)) ? { changes: job.paths.changes } : {}) };
  if (await exists(job.paths.changeListing)) {
    const { report, packages } = await changeReportFrom({ listing: job.paths.changeListing, upper: job.paths.upper, parentId: record.artifact_id, jobId: record.id, ignore: NOT_CHANGES });
    await writeFile(job.paths.changes, JSON.stringify(report));
    await writeFile(job.paths.newPackages, formatPackageList(packages));
    const { files } = report;
    await job.log(`change report: ${files.added.length} added, ${files.modified.length} modified, ${files.deleted.length} deleted; packages ${report.packages.added.length} added, ${report.packages.removed.length} removed, ${report.packages.changed.length} changed`);
    return { changes: job.paths.changes, packages: job.paths.newPackages };
  }
  await job.log('no change report: the image root is not an overlay with a change listing (see package.log)');
  const status = await readFile(join(job.paths.imageRoot, 'var/lib/dpkg/status'), 'utf8').catch(() => undefined);
  await writeFile(job.paths.newPackages, formatPackageList(status ? parseDpkgStatus(status) : []));
  return { packages: job.paths.newPackages };
}
