/**
 * Runs IMS jobs on this host, as root, with the tools the original's job pods use: curl,
 * unsquashfs and mksquashfs, kiwi-ng, a Debian sshd per job. Each job works in its own
 * directory below IMS_WORK_ROOT; long work runs as background processes whose state is kept
 * there (background-task.ts), so every call here is a quick, idempotent look at that state,
 * and a restarted service picks the jobs up again. Each look also arms the job's watches
 * (job-watch.ts), which report the end of each step at once; the package stage's uploads run in
 * this process (results-upload.ts).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CollectedArtifacts, JobLogFile, Stage, StageProgress, Worker, WorkerJob } from '../../domain/worker-port.js';
import { build } from './build.js';
import { removeJobWork } from './cleanup.js';
import { withJobLock } from './job-lock.js';
import { JobWatches } from './job-watch.js';
import { localJob, type LocalJob } from './local-job.js';
import { packagedArtifacts, packageImage } from './package.js';
import { RESULT_KEYS, resultLocation, startedUploads, stopUploads, type ResultsTarget } from './results-upload.js';
import { lostImageRoot, prepareImage, prepareRecipe } from './prepare.js';
import type { LocalWorkerSettings } from './settings.js';
import { ssh } from './ssh-stage.js';
import { ensureWorkDir, jobPaths } from './work-dir.js';

/** Paths go into sshd's configuration and the scripts' environment unquoted: keep them plain. */
const PLAIN_PATH = /^\/[A-Za-z0-9._/-]*$/;

export class LocalWorker implements Worker {
  readonly name = 'local';

  private readonly watches: JobWatches | undefined;

  constructor(
    private readonly settings: LocalWorkerSettings,
    private readonly results: ResultsTarget,
  ) {
    this.watches = results.wake ? new JobWatches(results.wake) : undefined;
  }

  private job(job: WorkerJob): LocalJob {
    return localJob(this.settings, job, jobPaths(this.settings, job));
  }

  /** Why this host cannot run jobs at all, or undefined. */
  private unfit(): string | undefined {
    if (process.getuid?.() !== 0) return 'the local worker must run as root (it unpacks images, mounts and runs sshd)';
    if (!PLAIN_PATH.test(this.settings.workRoot)) return `IMS_WORK_ROOT ${this.settings.workRoot} must be an absolute path of letters, digits, '.', '_', '-' and '/'`;
    return undefined;
  }

  async advance(stage: Exclude<Stage, 'register' | 'cleanup'>, workerJob: WorkerJob): Promise<StageProgress> {
    const unfit = this.unfit();
    if (unfit) return { state: 'failed', reason: unfit };
    const job = this.job(workerJob);
    return withJobLock(workerJob.job.id, async () => {
      try {
        if (stage === 'prepare') await ensureWorkDir(job.paths);
        // Armed before the look, so that a step it starts cannot end unseen; again after it, for
        // what the step made (a jail's /tmp in the image root).
        await this.watches?.watch(job);
        const progress = await this.advanceStage(stage, job);
        if (progress.state === 'running') await this.watches?.watch(job);
        return progress;
      } catch (error) {
        await job.log(`stage ${stage} raised: ${(error as Error).message}`);
        throw error;
      }
    });
  }

  private async advanceStage(stage: Exclude<Stage, 'register' | 'cleanup'>, job: LocalJob): Promise<StageProgress> {
    if (stage === 'prepare') return job.job.job.job_type === 'create' ? prepareRecipe(job) : prepareImage(job);
    const lost = await lostImageRoot(job);
    if (lost) {
      await job.log(lost);
      return { state: 'failed', reason: lost };
    }
    if (stage === 'build') return build(job);
    if (stage === 'ssh') return ssh(job);
    return packageImage(job, this.results);
  }

  async collect(workerJob: WorkerJob): Promise<CollectedArtifacts> {
    return packagedArtifacts(this.job(workerJob));
  }

  async cleanup(workerJob: WorkerJob, outcome: 'success' | 'error' | 'deleted'): Promise<void> {
    const job = this.job(workerJob);
    await withJobLock(workerJob.job.id, async () => {
      await job.log(`cleanup after ${outcome}`);
      this.watches?.unwatch(workerJob.job.id);
      await stopUploads(workerJob.job.id);
      const uploads = await startedUploads(job);
      await removeJobWork(job);
      if (uploads.length === 0) return;
      const { artifacts, bucket } = this.results;
      for (const { key, uploadId } of uploads) await artifacts.abortMultipartUpload({ bucket, key }, uploadId).catch(() => undefined);
      // A job that did not succeed leaves no results behind.
      if (outcome !== 'success') for (const key of RESULT_KEYS) await artifacts.remove(resultLocation(this.results, workerJob, key));
    });
  }

  async logs(workerJob: WorkerJob): Promise<JobLogFile[]> {
    const { logs } = jobPaths(this.settings, workerJob);
    const entries = await readdir(logs, { withFileTypes: true }).catch(() => []);
    return entries
      .filter((e) => e.isFile())
      .map((e) => ({ name: e.name, path: join(logs, e.name) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
