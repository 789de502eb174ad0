/**
 * Makes the kubernetes worker available under IMS_JOB_WORKER=kubernetes. Imported by the entry
 * points that run jobs (the jobs API and the workflow stages) so that other handlers do not
 * carry the Kubernetes client in their bundles.
 */
import { registerWorker } from '../../wiring.js';
import { KubernetesWorker } from './kubernetes-worker.js';
import { kubernetesSettingsFromEnv } from './settings.js';

registerWorker('kubernetes', () => new KubernetesWorker(kubernetesSettingsFromEnv(process.env)));
