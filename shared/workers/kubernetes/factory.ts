/**
 * Builds the kubernetes worker (IMS_JOB_WORKER=kubernetes). The Kubernetes client is loaded only
 * when a job first needs the worker (it costs about 100 MB of memory and a good part of a cold
 * start), so processes that never run Kubernetes jobs never load it. Deployed, the kubeconfig
 * comes from Secrets Manager (KUBECONFIG_SECRET_ARN), never from the environment.
 */
import { secretFromEnv } from '../../secrets.js';
import type { WorkerDeps } from '../worker-deps.js';
import type { Worker } from '../../domain/worker-port.js';
import { loadKubeClient } from './kube-apis.js';
import { kubernetesSettingsFromEnv } from './settings.js';

export async function createKubernetesWorker({ env }: WorkerDeps): Promise<Worker> {
  const [{ KubernetesWorker }, { KubeConfig }, kubeconfig] = await Promise.all([
    import('./kubernetes-worker.js'),
    loadKubeClient(),
    secretFromEnv('KUBECONFIG_SECRET_ARN', env),
  ]);
  const settings = kubernetesSettingsFromEnv(env);
  if (kubeconfig !== undefined) {
    const config = new KubeConfig();
    config.loadFromString(kubeconfig);
    settings.kube = { kind: 'given', config };
  }
  return new KubernetesWorker(settings);
}
