/**
 * Makes the kubernetes worker available under IMS_JOB_WORKER=kubernetes. The Kubernetes client
 * is loaded only when a job first needs the worker (it costs about 100 MB of memory and a good
 * part of a cold start), so processes that never run Kubernetes jobs never load it.
 */
import { registerWorker } from '../../wiring.js';
import { kubernetesSettingsFromEnv } from './settings.js';

registerWorker('kubernetes', async () => {
  const { KubernetesWorker } = await import('./kubernetes-worker.js');
  return new KubernetesWorker(kubernetesSettingsFromEnv(process.env));
});
