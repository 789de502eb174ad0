/**
 * A Worker whose behaviour a test scripts by the job's image_root_archive_name. It does what a
 * job pod would: reports statuses, and in `package` uploads real artifacts to the embedded S3.
 */
import { createHash } from 'node:crypto';
import type { CollectedArtifacts, StageProgress, Worker, WorkerJob } from '#shared/domain/worker-port.js';

export type Script = 'ok' | 'fail-build' | 'hang-build' | 'hang-ssh';

export interface WorkerCall {
  jobId: string;
  stage: string;
}

export class ScriptedWorker implements Worker {
  readonly name = 'scripted';
  readonly calls: WorkerCall[] = [];
  readonly cleanups: { jobId: string; outcome: string }[] = [];
  private readonly polls = new Map<string, number>();

  constructor(private readonly put: (bucket: string, key: string, body: string, metadata: Record<string, string>) => Promise<void>) {}

  async advance(stage: 'prepare' | 'build' | 'ssh' | 'package', job: WorkerJob): Promise<StageProgress> {
    const id = job.job.id;
    this.calls.push({ jobId: id, stage });
    const script = job.job.image_root_archive_name as Script;
    const key = `${id}:${stage}`;
    const n = (this.polls.get(key) ?? 0) + 1;
    this.polls.set(key, n);
    const create = job.job.job_type === 'create';
    switch (stage) {
      case 'prepare':
        return { state: 'done', status: create ? 'fetching_recipe' : 'fetching_image' };
      case 'build':
        if (script === 'fail-build') return { state: 'failed', reason: 'kiwi-ng exited with status 1 (see kiwi.log)' };
        if (script === 'hang-build' || n < 3) return { state: 'running', status: 'building_image' };
        return { state: 'done' };
      case 'ssh':
        if (create && !job.job.enable_debug) return { state: 'done' };
        if (script === 'hang-ssh') return { state: 'running', status: 'waiting_on_user' };
        return n < 2 ? { state: 'running', status: 'waiting_on_user' } : { state: 'done' };
      case 'package': {
        for (const name of ['rootfs', 'kernel', 'initrd', 'parameters']) {
          const body = `${name} of ${id}`;
          await this.put('boot-images', `staging/${id}/${name}`, body, { md5sum: createHash('md5').update(body).digest('hex') });
        }
        return { state: 'done', status: 'packaging_artifacts' };
      }
    }
  }

  async collect(job: WorkerJob): Promise<CollectedArtifacts> {
    const base = `s3://boot-images/staging/${job.job.id}`;
    return { kind: 'objects', rootfs: `${base}/rootfs`, kernel: `${base}/kernel`, initrd: `${base}/initrd`, parameters: `${base}/parameters` };
  }

  async cleanup(job: WorkerJob, outcome: 'success' | 'error' | 'deleted'): Promise<void> {
    this.cleanups.push({ jobId: job.job.id, outcome });
  }

  stagesOf(jobId: string): string[] {
    return this.calls.filter((c) => c.jobId === jobId).map((c) => c.stage);
  }
}
