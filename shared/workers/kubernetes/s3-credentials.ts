/**
 * The `ims-s3-credentials` Secret of the job namespace, which every job pod's sidecar reads its
 * S3 endpoint and key from (keys `access_key`, `secret_key`, `s3_endpoint`, `ssl_validate`, as
 * the original's; and `region`, for boto3's request signing). The original expected the cluster to
 * provide it; this worker writes it before each job's objects from the signing key, so a rotated
 * key reaches the next job. One Secret serves every job of the namespace.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { apiFailure, describeApiError, isNotFound } from './api-errors.js';
import type { KubeApis } from './kube-apis.js';
import type { PodS3Settings } from './settings.js';

export const POD_S3_SECRET = 'ims-s3-credentials';

const ATTEMPTS = 3;

export async function podS3SecretData(podS3: PodS3Settings): Promise<Record<string, string>> {
  const key = await podS3.key();
  const values: Record<string, string> = {
    access_key: key.accessKeyId,
    secret_key: key.secretAccessKey,
    s3_endpoint: podS3.endpoint,
    ssl_validate: podS3.sslValidate ? 'true' : 'false',
    region: podS3.region,
  };
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
}

const sameData = (a: Record<string, string> | undefined, b: Record<string, string>): boolean =>
  a !== undefined && Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

/** AlreadyExists (a create lost) or Conflict (a replace with an outdated resourceVersion). */
const lostRace = (error: unknown): boolean => apiFailure(error).code === 409;

/**
 * Creates the Secret, or replaces its data when it differs (a rotated key, another endpoint).
 * Concurrent prepares may race: a lost create or replace reads the Secret again.
 */
export async function ensurePodS3Credentials(apis: KubeApis, podS3: PodS3Settings, namespace: string): Promise<'created' | 'updated' | 'unchanged'> {
  const data = await podS3SecretData(podS3);
  const body = (resourceVersion?: string): V1Secret => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: POD_S3_SECRET,
      namespace,
      labels: { 'app.kubernetes.io/part-of': 'cray-ims', 'app.kubernetes.io/managed-by': 'ims' },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    type: 'Opaque',
    data,
  });
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let current: V1Secret | undefined;
    try {
      current = await apis.core.readNamespacedSecret({ namespace, name: POD_S3_SECRET });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    try {
      if (!current) {
        await apis.core.createNamespacedSecret({ namespace, body: body() });
        return 'created';
      }
      if (sameData(current.data, data)) return 'unchanged';
      await apis.core.replaceNamespacedSecret({ namespace, name: POD_S3_SECRET, body: body(current.metadata?.resourceVersion) });
      return 'updated';
    } catch (error) {
      if (!lostRace(error)) throw error;
      lastError = error;
    }
  }
  throw new Error(`Secret ${POD_S3_SECRET} kept changing while it was written: ${describeApiError(lastError)}`);
}
