/**
 * A customize job's change report and package list on a remote node. Its view's upper directory
 * is on the node (customize-view.ts), so the node lists it (the `changes` task: the workers' one
 * listing script, beside the packaging at the lowest priority), this stage fetches the listing's
 * few files, makes the report and the new image's package list here (they are small) and puts
 * both beside the results, at the resultant image's keys; `collect` then hands them to register
 * with the rest. An image root the node had to unsquash has no upper layer: it gets its package
 * list from the root's dpkg database, and no report.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Location } from '../../domain/ports.js';
import type { StageProgress, WorkerJob } from '../../domain/worker-port.js';
import { logger } from '../../logger.js';
import { changeReportFrom, formatPackageList, LISTING_FILES, NOT_CHANGES, parseDpkgStatus, REQUIRED_LISTING_FILES } from '../change-report.js';
import { viewMounts } from './job-layout.js';
import { COMMAND_TIMEOUT_MS, type NodeJob } from './node-job.js';
import { startTask, tasksDir } from './node-tasks.js';
import { shq } from './ssh-session.js';
import type { ResultTarget } from './results-upload.js';

/** The image's contents artifacts, at the keys register-artifacts.ts gives its extras. */
export const CONTENTS = { packages: 'packages', changes: 'changes' } as const;

export function contentsLocation(bucket: string, job: WorkerJob, name: keyof typeof CONTENTS): S3Location {
  return { bucket, key: `${job.resultImageId}/${CONTENTS[name]}` };
}

/** Starts the node's change listing of an overlay view (once; a repeat finds the task started). */
export async function startChangeListing(n: NodeJob): Promise<void> {
  if (n.job.job.job_type !== 'customize' || n.view.rootView !== 'overlay' || n.view.tasks.changes.kind !== 'absent') return;
  await startTask(n, 'changes', [`${n.layout.image}/image.sqsh`, viewMounts(n.layout).upper]);
}

/**
 * After the results are uploaded: the report and package list of a customize job, put once
 * (a repeat finds the package list in place). `running` while the node still lists; a failed
 * listing costs the image its report, not the job.
 */
export async function putImageContents(n: NodeJob, target: ResultTarget): Promise<StageProgress | undefined> {
  if (n.job.job.job_type !== 'customize') return undefined;
  if (await target.artifacts.head(contentsLocation(target.bucket, n.job, 'packages'))) return undefined;
  if (n.view.rootView !== 'overlay') {
    const status = await n.session.run(`cat ${shq(`${viewMounts(n.layout).merged}/var/lib/dpkg/status`)} 2>/dev/null; true`, { timeoutMs: COMMAND_TIMEOUT_MS });
    await put(n, target, 'packages', formatPackageList(parseDpkgStatus(status)), 'text/plain');
    return undefined;
  }
  await startChangeListing(n);
  const task = n.view.tasks.changes;
  if (task.kind === 'running' || task.kind === 'absent') return { state: 'running', status: 'packaging_artifacts', detail: `listing the changes of the image root on ${n.xname}` };
  if (task.kind === 'failed') {
    logger.warn('the change listing failed: the image gets no change report', { jobId: n.job.job.id, xname: n.xname, reason: task.reason });
    return undefined;
  }
  const local = await mkdtemp(join(tmpdir(), 'ims-changes-'));
  try {
    const remote = `${tasksDir(n)}/changes/listing`;
    const present = new Set(
      (await n.session.run(`cd ${shq(remote)} && ls -1`, { timeoutMs: COMMAND_TIMEOUT_MS })).split('\n').filter((f) => (LISTING_FILES as readonly string[]).includes(f)),
    );
    const lacking = REQUIRED_LISTING_FILES.filter((f) => !present.has(f));
    if (lacking.length > 0) throw new Error(`the change listing on ${n.xname} lacks ${lacking.join(', ')}`);
    for (const file of present) await n.session.download(`${remote}/${file}`, join(local, file));
    const record = n.job.job;
    const { report, packages } = await changeReportFrom({ listing: local, upper: viewMounts(n.layout).upper, parentId: record.artifact_id, jobId: record.id, ignore: NOT_CHANGES });
    await put(n, target, 'changes', JSON.stringify(report), 'application/json');
    // Last: its presence says both are in place.
    await put(n, target, 'packages', formatPackageList(packages), 'text/plain');
  } finally {
    await rm(local, { recursive: true, force: true });
  }
  return undefined;
}

async function put(n: NodeJob, target: ResultTarget, name: keyof typeof CONTENTS, text: string, contentType: string): Promise<void> {
  const md5 = createHash('md5').update(text).digest('hex');
  await target.artifacts.putText(contentsLocation(target.bucket, n.job, name), text, contentType, {
    md5sum: md5,
    'x-shasta-ims-image-name': n.job.job.image_root_archive_name,
    'x-shasta-ims-image-id': n.job.resultImageId,
    'x-shasta-ims-job-id': n.job.job.id,
  });
}
