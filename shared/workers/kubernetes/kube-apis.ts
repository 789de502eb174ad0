/**
 * The Kubernetes API clients the worker uses, built from the configured credentials. The client
 * library is imported here on first use only: deployed, it is a file of its own beside the
 * handler bundle (infra/constructs/ims-function.ts), so handlers that never reach a cluster
 * never load it.
 */
import type { BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { KubeSource } from './settings.js';

export interface KubeApis {
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
}

type KubeClient = typeof import('@kubernetes/client-node');
let client: Promise<KubeClient> | undefined;
/** The client library (loaded once per process). */
export const loadKubeClient = (): Promise<KubeClient> => (client ??= import('@kubernetes/client-node'));

export async function loadKubeConfig(source: KubeSource): Promise<KubeConfig> {
  if (source.kind === 'given') return source.config;
  const kc = new (await loadKubeClient()).KubeConfig();
  if (source.kind === 'kubeconfig') kc.loadFromFile(source.path);
  else if (source.kind === 'in-cluster') kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

export async function makeKubeApis(source: KubeSource): Promise<KubeApis> {
  const [{ BatchV1Api, CoreV1Api, CustomObjectsApi }, kc] = await Promise.all([loadKubeClient(), loadKubeConfig(source)]);
  return {
    core: kc.makeApiClient(CoreV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}
