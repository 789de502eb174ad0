/**
 * Reads the Kubernetes Job and its pod and says what went wrong, if anything. The original never
 * looked: an OOM-killed container, an evicted pod or a failed init container left the job record
 * frozen in its last status. Here every such case becomes a failure with a reason a user can act on.
 */
import type { V1Container, V1ContainerStatus, V1Job, V1JobCondition, V1Pod } from '@kubernetes/client-node';
import type { JobRecord } from '../../domain/records.js';
import { isNotFound } from './api-errors.js';
import type { KubeApis } from './kube-apis.js';

export interface JobObservation {
  name: string;
  /** null: the Job does not exist (deleted, or never created). */
  job: V1Job | null;
  pods: V1Pod[];
}

/** Reads the Job and its pods; the Job controller labels its pods with `job-name`. */
export async function observeJob(apis: KubeApis, namespace: string, name: string): Promise<JobObservation> {
  let job: V1Job;
  try {
    job = await apis.batch.readNamespacedJob({ namespace, name });
  } catch (error) {
    if (isNotFound(error)) return { name, job: null, pods: [] };
    throw error;
  }
  const list = await apis.core.listNamespacedPod({ namespace, labelSelector: `job-name=${name}` });
  const pods = [...list.items].sort((a, b) => time(a.metadata?.creationTimestamp) - time(b.metadata?.creationTimestamp));
  return { name, job, pods };
}

function time(value: Date | string | undefined): number {
  if (value === undefined) return 0;
  return (value instanceof Date ? value : new Date(value)).getTime();
}

const MAX_MESSAGE = 400;

function clip(message: string): string {
  const oneLine = message.trim().replace(/\s+/g, ' ');
  return oneLine.length > MAX_MESSAGE ? `${oneLine.slice(0, MAX_MESSAGE)}…` : oneLine;
}

function memoryLimit(pod: V1Pod, container: string): string | undefined {
  const all: V1Container[] = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return all.find((c) => c.name === container)?.resources?.limits?.memory;
}

function describeTermination(pod: V1Pod, status: V1ContainerStatus, init: boolean): string | undefined {
  const terminated = status.state?.terminated;
  if (!terminated || terminated.exitCode === 0) return undefined;
  const which = `${init ? 'init container' : 'container'} ${status.name}`;
  if (terminated.reason === 'OOMKilled') {
    const limit = memoryLimit(pod, status.name);
    return `${which} was killed for running out of memory (OOMKilled, exit code ${terminated.exitCode}${limit ? `, memory limit ${limit}` : ''}); a larger job_mem_size may help`;
  }
  const reason = terminated.reason && terminated.reason !== 'Error' ? ` (${terminated.reason})` : '';
  const message = terminated.message ? `: ${clip(terminated.message)}` : '';
  return `${which} terminated with exit code ${terminated.exitCode}${reason}${message}`;
}

/** Containers that ended badly, init containers first: the first one is the likeliest cause. */
export function containerFailures(pod: V1Pod): string[] {
  const init = (pod.status?.initContainerStatuses ?? []).map((s) => describeTermination(pod, s, true));
  const main = (pod.status?.containerStatuses ?? []).map((s) => describeTermination(pod, s, false));
  return [...init, ...main].filter((d): d is string => d !== undefined);
}

function podProblems(pod: V1Pod): string[] {
  const name = pod.metadata?.name ?? '(unnamed)';
  const containers = containerFailures(pod);
  if (pod.status?.phase !== 'Failed') return containers;
  const { reason, message } = pod.status;
  if (reason === 'Evicted') return [`pod ${name} was evicted${message ? `: ${clip(message)}` : ''}`, ...containers];
  // A bare "pod failed" adds nothing when a container already says why.
  if (!reason && !message && containers.length > 0) return containers;
  return [`pod ${name} failed${reason ? ` (${reason})` : ''}${message ? `: ${clip(message)}` : ''}`, ...containers];
}

function condition(job: V1Job, type: 'Failed' | 'Complete'): V1JobCondition | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

function olderThan(at: Date | string | undefined, seconds: number, now: Date): boolean {
  return at !== undefined && now.getTime() - time(at) > seconds * 1000;
}

/** Why the job cannot succeed any more, or undefined while it looks healthy. */
export function diagnose(obs: JobObservation, record: JobRecord, now: Date, graceSeconds: number): string | undefined {
  const { job, name } = obs;
  if (!job) return `Kubernetes Job ${name} no longer exists (deleted outside IMS?)`;
  const problems = obs.pods.flatMap(podProblems);
  const failed = condition(job, 'Failed');
  if (failed) {
    const why = `${failed.reason ? ` (${failed.reason})` : ''}${failed.message ? `: ${clip(failed.message)}` : ''}`;
    problems.unshift(`Kubernetes Job ${name} failed${why}`);
  }
  if (problems.length > 0) return problems.join('; ');
  const complete = condition(job, 'Complete');
  if (complete && record.status !== 'success') {
    const at = job.status?.completionTime ?? complete.lastTransitionTime;
    if (at === undefined || olderThan(at, graceSeconds, now)) {
      return `Kubernetes Job ${name} completed but the job status is still '${record.status}': the pod's final status report was lost`;
    }
  }
  if (!complete && obs.pods.length === 0 && olderThan(job.status?.startTime, graceSeconds, now)) {
    return `the pod of Kubernetes Job ${name} has vanished (deleted, or its node was lost)`;
  }
  return undefined;
}

/** For a job that reported `error`: the first container that ended badly, if any did. */
export function firstContainerFailure(obs: JobObservation): string | undefined {
  return obs.pods.flatMap(containerFailures)[0];
}

function describeWaiting(status: V1ContainerStatus): string | undefined {
  const waiting = status.state?.waiting;
  // PodInitializing and ContainerCreating are the normal way in, not worth a mention.
  if (!waiting?.reason || waiting.reason === 'PodInitializing' || waiting.reason === 'ContainerCreating') return undefined;
  return `${status.name} waiting (${waiting.reason}${waiting.message ? `: ${clip(waiting.message)}` : ''})`;
}

/** Where the pod stands, for the stage's progress detail: phase and containers stuck waiting. */
export function describePod(obs: JobObservation): string {
  const pod = obs.pods.at(-1);
  if (!pod) return `Kubernetes Job ${obs.name}: no pod yet`;
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const waiting = statuses.map(describeWaiting).filter((d): d is string => d !== undefined);
  const phase = `pod ${pod.metadata?.name ?? '(unnamed)'} ${pod.status?.phase ?? 'Pending'}`;
  return waiting.length > 0 ? `${phase}; ${waiting.join('; ')}` : phase;
}
