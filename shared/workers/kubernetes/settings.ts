/**
 * Settings of the kubernetes worker. Names follow the original IMS where it had one
 * (DEFAULT_IMS_JOB_NAMESPACE, JOB_KATA_RUNTIME, JOB_CUSTOMER_ACCESS_*, IMS_JOB_TEMPLATE_PATH, ...);
 * the rest are ours and start with IMS_JOB_.
 */
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';

/** Container images of the job pod (the original took them from its Helm values). */
export interface JobImages {
  imsUtils: string;
  kiwiBuilder: string;
  /** The arm64 kiwi builder that build-image pulls for emulated aarch64 builds (IMS_ARM_BUILDER). */
  kiwiArmBuilder: string;
  sshd: string;
  packerBuilder: string;
  pullPolicy: 'Always' | 'IfNotPresent' | 'Never';
}

/** Where the cluster credentials come from. */
export type KubeSource =
  | { kind: 'kubeconfig'; path: string }
  | { kind: 'in-cluster' }
  /** ~/.kube/config and the other places `KubeConfig.loadFromDefault` looks. */
  | { kind: 'default' }
  /** A ready KubeConfig (tests, or a caller that built one itself). */
  | { kind: 'given'; config: KubeConfig };

export interface KubernetesWorkerSettings {
  /** Namespace for jobs whose record names none (DEFAULT_IMS_JOB_NAMESPACE). */
  namespace: string;
  images: JobImages;
  runtime: {
    /** Runtime class of DKMS jobs: the privileged mounts are contained in a Kata VM. */
    kata: string;
    /** Runtime class of aarch64 jobs (emulation through binfmt_misc needs a VM of its own). */
    aarch64: string;
    /** Service account that may mount sysfs/proc/devtmpfs (DKMS jobs). */
    dkmsServiceAccount: string;
    /** Extra virtiofsd arguments asked for through a Kata pod annotation (xattr support). */
    kataVirtiofsExtraArgs: string;
  };
  customerAccess: {
    subnetName: string;
    networkDomain: string;
    /** MetalLB address pool of the job's LoadBalancer Service. */
    addressPool: string;
  };
  /** Root of the job templates: create/<recipe_type>/ and customize/ live below it. */
  templatePath: string;
  /** Whether to create an Istio DestinationRule so in-mesh clients reach port 22 without mTLS. */
  istio: boolean;
  /** Host the job pod uses to PATCH the job and register the image. */
  apiGatewayHostname: string;
  /** Bucket the pod uploads artifacts to (S3_BOOT_IMAGES_BUCKET). */
  s3Bucket: string;
  /** LOG_LEVEL of the ims-utils containers. */
  logLevel: string;
  /** Missed heartbeats before a remote customize container counts as lost. */
  remoteHeartbeatTimeoutCount: number;
  /** Storage class of the job PVC; empty = the cluster default. */
  storageClass: string;
  /** Secret with RPM signing keys copied into the job namespace when the record names a secret. */
  signingKeysSource: { namespace: string; name: string } | null;
  /** Creating or deleting an object is retried this many times when the API times out. */
  timeoutRetries: number;
  /** Base wait between those retries (attempt n waits n × this). */
  retryDelayMs: number;
  /**
   * Seconds the Kubernetes state may disagree with the record before that counts as a failure:
   * a completed Job whose record never showed `success` (the pod PATCHes, then exits, and a poll
   * can fall between the two), or a started Job without a pod.
   */
  graceSeconds: number;
  kube: KubeSource;
}

type Env = Record<string, string | undefined>;

const IMAGE_REGISTRY = 'artifactory.algol60.net/csm-docker/stable';

/** The templates shipped next to this file. */
export const SHIPPED_TEMPLATE_PATH = fileURLToPath(new URL('./templates/', import.meta.url));

function text(value: string | undefined, fallback: string): string {
  return value === undefined || value.trim() === '' ? fallback : value.trim();
}

function flag(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value.trim() === '') return fallback;
  return ['1', 'true', 'yes', 'on', 't', 'y'].includes(value.trim().toLowerCase());
}

