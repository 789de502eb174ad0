/**
 * A Worker whose stages take as long as a test says, by a clock the test drives (virtual time),
 * and report as the real workers do: statuses, an SSH shell that waits for its user, lost
 * contact, failure. Each job follows the plan named by its image_root_archive_name.
 */
import { createHash } from 'node:crypto';
import type { CollectedArtifacts, StageProgress, Worker, WorkerJob } from '#shared/domain/worker-port.js';

type WorkStage = 'prepare' | 'build' | 'ssh' | 'package';

export interface JobPlan {
  /** Seconds each stage's work takes (absent: done at once). */
  seconds?: Partial<Record<WorkStage, number>>;
  /** The stage whose work fails once its seconds have passed. */
  failIn?: WorkStage;
  /** The stage whose work never ends. */
  hangIn?: WorkStage;
  /** The stage in which the worker loses sight of the job's executor (for `timeoutSeconds`). */
  loseIn?: { stage: WorkStage; timeoutSeconds: number };
}

export class TimedWorker implements Worker {
  readonly name = 'timed';
  /** Calls of advance/inspect per job: what a job costs in worker checks. */
  readonly checks = new Map<string, number>();
  readonly cleanups: { jobId: string; outcome: string }[] = [];
  private readonly started = new Map<string, number>();

  constructor(
    private readonly plans: Record<string, JobPlan>,
    private readonly nowMs: () => number,
    private readonly put: (bucket: string, key: string, body: string, metadata: Record<string, string>) => Promise<void>,
  ) {}

  async advance(stage: WorkStage, job: WorkerJob): Promise<StageProgress> {
    const id = job.job.id;
    this.checks.set(id, (this.checks.get(id) ?? 0) + 1);
    const plan = this.plans[job.job.image_root_archive_name] ?? {};
    const key = `${id}:${stage}`;
    if (!this.started.has(key)) this.started.set(key, this.nowMs());
    const elapsed = (this.nowMs() - this.started.get(key)!) / 1000;
    const status = stage === 'build' ? 'building_image' : stage === 'ssh' ? 'waiting_on_user' : stage === 'package' ? 'packaging_artifacts' : job.job.job_type === 'create' ? 'fetching_recipe' : 'fetching_image';
    if (plan.loseIn?.stage === stage) {
      return { state: 'running', status, lost: { reason: 'the executor does not answer', timeoutSeconds: plan.loseIn.timeoutSeconds } };
    }
    if (plan.hangIn === stage || elapsed < (plan.seconds?.[stage] ?? 0)) return { state: 'running', status };
    if (plan.failIn === stage) return { state: 'failed', reason: `${stage} failed after ${Math.round(elapsed)} s` };
    if (stage === 'package') {
      for (const name of ['rootfs', 'kernel', 'initrd']) {
        const body = `${name} of ${id}`;
        await this.put('boot-images', `staging/${id}/${name}`, body, { md5sum: createHash('md5').update(body).digest('hex') });
      }
    }
    return { state: 'done', status };
  }

  async collect(job: WorkerJob): Promise<CollectedArtifacts> {
    const base = `s3://boot-images/staging/${job.job.id}`;
    return { kind: 'objects', rootfs: `${base}/rootfs`, kernel: `${base}/kernel`, initrd: `${base}/initrd` };
  }

  async cleanup(job: WorkerJob, outcome: 'success' | 'error' | 'deleted'): Promise<void> {
    this.cleanups.push({ jobId: job.job.id, outcome });
  }
}
