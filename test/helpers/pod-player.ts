/**
 * Plays the pod of each batch/v1 Job the fake Kubernetes API receives, from the Job's own spec,
 * making the calls the original's job pod makes (reference: the IMS job workflow, §1-§4):
 *
 * - as the Job controller and the scheduler: a Pod labelled `job-name`, Running once the Job's PVC
 *   exists (a pod waits for its claim), then Succeeded (or Failed);
 * - its containers' environment, read from the spec: plain values, and `secretKeyRef`s resolved
 *   against the Secret stored in the fake (`ims-s3-credentials`); a missing key that is not
 *   optional fails the pod as the kubelet would (CreateContainerConfigError);
 * - over HTTP, at the IMS base URL the containers get (`IMS_URL`, else the helper's
 *   `https://$API_GATEWAY_HOSTNAME/apis/ims`): the status PATCHes in the original's order, the
 *   download of the pre-signed URL of the recipe or rootfs with its MD5 checked, then
 *   ims-python-helper's `image_upload_artifacts`: POST /images, artifacts to S3 with the Secret's
 *   key and endpoint (PUT + HEAD each, `md5sum` and `x-shasta-ims-*` metadata), manifest.json
 *   v1.0 (PUT + HEAD), PATCH /images/{id} link, PATCH /jobs/{id} resultant_image_id, status success.
 *
 * Every call is recorded per job. A failing call makes the pod report `error` and fail, as the
 * sidecar does.
 */
import { createHash } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { collections, type FakeKubeApi, type KubeObject } from './fake-kube-api.js';
import { sleep } from './until.js';

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } };
type Container = { name: string; command?: string[]; env?: EnvVar[] };
type PodSpec = { initContainers?: Container[]; containers: Container[]; volumes?: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }> };

export interface PlayedPod {
  job: string;
  namespace: string;
  /** `METHOD /path` of each IMS call, `S3 PUT|HEAD bucket/key` of each S3 call, `GET <download>` for the download. */
  calls: string[];
  /** The IMS base URL the pod used. */
  baseUrl: string;
  outcome?: 'succeeded' | 'failed';
  reason?: string;
  imageId?: string;
  done: Promise<void>;
}

export interface PodPlayerOptions {
  /** Bytes of the artifacts the pod "builds" (default: small text per artifact). */
  artifact?: (name: string, jobId: string) => string;
  /** Pause between stages, so the workflow sees each status (ms, default 30). */
  stepMs?: number;
}

const ARTIFACT_TYPES: Record<string, string> = {
  rootfs: 'application/vnd.cray.image.rootfs.squashfs',
  kernel: 'application/vnd.cray.image.kernel',
  initrd: 'application/vnd.cray.image.initrd',
  boot_parameters: 'application/vnd.cray.image.parameters.boot',
};

const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** The manifest's `created`, as Python prints a naive datetime. */
const pythonNow = (): string => new Date().toISOString().replace('T', ' ').replace('Z', '000');

export class PodPlayer {
  readonly pods: PlayedPod[] = [];

  private constructor(
    private readonly fake: FakeKubeApi,
    private readonly options: PodPlayerOptions,
  ) {}

  /** Plays every Job the fake receives from now on. */
  static attach(fake: FakeKubeApi, options: PodPlayerOptions = {}): PodPlayer {
    const player = new PodPlayer(fake, options);
    fake.onCreate(({ resource, object }) => {
      if (resource === 'jobs' && object.apiVersion === 'batch/v1') player.play(object);
    });
    return player;
  }

  /** The pod played for a Kubernetes Job name. */
  pod(jobName: string): PlayedPod | undefined {
    return this.pods.find((p) => p.job === jobName);
  }

  private play(job: KubeObject): void {
    const namespace = job.metadata!.namespace!;
    const played: PlayedPod = { job: job.metadata!.name!, namespace, calls: [], baseUrl: '', done: Promise.resolve() };
    played.done = this.run(job, played).then(
      () => {
        played.outcome = 'succeeded';
      },
      (error: unknown) => {
        played.outcome = 'failed';
        played.reason = error instanceof Error ? error.message : String(error);
      },
    );
    this.pods.push(played);
  }

  /** The container's environment as the kubelet would set it; throws like CreateContainerConfigError. */
  private environment(container: Container, namespace: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const variable of container.env ?? []) {
      const ref = variable.valueFrom?.secretKeyRef;
      if (!ref) {
        env[variable.name] = variable.value ?? '';
        continue;
      }
      const secret = this.fake.get(collections.secrets(namespace), ref.name);
      const encoded = (secret?.data as Record<string, string> | undefined)?.[ref.key];
      if (encoded === undefined) {
        if (ref.optional) continue;
        throw new Error(`CreateContainerConfigError: container ${container.name}: ${secret ? `couldn't find key ${ref.key} in Secret ${namespace}/${ref.name}` : `secret "${ref.name}" not found`}`);
      }
      env[variable.name] = Buffer.from(encoded, 'base64').toString('utf8');
    }
    return env;
  }

