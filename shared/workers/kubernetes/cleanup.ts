/**
 * Removing a job's objects. When the job ends (success or error) the original removed the PVC,
 * Service and DestinationRule but kept the Job (so the pod's logs stay readable) and the
 * ConfigMap; deleting the job removes everything. Absent objects are fine; every other failure
 * is collected and reported together, so one stuck object does not hide the others.
 */
import { logger } from '../../logger.js';
import type { JobRecord } from '../../domain/records.js';
import { describeApiError, isNotFound } from './api-errors.js';
import type { KubeApis } from './kube-apis.js';
import type { ResourceKind } from './manifests.js';
import { resourceOps } from './resources.js';
import { retryOnTimeout } from './retry.js';
import type { KubernetesWorkerSettings } from './settings.js';
import { signingKeysSecretName } from './template-params.js';

export type CleanupOutcome = 'success' | 'error' | 'deleted';

export class KubernetesCleanupError extends Error {
  constructor(
    readonly jobId: string,
    readonly errors: string[],
  ) {
    super(`could not delete the Kubernetes resources of IMS job ${jobId}: ${errors.join('; ')}`);
    this.name = 'KubernetesCleanupError';
  }
}

interface Target {
  kind: ResourceKind;
  name: string | null;
}

/** In the original's order for each case. */
export function cleanupTargets(record: JobRecord, outcome: CleanupOutcome): Target[] {
  if (outcome === 'deleted') {
    return [
      { kind: 'PersistentVolumeClaim', name: record.kubernetes_pvc },
      { kind: 'Service', name: record.kubernetes_service },
      { kind: 'Job', name: record.kubernetes_job },
      { kind: 'ConfigMap', name: record.kubernetes_configmap },
      // A create job's copy of the signing keys (customize jobs get none).
      { kind: 'Secret', name: record.job_type === 'create' ? signingKeysSecretName(record) : record.kubernetes_secret },
      { kind: 'DestinationRule', name: record.kubernetes_service },
    ];
  }
  return [
    { kind: 'Service', name: record.kubernetes_service },
    { kind: 'PersistentVolumeClaim', name: record.kubernetes_pvc },
    { kind: 'DestinationRule', name: record.kubernetes_service },
  ];
}

export async function deleteJobObjects(
  apis: KubeApis,
  settings: KubernetesWorkerSettings,
  record: JobRecord,
  outcome: CleanupOutcome,
  sleep?: (ms: number) => Promise<void>,
): Promise<void> {
  const namespace = record.kubernetes_namespace || settings.namespace;
  const errors: string[] = [];
  // The DestinationRule is deleted even with Istio switched off: the job may predate the switch,
  // and a cluster without the CRD answers 404, which is fine.
  for (const target of cleanupTargets(record, outcome)) {
    if (!target.name) continue;
    const name = target.name;
    try {
      await retryOnTimeout(() => resourceOps(apis, target.kind).remove(namespace, name), {
        retries: settings.timeoutRetries,
        delayMs: settings.retryDelayMs,
        what: `delete ${target.kind} ${name}`,
        sleep,
      });
    } catch (error) {
      if (isNotFound(error)) continue;
      errors.push(`${target.kind} ${name}: ${describeApiError(error)}`);
    }
  }
  if (errors.length > 0) {
    logger.error('deleting job objects failed', { jobId: record.id, outcome, errors });
    throw new KubernetesCleanupError(record.id, errors);
  }
}
