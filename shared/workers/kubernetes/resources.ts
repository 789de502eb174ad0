/** Create and delete calls per kind of object, so prepare and cleanup can walk lists of them. */
import type { V1ConfigMap, V1Job, V1PersistentVolumeClaim, V1Secret, V1Service } from '@kubernetes/client-node';
import type { KubeApis } from './kube-apis.js';
import type { ResourceKind } from './manifests.js';

/** Where Istio serves DestinationRules (the original used v1alpha3; v1beta1 is served since Istio 1.5). */
export const DESTINATION_RULE = { group: 'networking.istio.io', version: 'v1beta1', plural: 'destinationrules' } as const;

export interface ResourceOps {
  create(namespace: string, body: Record<string, unknown>): Promise<unknown>;
  remove(namespace: string, name: string): Promise<unknown>;
}

// The bodies come from our templates; the API server validates them, so the casts only tell the
// generated client which serializer to use.
export function resourceOps(apis: KubeApis, kind: ResourceKind): ResourceOps {
  switch (kind) {
    case 'ConfigMap':
      return {
        create: (namespace, body) => apis.core.createNamespacedConfigMap({ namespace, body: body as V1ConfigMap }),
        remove: (namespace, name) => apis.core.deleteNamespacedConfigMap({ namespace, name }),
      };
    case 'Service':
      return {
        create: (namespace, body) => apis.core.createNamespacedService({ namespace, body: body as V1Service }),
        remove: (namespace, name) => apis.core.deleteNamespacedService({ namespace, name }),
      };
    case 'Job':
      return {
        create: (namespace, body) => apis.batch.createNamespacedJob({ namespace, body: body as V1Job }),
        // Background propagation removes the pod too (without it the pod would be orphaned).
        remove: (namespace, name) => apis.batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Background' }),
      };
    case 'PersistentVolumeClaim':
      return {
        create: (namespace, body) =>
          apis.core.createNamespacedPersistentVolumeClaim({ namespace, body: body as V1PersistentVolumeClaim }),
        remove: (namespace, name) => apis.core.deleteNamespacedPersistentVolumeClaim({ namespace, name }),
      };
    case 'Secret':
      return {
        create: (namespace, body) => apis.core.createNamespacedSecret({ namespace, body: body as V1Secret }),
        remove: (namespace, name) => apis.core.deleteNamespacedSecret({ namespace, name }),
      };
    case 'DestinationRule':
      return {
        create: (namespace, body) => apis.custom.createNamespacedCustomObject({ ...DESTINATION_RULE, namespace, body }),
        remove: (namespace, name) => apis.custom.deleteNamespacedCustomObject({ ...DESTINATION_RULE, namespace, name }),
      };
  }
}
