/**
 * Where a job's heavy work runs. The workflow's stages call a Worker; kubernetes, local and
 * remote-node workers implement it. Every method is idempotent: a stage may be retried, and a
 * check may repeat any number of times, from any process (a stage's entry, a pod's report, the
 * reconciler).
 */
import type { Arch, JobRecord, JobStatus } from './records.js';

export type Stage = 'prepare' | 'build' | 'ssh' | 'package' | 'register' | 'cleanup';

/** What a worker needs to know about a job, resolved when the job was created. */
export interface WorkerJob {
  job: JobRecord;
  /** Public key text for the SSH shell (authorized_keys). */
  publicKey: string;
  /** Pre-signed GET URL of the recipe archive (create) or the rootfs squashfs (customize). */
  downloadUrl: string;
  /** Expected MD5 of the download ("" when unknown). */
  downloadMd5: string;
  /** create: the recipe's type and template values. */
  recipeType?: 'kiwi-ng' | 'packer';
  templateDictionary?: Record<string, string>;
  /** The id the resultant image will get (fixed per job, so a retried register never makes two). */
  resultImageId: string;
  arch: Arch;
}

/**
 * Where the job's SSH shell is actually served; the stage runner writes it into
 * `ssh_containers[0]` (its `status`, and host and port of every `connection_info` entry).
 */
export interface SshEndpoint {
  status: string;
  host?: string;
  port?: number;
}

/**
 * The worker could not see the job's executor on this poll (node unreachable, container not
 * answering). The stage fails once that has lasted `timeoutSeconds` with no good poll between.
 */
export interface LostContact {
  reason: string;
  timeoutSeconds: number;
}

export type StageProgress =
  /** The stage's work is finished; the workflow moves on. */
  | { state: 'done'; status?: JobStatus; detail?: string; ssh?: SshEndpoint }
  /** Still going: check again later. `status` is what the job record should show meanwhile. */
  | { state: 'running'; status?: JobStatus; detail?: string; ssh?: SshEndpoint; lost?: LostContact }
  /** The job cannot succeed; `reason` is kept in the job history. */
  | { state: 'failed'; reason: string };

/** Artifacts a worker produced, ready for the register stage. */
export type CollectedArtifacts =
  /** The worker registered the image itself (e.g. an original job pod through ims-python-helper). */
  | { kind: 'registered'; imageId: string }
  /** Files the register stage uploads: local paths on this host. */
  | { kind: 'files'; rootfs: string; kernel: string; initrd: string; parameters?: string; extras?: Record<string, string> }
  /** Objects already uploaded to S3 by the worker, to be registered under the resultant image id. */
  | { kind: 'objects'; rootfs: string; kernel: string; initrd: string; parameters?: string; extras?: Record<string, string> };

export interface Worker {
  readonly name: string;
  /**
   * Starts or advances `stage` for the job and reports where it stands. Called again until it
   * answers `done` or `failed` (or the stage times out). Stages a job type does not have
   * (e.g. `ssh` on a create job without debug) answer `done` at once.
   */
  advance(stage: Exclude<Stage, 'register' | 'cleanup'>, job: WorkerJob): Promise<StageProgress>;
  /**
   * A closer look than `advance` for the reconciler, which checks every waiting job once a
   * minute: e.g. the kubernetes worker's `advance` reads only what the pod reported in the
   * record, and `inspect` also asks the cluster whether the pod can still report. Workers without
   * it are checked with `advance`.
   */
  inspect?(stage: Exclude<Stage, 'register' | 'cleanup'>, job: WorkerJob): Promise<StageProgress>;
  /**
   * True when this look at the stage only reads (it starts, creates and changes nothing): it may
   * then run without the job's check lease, so a check that changes nothing writes nothing (the
   * kubernetes worker past prepare). Workers without it always check under the lease.
   */
  readsOnly?(stage: Exclude<Stage, 'register' | 'cleanup'>, look: 'advance' | 'inspect'): boolean;
  /** Where the artifacts of a finished `package` stage are. */
  collect(job: WorkerJob): Promise<CollectedArtifacts>;
  /** Removes everything the job created; absent objects are not an error. */
  cleanup(job: WorkerJob, outcome: 'success' | 'error' | 'deleted'): Promise<void>;
  /**
   * The job's logs as files on this host (build, sshd and stage logs), for workers that keep
   * them there: the cleanup stage uploads them before `cleanup` removes them, and
   * `GET /v3/jobs/{id}/logs` reads them while the job runs.
   */
  logs?(job: WorkerJob): Promise<JobLogFile[]>;
}

export interface JobLogFile {
  /** File name of the log, e.g. `kiwi.log`; also its name in the artifact store. */
  name: string;
  /** Absolute path on this host. */
  path: string;
}
