/**
 * The kubernetes worker against a recording fake Kubernetes API server (test/helpers/fake-kube-api.ts)
 * reached through the real @kubernetes/client-node and a real KubeConfig. Every object the worker
 * sends is validated against the Kubernetes schemas (kubernetes-models; the Istio DestinationRule
 * by hand) and refused with 422 when invalid, as a real API server would, and every call is
 * authorized against the Role the repository ships (deploy/kubernetes): one outside it fails the test.
 *
 * What this does NOT cover: scheduling (node fit, anti-affinity, PVC binding, storage classes),
 * RBAC beyond namespaced Roles, service account tokens, admission control (pod security, Kata runtime classes), real pods and
 * the Job controller (the tests set Job/Pod status by hand), the container images themselves and
 * their scripts (ims-utils, kiwi-ng builder, sshd), external-dns/MetalLB and Istio behaviour.
 * Those need a real cluster.
 */
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import type { JobRecord, JobStatus } from '../../shared/domain/records.js';
import type { WorkerJob } from '../../shared/domain/worker-port.js';
import { KubernetesWorker } from '../../shared/workers/kubernetes/kubernetes-worker.js';
import { KubernetesCleanupError } from '../../shared/workers/kubernetes/cleanup.js';
import { createKubernetesWorker } from '../../shared/workers/kubernetes/factory.js';
import type { WorkerDeps } from '../../shared/workers/worker-deps.js';
import { renderJobManifests } from '../../shared/workers/kubernetes/manifests.js';
import {
  kubernetesSettingsFromEnv,
  SHIPPED_TEMPLATE_PATH,
  type KubernetesWorkerSettings,
} from '../../shared/workers/kubernetes/settings.js';
import { substitute, TemplateError } from '../../shared/workers/kubernetes/template.js';
import {
  collections,
  FakeKubeApi,
  rbacFromManifest,
  SHIPPED_RBAC_MANIFEST,
  SIGNING_KEYS,
  validateWithKubernetesModels,
  type KubeObject,
} from '../helpers/fake-kube-api.js';

const NS = 'ims';
const NOW = new Date('2025-06-01T12:00:00Z');
const LONG_AGO = '2025-06-01T11:00:00Z';
const JUST_NOW = '2025-06-01T11:59:50Z';

let fake: FakeKubeApi;
beforeAll(async () => {
  fake = await FakeKubeApi.start({ validate: validateWithKubernetesModels });
});
afterAll(async () => {
  await fake.stop();
});
/** An empty cluster but for the signing keys. */
function freshCluster(): void {
  fake.reset();
  fake.putSigningKeys();
}
beforeEach(freshCluster);
// A real API server would have refused these: the worker must never send an invalid object, nor
// make a call its shipped Role does not allow.
afterEach(() => {
  expect(fake.rejected).toEqual([]);
  fake.assertWithinRole();
});

function settings(overrides: Partial<KubernetesWorkerSettings> = {}): KubernetesWorkerSettings {
  return { ...kubernetesSettingsFromEnv({}), kube: { kind: 'given', config: fake.kubeConfig() }, retryDelayMs: 0, ...overrides };
}

function worker(overrides: Partial<KubernetesWorkerSettings> = {}): KubernetesWorker {
  return new KubernetesWorker(settings(overrides), { now: () => NOW });
}

function workerJob(overrides: Partial<JobRecord> = {}, extra: Partial<WorkerJob> = {}): WorkerJob {
  const id = overrides.id ?? randomUUID();
  const type = overrides.job_type ?? 'create';
  const service = `cray-ims-${id}-service`;
  const record: JobRecord = {
    id,
    created: '2025-06-01T11:00:00',
    job_type: type,
    artifact_id: randomUUID(),
    public_key_id: randomUUID(),
    image_root_archive_name: 'compute-image',
    enable_debug: false,
    build_env_size: 60,
    job_mem_size: 8,
    kernel_file_name: 'vmlinuz',
    initrd_file_name: 'initrd',
    kernel_parameters_file_name: 'kernel-parameters',
    ssh_containers:
      type === 'customize'
        ? [
            {
              name: 'customize',
              jail: false,
              status: 'pending',
              connection_info: {
                customer_access: { host: `${id}.ims.cmn.shasta.local`, port: 22 },
                'cluster.local': { host: `${service}.${NS}.svc.cluster.local`, port: 22 },
              },
            },
          ]
        : null,
    require_dkms: false,
    arch: 'x86_64',
    status: 'creating',
    resultant_image_id: null,
    kubernetes_job: `cray-ims-${id}-${type}`,
    kubernetes_service: service,
    kubernetes_configmap: `cray-ims-${id}-configmap`,
    kubernetes_pvc: `cray-ims-${id}-job-claim`,
    kubernetes_namespace: NS,
    kubernetes_secret: null,
    remote_build_node: '',
    ...overrides,
  };
  return {
    job: record,
    publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk user@host',
    downloadUrl: 'https://s3.example.com/ims/recipes/r/recipe.tar.gz?X-Amz-Signature=ab%2Fc&X-Amz-Expires=432000',
    downloadMd5: '0123456789abcdef0123456789abcdef',
    recipeType: type === 'create' ? 'kiwi-ng' : undefined,
    templateDictionary: type === 'create' ? { CSM_RELEASE_VERSION: '1.6.0' } : undefined,
    resultImageId: randomUUID(),
    arch: record.arch,
    ...extra,
  };
}

type Container = {
  name: string;
  image: string;
  command?: string[];
  env?: Array<{ name: string; value?: string }>;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext?: { privileged?: boolean; capabilities?: { add?: string[] } };
};
type PodSpec = {
  runtimeClassName?: string;
  serviceAccountName?: string;
  restartPolicy: string;
  initContainers: Container[];
  containers: Container[];
  volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }>;
  affinity?: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: unknown[] } };
};

const sent = (resource: keyof typeof collections): KubeObject => {
  const request = fake.creates().find((r) => r.path === collectionOf(resource));
  if (!request?.body) throw new Error(`nothing was POSTed to ${resource}`);
  return request.body;
};
const collectionOf = (resource: keyof typeof collections): string => collections[resource](NS);
const podSpecOf = (job: KubeObject): PodSpec => (job.spec as { template: { spec: PodSpec } }).template.spec;
const envOf = (c: Container): Record<string, string | undefined> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
const postedPaths = (): string[] => fake.creates().map((r) => r.path);

const CREATE_ORDER = ['configmaps', 'services', 'jobs', 'pvcs', 'destinationRules'] as const;
/** A create job's objects also end with its copy of the signing keys. */
const CREATE_PATHS = (): string[] => [...CREATE_ORDER.map(collectionOf), collectionOf('secrets')];
const keysName = (job: WorkerJob): string => `cray-ims-${job.job.id}-signing-keys`;