  private setPhase(played: PlayedPod, phase: 'Running' | 'Succeeded' | 'Failed'): void {
    const { namespace, job } = played;
    const now = new Date().toISOString();
    this.fake.put(collections.pods(namespace), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${job}-p0d5`, namespace, labels: { 'job-name': job }, creationTimestamp: now },
      spec: { containers: [{ name: 'buildenv-sidecar', image: 'ims-utils' }] },
      status: { phase },
    });
    const current = this.fake.get(collections.jobs(namespace), job);
    if (!current) return;
    const status =
      phase === 'Running'
        ? { active: 1, startTime: now }
        : phase === 'Succeeded'
          ? { succeeded: 1, startTime: now, completionTime: now, conditions: [{ type: 'Complete', status: 'True' }] }
          : { failed: 1, startTime: now, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] };
    this.fake.setStatus(collections.jobs(namespace), job, status);
  }

  private async run(job: KubeObject, played: PlayedPod): Promise<void> {
    const spec = (job.spec as { template: { spec: PodSpec } }).template.spec;
    const { namespace } = played;
    // Pending until the claim exists (the worker creates the PVC after the Job).
    const claim = spec.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName;
    for (let i = 0; claim && !this.fake.get(collections.pvcs(namespace), claim); i++) {
      if (i > 500) throw new Error(`PersistentVolumeClaim ${claim} never appeared`);
      await sleep(10);
    }
    const init = spec.initContainers ?? [];
    const sidecarSpec = spec.containers.find((c) => c.name === 'buildenv-sidecar');
    if (!sidecarSpec) throw new Error('the Job has no buildenv-sidecar container');
    const fetcher = init.find((c) => c.name === 'fetch-recipe' || c.name === 'prepare');
    if (!fetcher) throw new Error('the Job has no fetch-recipe or prepare init container');
    let sidecar: Record<string, string>;
    let fetchEnv: Record<string, string>;
    try {
      fetchEnv = this.environment(fetcher, namespace);
      sidecar = this.environment(sidecarSpec, namespace);
    } catch (error) {
      this.setPhase(played, 'Failed');
      throw error;
    }
    this.setPhase(played, 'Running');
    const jobId = sidecar.IMS_JOB_ID!;
    played.baseUrl = sidecar.IMS_URL || `https://${sidecar.API_GATEWAY_HOSTNAME}/apis/ims`;
    const ims = async (method: string, path: string, body?: unknown): Promise<any> => {
      played.calls.push(`${method} ${path}`);
      const res = await fetch(`${played.baseUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json', 'user-agent': 'ims-python-helper/3.3.0', authorization: 'Bearer job-pod-token' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    };
    const status = (value: string) => ims('PATCH', `/jobs/${jobId}`, { status: value });
    const step = () => sleep(this.options.stepMs ?? 30);

    try {
      const customize = sidecar.IMS_ACTION === 'customize';
      // fetch-recipe / prepare: the pre-signed URL is the last argument of its command.
      await status(customize ? 'fetching_image' : 'fetching_recipe');
      const url = fetcher.command?.at(-1) ?? '';
      played.calls.push(`GET ${new URL(url).pathname}`);
      const download = await fetch(url);
      if (!download.ok) throw new Error(`download of ${new URL(url).pathname}: HTTP ${download.status}`);
      const bytes = Buffer.from(await download.arrayBuffer());
      if (fetchEnv.DOWNLOAD_MD5SUM && md5(bytes) !== fetchEnv.DOWNLOAD_MD5SUM) throw new Error('The calculated md5sum does not match the expected value.');
      await step();
      if (customize) {
        await status('waiting_on_user');
        await step();
      } else {
        await status('waiting_for_repos');
        await step();
        await status('building_image');
        await step();
      }
      await status('packaging_artifacts');
      played.imageId = await this.uploadArtifacts(sidecar, jobId, ims, played);
      await status('success');
    } catch (error) {
      await status('error').catch(() => undefined);
      this.setPhase(played, 'Failed');
      throw error;
    }
    this.setPhase(played, 'Succeeded');
  }

  /** ims-python-helper's image_upload_artifacts, with the S3 key and endpoint of ims-s3-credentials. */
  private async uploadArtifacts(
    env: Record<string, string>,
    jobId: string,
    ims: (method: string, path: string, body?: unknown) => Promise<any>,
    played: PlayedPod,
  ): Promise<string> {
    const name = env.IMAGE_ROOT_ARCHIVE_NAME!;
    const bucket = env.S3_BUCKET!;
    const s3 = new S3Client({
      endpoint: env.S3_ENDPOINT,
      region: env.AWS_DEFAULT_REGION || 'us-east-1',
      credentials: { accessKeyId: env.S3_ACCESS_KEY!, secretAccessKey: env.S3_SECRET_KEY! },
      forcePathStyle: true,
    });
    try {
      const image = await ims('POST', '/images', { name, arch: env.BUILD_ARCH || 'x86_64' });
      const imageId = image.id as string;
      const upload = async (key: string, body: string, metadata: Record<string, string>) => {
        played.calls.push(`S3 PUT ${bucket}/${key}`);
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
        played.calls.push(`S3 HEAD ${bucket}/${key}`);
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return (head.ETag ?? '').replaceAll('"', '');
      };
      const artifacts = [];
      for (const [artifact, type] of Object.entries(ARTIFACT_TYPES)) {
        const body = this.options.artifact?.(artifact, jobId) ?? `${artifact} of ${name} built by job ${jobId}`;
        const sum = md5(body);
        const etag = await upload(`${imageId}/${artifact}`, body, {
          md5sum: sum,
          'x-shasta-ims-image-name': name,
          'x-shasta-ims-image-id': imageId,
          'x-shasta-ims-job-id': jobId,
        });
        artifacts.push({ link: { etag, path: `s3://${bucket}/${imageId}/${artifact}`, type: 's3' }, md5: sum, type });
      }
      const manifest = JSON.stringify({ artifacts, created: pythonNow(), version: '1.0' }, null, 4);
      const manifestEtag = await upload(`${imageId}/manifest.json`, manifest, { md5sum: md5(manifest) });
      await ims('PATCH', `/images/${imageId}`, { link: { path: `s3://${bucket}/${imageId}/manifest.json`, etag: manifestEtag, type: 's3' } });
      await ims('PATCH', `/jobs/${jobId}`, { resultant_image_id: imageId });
      return imageId;
    } finally {
      s3.destroy();
    }
  }
}
