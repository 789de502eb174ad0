/**
 * Runs a job on the remote build node it was placed on (domain/node-placement.ts), with podman
 * over SSH. The worker keeps no state between calls: the job's directory, markers and container
 * on the node are the state, so any process (any Lambda invocation) can advance any job.
 *
 * No image passes through this host: the node downloads its input and uploads its results to S3
 * itself, in the background (node-tasks.ts, results-upload.ts), and the stages only start and
 * watch those transfers, so every call is short whatever the image's size.
 *
 * Every poll first looks at the node and the job's container (job-view.ts). A node that does not
 * answer is reported as lost contact, which the stage runner turns into an error once it has
 * lasted REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS; a container that died is an error at once.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { s3Path } from '../../domain/links.js';
import { logger } from '../../logger.js';
import { keySourceFor, type KeySource } from './ssh-key.js';
import { HostKeysRefusedError, knownHostsSourceFor, type KnownHostsSource } from './known-hosts-source.js';
import { NodeTimeoutError, NodeUnreachableError, openSession, shq, type NodeSession } from './ssh-session.js';
import { targetOf, type RemoteNodeSettings } from './settings.js';
import type { CollectedArtifacts, JobLogFile, Stage, StageProgress, Worker, WorkerJob } from '../../domain/worker-port.js';
import { advanceCreate } from './create-stages.js';
import { advanceCustomize } from './customize-stages.js';
import { jobLayout, removeJobCommand, RESULT_FILES, type ResultFile } from './job-layout.js';
import { contentsLocation } from './image-contents.js';
import { readView } from './job-view.js';
import { COMMAND_TIMEOUT_MS, type NodeJob } from './node-job.js';
import { plannedUploads, resultLocation, type ResultTarget } from './results-upload.js';
import { ChecksumError } from './transfer.js';
import type { ReportTarget } from './node-reports.js';

export interface RemoteNodeWorkerDeps {
  /** Where the results go (the boot-images bucket) and how the node's uploads are signed. */
  results: ResultTarget;
  keySource?: KeySource;
  knownHosts?: KnownHostsSource;
  /** The report URL and a fresh token for a job (node-reports.ts); without it, only the reconciler's passes find progress. */
  reports?: (jobId: string) => Promise<ReportTarget | undefined>;
  open?: typeof openSession;
}

/** Logs the job's containers write into /mnt/image, kept with the job when it ends. */
const NODE_LOGS = ['kiwi.log', 'kiwi.out', 'mount.log', 'unsquashfs.log', 'sshd.log', 'mksquashfs.log', 'container.log'];
/** Each log comes to this host as its last this many bytes at most, so the function's /tmp never fills. */
export const NODE_LOG_CAP_BYTES = 2 * 1024 * 1024;

export class RemoteNodeWorker implements Worker {
  readonly name = 'remote-node';
  private readonly keySource: KeySource;
  private readonly knownHosts: KnownHostsSource;
  private readonly open: typeof openSession;
  private readonly results: ResultTarget;
  private readonly reports?: (jobId: string) => Promise<ReportTarget | undefined>;

  constructor(
    private readonly settings: RemoteNodeSettings,
    deps: RemoteNodeWorkerDeps,
  ) {
    this.keySource = deps.keySource ?? keySourceFor(settings);
    this.knownHosts = deps.knownHosts ?? knownHostsSourceFor(settings);
    this.open = deps.open ?? openSession;
    this.results = deps.results;
    this.reports = deps.reports;
  }

  private async connect(xname: string): Promise<NodeSession> {
    const [key, knownHosts] = await Promise.all([this.keySource(), this.knownHosts()]);
    return this.open(targetOf(this.settings, xname), key, this.settings.connectTimeoutMs, { knownHosts });
  }

  private lost(xname: string, what: string): StageProgress {
    return { state: 'running', lost: { reason: `remote build node ${xname} ${what}`, timeoutSeconds: this.settings.heartbeatTimeoutSeconds } };
  }

  async advance(stage: Exclude<Stage, 'register' | 'cleanup'>, job: WorkerJob): Promise<StageProgress> {
    const xname = job.job.remote_build_node;
    if (!xname) return { state: 'failed', reason: 'the job was given to the remote-node worker without a remote build node' };
    let session: NodeSession;
    try {
      session = await this.connect(xname);
    } catch (error) {
      if (error instanceof NodeUnreachableError) return this.lost(xname, `is unreachable: ${error.message}`);
      // Fails closed: no host key can be trusted, and waiting does not change that.
      if (error instanceof HostKeysRefusedError) return { state: 'failed', reason: `remote build node ${xname} is refused: ${error.message}` };
      throw error;
    }
    try {
      const layout = jobLayout(this.settings, job.job.id);
      const view = await readView(session, this.settings, layout, COMMAND_TIMEOUT_MS);
      // Past prepare the directory holds the job: without it the job cannot go on (node reinstalled, /tmp wiped).
      if (!view.present && stage !== 'prepare') return { state: 'failed', reason: `the job's directory ${layout.dir} is gone from ${xname}` };
      const n: NodeJob = { session, settings: this.settings, layout, job, xname, view, results: this.results, reports: this.reports };
      return await (job.job.job_type === 'create' ? advanceCreate(n, stage) : advanceCustomize(n, stage));
    } catch (error) {
      if (error instanceof NodeTimeoutError) return this.lost(xname, `does not answer: ${error.message}`);
      if (session.connectionLost) return this.lost(xname, `dropped the connection: ${(error as Error).message}`);
      if (error instanceof ChecksumError) return { state: 'failed', reason: error.message };
      throw error;
    } finally {
      session.close();
    }
  }

