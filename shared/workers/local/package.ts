/**
 * package: squash the image root (status packaging_artifacts) and find its kernel, initrd and
 * kernel parameters; what it found is written to artifacts.json, which `collect` hands to the
 * register stage. A root without kernel or initrd fails the job, as in the original.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { CollectedArtifacts, StageProgress } from '../../domain/worker-port.js';
import { findBootFiles } from './boot-files.js';
import { exists, pollStep, type LocalJob } from './local-job.js';

type FileArtifacts = Extract<CollectedArtifacts, { kind: 'files' }>;

export async function packageImage(job: LocalJob): Promise<StageProgress> {
  if (await exists(job.paths.artifacts)) return { state: 'done', status: 'packaging_artifacts' };
  if (!(await exists(job.paths.imageRoot))) return { state: 'failed', reason: `there is no image root to package (${job.paths.imageRoot})` };
  const step = await pollStep(job, {
    name: 'package',
    script: 'package.sh',
    vars: { ROOT: job.paths.imageRoot, OUT: job.paths.rootfs, SQUASHFS_OPTIONS: job.settings.squashfsOptions.join(' ') },
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
  const artifacts: FileArtifacts = {
    kind: 'files',
    rootfs: job.paths.rootfs,
    kernel: boot.kernel!,
    initrd: boot.initrd!,
    ...(boot.parameters ? { parameters: boot.parameters } : {}),
    ...((await exists(job.paths.packages)) ? { extras: { packages: job.paths.packages } } : {}),
  };
  await writeFile(job.paths.artifacts, JSON.stringify(artifacts, null, 2));
  await job.log(`packaged: ${JSON.stringify(artifacts)}`);
  return { state: 'done', status: 'packaging_artifacts' };
}

export async function packagedArtifacts(job: LocalJob): Promise<FileArtifacts> {
  try {
    return JSON.parse(await readFile(job.paths.artifacts, 'utf8')) as FileArtifacts;
  } catch {
    throw new Error(`IMS job ${job.job.job.id} has no packaged artifacts on this host (${job.paths.artifacts})`);
  }
}