describe('settings', () => {
  test('defaults follow the original', () => {
    const s = kubernetesSettingsFromEnv({});
    expect(s.namespace).toBe('ims');
    expect(s.runtime).toMatchObject({ kata: 'kata-qemu', aarch64: 'kata-qemu', dkmsServiceAccount: 'ims-service-job-mount' });
    expect(s.customerAccess).toEqual({ subnetName: 'cmn', networkDomain: 'shasta.local', addressPool: 'customer-management' });
    expect(s.istio).toBe(true);
    expect(s.s3Bucket).toBe('boot-images');
    expect(s.templatePath).toBe(SHIPPED_TEMPLATE_PATH);
    expect(existsSync(path.join(s.templatePath, 'create', 'kiwi-ng', 'image_job_create.yaml.template'))).toBe(true);
    expect(s.kube).toEqual({ kind: 'default' });
  });

  test('environment overrides', () => {
    const s = kubernetesSettingsFromEnv({
      DEFAULT_IMS_JOB_NAMESPACE: 'builds',
      JOB_KATA_RUNTIME: 'kata-clh',
      JOB_AARCH64_RUNTIME: 'kata-arm',
      JOB_CUSTOMER_ACCESS_SUBNET_NAME: 'can',
      JOB_CUSTOMER_ACCESS_NETWORK_DOMAIN: 'example.org',
      JOB_CUSTOMER_ACCESS_NETWORK_ACCESS_POOL: 'pool-a',
      IMS_JOB_TEMPLATE_PATH: '/etc/ims/templates',
      IMS_JOB_ISTIO: 'false',
      IMS_JOB_UTILS_IMAGE: 'registry.local/ims-utils:9',
      IMS_JOB_SIGNING_KEYS_SECRET: '',
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
    });
    expect(s).toMatchObject({
      namespace: 'builds',
      runtime: { kata: 'kata-clh', aarch64: 'kata-arm' },
      customerAccess: { subnetName: 'can', networkDomain: 'example.org', addressPool: 'pool-a' },
      templatePath: '/etc/ims/templates',
      istio: false,
      images: { imsUtils: 'registry.local/ims-utils:9' },
      signingKeysSource: null,
      kube: { kind: 'in-cluster' },
    });
    expect(kubernetesSettingsFromEnv({ KUBECONFIG: '/k/config', KUBERNETES_SERVICE_HOST: 'x' }).kube).toEqual({ kind: 'kubeconfig', path: '/k/config' });
  });
});