function count(value: string | undefined, fallback: number): number {
  const n = value === undefined ? NaN : Number(value);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

function pullPolicy(value: string | undefined): JobImages['pullPolicy'] {
  const v = text(value, 'IfNotPresent');
  if (v === 'Always' || v === 'IfNotPresent' || v === 'Never') return v;
  throw new Error(`IMS_JOB_IMAGE_PULL_POLICY must be Always, IfNotPresent or Never, not '${v}'`);
}

/** `namespace/name`; empty disables the copy. */
function signingKeys(value: string | undefined): KubernetesWorkerSettings['signingKeysSource'] {
  const v = value === undefined ? 'services/hpe-signing-key' : value.trim();
  if (v === '') return null;
  const [namespace, name, ...rest] = v.split('/');
  if (!namespace || !name || rest.length > 0) {
    throw new Error(`IMS_JOB_SIGNING_KEYS_SECRET must look like namespace/name, not '${v}'`);
  }
  return { namespace, name };
}

/** In a pod the service-account token is mounted and KUBERNETES_SERVICE_HOST is set. */
function kubeSource(env: Env): KubeSource {
  if (env.KUBECONFIG) return { kind: 'kubeconfig', path: env.KUBECONFIG };
  if (env.KUBERNETES_SERVICE_HOST) return { kind: 'in-cluster' };
  return { kind: 'default' };
}

export function kubernetesSettingsFromEnv(env: Env = process.env): KubernetesWorkerSettings {
  const kiwiBuilder = text(env.IMS_JOB_KIWI_NG_BUILDER_IMAGE, `${IMAGE_REGISTRY}/cray-ims-kiwi-ng-opensuse-x86_64-builder:1.14.0`);
  return {
    namespace: text(env.DEFAULT_IMS_JOB_NAMESPACE, 'ims'),
    images: {
      imsUtils: text(env.IMS_JOB_UTILS_IMAGE, `${IMAGE_REGISTRY}/cray-ims-utils:2.21.0`),
      kiwiBuilder,
      // The original derives the arm64 builder from the x86_64 one the same way.
      kiwiArmBuilder: text(env.IMS_JOB_KIWI_NG_ARM_BUILDER_IMAGE, `${kiwiBuilder}-arm64`),
      sshd: text(env.IMS_JOB_SSHD_IMAGE, `${IMAGE_REGISTRY}/cray-ims-sshd:1.15.2`),
      packerBuilder: text(env.IMS_JOB_PACKER_BUILDER_IMAGE, 'cray/cray-ims-packer-opensuse-x86_64-builder:latest'),
      pullPolicy: pullPolicy(env.IMS_JOB_IMAGE_PULL_POLICY),
    },
    runtime: {
      kata: text(env.JOB_KATA_RUNTIME, 'kata-qemu'),
      aarch64: text(env.JOB_AARCH64_RUNTIME, 'kata-qemu'),
      dkmsServiceAccount: text(env.IMS_JOB_DKMS_SERVICE_ACCOUNT, 'ims-service-job-mount'),
      kataVirtiofsExtraArgs: text(env.IMS_JOB_KATA_VIRTIOFS_EXTRA_ARGS, '["--xattr"]'),
    },
    customerAccess: {
      subnetName: text(env.JOB_CUSTOMER_ACCESS_SUBNET_NAME, 'cmn'),
      networkDomain: text(env.JOB_CUSTOMER_ACCESS_NETWORK_DOMAIN, 'shasta.local'),
      addressPool: text(env.JOB_CUSTOMER_ACCESS_NETWORK_ACCESS_POOL, 'customer-management'),
    },
    templatePath: text(env.IMS_JOB_TEMPLATE_PATH, SHIPPED_TEMPLATE_PATH),
    istio: flag(env.IMS_JOB_ISTIO, true),
    apiGatewayHostname: text(env.API_GATEWAY_HOSTNAME, 'istio-ingressgateway.istio-system.svc.cluster.local'),
    s3Bucket: text(env.S3_BOOT_IMAGES_BUCKET, 'boot-images'),
    logLevel: text(env.IMS_JOB_LOG_LEVEL, 'INFO'),
    remoteHeartbeatTimeoutCount: count(env.DEFAULT_IMS_JOB_REMOTE_TIMEOUT_COUNT, 12),
    storageClass: text(env.IMS_JOB_STORAGE_CLASS, ''),
    signingKeysSource: signingKeys(env.IMS_JOB_SIGNING_KEYS_SECRET),
    timeoutRetries: 3,
    retryDelayMs: 1000,
    graceSeconds: count(env.IMS_JOB_OBSERVATION_GRACE_SECONDS, 60),
    kube: kubeSource(env),
  };
}
