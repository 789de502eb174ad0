/**
 * What a stage of a remote-node job works with, and the steps create and customize share:
 * setting up the job directory, building the per-job image on the node, starting the job's
 * container.
 */
import type { NodeSession } from './ssh-session.js';
import { shq } from './ssh-session.js';
import { targetOf, type RemoteNodeSettings } from './settings.js';
import type { StageProgress, WorkerJob } from '../../domain/worker-port.js';
import { podmanBuild, podmanRun, type JobLayout, type RunOptions } from './job-layout.js';
import { describeStopped, type JobView } from './job-view.js';
import { containerfile } from './node-scripts.js';
import type { ResultTarget } from './results-upload.js';
import type { ReportTarget } from './node-reports.js';

export interface NodeJob {
  session: NodeSession;
  settings: RemoteNodeSettings;
  layout: JobLayout;
  job: WorkerJob;
  xname: string;
  view: JobView;
  /** Where the node uploads the job's results. */
  results: ResultTarget;
  /** Where and with what token the node reports the job's progress (node-reports.ts); none: the reconciler finds it. */
  reports?: (jobId: string) => Promise<ReportTarget | undefined>;
}

/** Bound on the quick commands of a poll; transfers and builds have their own pace. */
export const COMMAND_TIMEOUT_MS = 30_000;

/** The job directory, root-owned 0755 (a jailed shell's ChrootDirectory lies inside it). */
export async function makeJobDir(n: NodeJob): Promise<void> {
  const { dir, image, context } = n.layout;
  await n.session.run(`mkdir -p ${shq(`${image}/out`)} ${shq(context)} && chmod 755 ${shq(dir)} ${shq(image)}`, { timeoutMs: COMMAND_TIMEOUT_MS });
}

/** Writes the build context and builds the per-job image FROM `base`, a local image of the node. */
export async function buildJobImage(n: NodeJob, base: string, files: Record<string, string>, script: string): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    await n.session.writeFile(`${n.layout.context}/${name}`, text, name.endsWith('.sh') ? 0o755 : 0o644);
  }
  await n.session.writeFile(`${n.layout.context}/Containerfile`, containerfile(base, Object.keys(files), script));
  await n.session.run(podmanBuild(n.settings, n.layout), { timeoutMs: 10 * 60_000 });
}

export async function markPrepared(n: NodeJob): Promise<void> {
  await n.session.run(`touch ${shq(`${n.layout.dir}/prepared`)}`, { timeoutMs: COMMAND_TIMEOUT_MS });
}

/** The environment every job container gets: the job's names, as the original's containers have them. */
export function jobEnv(n: Pick<NodeJob, 'job' | 'settings'>): Record<string, string> {
  const record = n.job.job;
  return {
    IMS_JOB_ID: record.id,
    BUILD_ARCH: record.arch,
    IMAGE_ROOT_ARCHIVE_NAME: record.image_root_archive_name,
    KERNEL_FILENAME: record.kernel_file_name,
    INITRD_FILENAME: record.initrd_file_name,
    KERNEL_PARAMETERS_FILENAME: record.kernel_parameters_file_name,
    ENABLE_DEBUG: String(record.enable_debug),
    SQUASHFS_OPTIONS: n.settings.squashfsOptions.join(' '),
  };
}

/**
 * Starts the job's container and marks it started (so that a container that later disappears
 * is told apart from one not started yet). A start that loses to a concurrent one is fine.
 */
export async function startContainer(n: NodeJob, options: RunOptions): Promise<StageProgress | undefined> {
  const result = await n.session.exec(`${podmanRun(n.settings, n.layout, options)} && touch ${shq(`${n.layout.dir}/started`)}`, { timeoutMs: 2 * 60_000 });
  if (result.code === 0 || /already in use/.test(result.stderr)) return undefined;
  return { state: 'failed', reason: `the job container could not be started on ${n.xname}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}` };
}

/** Why a container that should be running is not, or undefined while it is. */
export function containerGone(n: NodeJob, what: string, until: string): string | undefined {
  const state = n.view.container;
  if (state.kind === 'running') return undefined;
  if (state.kind === 'absent') return `the ${what} container on ${n.xname} has vanished ${until} (removed outside IMS, or the node restarted)`;
  return `the ${what} container on ${n.xname} ${describeStopped(state)} ${until}`;
}

/** Where users reach a job's shell: the node's address as IMS knows it, and the job's port. */
export function shellHost(n: NodeJob): string {
  return targetOf(n.settings, n.xname).host;
}