describe('prepare: the objects of a create job', () => {
  test("ConfigMap, Service, Job, PVC, DestinationRule, the signing keys' Secret, in that order, all valid", async () => {
    const job = workerJob();
    const id = job.job.id;
    const progress = await worker().advance('prepare', job);
    expect(progress.state).toBe('done');
    expect(postedPaths()).toEqual(CREATE_PATHS());
    expect(fake.creates().map((r) => r.body?.metadata?.name)).toEqual([
      `cray-ims-${id}-configmap`,
      `cray-ims-${id}-service`,
      `cray-ims-${id}-create`,
      `cray-ims-${id}-job-claim`,
      `cray-ims-${id}-service`,
      `cray-ims-${id}-signing-keys`,
    ]);
    for (const request of fake.creates()) {
      expect(request.body?.metadata?.namespace).toBe(NS);
      expect(request.body?.metadata?.labels).toEqual({ 'app.kubernetes.io/part-of': 'cray-ims', 'ims-job-id': id });
    }
  });

  test('ConfigMap carries the public key and the template dictionary as JSON', async () => {
    const job = workerJob();
    await worker().advance('prepare', job);
    const data = sent('configmaps').data as Record<string, string>;
    expect(data.public_key).toBe(job.publicKey);
    expect(JSON.parse(data.template_dictionary!)).toEqual({ CSM_RELEASE_VERSION: '1.6.0' });
  });

  test('a public key with quotes, colons and newlines cannot change the manifest', async () => {
    const tricky = 'ssh-rsa AAAA "quoted": value\nmalicious: true # not a comment \\ $HOME';
    await worker().advance('prepare', workerJob({}, { publicKey: tricky }));
    const configMap = sent('configmaps');
    expect((configMap.data as Record<string, string>).public_key).toBe(tricky);
    expect(Object.keys(configMap.data as object).sort()).toEqual(['public_key', 'template_dictionary']);
  });

  test('Service: LoadBalancer on TCP 22 with the customer-access annotations', async () => {
    const job = workerJob();
    await worker().advance('prepare', job);
    const service = sent('services');
    expect(service.metadata?.annotations).toEqual({
      'external-dns.alpha.kubernetes.io/hostname': `${job.job.id}.ims.cmn.shasta.local`,
      'metallb.universe.tf/address-pool': 'customer-management',
    });
    expect(service.spec).toEqual({
      type: 'LoadBalancer',
      selector: { app: `ims-${job.job.id}-create` },
      ports: [{ name: 'ssh', port: 22, protocol: 'TCP', targetPort: 22 }],
    });
  });

  test('Job: one attempt, the original containers, memory request and ×5 limit, PVC volume', async () => {
    const job = workerJob({ job_mem_size: 16 });
    await worker().advance('prepare', job);
    const k8sJob = sent('jobs');
    expect((k8sJob.spec as { backoffLimit: number }).backoffLimit).toBe(0);
    const pod = podSpecOf(k8sJob);
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.initContainers.map((c) => c.name)).toEqual(['fetch-recipe', 'wait-for-repos', 'build-ca-rpm', 'build-image']);
    expect(pod.containers.map((c) => c.name)).toEqual(['buildenv-sidecar', 'sshd']);
    for (const c of [...pod.initContainers, ...pod.containers]) {
      expect(c.resources.requests.memory).toBe('16Gi');
      expect(c.resources.limits.memory).toBe('80Gi');
      expect(envOf(c).IMS_JOB_ID).toBe(job.job.id);
    }
    expect(pod.runtimeClassName).toBeUndefined();
    expect(pod.serviceAccountName).toBeUndefined();
    expect(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    expect(pod.volumes.find((v) => v.name === 'image-vol')?.persistentVolumeClaim).toEqual({ claimName: job.job.kubernetes_pvc });
    expect(pod.volumes.map((v) => v.name).sort()).toEqual(
      ['admin-client-auth', 'ca-pubkey', 'ca-rpm-vol', 'image-vol', 'ims-config-vol', 'remote-key', 'signing-keys', 'specfile-vol', 'ssh-pubkey', 'template-dictionary'],
    );
    // The URL is an argument of its own: no shell ever parses it.
    expect(pod.initContainers[0]!.command).toEqual(['/scripts/fetch-recipe.sh', '/mnt/image/recipe', job.downloadUrl]);
    expect(envOf(pod.initContainers[0]!).DOWNLOAD_MD5SUM).toBe(job.downloadMd5);
    const sidecar = envOf(pod.containers[0]!);
    expect(sidecar).toMatchObject({
      IMS_ACTION: 'create',
      IMAGE_ROOT_ARCHIVE_NAME: 'compute-image',
      KERNEL_FILENAME: 'vmlinuz',
      S3_BUCKET: 'boot-images',
      ENABLE_DEBUG: 'False',
      SSH_JAIL: 'False',
      SERVICE_NAME: job.job.kubernetes_service,
    });
    expect(envOf(pod.containers[1]!).SSHD_CONFIG_FILE).toBe('/etc/cray/ims/sshd_config');
  });

  test('PVC: ReadWriteOnce, build_env_size × 5 GiB; DestinationRule: service host, TLS disabled', async () => {
    const job = workerJob({ build_env_size: 10 });
    await worker().advance('prepare', job);
    expect(sent('pvcs').spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '50Gi' } } });
    const rule = sent('destinationRules');
    expect(rule.apiVersion).toBe('networking.istio.io/v1beta1');
    expect(rule.spec).toEqual({
      host: `${job.job.kubernetes_service}.${NS}.svc.cluster.local`,
      trafficPolicy: { tls: { mode: 'DISABLE' } },
    });
  });

  test('the client drops nothing: the server receives exactly the rendered manifests', async () => {
    const job = workerJob({ require_dkms: true });
    const s = settings();
    await new KubernetesWorker(s).advance('prepare', job);
    const rendered = await renderJobManifests(job, s);
    expect(fake.creates().filter((r) => r.path !== collectionOf('secrets')).map((r) => r.body)).toEqual(rendered.map((m) => m.body));
  });

  test('DKMS: Kata runtime, the mount service account, privileged sshd with SYS_ADMIN', async () => {
    await worker({ runtime: { ...settings().runtime, kata: 'kata-dkms' } }).advance('prepare', workerJob({ require_dkms: true }));
    const pod = podSpecOf(sent('jobs'));
    expect(pod.runtimeClassName).toBe('kata-dkms');
    expect(pod.serviceAccountName).toBe('ims-service-job-mount');
    const sshd = pod.containers.find((c) => c.name === 'sshd')!;
    expect(sshd.securityContext).toEqual({ privileged: true, capabilities: { add: ['SYS_ADMIN'] } });
    expect(envOf(sshd).JOB_ENABLE_DKMS).toBe('True');
  });

  test('aarch64: the aarch64 runtime class; a remote build node clears it', async () => {
    const s = settings().runtime;
    const runtime = { ...s, aarch64: 'kata-arm' };
    await worker({ runtime }).advance('prepare', workerJob({ arch: 'aarch64', require_dkms: true, kernel_file_name: 'Image' }, { arch: 'aarch64' }));
    const pod = podSpecOf(sent('jobs'));
    expect(pod.runtimeClassName).toBe('kata-arm');
    expect(envOf(pod.initContainers.find((c) => c.name === 'build-image')!).BUILD_ARCH).toBe('aarch64');

    freshCluster();
    await worker({ runtime }).advance('prepare', workerJob({ arch: 'aarch64', require_dkms: true, remote_build_node: 'x3000c0s1b0n0' }, { arch: 'aarch64' }));
    const remotePod = podSpecOf(sent('jobs'));
    expect(remotePod.runtimeClassName).toBeUndefined();
    expect(envOf(remotePod.initContainers.find((c) => c.name === 'build-image')!).REMOTE_BUILD_NODE).toBe('x3000c0s1b0n0');
  });

  test('packer recipes render and are created (the original could not fill its template)', async () => {
    const progress = await worker().advance('prepare', workerJob({}, { recipeType: 'packer' }));
    expect(progress.state).toBe('done');
    const pod = podSpecOf(sent('jobs'));
    expect(pod.initContainers.map((c) => c.name)).toEqual(['fetch-recipe', 'build-image']);
    expect(pod.initContainers[1]!.image).toBe(settings().images.packerBuilder);
  });

  test('Istio off: no DestinationRule', async () => {
    const progress = await worker({ istio: false }).advance('prepare', workerJob());
    expect(progress.state).toBe('done');
    expect(postedPaths()).toEqual(['configmaps', 'services', 'jobs', 'pvcs', 'secrets'].map((r) => collectionOf(r as keyof typeof collections)));
  });

  test("the signing keys are copied into the job namespace, under the name the build container mounts", async () => {
    const job = workerJob();
    const progress = await worker().advance('prepare', job);
    expect(progress).toMatchObject({ state: 'done', detail: expect.stringContaining(`Secret ${keysName(job)}`) });
    expect(fake.get(collections.secrets(NS), keysName(job))?.data).toEqual(SIGNING_KEYS.data);
    const pod = podSpecOf(sent('jobs')) as unknown as { volumes: Array<{ name: string; secret?: { secretName: string } }> };
    expect(pod.volumes.find((v) => v.name === 'signing-keys')?.secret?.secretName).toBe(keysName(job));
    expect(fake.calls()).toContain('GET /api/v1/namespaces/services/secrets/hpe-signing-key');
  });

  test('a customize job mounts no keys and reads none', async () => {
    expect((await worker().advance('prepare', workerJob({ job_type: 'customize' }))).state).toBe('done');
    expect(fake.calls().some((c) => c.includes('/secrets/'))).toBe(false);
  });

  test.each([
    ['forbidden', 403, 'Forbidden', 'HTTP 403 Forbidden: secrets "hpe-signing-key" is forbidden'],
    ['absent', 404, 'NotFound', 'it does not exist'],
    ['a server error', 500, 'InternalError', 'HTTP 500 InternalError: etcd is down'],
  ])('signing keys that cannot be read (%s) fail the stage with the reason, before anything is created', async (_case, code, reason, why) => {
    fake.failNext({ method: 'GET', path: '/api/v1/namespaces/services/secrets/hpe-signing-key', status: code, reason, message: code === 403 ? 'secrets "hpe-signing-key" is forbidden' : 'etcd is down' });
    const progress = await worker().advance('prepare', workerJob());
    expect(progress).toMatchObject({ state: 'failed', reason: expect.stringContaining(`could not read the signing keys, Secret services/hpe-signing-key: ${why}`) });
    expect(fake.creates()).toEqual([]);
  });

  test('IMS_JOB_ALLOW_UNSIGNED=true: the job runs without them, and says so', async () => {
    expect(kubernetesSettingsFromEnv({}).allowUnsigned).toBe(false);
    const s = kubernetesSettingsFromEnv({ IMS_JOB_ALLOW_UNSIGNED: 'true' });
    expect(s.allowUnsigned).toBe(true);
    fake.remove(collections.secrets('services'), 'hpe-signing-key');
    const job = workerJob();
    const progress = await worker({ allowUnsigned: true }).advance('prepare', job);
    expect(progress).toMatchObject({ state: 'done', detail: expect.stringContaining('unsigned: could not read the signing keys, Secret services/hpe-signing-key: it does not exist') });
    expect(postedPaths()).toEqual(CREATE_ORDER.map(collectionOf));
    expect(fake.names(collections.secrets(NS))).toEqual([]);
  });
});