  /** The objects `package` had the node upload, at the keys of the resultant image: register neither copies nor downloads them. */
  async collect(job: WorkerJob): Promise<CollectedArtifacts> {
    const { artifacts, bucket } = this.results;
    const found = new Map<ResultFile, string>();
    for (const file of RESULT_FILES) {
      const location = resultLocation(bucket, job, file);
      if (await artifacts.head(location)) found.set(file, s3Path(location));
    }
    const changesAt = contentsLocation(bucket, job, 'changes');
    const changes = (await artifacts.head(changesAt)) ? s3Path(changesAt) : undefined;
    const missing = (['rootfs.sqsh', 'kernel', 'initrd'] as const).filter((f) => !found.has(f));
    if (missing.length > 0) throw new Error(`the results of job ${job.job.id} are not in S3 (${missing.join(', ')} missing under s3://${bucket}/${job.resultImageId}/)`);
    return {
      kind: 'objects',
      rootfs: found.get('rootfs.sqsh')!,
      kernel: found.get('kernel')!,
      initrd: found.get('initrd')!,
      ...(found.has('parameters') ? { parameters: found.get('parameters')! } : {}),
      ...(found.has('packages') || changes ? { extras: { ...(found.has('packages') ? { packages: found.get('packages')! } : {}), ...(changes ? { changes } : {}) } } : {}),
    };
  }

  /** The node's logs of the job, their last NODE_LOG_CAP_BYTES each, copied to this host so the cleanup stage can keep them. */
  async logs(job: WorkerJob): Promise<JobLogFile[]> {
    if (!job.job.remote_build_node) return [];
    const layout = jobLayout(this.settings, job.job.id);
    const dir = join(layout.local, 'logs');
    try {
      return await this.withNode(job, async (session) => {
        const cap = NODE_LOG_CAP_BYTES;
        const tails = `${layout.dir}/log-tails`;
        const listed = await session.exec(
          [
            `cd ${shq(layout.image)} 2>/dev/null || exit 0`,
            `${this.settings.podman} logs ${shq(layout.container)} 2>&1 | tail -c ${cap} > container.log`,
            `mkdir -p ${shq(tails)}`,
            `for f in ${NODE_LOGS.join(' ')}; do [ -f "$f" ] || continue; size=$(stat -c %s "$f"); ` +
              `if [ "$size" -gt ${cap} ]; then { echo "[the first $((size - ${cap})) bytes of $f are left out]"; tail -c ${cap} "$f"; } > ${shq(tails)}/"$f"; else cp "$f" ${shq(tails)}/"$f"; fi; echo "$f"; done`,
            'true',
          ].join('; '),
          { timeoutMs: COMMAND_TIMEOUT_MS },
        );
        await mkdir(dir, { recursive: true });
        const files: JobLogFile[] = [];
        for (const name of listed.stdout.split('\n').filter((f) => NODE_LOGS.includes(f))) {
          await session.download(`${tails}/${name}`, join(dir, name));
          files.push({ name, path: join(dir, name) });
        }
        return files;
      });
    } catch (error) {
      logger.warn('the job logs could not be fetched from its node', { jobId: job.job.id, error: (error as Error).message });
      return [];
    }
  }

  /**
   * Removes the job's transfers, container, image and directory on the node, its log tails here,
   * and, unless the job succeeded, the results it uploaded (none of them is an image's yet: no
   * manifest was written). A node that cannot be reached keeps its leftovers (they are named
   * after the job, `ims_<id>`), and its unfinished uploads are left to the bucket's lifecycle
   * rule: a dead node must not make a job undeletable.
   */
  async cleanup(job: WorkerJob, outcome: 'success' | 'error' | 'deleted'): Promise<void> {
    const layout = jobLayout(this.settings, job.job.id);
    await rm(layout.local, { recursive: true, force: true });
    const xname = job.job.remote_build_node;
    const { artifacts, bucket } = this.results;
    if (xname) {
      try {
        await this.withNode(job, async (session) => {
          const uploads = await plannedUploads({ session, layout });
          await session.run(removeJobCommand(this.settings, layout), { timeoutMs: 2 * 60_000 });
          // An upload already completed is not an error to abort.
          for (const { file, uploadId } of uploads) await artifacts.abortMultipartUpload(resultLocation(bucket, job, file), uploadId);
        });
      } catch (error) {
        if (!(error instanceof NodeUnreachableError)) throw error;
        logger.warn('remote build node unreachable: the job leaves its directory, container and image there', {
          jobId: job.job.id,
          xname,
          dir: layout.dir,
          error: error.message,
        });
      }
    }
    if (outcome !== 'success' && !(await artifacts.head({ bucket, key: `${job.resultImageId}/manifest.json` }))) {
      for (const file of RESULT_FILES) await artifacts.remove(resultLocation(bucket, job, file));
      await artifacts.remove(contentsLocation(bucket, job, 'changes'));
    }
  }

  private async withNode<T>(job: WorkerJob, use: (session: NodeSession) => Promise<T>): Promise<T> {
    const session = await this.connect(job.job.remote_build_node);
    try {
      return await use(session);
    } finally {
      session.close();
    }
  }
}
