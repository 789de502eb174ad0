/**
 * Settings of the kubernetes worker. Names follow the original IMS where it had one
 * (DEFAULT_IMS_JOB_NAMESPACE, JOB_KATA_RUNTIME, JOB_CUSTOMER_ACCESS_*, IMS_JOB_TEMPLATE_PATH, ...);
 * the rest are ours and start with IMS_JOB_.
 */
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { signingKeySource, type S3KeySource } from '../../artifacts/signing-key.js';
import { readSettings } from '../../config.js';

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

/**
 * What the job pods find in the `ims-s3-credentials` Secret of the job namespace (their S3
 * endpoint and key for uploading artifacts, §4 of the original's job workflow). The worker writes
 * it before it creates a job's objects.
 */
export interface PodS3Settings {
  /** S3 endpoint URL the pods use (IMS_JOB_S3_ENDPOINT; else S3_ENDPOINT; else AWS S3 of the region). */
  endpoint: string;
  sslValidate: boolean;
  /** Signing region of the endpoint (the pods' AWS_DEFAULT_REGION). */
  region: string;
  /** The long-lived key the pods get: the signing key of pre-signed URLs (shared/artifacts/signing-key.ts). */
  key: S3KeySource;
}

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
  /**
   * Host (and `:port` when not the scheme's) the job pod uses to PATCH the job and register the
   * image (API_GATEWAY_HOSTNAME): the pods reach IMS at `<apiScheme>://<host>/apis/ims`.
   */
  apiGatewayHostname: string;
  /** Scheme of that URL (IMS_JOB_API_SCHEME): `https`, as the original's pods use; `http` for a test cluster. */
  apiScheme: 'https' | 'http';
  /** Content of the `ims-s3-credentials` Secret the worker keeps up to date; null: the cluster provides it (IMS_JOB_S3_CREDENTIALS=cluster). */
  podS3: PodS3Settings | null;
  /** Bucket the pod uploads artifacts to (S3_BOOT_IMAGES_BUCKET). */
  s3Bucket: string;
  /** LOG_LEVEL of the ims-utils containers. */
  logLevel: string;
  /** Missed heartbeats before a remote customize container counts as lost. */
  remoteHeartbeatTimeoutCount: number;
  /** Storage class of the job PVC; empty = the cluster default. */
  storageClass: string;
  /** Secret with the RPM signing keys each create job gets a copy of; null: none is copied. */
  signingKeysSource: { namespace: string; name: string } | null;
  /**
   * IMS_JOB_ALLOW_UNSIGNED: a create job whose signing keys cannot be read runs without them (a
   * warning) instead of failing.
   */
  allowUnsigned: boolean;
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

type Env = Readonly<Record<string, string | undefined>>;

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

function scheme(value: string | undefined): KubernetesWorkerSettings['apiScheme'] {
  const v = text(value, 'https');
  if (v === 'https' || v === 'http') return v;
  throw new Error(`IMS_JOB_API_SCHEME must be https or http, not '${v}'`);
}

/**
 * The pods' S3 access: the signing key (deployed: the stack's S3 signing user, from Secrets
 * Manager; embedded: the embedded S3's keys) and the endpoint they reach S3 at.
 */
function podS3(env: Env): PodS3Settings | null {
  const mode = text(env.IMS_JOB_S3_CREDENTIALS, 'write');
  if (mode === 'cluster') return null;
  if (mode !== 'write') throw new Error(`IMS_JOB_S3_CREDENTIALS must be write or cluster, not '${mode}'`);
  const settings = readSettings(env);
  const key = signingKeySource(settings);
  if (!key) return null;
  return {
    endpoint: text(env.IMS_JOB_S3_ENDPOINT, settings.s3Endpoint ?? `https://s3.${settings.region}.amazonaws.com`),
    sslValidate: settings.s3SslValidate,
    region: settings.region,
    key,
  };
}

/** In a pod the service-account token is mounted and KUBERNETES_SERVICE_HOST is set. */
function kubeSource(env: Env): KubeSource {
  if (env.KUBECONFIG) return { kind: 'kubeconfig', path: env.KUBECONFIG };
  if (env.KUBERNETES_SERVICE_HOST) return { kind: 'in-cluster' };
  return { kind: 'default' };
}

export function kubernetesSettingsFromEnv(env: Env): KubernetesWorkerSettings {
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
    apiScheme: scheme(env.IMS_JOB_API_SCHEME),
    podS3: podS3(env),
    s3Bucket: text(env.S3_BOOT_IMAGES_BUCKET, 'boot-images'),
    logLevel: text(env.IMS_JOB_LOG_LEVEL, 'INFO'),
    remoteHeartbeatTimeoutCount: count(env.DEFAULT_IMS_JOB_REMOTE_TIMEOUT_COUNT, 12),
    storageClass: text(env.IMS_JOB_STORAGE_CLASS, ''),
    signingKeysSource: signingKeys(env.IMS_JOB_SIGNING_KEYS_SECRET),
    allowUnsigned: flag(env.IMS_JOB_ALLOW_UNSIGNED, false),
    timeoutRetries: 3,
    retryDelayMs: 1000,
    graceSeconds: count(env.IMS_JOB_OBSERVATION_GRACE_SECONDS, 60),
    kube: kubeSource(env),
  };
}
