/**
 * Runs a job on the remote build node it was placed on (domain/node-placement.ts), with podman
 * over SSH. The worker keeps no state between calls: the job's directory, markers and container
 * on the node are the state, so any process (any Lambda invocation) can advance any job.
 *
 * Every poll first looks at the node and the job's container (job-view.ts). A node that does not
 * answer is reported as lost contact, which the stage runner turns into an error once it has
 * lasted REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS; a container that died is an error at once.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../../logger.js';
import { keySourceFor, type KeySource } from '../../remote-nodes/ssh-key.js';
import { NodeTimeoutError, NodeUnreachableError, openSession, shq, type NodeSession } from '../../remote-nodes/ssh-session.js';
import { targetOf, type RemoteNodeSettings } from '../../remote-nodes/settings.js';
import type { CollectedArtifacts, JobLogFile, Stage, StageProgress, Worker, WorkerJob } from '../worker.js';
import { advanceCreate } from './create-stages.js';
import { advanceCustomize } from './customize-stages.js';
import { jobLayout, removeJobCommand } from './job-layout.js';
import { hasResult, readView } from './job-view.js';
import { COMMAND_TIMEOUT_MS, type NodeJob } from './node-job.js';
import { ChecksumError, fetchResults } from './transfer.js';

export interface RemoteNodeWorkerDeps {
  keySource?: KeySource;
  open?: typeof openSession;
}

/** Logs the job's containers write into /mnt/image, kept with the job when it ends. */
const NODE_LOGS = ['kiwi.log', 'kiwi.out', 'unsquashfs.log', 'sshd.log', 'mksquashfs.log', 'container.log'];

export class RemoteNodeWorker implements Worker {
  readonly name = 'remote-node';
  private readonly keySource: KeySource;
  private readonly open: typeof openSession;

  constructor(
    private readonly settings: RemoteNodeSettings,
    deps: RemoteNodeWorkerDeps = {},
  ) {
    this.keySource = deps.keySource ?? keySourceFor(settings);
    this.open = deps.open ?? openSession;
  }

  private async connect(xname: string): Promise<NodeSession> {
    return this.open(targetOf(this.settings, xname), await this.keySource(), this.settings.connectTimeoutMs, {
      knownHosts: this.settings.knownHosts,
    });
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
      throw error;
    }
    try {
      const layout = jobLayout(this.settings, job.job.id);
      const view = await readView(session, this.settings, layout, COMMAND_TIMEOUT_MS);
      // Past prepare the directory holds the job: without it the job cannot go on (node reinstalled, /tmp wiped).
      if (!view.present && stage !== 'prepare') return { state: 'failed', reason: `the job's directory ${layout.dir} is gone from ${xname}` };
      const n: NodeJob = { session, settings: this.settings, layout, job, xname, view };
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

  /** The results fetched by `package`; fetched again when this process does not have them (another Lambda). */
  async collect(job: WorkerJob): Promise<CollectedArtifacts> {
    const layout = jobLayout(this.settings, job.job.id);
    const local = (file: string) => join(layout.local, file);
    const have = async (file: string) => (await stat(local(file)).catch(() => undefined))?.isFile() ?? false;
    if (!((await have('rootfs.sqsh')) && (await have('kernel')) && (await have('initrd')))) {
      await this.withNode(job, async (session) => {
        const view = await readView(session, this.settings, layout, COMMAND_TIMEOUT_MS);
        await fetchResults(session, layout, (file) => hasResult(view, file));
      });
    }
    return {
      kind: 'files',
      rootfs: local('rootfs.sqsh'),
      kernel: local('kernel'),
      initrd: local('initrd'),
      ...((await have('parameters')) ? { parameters: local('parameters') } : {}),
      ...((await have('packages')) ? { extras: { packages: local('packages') } } : {}),
    };
  }

  /** The node's logs of the job, copied to this host so the cleanup stage can keep them. */
  async logs(job: WorkerJob): Promise<JobLogFile[]> {
    if (!job.job.remote_build_node) return [];
    const layout = jobLayout(this.settings, job.job.id);
    const dir = join(layout.local, 'logs');
    try {
      return await this.withNode(job, async (session) => {
        const listed = await session.exec(
          `cd ${shq(layout.image)} 2>/dev/null || exit 0; ${this.settings.podman} logs ${shq(layout.container)} > container.log 2>&1; ls -1 ${NODE_LOGS.join(' ')} 2>/dev/null; true`,
          { timeoutMs: COMMAND_TIMEOUT_MS },
        );
        await mkdir(dir, { recursive: true });
        const files: JobLogFile[] = [];
        for (const name of listed.stdout.split('\n').filter((f) => NODE_LOGS.includes(f))) {
          await session.download(`${layout.image}/${name}`, join(dir, name));
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
   * Removes the job's container, image and directory on the node, and its results here. A node
   * that cannot be reached keeps its leftovers (they are named after the job, `ims_<id>`): a
   * dead node must not make a job undeletable.
   */
  async cleanup(job: WorkerJob): Promise<void> {
    const layout = jobLayout(this.settings, job.job.id);
    await rm(layout.local, { recursive: true, force: true });
    const xname = job.job.remote_build_node;
    if (!xname) return;
    try {
      await this.withNode(job, (session) => session.run(removeJobCommand(this.settings, layout), { timeoutMs: 2 * 60_000 }));
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

  private async withNode<T>(job: WorkerJob, use: (session: NodeSession) => Promise<T>): Promise<T> {
    const session = await this.connect(job.job.remote_build_node);
    try {
      return await use(session);
    } finally {
      session.close();
    }
  }
}
