/** The Kubernetes API clients the worker uses, built from the configured credentials. */
import { BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { KubeSource } from './settings.js';

export interface KubeApis {
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
}

export function loadKubeConfig(source: KubeSource): KubeConfig {
  if (source.kind === 'given') return source.config;
  const kc = new KubeConfig();
  if (source.kind === 'kubeconfig') kc.loadFromFile(source.path);
  else if (source.kind === 'in-cluster') kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

export function makeKubeApis(kc: KubeConfig): KubeApis {
  return {
    core: kc.makeApiClient(CoreV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}