describe('the pods: IMS base URL and S3 credentials', () => {
  const SECRET = 'ims-s3-credentials';
  const secretPath = () => collectionOf('secrets');
  const decoded = (obj: KubeObject | undefined) =>
    Object.fromEntries(Object.entries((obj?.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  let key = { accessKeyId: 'AKIASIGNINGUSER00001', secretAccessKey: 'first-secret' };
  const podS3 = () => ({ endpoint: 'https://s3.eu-west-1.amazonaws.com', sslValidate: true, region: 'eu-west-1', key: async () => key });
  beforeEach(() => {
    key = { accessKeyId: 'AKIASIGNINGUSER00001', secretAccessKey: 'first-secret' };
  });

  test('settings: scheme, host and the S3 the pods use come from the environment', () => {
    expect(kubernetesSettingsFromEnv({}).apiScheme).toBe('https');
    expect(kubernetesSettingsFromEnv({}).podS3).toBeNull();
    expect(() => kubernetesSettingsFromEnv({ IMS_JOB_API_SCHEME: 'ftp' })).toThrow('IMS_JOB_API_SCHEME must be https or http');
    const embedded = kubernetesSettingsFromEnv({ S3_ENDPOINT: 'http://127.0.0.1:9000', S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER', S3_SSL_VALIDATE: 'false' });
    expect(embedded.podS3).toMatchObject({ endpoint: 'http://127.0.0.1:9000', sslValidate: false, region: 'us-east-1' });
    const deployed = kubernetesSettingsFromEnv({ AWS_REGION: 'eu-west-1', S3_SIGNING_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:s' });
    expect(deployed.podS3).toMatchObject({ endpoint: 'https://s3.eu-west-1.amazonaws.com', region: 'eu-west-1' });
    expect(kubernetesSettingsFromEnv({ S3_SIGNING_SECRET_ARN: 'arn:x', IMS_JOB_S3_ENDPOINT: 'https://s3.example.com' }).podS3?.endpoint).toBe('https://s3.example.com');
    expect(kubernetesSettingsFromEnv({ S3_SIGNING_SECRET_ARN: 'arn:x', IMS_JOB_S3_CREDENTIALS: 'cluster' }).podS3).toBeNull();
  });

  test('every container that reports gets IMS_URL = <scheme>://<API_GATEWAY_HOSTNAME>/apis/ims', async () => {
    for (const type of ['create', 'customize'] as const) {
      freshCluster();
      await worker({ apiGatewayHostname: 'ims.example.com:8443', apiScheme: 'http' }).advance('prepare', workerJob({ job_type: type }));
      const pod = podSpecOf(sent('jobs'));
      for (const c of [...pod.initContainers, ...pod.containers].filter((c) => envOf(c).API_GATEWAY_HOSTNAME !== undefined)) {
        expect({ container: c.name, url: envOf(c).IMS_URL, host: envOf(c).API_GATEWAY_HOSTNAME }).toEqual({
          container: c.name,
          url: 'http://ims.example.com:8443/apis/ims',
          host: 'ims.example.com:8443',
        });
      }
    }
  });

  test('the Secret is written first, with the keys the pods read; every reference to it names one of them', async () => {
    const progress = await worker({ podS3: podS3() }).advance('prepare', workerJob());
    expect(progress).toMatchObject({ state: 'done', detail: expect.stringContaining(`Secret ${SECRET} (created)`) });
    expect(postedPaths()).toEqual([secretPath(), ...CREATE_PATHS()]);
    const secret = fake.get(secretPath(), SECRET);
    expect(decoded(secret)).toEqual({
      access_key: 'AKIASIGNINGUSER00001',
      secret_key: 'first-secret',
      s3_endpoint: 'https://s3.eu-west-1.amazonaws.com',
      ssl_validate: 'true',
      region: 'eu-west-1',
    });
    const pod = podSpecOf(sent('jobs')) as unknown as { containers: Array<{ name: string; env?: Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }> }> };
    const refs = pod.containers.flatMap((c) => (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef?.name === SECRET ? [e.valueFrom.secretKeyRef.key] : [])));
    expect(new Set(refs)).toEqual(new Set(['access_key', 'secret_key', 's3_endpoint', 'ssl_validate', 'region']));
  });

  test('an unchanged key is left alone; a rotated key replaces the data', async () => {
    const w = worker({ podS3: podS3() });
    await w.advance('prepare', workerJob());
    const again = await w.advance('prepare', workerJob());
    expect(again).toMatchObject({ state: 'done', detail: expect.stringContaining(`Secret ${SECRET} (unchanged)`) });
    expect(fake.requests.filter((r) => r.method === 'PUT')).toEqual([]);
    key = { accessKeyId: 'AKIASIGNINGUSER00002', secretAccessKey: 'rotated' };
    const rotated = await w.advance('prepare', workerJob());
    expect(rotated).toMatchObject({ state: 'done', detail: expect.stringContaining(`Secret ${SECRET} (updated)`) });
    expect(fake.calls()).toContain(`PUT ${secretPath()}/${SECRET}`);
    expect(decoded(fake.get(secretPath(), SECRET))).toMatchObject({ access_key: 'AKIASIGNINGUSER00002', secret_key: 'rotated' });
  });

  test('a replace that lost a race reads the Secret again and retries', async () => {
    const w = worker({ podS3: podS3() });
    await w.advance('prepare', workerJob());
    key = { accessKeyId: 'AKIASIGNINGUSER00003', secretAccessKey: 'raced' };
    fake.failNext({ method: 'PUT', path: `${secretPath()}/${SECRET}`, status: 409, reason: 'Conflict' });
    expect((await w.advance('prepare', workerJob())).state).toBe('done');
    expect(fake.calls().filter((c) => c === `PUT ${secretPath()}/${SECRET}`)).toHaveLength(2);
    expect(decoded(fake.get(secretPath(), SECRET)).access_key).toBe('AKIASIGNINGUSER00003');
  });

  test('a Secret that cannot be written fails the stage before anything is created', async () => {
    fake.failNext({ method: 'POST', path: secretPath(), status: 403, reason: 'Forbidden', message: 'secrets is forbidden' });
    const progress = await worker({ podS3: podS3() }).advance('prepare', workerJob());
    expect(progress).toMatchObject({ state: 'failed', reason: expect.stringContaining(`could not write Secret ${SECRET} in namespace ${NS}: HTTP 403 Forbidden: secrets is forbidden`) });
    for (const resource of CREATE_ORDER) expect(fake.names(collectionOf(resource))).toEqual([]);
  });

  test('a signing key that cannot be read fails the stage the same way', async () => {
    const broken = { ...podS3(), key: async () => Promise.reject(new Error('secret arn:x must hold JSON')) };
    const progress = await worker({ podS3: broken }).advance('prepare', workerJob());
    expect(progress).toMatchObject({ state: 'failed', reason: expect.stringContaining('secret arn:x must hold JSON') });
    expect(fake.creates()).toEqual([]);
  });
});

describe('prepare: a customize job', () => {
  test('same five objects, the customize pod', async () => {
    const job = workerJob({ job_type: 'customize' });
    const id = job.job.id;
    expect((await worker().advance('prepare', job)).state).toBe('done');
    expect(postedPaths()).toEqual(CREATE_ORDER.map(collectionOf));
    expect(fake.creates()[2]!.body?.metadata?.name).toBe(`cray-ims-${id}-customize`);
    expect(Object.keys(sent('configmaps').data as object)).toEqual(['public_key']);
    expect((sent('services').spec as { selector: unknown }).selector).toEqual({ app: `ims-${id}-customize` });
    const pod = podSpecOf(sent('jobs'));
    expect(pod.initContainers.map((c) => c.name)).toEqual(['prepare']);
    expect(pod.initContainers[0]!.command).toEqual(['/scripts/prep-env.sh', '/mnt/image', job.downloadUrl]);
    expect(pod.containers.map((c) => c.name)).toEqual(['buildenv-sidecar', 'sshd']);
    expect(envOf(pod.containers[0]!).IMS_ACTION).toBe('customize');
    expect(envOf(pod.containers[1]!).REMOTE_HEARTBEAT_TIMEOUT_COUNT).toBe('12');
  });
});

describe('prepare: idempotence and failures', () => {
  test('a second prepare creates no duplicates and does not fail', async () => {
    const job = workerJob();
    const w = worker();
    expect((await w.advance('prepare', job)).state).toBe('done');
    const again = await w.advance('prepare', job);
    expect(again).toMatchObject({ state: 'done', detail: expect.stringContaining('already there') });
    expect(fake.creates()).toHaveLength(12);
    for (const resource of CREATE_ORDER) expect(fake.names(collectionOf(resource))).toHaveLength(1);
  });

  test.each([
    [500, 'InternalError'],
    [403, 'Forbidden'],
  ])('creating the Job fails with %i: failed, naming the Job, and the earlier objects are removed', async (code, reason) => {
    const job = workerJob();
    fake.failNext({ method: 'POST', path: collectionOf('jobs'), status: code, reason, message: 'jobs.batch is not allowed' });
    const progress = await worker().advance('prepare', job);
    expect(progress.state).toBe('failed');
    const text = progress.state === 'failed' ? progress.reason : '';
    expect(text).toContain(`Job ${job.job.kubernetes_job}`);
    expect(text).toContain(`HTTP ${code} ${reason}: jobs.batch is not allowed`);
    expect(text).toContain(`removed again: ConfigMap ${job.job.kubernetes_configmap}, Service ${job.job.kubernetes_service}`);
    expect(fake.deletes().map((r) => r.path)).toEqual([
      `${collectionOf('services')}/${job.job.kubernetes_service}`,
      `${collectionOf('configmaps')}/${job.job.kubernetes_configmap}`,
    ]);
    for (const resource of CREATE_ORDER) expect(fake.names(collectionOf(resource))).toEqual([]);
  });

  test('API timeouts are retried up to 3 times', async () => {
    fake.failNext({ method: 'POST', path: collectionOf('configmaps'), status: 504, reason: 'Timeout', times: 3 });
    expect((await worker().advance('prepare', workerJob())).state).toBe('done');
    expect(postedPaths().filter((p) => p === collectionOf('configmaps'))).toHaveLength(4);
  });

  test('a fourth timeout fails the stage', async () => {
    fake.failNext({ method: 'POST', path: collectionOf('services'), status: 504, reason: 'Timeout', times: 4 });
    const progress = await worker().advance('prepare', workerJob());
    expect(progress).toMatchObject({ state: 'failed', reason: expect.stringContaining('could not create Service') });
    expect(postedPaths().filter((p) => p === collectionOf('services'))).toHaveLength(4);
  });
});

describe('templates', () => {
  test('substitution follows string.Template and lists every variable without a value', () => {
    expect(substitute('t', 'a: ${x} $y $$z', { x: '1', y: 'two' })).toBe('a: 1 two $z');
    expect(() => substitute('t', '${a} $b ${a} $c', { c: '' })).toThrow(new TemplateError('t', ['a', 'b']));
    expect(() => substitute('t', 'cost: $5', {})).toThrow(/invalid placeholders: '\$' at line 1/);
  });

  test('a template variable without a value fails prepare clearly and creates nothing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ims-templates-'));
    try {
      await cp(SHIPPED_TEMPLATE_PATH, dir, { recursive: true });
      const file = path.join(dir, 'create', 'kiwi-ng', 'image_job_create.yaml.template');
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace('value: /mnt/image/recipe', 'value: "${recipe_root}"'));
      const progress = await worker({ templatePath: dir }).advance('prepare', workerJob());
      expect(progress).toMatchObject({ state: 'failed', reason: expect.stringContaining('variables without a value: recipe_root') });
      expect(progress.state === 'failed' && progress.reason).toContain('image_job_create.yaml.template');
      expect(fake.requests).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('customize templates get no create-only values', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ims-templates-'));
    try {
      await cp(SHIPPED_TEMPLATE_PATH, dir, { recursive: true });
      const file = path.join(dir, 'customize', 'image_configmap_customize.yaml.template');
      await writeFile(file, `${await readFile(file, 'utf8')}  template_dictionary: "\${template_dictionary}"\n`);
      const progress = await worker({ templatePath: dir }).advance('prepare', workerJob({ job_type: 'customize' }));
      expect(progress).toMatchObject({ state: 'failed', reason: expect.stringContaining('template_dictionary') });
      expect(fake.requests).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A Job and its pod as the Job controller and kubelet would leave them. */
function seedRunningJob(job: WorkerJob, pod: { status?: unknown; containers?: unknown } = {}, jobStatus: unknown = { active: 1, startTime: LONG_AGO }): void {
  const name = job.job.kubernetes_job;
  fake.put(collectionOf('jobs'), { apiVersion: 'batch/v1', kind: 'Job', metadata: { name, namespace: NS }, spec: {}, status: jobStatus });
  fake.put(collectionOf('pods'), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${name}-abcde`, namespace: NS, labels: { 'job-name': name }, creationTimestamp: LONG_AGO },
    spec: {
      containers: pod.containers ?? [
        { name: 'buildenv-sidecar', image: 'u', resources: { limits: { memory: '40Gi' } } },
        { name: 'sshd', image: 's' },
      ],
      initContainers: [{ name: 'build-image', image: 'k', resources: { limits: { memory: '40Gi' } } }],
    },
    status: pod.status ?? { phase: 'Running' },
  });
}

const withStatus = (job: WorkerJob, status: JobStatus): WorkerJob => ({ ...job, job: { ...job.job, status } });
const reasonOf = (p: { state: string; reason?: string }): string => (p.state === 'failed' ? p.reason ?? '' : `(${p.state})`);

describe('advance: noticing a pod that can no longer report', () => {
  test('a Failed Job with an OOMKilled container: failed, saying which container and why', async () => {
    const job = withStatus(workerJob(), 'building_image');
    seedRunningJob(
      job,
      {
        status: {
          phase: 'Failed',
          initContainerStatuses: [
            { name: 'build-image', ready: false, restartCount: 0, image: 'k', imageID: '', state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } },
          ],
        },
      },
      { failed: 1, startTime: LONG_AGO, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }] },
    );
    const progress = await worker().inspect('build', job);
    const reason = reasonOf(progress);
    expect(reason).toContain(`Kubernetes Job ${job.job.kubernetes_job} failed (BackoffLimitExceeded)`);
    expect(reason).toContain('init container build-image was killed for running out of memory (OOMKilled, exit code 137, memory limit 40Gi)');
  });

  test('an OOMKilled main container fails the stage before the Job is marked Failed', async () => {
    const job = withStatus(workerJob(), 'packaging_artifacts');
    seedRunningJob(job, {
      status: {
        phase: 'Running',
        containerStatuses: [
          { name: 'buildenv-sidecar', ready: false, restartCount: 0, image: 'u', imageID: '', state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } },
          { name: 'sshd', ready: true, restartCount: 0, image: 's', imageID: '', state: { running: {} } },
        ],
      },
    });
    expect(reasonOf(await worker().inspect('package', job))).toContain('container buildenv-sidecar was killed for running out of memory');
  });

  test('a container that exits non-zero: its name, code and termination message', async () => {
    const job = withStatus(workerJob(), 'waiting_for_repos');
    seedRunningJob(job, {
      status: {
        phase: 'Failed',
        initContainerStatuses: [
          { name: 'build-ca-rpm', ready: false, restartCount: 0, image: 'u', imageID: '', state: { terminated: { exitCode: 2, reason: 'Error', message: 'rpmbuild: no such file' } } },
        ],
      },
    });
    expect(reasonOf(await worker().inspect('build', job))).toBe('init container build-ca-rpm terminated with exit code 2: rpmbuild: no such file');
  });

  test('an evicted pod', async () => {
    const job = withStatus(workerJob({ job_type: 'customize' }), 'waiting_on_user');
    seedRunningJob(job, { status: { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: ephemeral-storage.' } });
    expect(reasonOf(await worker().inspect('ssh', job))).toContain('was evicted: The node was low on resource: ephemeral-storage.');
  });

  test('a vanished Job', async () => {
    const job = withStatus(workerJob(), 'building_image');
    expect(reasonOf(await worker().inspect('build', job))).toBe(`Kubernetes Job ${job.job.kubernetes_job} no longer exists (deleted outside IMS?)`);
  });

  test('a vanished pod (Job started long ago, no pod left)', async () => {
    const job = withStatus(workerJob(), 'building_image');
    seedRunningJob(job);
    fake.remove(collectionOf('pods'), `${job.job.kubernetes_job}-abcde`);
    expect(reasonOf(await worker().inspect('build', job))).toContain('has vanished');
  });

  test('a completed Job whose final status never arrived: failed after the grace period only', async () => {
    const job = withStatus(workerJob(), 'packaging_artifacts');
    const complete = (at: string) => ({ succeeded: 1, startTime: LONG_AGO, completionTime: at, conditions: [{ type: 'Complete', status: 'True' }] });
    seedRunningJob(job, { status: { phase: 'Succeeded' } }, complete(JUST_NOW));
    expect((await worker().inspect('package', job)).state).toBe('running');
    fake.setStatus(collectionOf('jobs'), job.job.kubernetes_job, complete(LONG_AGO));
    expect(reasonOf(await worker().inspect('package', job))).toContain("completed but the job status is still 'packaging_artifacts'");
  });

  test('only prepare creates anything: the other stages are checked without the check lease', () => {
    const w = worker();
    expect(w.readsOnly('prepare')).toBe(false);
    for (const stage of ['build', 'ssh', 'package'] as const) expect(w.readsOnly(stage)).toBe(true);
  });

  test('advance judges a running stage from the record alone: the cluster is not asked', async () => {
    const job = withStatus(workerJob(), 'building_image');
    seedRunningJob(job);
    fake.requests.length = 0;
    expect(await worker().advance('build', job)).toEqual({ state: 'running' });
    expect(await worker().advance('ssh', withStatus(workerJob({ job_type: 'customize' }), 'waiting_on_user'))).toEqual({ state: 'running' });
    expect(await worker().advance('package', withStatus(workerJob(), 'success'))).toEqual({ state: 'done' });
    expect(fake.requests).toEqual([]);
    // A pod that reported error is read once, for the reason.
    expect(reasonOf(await worker().advance('build', withStatus(job, 'error')))).toMatch(/^the job pod reported error/);
    expect(fake.requests.length).toBeGreaterThan(0);
  });

  test("status error: failed with the failing container's reason", async () => {
    const job = withStatus(workerJob(), 'error');
    seedRunningJob(job, {
      status: {
        phase: 'Failed',
        initContainerStatuses: [
          { name: 'fetch-recipe', ready: false, restartCount: 0, image: 'u', imageID: '', state: { terminated: { exitCode: 1, reason: 'Error', message: 'md5 mismatch' } } },
        ],
      },
    });
    expect(reasonOf(await worker().inspect('build', job))).toBe('the job pod reported error; init container fetch-recipe terminated with exit code 1: md5 mismatch');
  });

  test('status error without a failed container: the bare reason', async () => {
    const job = withStatus(workerJob(), 'error');
    seedRunningJob(job);
    expect(reasonOf(await worker().inspect('package', job))).toBe('the job pod reported error');
  });
});

describe('advance: done and running by the job status', () => {
  const cases: Array<[string, Partial<JobRecord>, 'build' | 'ssh' | 'package', JobStatus, 'done' | 'running']> = [
    ['create', {}, 'build', 'creating', 'running'],
    ['create', {}, 'build', 'fetching_recipe', 'running'],
    ['create', {}, 'build', 'waiting_for_repos', 'running'],
    ['create', {}, 'build', 'building_image', 'running'],
    ['create', {}, 'build', 'packaging_artifacts', 'done'],
    ['create', {}, 'build', 'success', 'done'],
    ['create debug', { enable_debug: true }, 'build', 'waiting_on_user', 'done'],
    ['customize', { job_type: 'customize' }, 'build', 'fetching_image', 'running'],
    ['customize', { job_type: 'customize' }, 'build', 'waiting_on_user', 'done'],
    ['create', {}, 'ssh', 'packaging_artifacts', 'done'],
    ['create debug, build ok', { enable_debug: true }, 'ssh', 'packaging_artifacts', 'done'],
    ['create debug, build failed', { enable_debug: true }, 'ssh', 'waiting_on_user', 'running'],
    ['customize', { job_type: 'customize' }, 'ssh', 'waiting_on_user', 'running'],
    ['customize', { job_type: 'customize' }, 'ssh', 'packaging_artifacts', 'done'],
    ['customize', { job_type: 'customize' }, 'ssh', 'success', 'done'],
    ['create', {}, 'package', 'packaging_artifacts', 'running'],
    ['create', {}, 'package', 'success', 'done'],
    ['customize', { job_type: 'customize' }, 'package', 'success', 'done'],
  ];
  test.each(cases)('%s %j: %s at %s → %s', async (_label, overrides, stage, status, expected) => {
    const job = withStatus(workerJob(overrides), status);
    seedRunningJob(job);
    expect((await worker().inspect(stage, job)).state).toBe(expected);
  });

  test('ssh on a create job without debug is done at once, without asking Kubernetes', async () => {
    const job = withStatus(workerJob(), 'building_image');
    expect(await worker().inspect('ssh', job)).toEqual({ state: 'done' });
    expect(fake.requests).toEqual([]);
  });

  test('create debug shell after a failed build: an error ends the ssh stage as failed', async () => {
    const job = withStatus(workerJob({ enable_debug: true }), 'error');
    seedRunningJob(job);
    expect((await worker().inspect('ssh', job)).state).toBe('failed');
  });

  test('waiting for the user: the detail names the SSH endpoints from the record', async () => {
    const job = withStatus(workerJob({ job_type: 'customize' }), 'waiting_on_user');
    seedRunningJob(job);
    const progress = await worker().inspect('ssh', job);
    expect(progress.state).toBe('running');
    const detail = progress.state === 'running' ? progress.detail : '';
    expect(detail).toContain(`customer_access ssh -p 22 root@${job.job.id}.ims.cmn.shasta.local`);
    expect(detail).toContain(`cluster.local ssh -p 22 root@${job.job.kubernetes_service}.${NS}.svc.cluster.local`);
  });

  test('a container stuck pulling its image shows in the detail, the stage keeps running', async () => {
    const job = withStatus(workerJob(), 'creating');
    seedRunningJob(job, {
      status: {
        phase: 'Pending',
        initContainerStatuses: [
          { name: 'fetch-recipe', ready: false, restartCount: 0, image: 'u', imageID: '', state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } } },
        ],
      },
    });
    const progress = await worker().inspect('build', job);
    expect(progress).toMatchObject({ state: 'running', detail: expect.stringContaining('fetch-recipe waiting (ImagePullBackOff: Back-off pulling image)') });
  });

  test('an unreadable Job keeps the stage running (the stage time limit decides)', async () => {
    const job = withStatus(workerJob(), 'building_image');
    seedRunningJob(job);
    fake.failNext({ method: 'GET', path: `${collectionOf('jobs')}/${job.job.kubernetes_job}`, status: 503, reason: 'ServiceUnavailable' });
    expect(await worker().inspect('build', job)).toMatchObject({ state: 'running', detail: expect.stringContaining('HTTP 503 ServiceUnavailable') });
  });
});

describe('collect', () => {
  test('the image the pod registered', async () => {
    const imageId = randomUUID();
    expect(await worker().collect(workerJob({ status: 'success', resultant_image_id: imageId }))).toEqual({ kind: 'registered', imageId });
  });

  test('no resultant_image_id: a clear error', async () => {
    const job = workerJob({ status: 'packaging_artifacts' });
    await expect(worker().collect(job)).rejects.toThrow(`IMS job ${job.job.id} has no resultant_image_id`);
  });
});

describe('cleanup', () => {
  async function prepared(overrides: Partial<JobRecord> = {}): Promise<WorkerJob> {
    const job = workerJob(overrides);
    expect((await worker().advance('prepare', job)).state).toBe('done');
    fake.requests.length = 0;
    return job;
  }

  test.each(['success', 'error'] as const)('%s: Service, PVC and DestinationRule go; Job and ConfigMap stay for the logs', async (outcome) => {
    const job = await prepared();
    await worker().cleanup(job, outcome);
    expect(fake.deletes().map((r) => r.path)).toEqual([
      `${collectionOf('services')}/${job.job.kubernetes_service}`,
      `${collectionOf('pvcs')}/${job.job.kubernetes_pvc}`,
      `${collectionOf('destinationRules')}/${job.job.kubernetes_service}`,
    ]);
    expect(fake.names(collectionOf('jobs'))).toEqual([job.job.kubernetes_job]);
    expect(fake.names(collectionOf('configmaps'))).toEqual([job.job.kubernetes_configmap]);
    expect(fake.names(collectionOf('services'))).toEqual([]);
    expect(fake.names(collectionOf('pvcs'))).toEqual([]);
    expect(fake.names(collectionOf('destinationRules'))).toEqual([]);
  });

  test('deleted: everything, in the original order, the Job with background propagation', async () => {
    const job = await prepared();
    job.job.kubernetes_secret = `cray-ims-${job.job.id}-signing-keys`;
    fake.put(collections.secrets(NS), { apiVersion: 'v1', kind: 'Secret', metadata: { name: job.job.kubernetes_secret } });
    await worker().cleanup(job, 'deleted');
    expect(fake.deletes().map((r) => r.path)).toEqual([
      `${collectionOf('pvcs')}/${job.job.kubernetes_pvc}`,
      `${collectionOf('services')}/${job.job.kubernetes_service}`,
      `${collectionOf('jobs')}/${job.job.kubernetes_job}`,
      `${collectionOf('configmaps')}/${job.job.kubernetes_configmap}`,
      `${collectionOf('secrets')}/${job.job.kubernetes_secret}`,
      `${collectionOf('destinationRules')}/${job.job.kubernetes_service}`,
    ]);
    expect(fake.deletes()[2]!.query).toMatchObject({ propagationPolicy: 'Background' });
    for (const resource of [...CREATE_ORDER, 'secrets'] as const) expect(fake.names(collectionOf(resource))).toEqual([]);
  });

  test("deleted: a create job's copy of the keys goes though the record names none; a customize job has none", async () => {
    const job = await prepared();
    await worker().cleanup(job, 'deleted');
    expect(fake.deletes().filter((r) => r.path.includes('/secrets/')).map((r) => r.path)).toEqual([`${collectionOf('secrets')}/${keysName(job)}`]);
    expect(fake.names(collectionOf('secrets'))).toEqual([]);
    const customize = await prepared({ job_type: 'customize' });
    await worker().cleanup(customize, 'deleted');
    expect(fake.deletes().some((r) => r.path.includes('/secrets/'))).toBe(false);
    expect(fake.deletes()).toHaveLength(5);
  });

  test('absent objects are fine (cleanup twice, or after a cleanup on success)', async () => {
    const job = await prepared();
    await worker().cleanup(job, 'success');
    await expect(worker().cleanup(job, 'success')).resolves.toBeUndefined();
    await expect(worker().cleanup(job, 'deleted')).resolves.toBeUndefined();
    expect(fake.names(collectionOf('jobs'))).toEqual([]);
  });

  test('other failures are collected: one error listing each object, the rest still deleted', async () => {
    const job = await prepared();
    fake.failNext({ method: 'DELETE', path: `${collectionOf('services')}/${job.job.kubernetes_service}`, status: 500, reason: 'InternalError', message: 'etcd unavailable' });
    fake.failNext({ method: 'DELETE', path: `${collectionOf('jobs')}/${job.job.kubernetes_job}`, status: 403, reason: 'Forbidden', message: 'no delete for you' });
    const error = await worker()
      .cleanup(job, 'deleted')
      .then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(KubernetesCleanupError);
    expect((error as KubernetesCleanupError).errors).toEqual([
      `Service ${job.job.kubernetes_service}: HTTP 500 InternalError: etcd unavailable`,
      `Job ${job.job.kubernetes_job}: HTTP 403 Forbidden: no delete for you`,
    ]);
    expect(fake.names(collectionOf('pvcs'))).toEqual([]);
    expect(fake.names(collectionOf('configmaps'))).toEqual([]);
    expect(fake.names(collectionOf('services'))).toEqual([job.job.kubernetes_service]);
  });
});

describe('the kubeconfig secret', () => {
  test('a rotated kubeconfig is used from the next call on, in the same container', async () => {
    const rotated = await FakeKubeApi.start({ validate: validateWithKubernetesModels });
    try {
      // What the secrets cache answers: the first cluster's kubeconfig, then (rotated) the second's.
      let kubeconfig = fake.kubeConfig().exportConfig();
      const worker = await createKubernetesWorker({ env: {} } as WorkerDeps, async () => kubeconfig);
      const job = workerJob();
      await worker.cleanup(job, 'deleted');
      expect(fake.deletes().length).toBeGreaterThan(0);
      expect(rotated.requests).toEqual([]);
      fake.requests.length = 0;
      kubeconfig = rotated.kubeConfig().exportConfig();
      await worker.cleanup(job, 'deleted');
      expect(rotated.deletes().length).toBeGreaterThan(0);
      expect(fake.requests).toEqual([]);
    } finally {
      await rotated.stop();
    }
  });
});

describe('the shipped Role (deploy/kubernetes/ims-job-worker-rbac.yaml)', () => {
  test('grants exactly what the worker needs: namespaces, verbs, resources and names', async () => {
    const rbac = rbacFromManifest(await readFile(SHIPPED_RBAC_MANIFEST, 'utf8'));
    expect(rbac.user).toBe('system:serviceaccount:ims:ims-job-worker');
    const flat = (ns: string) => rbac.rules[ns]!.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${r.verbs.join(',')} ${g || 'core'}/${res}${r.resourceNames ? `[${r.resourceNames.join(',')}]` : ''}`)));
    expect(Object.keys(rbac.rules).sort()).toEqual(['ims', 'services']);
    expect(flat('ims')).toEqual([
      'create,delete core/configmaps',
      'create,delete core/services',
      'create,delete core/persistentvolumeclaims',
      'create,delete,get batch/jobs',
      'create,delete networking.istio.io/destinationrules',
      'list core/pods',
      'create,delete core/secrets',
      'get,update core/secrets[ims-s3-credentials]',
    ]);
    expect(flat('services')).toEqual(['get core/secrets[hpe-signing-key]']);
  });

  test('a call outside the Role answers 403 Forbidden, and fails the test', async () => {
    // The keys in a namespace the Role does not reach: the server refuses the read, as RBAC would.
    const progress = await worker({ signingKeysSource: { namespace: 'kube-system', name: 'keys' } }).advance('prepare', workerJob());
    expect(progress).toMatchObject({
      state: 'failed',
      reason: expect.stringContaining('HTTP 403 Forbidden: secrets "keys" is forbidden: User "system:serviceaccount:ims:ims-job-worker" cannot get resource "secrets" in API group "" in the namespace "kube-system"'),
    });
    expect(fake.forbidden).toEqual(['get secrets/keys in kube-system']);
    // What this file's afterEach does: it fails the test.
    expect(() => fake.assertWithinRole()).toThrow(/calls outside the worker's Role .*get secrets\/keys in kube-system/);
    fake.forbidden.length = 0;
  });

  test('a Role without the DestinationRule grant: prepare fails at it, and the call is reported', async () => {
    const shipped = await readFile(SHIPPED_RBAC_MANIFEST, 'utf8');
    const narrowed = shipped.replace(/  - apiGroups: \[networking\.istio\.io\]\n    resources: \[destinationrules\]\n    verbs: \[create, delete\]\n/, '');
    expect(narrowed).not.toBe(shipped);
    const narrow = await FakeKubeApi.start({ validate: validateWithKubernetesModels, rbac: rbacFromManifest(narrowed) });
    try {
      narrow.putSigningKeys();
      const job = workerJob();
      const progress = await new KubernetesWorker({ ...settings(), kube: { kind: 'given', config: narrow.kubeConfig() } }).advance('prepare', job);
      expect(progress).toMatchObject({ state: 'failed', reason: expect.stringContaining(`could not create DestinationRule ${job.job.kubernetes_service} in namespace ims: HTTP 403 Forbidden`) });
      expect(narrow.forbidden).toEqual(['create destinationrules in ims']);
      expect(() => narrow.assertWithinRole()).toThrow(/create destinationrules in ims/);
    } finally {
      await narrow.stop();
    }
  });
});

describe('the fake API server validates', () => {
  test('an invalid object is refused with 422 and recorded', async () => {
    expect(() => validateWithKubernetesModels('jobs', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'x' }, spec: { backoffLimit: 'none' } })).toThrow(
      /backoffLimit/,
    );
    expect(() => validateWithKubernetesModels('destinationrules', { apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'x' }, spec: {} })).toThrow(
      /spec.host/,
    );
    expect(() => validateWithKubernetesModels('widgets', { metadata: { name: 'x' } })).toThrow(/no schema/);
    const bad = await fetch(`${fake.url}${collectionOf('configmaps')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { n: 1 } }),
    });
    expect(bad.status).toBe(422);
    expect(fake.rejected).toHaveLength(1);
    fake.rejected.length = 0; // asserted above; keep the afterEach check for the worker's objects
  });
});
