/**
 * Runs IMS jobs as the original did: one Kubernetes Job per IMS job, whose pod (the original
 * ims-utils, kiwi-ng builder and sshd images) does the work and reports progress by PATCHing the
 * job record itself. The worker creates the objects, watches for a pod that can no longer report
 * (the original never did), and removes the objects again.
 */
import { logger } from '../../logger.js';
import type { CollectedArtifacts, Stage, StageProgress, Worker, WorkerJob } from '../../domain/worker-port.js';
import { describeApiError } from './api-errors.js';
import { deleteJobObjects, type CleanupOutcome } from './cleanup.js';
import { makeKubeApis, type KubeApis } from './kube-apis.js';
import { renderJobManifests, type Manifest } from './manifests.js';
import { describePod, diagnose, firstContainerFailure, observeJob, type JobObservation } from './pod-health.js';
import { createJobObjects } from './prepare.js';
import { sshEndpoints, statusVerdict, type PolledStage } from './stage-progress.js';
import type { KubernetesWorkerSettings } from './settings.js';
import { jobNamespace } from './template-params.js';

export interface KubernetesWorkerDeps {
  /** The clock used to judge grace periods (tests pass a fixed one). */
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export class KubernetesWorker implements Worker {
  readonly name = 'kubernetes';
  private apis?: Promise<KubeApis>;
  private readonly now: () => Date;

  constructor(
    private readonly settings: KubernetesWorkerSettings,
    private readonly deps: KubernetesWorkerDeps = {},
  ) {
    this.now = deps.now ?? (() => new Date());
  }

  /** The API clients, made on first use (loading the client library then). */
  private kube(): Promise<KubeApis> {
    if (!this.apis) {
      const apis = makeKubeApis(this.settings.kube);
      // A failure (unreadable kubeconfig) is reported by the call; the next call tries again.
      apis.catch(() => {
        if (this.apis === apis) this.apis = undefined;
      });
      this.apis = apis;
    }
    return this.apis;
  }

  /**
   * prepare creates the job's objects; the other stages are judged from what the pod reported in
   * the record (its PATCH resumes the stage at once), so a job that runs well never makes the
   * worker ask the cluster anything.
   */
  async advance(stage: Exclude<Stage, 'register' | 'cleanup'>, job: WorkerJob): Promise<StageProgress> {
    if (stage === 'prepare') return this.prepare(job);
    const verdict = statusVerdict(stage, job.job);
    if (verdict === 'done') return { state: 'done' };
    // One read of the pod for the reason: the pod said error, the containers say why.
    if (verdict === 'error') return this.poll(stage, job);
    return { state: 'running' };
  }

  /** The reconciler's look: also asks the cluster whether the pod can still report (the original never did). */
  async inspect(stage: Exclude<Stage, 'register' | 'cleanup'>, job: WorkerJob): Promise<StageProgress> {
    if (stage === 'prepare') return this.prepare(job);
    return this.poll(stage, job);
  }

  /** Only prepare creates anything; the other stages read the record, or the Job and its pods. */
  readsOnly(stage: Exclude<Stage, 'register' | 'cleanup'>): boolean {
    return stage !== 'prepare';
  }

  private async prepare(job: WorkerJob): Promise<StageProgress> {
    let manifests: Manifest[];
    try {
      manifests = await renderJobManifests(job, this.settings);
    } catch (error) {
      // A template problem (e.g. JobTemplateError listing variables without a value) is a
      // configuration error; nothing has been created yet.
      const reason = error instanceof Error ? error.message : String(error);
      logger.error('job templates could not be rendered', { jobId: job.job.id, reason });
      return { state: 'failed', reason };
    }
    return createJobObjects({ apis: await this.kube(), settings: this.settings, sleep: this.deps.sleep }, job, manifests);
  }

  private async observe(job: WorkerJob): Promise<JobObservation> {
    return observeJob(await this.kube(), jobNamespace(job, this.settings), job.job.kubernetes_job);
  }

  private async poll(stage: PolledStage, job: WorkerJob): Promise<StageProgress> {
    const record = job.job;
    const verdict = statusVerdict(stage, record);
    if (verdict === 'done') return { state: 'done' };

    let obs: JobObservation;
    try {
      obs = await this.observe(job);
    } catch (error) {
      // The container details are a bonus on an error the pod already reported.
      if (verdict === 'error') return { state: 'failed', reason: 'the job pod reported error' };
      // The pod reports through the record, so an API hiccup here is no reason to fail the job;
      // the stage's time limit still ends a job whose cluster stays unreachable.
      const detail = `could not read Kubernetes Job ${record.kubernetes_job}: ${describeApiError(error)}`;
      logger.warn('job state unreadable', { jobId: record.id, detail });
      return { state: 'running', detail };
    }

    if (verdict === 'error') {
      const cause = firstContainerFailure(obs);
      return { state: 'failed', reason: cause ? `the job pod reported error; ${cause}` : 'the job pod reported error' };
    }
    const problem = diagnose(obs, record, this.now(), this.settings.graceSeconds);
    if (problem) return { state: 'failed', reason: problem };

    const endpoint = stage === 'ssh' && record.status === 'waiting_on_user' ? sshEndpoints(record) : undefined;
    const detail = endpoint ? `waiting for the user: ${endpoint}; ${describePod(obs)}` : describePod(obs);
    return { state: 'running', detail };
  }

  /** The pod registers the image itself (ims-python-helper) and PATCHes resultant_image_id. */
  async collect(job: WorkerJob): Promise<CollectedArtifacts> {
    const imageId = job.job.resultant_image_id;
    if (!imageId) {
      throw new Error(
        `IMS job ${job.job.id} has no resultant_image_id: its pod did not register an image (status '${job.job.status}')`,
      );
    }
    return { kind: 'registered', imageId };
  }

  async cleanup(job: WorkerJob, outcome: CleanupOutcome): Promise<void> {
    await deleteJobObjects(await this.kube(), this.settings, job.job, outcome, this.deps.sleep);
  }
}
