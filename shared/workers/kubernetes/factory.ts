/**
 * Builds the kubernetes worker (IMS_JOB_WORKER=kubernetes). The Kubernetes client is loaded only
 * when a job first needs the worker (it costs about 100 MB of memory and a good part of a cold
 * start), so processes that never run Kubernetes jobs never load it. Deployed, the kubeconfig
 * comes from Secrets Manager (KUBECONFIG_SECRET_ARN), never from the environment. It is read
 * through the secrets cache on every call, so a rotated kubeconfig is used once the cached value
 * is older than SECRETS_MAX_AGE_SECONDS, without a new container.
 */
import { secretFromEnv } from '../../secrets.js';
import type { WorkerDeps } from '../worker-deps.js';
import type { Worker } from '../../domain/worker-port.js';
import { loadKubeClient } from './kube-apis.js';
import { kubernetesSettingsFromEnv } from './settings.js';

/** The kubeconfig text, or undefined to use KUBECONFIG or in-cluster credentials. */
export type KubeconfigSource = () => Promise<string | undefined>;

export async function createKubernetesWorker(
  { env }: WorkerDeps,
  readKubeconfig: KubeconfigSource = () => secretFromEnv('KUBECONFIG_SECRET_ARN', env),
): Promise<Worker> {
  const [{ KubernetesWorker }, { KubeConfig }] = await Promise.all([import('./kubernetes-worker.js'), loadKubeClient()]);
  let built: { kubeconfig: string | undefined; worker: Worker } | undefined;
  const current = async (): Promise<Worker> => {
    const kubeconfig = await readKubeconfig();
    if (built && built.kubeconfig === kubeconfig) return built.worker;
    const settings = kubernetesSettingsFromEnv(env);
    if (kubeconfig !== undefined) {
      const config = new KubeConfig();
      config.loadFromString(kubeconfig);
      settings.kube = { kind: 'given', config };
    }
    built = { kubeconfig, worker: new KubernetesWorker(settings) };
    return built.worker;
  };
  // A kubeconfig that cannot be read or parsed fails here, where the job's worker is first asked for.
  const { name } = await current();
  return {
    name,
    advance: async (stage, job) => (await current()).advance(stage, job),
    inspect: async (stage, job) => {
      const worker = await current();
      return worker.inspect ? worker.inspect(stage, job) : worker.advance(stage, job);
    },
    collect: async (job) => (await current()).collect(job),
    cleanup: async (job, outcome) => (await current()).cleanup(job, outcome),
  };
}
