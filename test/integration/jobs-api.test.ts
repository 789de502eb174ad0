/**
 * The jobs API contract through HTTP (ims-api-behaviour.md §9, §1, §12 items 10, 12, 13, 17, 20):
 * POST validation and its order of checks, artifact resolution against real objects in the
 * embedded S3, the 24-key record and its derived fields, GET, the PATCH calls job pods make
 * (ims-job-workflow.md §8), DELETE of one job and the filtered collection DELETE, and the v3
 * history. Jobs run on a "parked" worker that never gets anywhere, so records stay `creating`
 * while they are inspected; its cleanup() records the calls DELETE makes.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { buildContext } from '#shared/wiring.js';
import { readSettings } from '#shared/config.js';
import { formatTimestamp } from '#shared/domain/time.js';
import { updateJobState, withHistory, type JobState } from '#shared/domain/job-state.js';
import type { CollectedArtifacts, StageProgress, Worker, WorkerJob } from '#shared/domain/worker-port.js';
import { allHistory, HISTORY_INLINE_MAX } from '#shared/domain/job-history.js';
import { startTestService, type TestResponse, type TestService } from '../helpers/service.js';
import { startS3Proxy } from '../helpers/s3-proxy.js';
import { S3ArtifactStore } from '#shared/artifacts/s3-artifact-store.js';
import {
  TIMESTAMP_RE,
  URL_NOT_FOUND,
  UUID_RE,
  expectNoContent,
  expectNoInput,
  expectNotFound,
  expectProblem,
  expectSchemaErrors,
} from '../helpers/problems.js';
import { BOOT, ROOTFS, cannotValidate, pyRepr, removeObject, uploadImage, type UploadedImage } from '../helpers/image-fixtures.js';

/** A worker that never finishes a stage and never reports a status: jobs stay `creating`. */
class ParkedWorker implements Worker {
  readonly advanced: { jobId: string; stage: string }[] = [];
  readonly cleanups: { jobId: string; outcome: string }[] = [];

  constructor(readonly name: string) {}

  async advance(stage: 'prepare' | 'build' | 'ssh' | 'package', job: WorkerJob): Promise<StageProgress> {
    this.advanced.push({ jobId: job.job.id, stage });
    return { state: 'running' };
  }

  async collect(): Promise<CollectedArtifacts> {
    throw new Error('a parked job never gets to package');
  }

  async cleanup(job: WorkerJob, outcome: 'success' | 'error' | 'deleted'): Promise<void> {
    this.cleanups.push({ jobId: job.job.id, outcome });
  }
}

/** Same, but its cleanup fails the way a Kubernetes API error would. */
class BrokenCleanupWorker extends ParkedWorker {
  override async cleanup(job: WorkerJob, outcome: 'success' | 'error' | 'deleted'): Promise<void> {
    await super.cleanup(job, outcome);
    throw new Error(`(500) Reason: Internal Server Error deleting service cray-ims-${job.job.id}-service`);
  }
}

const parked = new ParkedWorker('parked');
const broken = new BrokenCleanupWorker('parked-broken');

const ENV_DEFAULTS = [
  'IMS_JOB_WORKER',
  'DEFAULT_IMS_IMAGE_SIZE',
  'DEFAULT_IMS_JOB_MEM_SIZE',
  'DEFAULT_IMS_JOB_NAMESPACE',
  'JOB_CUSTOMER_ACCESS_SUBNET_NAME',
  'JOB_CUSTOMER_ACCESS_NETWORK_DOMAIN',
  'JOB_ENABLE_DKMS',
];
const savedEnv: Record<string, string | undefined> = {};

let svc: TestService;
let keyId: string;
/** kiwi-ng recipes with archives in S3: x86_64 (require_dkms false), x86_64 (require_dkms true), aarch64. */
let recipe: any;
let dkmsRecipe: any;
let armRecipe: any;
/** Images with a manifest, rootfs, kernel and initrd in S3. */
let image: any;
let armImage: any;

beforeAll(async () => {
  for (const name of ENV_DEFAULTS) {
    savedEnv[name] = process.env[name];
    delete process.env[name];
  }
  process.env.IMS_JOB_WORKER = 'parked';
  // One poll when the job starts, then a long wait: the workflow leaves the records alone.
  // Records where other processes reach them: one test races the API with store clients of their own.
  svc = await startTestService({ reconcileMs: 600_000, recordStore: 'dynalite', workers: { parked: () => parked, 'parked-broken': () => broken } });
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'jobs', public_key: 'ssh-ed25519 AAAAC3Nza jobs@test' })).body.id;
  recipe = await newRecipe({ require_dkms: false });
  dkmsRecipe = await newRecipe(); // recipes default to require_dkms true (§5.2)
  armRecipe = await newRecipe({ arch: 'aarch64' });
  image = (await newImage()).record;
  armImage = (await newImage({ arch: 'aarch64' })).record;
});

afterAll(async () => {
  await svc.stop();
  for (const name of ENV_DEFAULTS) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
});

// ------------------------------------------------------------------------------------------------
// Helpers

const RECORD_KEYS = [
  'arch',
  'artifact_id',
  'build_env_size',
  'created',
  'enable_debug',
  'id',
  'image_root_archive_name',
  'initrd_file_name',
  'job_mem_size',
  'job_type',
  'kernel_file_name',
  'kernel_parameters_file_name',
  'kubernetes_configmap',
  'kubernetes_job',
  'kubernetes_namespace',
  'kubernetes_pvc',
  'kubernetes_secret',
  'kubernetes_service',
  'public_key_id',
  'remote_build_node',
  'require_dkms',
  'resultant_image_id',
  'ssh_containers',
  'status',
];
const STATUSES = [
  'creating',
  'fetching_image',
  'fetching_recipe',
  'waiting_for_repos',
  'building_image',
  'packaging_artifacts',
  'waiting_on_user',
  'error',
  'success',
];
const REQUIRED = 'Missing data for required field.';
const UNKNOWN = 'Unknown field.';
const DETERMINE = 'Determine the specific information that is missing or invalid and then re-run the request with valid information.';
const PLEASE = 'Please determine the specific information that is missing or invalid and then re-run the request with valid information.';
const REVIEW = 'Review the errors, take any corrective action and then re-run the request with valid information.';
const STATUS_ENUM =
  'Job state must be one of: creating, fetching_image, fetching_recipe, waiting_for_repos, building_image, packaging_artifacts, waiting_on_user, error, success.';

const noRecipe = (id: string) => `Invalid artifact_id value in job request. No IMS recipe record found matching id=${id}. ${DETERMINE}`;
const noImage = (id: string) => `Invalid artifact_id value in job request. No IMS image record found matching id=${id}. ${DETERMINE}`;
const noKey = (id: string) => `Invalid public_key_id value in job request. No IMS public-key record found matching id=${id}`;
const badVersion = (id: string) =>
  `The manifest.json file is corrupt or invalid for IMS image_id=${id}. Could not determine the manifest version or manifest version is unsupported. ${DETERMINE}`;

async function newRecipe(extra: Record<string, unknown> = {}): Promise<any> {
  const key = `recipes/${randomUUID()}/recipe.tgz`;
  await svc.putObject('ims', key, `recipe archive ${key}`, { md5sum: 'c0ffee' });
  const res = await svc.request('POST', '/v3/recipes', {
    name: `recipe-${key.slice(8, 16)}`,
    recipe_type: 'kiwi-ng',
    linux_distribution: 'sles15',
    link: { path: `s3://ims/${key}`, type: 's3' },
    ...extra,
  });
  expect(res.status).toBe(201);
  return { ...res.body, key };
}

async function newImage(extra: Record<string, unknown> = {}): Promise<{ record: any; uploaded: UploadedImage }> {
  const uploaded = await uploadImage(svc);
  const res = await svc.request('POST', '/v3/images', { name: `image-${uploaded.prefix}`, link: uploaded.link, ...extra });
  expect(res.status).toBe(201);
  return { record: res.body, uploaded };
}

/** An image whose manifest.json is replaced, behind IMS's back, by `manifest` (any JSON value). */
async function imageWithManifest(manifest: unknown): Promise<any> {
  const { record, uploaded } = await newImage();
  await svc.putObject(BOOT, uploaded.manifestKey, JSON.stringify(manifest));
  return record;
}

function body(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { job_type: 'create', artifact_id: recipe.id, public_key_id: keyId, image_root_archive_name: 'my-image', ...extra };
}

const postJob = (extra: Record<string, unknown> = {}, prefix = '/v3') => svc.request('POST', `${prefix}/jobs`, body(extra));

async function createJob(extra: Record<string, unknown> = {}, prefix = '/v3'): Promise<any> {
  const res = await postJob(extra, prefix);
  expect(res.status).toBe(201);
  return res.body;
}

const customize = (extra: Record<string, unknown> = {}) => body({ job_type: 'customize', artifact_id: image.id, ...extra });

async function listIds(): Promise<string[]> {
  const res = await svc.request('GET', '/v3/jobs');
  expect(res.status).toBe(200);
  return res.body.map((j: { id: string }) => j.id);
}

async function exists(id: string): Promise<boolean> {
  const res = await svc.request('GET', `/v3/jobs/${id}`);
  expect([200, 404]).toContain(res.status);
  return res.status === 200;
}

/** Rewrites the stored job state (retrying when the workflow wrote in between). */
async function editStored(id: string, change: (state: JobState) => JobState): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const stored = await svc.app.store.get<JobState>('job', id);
    expect(stored).toBeDefined();
    if (await svc.app.store.update('job', id, stored!.version, change(stored!.record), 'live')) return;
  }
  throw new Error(`job ${id} kept changing`);
}

/** A job created `minutesAgo` minutes ago, as far as its record says. */
async function jobAged(minutesAgo: number, extra: Record<string, unknown> = {}): Promise<any> {
  const job = await createJob(extra);
  const created = formatTimestamp(BigInt(Date.now() - minutesAgo * 60_000) * 1000n + 123n);
  await editStored(job.id, (s) => ({ ...s, job: { ...s.job, created } }));
  const aged = (await svc.request('GET', `/v3/jobs/${job.id}`)).body;
  expect(aged).toEqual({ ...job, created });
  return aged;
}

async function patchStatus(id: string, status: string): Promise<void> {
  const res = await svc.request('PATCH', `/v3/jobs/${id}`, { status });
  expect({ status: res.status, jobStatus: res.body.status }).toEqual({ status: 200, jobStatus: status });
}

function connectionInfo(id: string) {
  return {
    customer_access: { host: `${id}.ims.cmn.shasta.local`, port: 22 },
    'cluster.local': { host: `cray-ims-${id}-service.ims.svc.cluster.local`, port: 22 },
  };
}

function expectServerError(res: TestResponse, detail: string): void {
  expect(res.status).toBe(500);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status: 500, title: 'Internal Server Error', detail });
  expect(Array.isArray(res.body.errors)).toBe(true);
  expect(res.body.errors.length).toBeGreaterThan(0);
  for (const e of res.body.errors) expect(typeof e).toBe('string');
}

async function waitFor<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await what();
    if (ok(value) || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ------------------------------------------------------------------------------------------------

describe('POST /jobs: schema validation (§9.2, 422)', () => {
  test('a falsy body is the no-input 400; a non-empty array is a 422 "Invalid input type."', async () => {
    expectNoInput(await svc.request('POST', '/v3/jobs', {}));
    expectNoInput(await svc.request('POST', '/v3/jobs', []));
    expectSchemaErrors(await svc.request('POST', '/v3/jobs', [body()]), { _schema: ['Invalid input type.'] });
  });

  test('job_type, artifact_id, public_key_id and image_root_archive_name are required', async () => {
    expectSchemaErrors(await svc.request('POST', '/v3/jobs', { enable_debug: true }), {
      job_type: [REQUIRED],
      artifact_id: [REQUIRED],
      public_key_id: [REQUIRED],
      image_root_archive_name: [REQUIRED],
    });
  });

  test('job_type must be create or customize, case-sensitively', async () => {
    for (const job_type of ['build', 'CREATE', 'Customize', '']) {
      expectSchemaErrors(await postJob({ job_type }), { job_type: ['Job type must be one of: create, customize.'] });
    }
    expectSchemaErrors(await postJob({ job_type: 1 }), { job_type: ['Not a valid string.'] });
    expectSchemaErrors(await postJob({ job_type: null }), { job_type: ['Field may not be null.'] });
  });

  test('artifact_id and public_key_id must be UUIDs', async () => {
    expectSchemaErrors(await postJob({ artifact_id: 'recipe-1', public_key_id: 12 }), {
      artifact_id: ['Not a valid UUID.'],
      public_key_id: ['Not a valid UUID.'],
    });
    expectSchemaErrors(await postJob({ artifact_id: `${recipe.id}0` }), { artifact_id: ['Not a valid UUID.'] });
  });

  test('a UUID in another form Python accepts is resolved and echoed canonical', async () => {
    const job = await createJob({ artifact_id: recipe.id.toUpperCase(), public_key_id: `{${keyId.replaceAll('-', '')}}` });
    expect(job.artifact_id).toBe(recipe.id);
    expect(job.public_key_id).toBe(keyId);
  });

  test('image_root_archive_name may not be blank; initrd and kernel-parameters names neither', async () => {
    expectSchemaErrors(await postJob({ image_root_archive_name: '' }), {
      image_root_archive_name: ['image_root_archive_name field must not be blank'],
    });
    expectSchemaErrors(await postJob({ initrd_file_name: '', kernel_parameters_file_name: '' }), {
      initrd_file_name: ['initrd_file_name field must not be blank'],
      kernel_parameters_file_name: ['kernel_parameters_file_name field must not be blank'],
    });
  });

  test('build_env_size and job_mem_size are at least 1, both with the build_env_size text (sic)', async () => {
    expectSchemaErrors(await postJob({ build_env_size: 0, job_mem_size: -3 }), {
      build_env_size: ['build_env_size must be greater than or equal to 1'],
      job_mem_size: ['build_env_size must be greater than or equal to 1'],
    });
    expectSchemaErrors(await postJob({ job_mem_size: 0 }), { job_mem_size: ['build_env_size must be greater than or equal to 1'] });
  });

  test('integers are lenient: "7" is 7 and 2.7 is 2; booleans, "7.5" and words are not integers', async () => {
    const job = await createJob({ build_env_size: '7', job_mem_size: 2.7 });
    expect({ build_env_size: job.build_env_size, job_mem_size: job.job_mem_size }).toEqual({ build_env_size: 7, job_mem_size: 2 });
    expectSchemaErrors(await postJob({ build_env_size: '7.5', job_mem_size: true }), {
      build_env_size: ['Not a valid integer.'],
      job_mem_size: ['Not a valid integer.'],
    });
    expectSchemaErrors(await postJob({ build_env_size: 'big' }), { build_env_size: ['Not a valid integer.'] });
  });

  test('booleans are lenient: "yes", "t", 1, "off", "N" ...; anything else is not a boolean', async () => {
    const yes = await createJob({ enable_debug: 'yes', require_dkms: 't' });
    expect({ enable_debug: yes.enable_debug, require_dkms: yes.require_dkms }).toEqual({ enable_debug: true, require_dkms: true });
    const one = await createJob({ enable_debug: 1, require_dkms: 'TRUE' });
    expect({ enable_debug: one.enable_debug, require_dkms: one.require_dkms }).toEqual({ enable_debug: true, require_dkms: true });
    const no = await createJob({ enable_debug: 'off', require_dkms: 'N', build_env_size: 3 });
    expect({ enable_debug: no.enable_debug, require_dkms: no.require_dkms }).toEqual({ enable_debug: false, require_dkms: false });
    expectSchemaErrors(await postJob({ enable_debug: 'maybe', require_dkms: 2 }), {
      enable_debug: ['Not a valid boolean.'],
      require_dkms: ['Not a valid boolean.'],
    });
  });

  test('kernel_file_name must be a string; numbers are not coerced', async () => {
    expectSchemaErrors(await postJob({ kernel_file_name: 5, initrd_file_name: false }), {
      kernel_file_name: ['Not a valid string.'],
      initrd_file_name: ['Not a valid string.'],
    });
  });

  test('read-only record fields and unknown fields are "Unknown field."', async () => {
    const readOnly = {
      id: randomUUID(),
      created: '2024-01-01T00:00:00',
      status: 'creating',
      arch: 'x86_64',
      resultant_image_id: randomUUID(),
      remote_build_node: '',
      kubernetes_job: 'j',
      kubernetes_service: 's',
      kubernetes_configmap: 'c',
      kubernetes_pvc: 'p',
      kubernetes_namespace: 'ims',
      kubernetes_secret: null,
      bogus: 1,
    };
    expectSchemaErrors(await postJob(readOnly), Object.fromEntries(Object.keys(readOnly).map((k) => [k, [UNKNOWN]])));
    for (const [key, value] of Object.entries(readOnly)) {
      expectSchemaErrors(await postJob({ [key]: value }), { [key]: [UNKNOWN] });
    }
  });

  test('ssh_containers: null or a list of {name, jail}; other keys are errors keyed by index', async () => {
    expectSchemaErrors(await svc.request('POST', '/v3/jobs', customize({ ssh_containers: [{ name: 'a', jail: false, port: 22 }] })), {
      ssh_containers: { '0': { port: [UNKNOWN] } },
    });
    expectSchemaErrors(
      await svc.request('POST', '/v3/jobs', customize({ ssh_containers: [{ name: 'a' }, { name: 'b', status: 'pending', host: 'h' }] })),
      { ssh_containers: { '1': { status: [UNKNOWN], host: [UNKNOWN] } } },
    );
    expectSchemaErrors(await svc.request('POST', '/v3/jobs', customize({ ssh_containers: [{ name: 'a', jail: 'maybe' }] })), {
      ssh_containers: { '0': { jail: ['Not a valid boolean.'] } },
    });
    expectSchemaErrors(await svc.request('POST', '/v3/jobs', customize({ ssh_containers: 'debug' })), {
      ssh_containers: ['Not a valid list.'],
    });
  });

  test('schema errors come before every semantic check', async () => {
    // unknown recipe, unknown key, ssh containers on create: still the schema error
    const res = await postJob({ artifact_id: randomUUID(), public_key_id: randomUUID(), ssh_containers: [{ name: 'x' }], bogus: true });
    expectSchemaErrors(res, { bogus: [UNKNOWN] });
  });
});

describe('POST /jobs: semantic checks in order (§9.2 steps 1–4, §9.3)', () => {
  test('1. create with user-defined ssh containers is a 400, before the artifact is looked at', async () => {
    const detail = `User defined ssh containers during image create are not currently supported. ${DETERMINE}`;
    expectProblem(await postJob({ ssh_containers: [{ name: 'mine', jail: true }] }), 400, detail);
    expectProblem(await postJob({ ssh_containers: [{}], artifact_id: randomUUID(), public_key_id: randomUUID() }), 400, detail);
    expectProblem(await postJob({ ssh_containers: [{ name: 'a' }, { name: 'b' }] }), 400, detail);
  });

  test('2. more than one ssh container is a 400, before the artifact is looked at', async () => {
    const detail = `Only one SSH container is currently supported. Please remove additional containers, determine the specific information that is missing or invalid and then re-run the request with valid information.`;
    const two = [{ name: 'a' }, { name: 'b', jail: true }];
    expectProblem(await svc.request('POST', '/v3/jobs', customize({ ssh_containers: two })), 400, detail);
    expectProblem(
      await svc.request('POST', '/v3/jobs', customize({ ssh_containers: two, artifact_id: randomUUID(), public_key_id: randomUUID() })),
      400,
      detail,
    );
  });

  test('3. create: an unknown recipe, or an image id, is a 400', async () => {
    const unknown = randomUUID();
    expectProblem(await postJob({ artifact_id: unknown }), 400, noRecipe(unknown));
    expectProblem(await postJob({ artifact_id: image.id }), 400, noRecipe(image.id));
  });

  test('3. create: a soft-deleted recipe is not found either', async () => {
    const gone = await newRecipe();
    expect((await svc.request('DELETE', `/v3/recipes/${gone.id}`)).status).toBe(204);
    expectProblem(await postJob({ artifact_id: gone.id }), 400, noRecipe(gone.id));
  });

  test('3. create: a recipe without a link is a 400', async () => {
    const bare = (await svc.request('POST', '/v3/recipes', { name: 'bare', recipe_type: 'kiwi-ng', linux_distribution: 'sles15' })).body;
    expect(bare.link).toBeNull();
    expectProblem(await postJob({ artifact_id: bare.id }), 400, `The IMS recipe does not have an artifact_link for recipe_id=${bare.id}. ${PLEASE}`);
  });

  test('3. create: a recipe whose archive is gone from S3 is a 422', async () => {
    const lost = await newRecipe();
    await removeObject(svc, 'ims', lost.key);
    expectProblem(await postJob({ artifact_id: lost.id }), 422, cannotValidate(lost.link));
  });

  test('3. customize: an unknown image, or a recipe id, is a 400', async () => {
    const unknown = randomUUID();
    expectProblem(await svc.request('POST', '/v3/jobs', customize({ artifact_id: unknown })), 400, noImage(unknown));
    expectProblem(await svc.request('POST', '/v3/jobs', customize({ artifact_id: recipe.id })), 400, noImage(recipe.id));
  });

  test('3. customize: an image without a link is a 400', async () => {
    const bare = (await svc.request('POST', '/v3/images', { name: 'bare' })).body;
    expect(bare.link).toBeNull();
    expectProblem(
      await svc.request('POST', '/v3/jobs', customize({ artifact_id: bare.id })),
      400,
      `The IMS image does not have an artifact_link for image_id=${bare.id}. ${PLEASE}`,
    );
  });

  test('3. customize: an image whose manifest is gone from S3 is a 422', async () => {
    const { record, uploaded } = await newImage();
    await removeObject(svc, BOOT, uploaded.manifestKey);
    expectProblem(await svc.request('POST', '/v3/jobs', customize({ artifact_id: record.id })), 422, cannotValidate(record.link));
  });

  test('3. customize: a manifest without a version, or with an unsupported one, is a 400', async () => {
    const rootfs = { link: { path: `s3://${BOOT}/x/rootfs`, etag: '', type: 's3' }, type: ROOTFS };
    for (const manifest of [{ artifacts: [rootfs] }, { version: '2.0', artifacts: [rootfs] }, { version: 1, artifacts: [rootfs] }, ['1.0']]) {
      const record = await imageWithManifest(manifest);
      expectProblem(await svc.request('POST', '/v3/jobs', customize({ artifact_id: record.id })), 400, badVersion(record.id));
    }
  });

  test('3. customize: a manifest with no rootfs, or with two, is a 400', async () => {
    const { uploaded } = await newImage();
    const entries = JSON.parse(uploaded.manifestText).artifacts as { type: string }[];
    const withoutRootfs = await imageWithManifest({ version: '1.0', artifacts: entries.filter((a) => a.type !== ROOTFS) });
    expectProblem(
      await svc.request('POST', '/v3/jobs', customize({ artifact_id: withoutRootfs.id })),
      400,
      `Error reading the manifest.json for IMS image_id=${withoutRootfs.id}. The manifest does not include any rootfs artifacts. ${DETERMINE}`,
    );
    const rootfs = entries.find((a) => a.type === ROOTFS)!;
    const twoRootfs = await imageWithManifest({ version: '1.0', artifacts: [rootfs, { ...rootfs, type: `${ROOTFS}.v2` }] });
    expectProblem(
      await svc.request('POST', '/v3/jobs', customize({ artifact_id: twoRootfs.id })),
      400,
      `Error reading the manifest.json for IMS image_id=${twoRootfs.id}. The manifest includes multiple rootfs artifacts. ${DETERMINE}`,
    );
  });

  test('3. customize: a rootfs entry without a link is a 400', async () => {
    const record = await imageWithManifest({ version: '1.0', artifacts: [{ type: ROOTFS, md5: 'abc' }] });
    expectProblem(
      await svc.request('POST', '/v3/jobs', customize({ artifact_id: record.id })),
      400,
      `The rootfs referenced in the manifest.json for ims_image_id=${record.id} does not have a artifact link. ${PLEASE}`,
    );
  });

  test('3. customize: a rootfs object gone from S3 is a 422 showing the manifest link as written', async () => {
    const { record, uploaded } = await newImage();
    const rootfs = uploaded.artifacts.find((a) => a.type === ROOTFS)!;
    await removeObject(svc, BOOT, rootfs.key);
    const manifestLink = JSON.parse(uploaded.manifestText).artifacts.find((a: { type: string }) => a.type === ROOTFS).link;
    expect(Object.keys(manifestLink)).toEqual(['path', 'etag', 'type']);
    expectProblem(
      await svc.request('POST', '/v3/jobs', customize({ artifact_id: record.id })),
      422,
      `The s3 artifact ${pyRepr(manifestLink)} cannot be validated. ${PLEASE}`,
    );
  });

  test('4. an unknown public key is a 400, checked only after the artifact', async () => {
    const unknownKey = randomUUID();
    expectProblem(await postJob({ public_key_id: unknownKey }), 400, noKey(unknownKey));
    expectProblem(await svc.request('POST', '/v3/jobs', customize({ public_key_id: unknownKey })), 400, noKey(unknownKey));
    const unknownArtifact = randomUUID();
    expectProblem(await postJob({ public_key_id: unknownKey, artifact_id: unknownArtifact }), 400, noRecipe(unknownArtifact));
  });

  test('a deleted public key is not found', async () => {
    const key = (await svc.request('POST', '/v3/public-keys', { name: 'gone', public_key: 'ssh-rsa AAAA' })).body.id;
    expect((await svc.request('DELETE', `/v3/public-keys/${key}`)).status).toBe(204);
    expectProblem(await postJob({ public_key_id: key }), 400, noKey(key));
  });

  test('no failed POST leaves a record behind', async () => {
    const before = await listIds();
    await postJob({ public_key_id: randomUUID() });
    await postJob({ artifact_id: randomUUID() });
    await postJob({ bogus: 1 });
    expect(await listIds()).toEqual(before);
  });
});

describe('POST /jobs: the created record (§9.1, §9.4)', () => {
  test('exactly the 24 keys, status creating, Kubernetes names from the id, defaults', async () => {
    const res = await postJob();
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const job = res.body;
    expect(Object.keys(job).sort()).toEqual(RECORD_KEYS);
    expect(job.id).toMatch(UUID_RE);
    expect(job.created).toMatch(TIMESTAMP_RE);
    const id = job.id;
    expect(job).toEqual({
      id,
      created: job.created,
      job_type: 'create',
      artifact_id: recipe.id,
      public_key_id: keyId,
      image_root_archive_name: 'my-image',
      enable_debug: false,
      build_env_size: 60,
      job_mem_size: 8,
      kernel_file_name: 'vmlinuz',
      initrd_file_name: 'initrd',
      kernel_parameters_file_name: 'kernel-parameters',
      ssh_containers: null,
      require_dkms: false,
      arch: 'x86_64',
      status: 'creating',
      resultant_image_id: null,
      kubernetes_job: `cray-ims-${id}-create`,
      kubernetes_service: `cray-ims-${id}-service`,
      kubernetes_configmap: `cray-ims-${id}-configmap`,
      kubernetes_pvc: `cray-ims-${id}-job-claim`,
      kubernetes_namespace: 'ims',
      kubernetes_secret: null,
      remote_build_node: '',
    });
    expect((await svc.request('GET', `/v3/jobs/${id}`)).body).toEqual(job);
  });

  test('a customize job: its own Kubernetes job name, the customize shell, DKMS by default', async () => {
    const res = await svc.request('POST', '/v3/jobs', customize());
    expect(res.status).toBe(201);
    const job = res.body;
    const id = job.id;
    expect(Object.keys(job).sort()).toEqual(RECORD_KEYS);
    // Served in the original's (Flask's sort_keys) order, nested objects too.
    expect(Object.keys(job)).toEqual(RECORD_KEYS);
    const served = JSON.parse((await svc.request('GET', `/v3/jobs/${id}`)).text);
    expect(Object.keys(served)).toEqual(RECORD_KEYS);
    expect(Object.keys(served.ssh_containers[0])).toEqual(Object.keys(served.ssh_containers[0]).sort());
    expect(job).toMatchObject({
      job_type: 'customize',
      artifact_id: image.id,
      arch: 'x86_64',
      kernel_file_name: 'vmlinuz',
      require_dkms: true,
      status: 'creating',
      kubernetes_job: `cray-ims-${id}-customize`,
      kubernetes_service: `cray-ims-${id}-service`,
      kubernetes_configmap: `cray-ims-${id}-configmap`,
      kubernetes_pvc: `cray-ims-${id}-job-claim`,
      ssh_containers: [{ name: 'customize', jail: false, status: 'pending', connection_info: connectionInfo(id) }],
    });
  });

  test('user values are kept: sizes, file names, enable_debug', async () => {
    const job = await createJob({
      build_env_size: 15,
      job_mem_size: 3,
      kernel_file_name: 'bzImage',
      initrd_file_name: 'initrd.img',
      kernel_parameters_file_name: 'cmdline',
      image_root_archive_name: 'kept',
    });
    expect(job).toMatchObject({
      build_env_size: 15,
      job_mem_size: 3,
      kernel_file_name: 'bzImage',
      initrd_file_name: 'initrd.img',
      kernel_parameters_file_name: 'cmdline',
      image_root_archive_name: 'kept',
    });
  });

  test('kernel_file_name: by arch when absent or empty; a user value is kept even if it does not fit the arch', async () => {
    expect((await createJob({ artifact_id: armRecipe.id })).kernel_file_name).toBe('Image');
    expect((await createJob({ artifact_id: armRecipe.id, kernel_file_name: '' })).kernel_file_name).toBe('Image');
    expect((await createJob({ kernel_file_name: '' })).kernel_file_name).toBe('vmlinuz');
    expect((await createJob({ artifact_id: armRecipe.id, kernel_file_name: 'vmlinuz' })).kernel_file_name).toBe('vmlinuz');
    const armCustomize = (await svc.request('POST', '/v3/jobs', customize({ artifact_id: armImage.id }))).body;
    expect({ arch: armCustomize.arch, kernel: armCustomize.kernel_file_name }).toEqual({ arch: 'aarch64', kernel: 'Image' });
  });

  test('arch is copied from the recipe or image', async () => {
    expect((await createJob({ artifact_id: armRecipe.id })).arch).toBe('aarch64');
    expect((await createJob()).arch).toBe('x86_64');
    expect((await svc.request('POST', '/v3/jobs', customize({ artifact_id: armImage.id }))).body.arch).toBe('aarch64');
    expect((await svc.request('POST', '/v3/jobs', customize())).body.arch).toBe('x86_64');
  });

  test('require_dkms, create: the recipe\'s value unless the user sends one; aarch64 forces true', async () => {
    expect((await createJob()).require_dkms).toBe(false);
    expect((await createJob({ artifact_id: dkmsRecipe.id })).require_dkms).toBe(true);
    expect((await createJob({ artifact_id: dkmsRecipe.id, require_dkms: false })).require_dkms).toBe(false);
    expect((await createJob({ require_dkms: true })).require_dkms).toBe(true);
    expect((await createJob({ artifact_id: armRecipe.id })).require_dkms).toBe(true);
    expect((await createJob({ artifact_id: armRecipe.id, require_dkms: false })).require_dkms).toBe(true);
  });

  test('require_dkms, customize: true by default, the user value otherwise; aarch64 forces true', async () => {
    const post = async (extra: Record<string, unknown>) => (await svc.request('POST', '/v3/jobs', customize(extra))).body.require_dkms;
    expect(await post({})).toBe(true);
    expect(await post({ require_dkms: false })).toBe(false);
    expect(await post({ artifact_id: armImage.id })).toBe(true);
    expect(await post({ artifact_id: armImage.id, require_dkms: 'false' })).toBe(true);
  });

  test('ssh_containers, create: null without debug; [] echoed as []; debug adds the debug shell', async () => {
    expect((await createJob()).ssh_containers).toBeNull();
    expect((await createJob({ ssh_containers: null })).ssh_containers).toBeNull();
    expect((await createJob({ ssh_containers: [] })).ssh_containers).toEqual([]);
    for (const extra of [{ enable_debug: true }, { enable_debug: true, ssh_containers: [] }, { enable_debug: 'true', ssh_containers: null }]) {
      const job = await createJob(extra);
      expect(job.enable_debug).toBe(true);
      expect(job.ssh_containers).toEqual([{ name: 'debug', jail: false, status: 'pending', connection_info: connectionInfo(job.id) }]);
    }
  });

  test('ssh_containers, customize: none, null or [] give the customize shell; one container is kept', async () => {
    for (const extra of [{}, { ssh_containers: null }, { ssh_containers: [] }, { enable_debug: true }]) {
      const job = (await svc.request('POST', '/v3/jobs', customize(extra))).body;
      expect(job.ssh_containers).toEqual([{ name: 'customize', jail: false, status: 'pending', connection_info: connectionInfo(job.id) }]);
    }
    const jailed = (await svc.request('POST', '/v3/jobs', customize({ ssh_containers: [{ name: 'mine', jail: 'yes' }] }))).body;
    expect(jailed.ssh_containers).toEqual([{ name: 'mine', jail: true, status: 'pending', connection_info: connectionInfo(jailed.id) }]);
    const defaults = (await svc.request('POST', '/v3/jobs', customize({ ssh_containers: [{ name: 'plain' }], enable_debug: true }))).body;
    expect(defaults.ssh_containers).toEqual([{ name: 'plain', jail: false, status: 'pending', connection_info: connectionInfo(defaults.id) }]);
  });

  test('a container without a name has no name in the record (marshmallow leaves missing fields out)', async () => {
    const job = (await svc.request('POST', '/v3/jobs', customize({ ssh_containers: [{ jail: true }] }))).body;
    expect(job.ssh_containers).toEqual([{ jail: true, status: 'pending', connection_info: connectionInfo(job.id) }]);
  });

  test('the job workflow is started with the configured worker', async () => {
    const job = await createJob();
    const calls = await waitFor(
      async () => parked.advanced.filter((c) => c.jobId === job.id),
      (c) => c.length > 0,
    );
    expect(calls[0]).toEqual({ jobId: job.id, stage: 'prepare' });
    // the worker reported nothing, so the record is as it was created
    expect((await svc.request('GET', `/v3/jobs/${job.id}`)).body).toEqual(job);
  });

  test('one store for all versions: created through /v2 or the unversioned alias, visible everywhere', async () => {
    const v2 = await createJob({}, '/v2');
    const plain = await createJob({}, '');
    for (const job of [v2, plain]) {
      for (const prefix of ['/v2', '/v3', '']) {
        const res = await svc.request('GET', `${prefix}/jobs/${job.id}`);
        expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: job });
      }
    }
    const v3List = (await svc.request('GET', '/v3/jobs')).body;
    expect((await svc.request('GET', '/jobs')).body).toEqual(v3List);
    expect((await svc.request('GET', '/v2/jobs')).body).toEqual(v3List);
    expect(v3List.map((j: { id: string }) => j.id)).toEqual(expect.arrayContaining([v2.id, plain.id]));
  });
});

describe('GET /jobs', () => {
  test('the collection is an array of full records in creation order', async () => {
    const a = await createJob({ image_root_archive_name: 'first' });
    const b = await svc.request('POST', '/v3/jobs', customize({ image_root_archive_name: 'second' }));
    const res = await svc.request('GET', '/v3/jobs');
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body)).toBe(true);
    const ids = res.body.map((j: { id: string }) => j.id);
    expect(ids.indexOf(a.id)).toBeGreaterThanOrEqual(0);
    expect(ids.indexOf(b.body.id)).toBe(ids.indexOf(a.id) + 1);
    expect(res.body.find((j: { id: string }) => j.id === a.id)).toEqual(a);
    for (const job of res.body) expect(Object.keys(job).sort()).toEqual(RECORD_KEYS);
  });

  test('an item is 200 with the record; unknown, upper-case and non-UUID ids are 404', async () => {
    const job = await createJob();
    const res = await svc.request('GET', `/v3/jobs/${job.id}`);
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: job });
    expectNotFound(await svc.request('GET', `/v3/jobs/${randomUUID()}`));
    expectNotFound(await svc.request('GET', `/v3/jobs/${job.id.toUpperCase()}`));
    expectNotFound(await svc.request('GET', `/v2/jobs/${job.id.replaceAll('-', '')}`));
    expectNotFound(await svc.request('GET', '/jobs/not-a-job'));
  });
});

describe('PATCH /jobs/{id} (§9.7, the calls of ims-python-helper)', () => {
  test('{"status": <each of the nine values>} → 200 with the full record; any order, repeats allowed', async () => {
    const job = await createJob();
    const order = [...STATUSES, 'creating', 'success', 'success', 'error', 'error', 'building_image'];
    for (const status of order) {
      const res = await svc.request('PATCH', `/jobs/${job.id}`, { status });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ...job, status });
    }
    expect((await svc.request('GET', `/v3/jobs/${job.id}`)).body.status).toBe('building_image');
  });

  test('PATCH works the same through /v2 and /v3', async () => {
    const job = await createJob();
    expect((await svc.request('PATCH', `/v2/jobs/${job.id}`, { status: 'fetching_recipe' })).body.status).toBe('fetching_recipe');
    expect((await svc.request('PATCH', `/v3/jobs/${job.id}`, { status: 'waiting_for_repos' })).body.status).toBe('waiting_for_repos');
    expect((await svc.request('GET', `/jobs/${job.id}`)).body.status).toBe('waiting_for_repos');
  });

  test('an unknown status is a 422 listing the nine states', async () => {
    const job = await createJob();
    for (const status of ['done', 'SUCCESS', '', 'Error']) {
      expectSchemaErrors(await svc.request('PATCH', `/v3/jobs/${job.id}`, { status }), { status: [STATUS_ENUM] });
    }
    expectSchemaErrors(await svc.request('PATCH', `/v3/jobs/${job.id}`, { status: null }), { status: ['Field may not be null.'] });
    expect((await svc.request('GET', `/v3/jobs/${job.id}`)).body.status).toBe('creating');
  });

  test('{"resultant_image_id": uuid} → 200, stored canonical; a non-UUID is a 422', async () => {
    const job = await createJob();
    const imageId = randomUUID();
    const res = await svc.request('PATCH', `/v3/jobs/${job.id}`, { resultant_image_id: imageId.toUpperCase() });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...job, resultant_image_id: imageId });
    expectSchemaErrors(await svc.request('PATCH', `/v3/jobs/${job.id}`, { resultant_image_id: 'image-1' }), {
      resultant_image_id: ['Not a valid UUID.'],
    });
    const both = await svc.request('PATCH', `/v3/jobs/${job.id}`, { status: 'success', resultant_image_id: job.id });
    expect(both.body).toEqual({ ...job, status: 'success', resultant_image_id: job.id });
  });

  test('16 pods patching one job at once, beside workflow writes from other processes: every change kept, no 5xx', async () => {
    const job = await createJob();
    const patches = Array.from({ length: 16 }, (_, w) => Array.from({ length: 5 }, (_, k) => ({ status: STATUSES[(w + k) % STATUSES.length], resultant_image_id: randomUUID() })));
    const statuses: number[] = [];
    // Stage writes (history entries) from two other processes, as the workflow's Lambda functions make them.
    const stages = Array.from({ length: 2 }, () => buildContext(readSettings()));
    const notes = Array.from({ length: 20 }, (_, i) => `stage note ${i}`);
    await Promise.all([
      ...patches.map(async (writer, w) => {
        for (const patch of writer) {
          const res = await svc.request('PATCH', `/${w % 2 ? 'v2' : 'v3'}/jobs/${job.id}`, patch);
          statuses.push(res.status);
          expect(res.body).toMatchObject(patch);
        }
      }),
      ...stages.map(async (ctx, i) => {
        for (const detail of notes.filter((_, n) => n % stages.length === i)) {
          await updateJobState(ctx, job.id, (state) => withHistory(ctx, state, { event: 'note', detail }));
        }
      }),
    ]);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // The whole history: the job item keeps the newest events, chunks the older ones. Each change once.
    const history = await allHistory(svc.app, (await svc.app.store.get<JobState>('job', job.id))!.record);
    const count = (detail: string) => history.filter((e) => e.detail === detail).length;
    for (const patch of patches.flat()) expect(count(`resultant_image_id set to ${patch.resultant_image_id}`)).toBe(1);
    for (const note of notes) expect(count(note)).toBe(1);
  });

  test('the sequence of image_upload_artifacts: packaging_artifacts, resultant_image_id, success', async () => {
    const job = await createJob();
    const imageId = randomUUID();
    await patchStatus(job.id, 'packaging_artifacts');
    expect((await svc.request('PATCH', `/jobs/${job.id}`, { resultant_image_id: imageId })).status).toBe(200);
    await patchStatus(job.id, 'success');
    expect((await svc.request('GET', `/jobs/${job.id}`)).body).toEqual({ ...job, status: 'success', resultant_image_id: imageId });
  });

  test('any other key is a 422 "Unknown field."', async () => {
    const job = await createJob();
    for (const key of ['job_type', 'kubernetes_job', 'ssh_containers', 'created', 'id', 'arch', 'bogus']) {
      expectSchemaErrors(await svc.request('PATCH', `/v3/jobs/${job.id}`, { [key]: 'x' }), { [key]: [UNKNOWN] });
    }
    // not applied in part either
    expectSchemaErrors(await svc.request('PATCH', `/v3/jobs/${job.id}`, { status: 'error', bogus: 1 }), { bogus: [UNKNOWN] });
    expect((await svc.request('GET', `/v3/jobs/${job.id}`)).body).toEqual(job);
  });

  test('order of checks: unknown id 404, then no input 400, then schema 422', async () => {
    const job = await createJob();
    const unknown = randomUUID();
    expectNotFound(await svc.request('PATCH', `/v3/jobs/${unknown}`, { status: 'error' }));
    expectNotFound(await svc.request('PATCH', `/v3/jobs/${unknown}`, {}));
    expectNotFound(await svc.request('PATCH', `/v3/jobs/${unknown}`, { bogus: 1 }));
    expectNotFound(await svc.request('PATCH', `/v3/jobs/${job.id.toUpperCase()}`, { status: 'error' }));
    expectNoInput(await svc.request('PATCH', `/v3/jobs/${job.id}`, {}));
    expectNoInput(await svc.request('PATCH', `/v3/jobs/${job.id}`, null));
    expectSchemaErrors(await svc.request('PATCH', `/v3/jobs/${job.id}`, { bogus: 1 }), { bogus: [UNKNOWN] });
    expectSchemaErrors(await svc.request('PATCH', `/v3/jobs/${job.id}`, [{ status: 'error' }]), { _schema: ['Invalid input type.'] });
  });

  test('a status change shows in the v3 history with its time', async () => {
    const job = await createJob();
    await patchStatus(job.id, 'building_image');
    await patchStatus(job.id, 'waiting_on_user');
    const history = (await svc.request('GET', `/v3/jobs/${job.id}/history`)).body;
    expect(history.status).toBe('waiting_on_user');
    const statuses = history.events.filter((e: { event: string }) => e.event === 'status');
    expect(statuses.map((e: { status: string }) => e.status)).toEqual(['building_image', 'waiting_on_user']);
    for (const e of statuses) {
      expect(e.time).toMatch(TIMESTAMP_RE);
      expect(e.time >= job.created).toBe(true);
    }
    expect(statuses[0].time <= statuses[1].time).toBe(true);
  });
});

describe('DELETE /jobs/{id} (§9.8)', () => {
  test('204 with an empty body; the worker cleans up ("deleted"); the record is gone; the recipe stays', async () => {
    const job = await createJob();
    expectNoContent(await svc.request('DELETE', `/v3/jobs/${job.id}`));
    expect(parked.cleanups).toContainEqual({ jobId: job.id, outcome: 'deleted' });
    expectNotFound(await svc.request('GET', `/v3/jobs/${job.id}`));
    expect(await listIds()).not.toContain(job.id);
    expect((await svc.request('GET', `/v3/recipes/${recipe.id}`)).status).toBe(200);
    expectNotFound(await svc.request('DELETE', `/v3/jobs/${job.id}`));
  });

  test('through /v2 and the unversioned alias as well; a customize job leaves its image alone', async () => {
    const a = await createJob();
    const b = (await svc.request('POST', '/v3/jobs', customize())).body;
    expectNoContent(await svc.request('DELETE', `/v2/jobs/${a.id}`));
    expectNoContent(await svc.request('DELETE', `/jobs/${b.id}`));
    expect(parked.cleanups).toEqual(expect.arrayContaining([{ jobId: a.id, outcome: 'deleted' }, { jobId: b.id, outcome: 'deleted' }]));
    expect(await exists(a.id)).toBe(false);
    expect(await exists(b.id)).toBe(false);
    expect((await svc.request('GET', `/v3/images/${image.id}`)).status).toBe(200);
  });

  test('unknown and upper-case ids are 404', async () => {
    const job = await createJob();
    expectNotFound(await svc.request('DELETE', `/v3/jobs/${randomUUID()}`));
    expectNotFound(await svc.request('DELETE', `/v3/jobs/${job.id.toUpperCase()}`));
    expect(await exists(job.id)).toBe(true);
    expect(parked.cleanups.map((c) => c.jobId)).not.toContain(job.id);
  });

  test('a cleanup failure is a 500 problem with the errors listed; the record is kept, ends in error (its workflow is stopped), and a retry can succeed', async () => {
    const job = await createJob();
    await editStored(job.id, (s) => ({ ...s, worker: 'parked-broken' }));
    const res = await svc.request('DELETE', `/v3/jobs/${job.id}`);
    expectServerError(res, `Errors were encountered deleting the kubernetes resources for IMS job_id=${job.id}. ${REVIEW}`);
    expect(res.body.errors.join(' ')).toContain(`cray-ims-${job.id}-service`);
    expect(broken.cleanups).toContainEqual({ jobId: job.id, outcome: 'deleted' });
    // Unlike the original, the kept job does not pretend to run on: its workflow was stopped.
    expect((await svc.request('GET', `/v3/jobs/${job.id}`)).body).toEqual({ ...job, status: 'error' });
    const history = (await svc.request('GET', `/v3/jobs/${job.id}/history`)).body;
    expect(history.reason).toContain('deleting the job failed, retry the DELETE');

    await editStored(job.id, (s) => ({ ...s, worker: 'parked' }));
    expectNoContent(await svc.request('DELETE', `/v3/jobs/${job.id}`));
    expect(await exists(job.id)).toBe(false);
  });
});

describe('DELETE /jobs/{id} when S3 refuses to delete the logs', () => {
  test('a 503 problem that says access was denied, never a silent 204: the job and its logs are kept, and a retry with access succeeds', async () => {
    const job = await createJob();
    const logKey = `jobs/${job.id}/logs/build.log`;
    await svc.putObject(BOOT, logKey, 'build output');
    await editStored(job.id, (s) => ({ ...s, logs: [{ name: 'build.log', path: `s3://${BOOT}/${logKey}` }] }));
    // As a role without s3:DeleteObject on jobs/ is answered.
    const proxy = await startS3Proxy(svc.s3Endpoint!, (r) => (r.method === 'DELETE' && r.key.startsWith('jobs/') ? { status: 403, code: 'AccessDenied' } : undefined));
    const artifacts = svc.app.artifacts;
    svc.app.artifacts = new S3ArtifactStore(proxy.client());
    try {
      const res = await svc.request('DELETE', `/v3/jobs/${job.id}`);
      expectProblem(res, 503, `Access to s3://${BOOT}/${logKey} was denied to the service: its permissions do not allow this operation. Retrying will not help until an operator grants it.`);
      expect(proxy.seen).toContainEqual(expect.objectContaining({ method: 'DELETE', key: logKey }));
    } finally {
      svc.app.artifacts = artifacts;
      await proxy.stop();
    }
    expect(await exists(job.id)).toBe(true);
    expect(await svc.exists(BOOT, logKey)).toBe(true);
    expect((await svc.request('GET', `/v3/jobs/${job.id}/history`)).body.reason).toContain("deleting the job's logs failed, retry the DELETE");
    expectNoContent(await svc.request('DELETE', `/v3/jobs/${job.id}`));
    expect(await exists(job.id)).toBe(false);
    expect(await svc.exists(BOOT, logKey)).toBe(false);
  });
});

describe('DELETE /jobs with filters (§9.8, §12 item 10)', () => {
  test('status: repeatable and case-insensitive; only matching jobs go', async () => {
    const waiting = await createJob();
    const building = await createJob();
    const other = await createJob();
    await patchStatus(waiting.id, 'waiting_on_user');
    await patchStatus(building.id, 'building_image');
    await patchStatus(other.id, 'fetching_recipe');
    expectNoContent(await svc.request('DELETE', '/v3/jobs?status=WAITING_ON_USER&status=Building_Image'));
    expect(await exists(waiting.id)).toBe(false);
    expect(await exists(building.id)).toBe(false);
    expect(await exists(other.id)).toBe(true);
    expect(parked.cleanups).toEqual(
      expect.arrayContaining([
        { jobId: waiting.id, outcome: 'deleted' },
        { jobId: building.id, outcome: 'deleted' },
      ]),
    );
  });

  test('job_type: exact; only jobs of that type go', async () => {
    const made = await jobAged(3 * 24 * 60);
    const customized = (await svc.request('POST', '/v3/jobs', customize())).body;
    await editStored(customized.id, (s) => ({ ...s, job: { ...s.job, created: made.created } }));
    // age keeps every other test's job out of it
    expectNoContent(await svc.request('DELETE', '/v3/jobs?job_type=customize&age=2d'));
    expect(await exists(customized.id)).toBe(false);
    expect(await exists(made.id)).toBe(true);
    expectNoContent(await svc.request('DELETE', '/v3/jobs?job_type=create&age=2d'));
    expect(await exists(made.id)).toBe(false);
  });

  test('filters combine: a job must match status, job_type and age', async () => {
    const match = await jobAged(200);
    const wrongStatus = await jobAged(200);
    const wrongType = await jobAged(200, { job_type: 'customize', artifact_id: image.id });
    const tooYoung = await createJob();
    for (const job of [match, wrongType, tooYoung]) await patchStatus(job.id, 'error');
    await patchStatus(wrongStatus.id, 'success');
    expectNoContent(await svc.request('DELETE', '/v3/jobs?status=error&job_type=create&age=3h'));
    expect(await exists(match.id)).toBe(false);
    for (const job of [wrongStatus, wrongType, tooYoung]) expect(await exists(job.id)).toBe(true);
  });

  test.each([
    ['1d', 25 * 60, 23 * 60],
    ['6h', 7 * 60, 5 * 60],
    ['90m', 100, 80],
    ['2w', 15 * 24 * 60, 13 * 24 * 60],
    ['3days', 4 * 24 * 60, 2 * 24 * 60],
    ['1h30m', 100, 80],
    ['1H30M', 100, 80],
    ['2w3d', 18 * 24 * 60, 16 * 24 * 60],
  ])('age=%s deletes the jobs created before now − age and keeps the younger ones', async (age, olderMinutes, youngerMinutes) => {
    const older = await jobAged(olderMinutes);
    const younger = await jobAged(youngerMinutes);
    const fresh = await createJob();
    expectNoContent(await svc.request('DELETE', `/v3/jobs?age=${age}`));
    expect(await exists(older.id)).toBe(false);
    expect(parked.cleanups).toContainEqual({ jobId: older.id, outcome: 'deleted' });
    expect(await exists(younger.id)).toBe(true);
    expect(await exists(fresh.id)).toBe(true);
    // leave no old jobs for the next age
    expectNoContent(await svc.request('DELETE', `/v3/jobs/${younger.id}`));
  });

  test.each([
    ['status=bogus', /status/],
    ['status=error&status=bogus', /status/],
    ['status=', /status/],
    ['job_type=build', /job_type/],
    ['job_type=Create', /job_type/],
    ['job_type=CUSTOMIZE&status=error', /job_type/],
  ])('an invalid filter (%s) is a 400 with the message in detail, and nothing is deleted', async (query, mentions) => {
    await jobAged(60 * 24 * 30);
    await createJob();
    const before = await listIds();
    const res = await svc.request('DELETE', `/v3/jobs?${query}`);
    expectProblem(res, 400);
    expect(res.body.title).toBe('Bad Request');
    expect(typeof res.body.detail).toBe('string');
    expect(res.body.detail).toMatch(mentions);
    expect(await listIds()).toEqual(before);
  });

  test.each(['10', 'abc', '1x', '', 'd', '1d-', '-1d', '1.5h'])(
    'age=%s does not parse: a 400 with the message in detail, and nothing is deleted (the original deleted every job)',
    async (age) => {
      await jobAged(60 * 24 * 30);
      await createJob();
      const before = await listIds();
      expect(before.length).toBeGreaterThan(1);
      const res = await svc.request('DELETE', `/v3/jobs?age=${encodeURIComponent(age)}`);
      expectProblem(res, 400);
      expect(res.body.detail).toMatch(/age/);
      expect(await listIds()).toEqual(before);
    },
  );

  test('a cleanup failure keeps that job, deletes the others, and is a 500 with errors', async () => {
    const good = await jobAged(60 * 24 * 100);
    const bad = await jobAged(60 * 24 * 100);
    await editStored(bad.id, (s) => ({ ...s, worker: 'parked-broken' }));
    const res = await svc.request('DELETE', '/v3/jobs?age=99d');
    expectServerError(
      res,
      'Errors were encountered deleting the kubernetes resources for one or more IMS jobs. Review the errors, take any corrective action and then re-run the request with valid information.',
    );
    expect(res.body.errors.join(' ')).toContain(`cray-ims-${bad.id}-service`);
    expect(await exists(good.id)).toBe(false);
    expect(await exists(bad.id)).toBe(true);
    await editStored(bad.id, (s) => ({ ...s, worker: 'parked' }));
    expectNoContent(await svc.request('DELETE', '/v3/jobs?age=99d'));
    expect(await exists(bad.id)).toBe(false);
  });

  test('no filters: every job goes, each cleaned up', async () => {
    await createJob();
    await svc.request('POST', '/v3/jobs', customize());
    const before = await listIds();
    expect(before.length).toBeGreaterThan(1);
    expectNoContent(await svc.request('DELETE', '/v2/jobs'));
    expect(await listIds()).toEqual([]);
    const cleaned = parked.cleanups.filter((c) => c.outcome === 'deleted').map((c) => c.jobId);
    expect(cleaned).toEqual(expect.arrayContaining(before));
    expectNoContent(await svc.request('DELETE', '/v3/jobs'));
  });
});

describe('GET /v3/jobs/{id}/history', () => {
  test('200 with id, status, reason, stage, worker and the events, the created event first', async () => {
    const job = await createJob();
    const history = await waitFor(
      async () => (await svc.request('GET', `/v3/jobs/${job.id}/history`)).body,
      (h) => h.stage === 'prepare',
    );
    expect(Object.keys(history).sort()).toEqual(['events', 'id', 'reason', 'stage', 'status', 'worker']);
    expect(history).toMatchObject({ id: job.id, status: 'creating', reason: null, stage: 'prepare', worker: 'parked' });
    expect(history.events[0]).toMatchObject({ event: 'created', status: 'creating', time: job.created });
    expect(history.events).toContainEqual(expect.objectContaining({ event: 'stage-started', stage: 'prepare' }));
    for (const e of history.events) expect(e.time).toMatch(TIMESTAMP_RE);
  });

  test('hundreds of events: the job item keeps the newest few, the history serves every one in order, delete removes them all', async () => {
    const job = await createJob();
    await waitFor(async () => (await svc.request('GET', `/v3/jobs/${job.id}/history`)).body, (h) => h.stage === 'prepare');
    const sent: string[] = [];
    for (let i = 0; i < 100; i++) {
      const status = i % 2 === 0 ? 'fetching_recipe' : 'building_image';
      expect((await svc.request('PATCH', `/jobs/${job.id}`, { status })).status).toBe(200);
      sent.push(status);
    }
    const stored = (await svc.app.store.get<JobState>('job', job.id))!;
    expect(stored.record.history.length).toBeLessThanOrEqual(HISTORY_INLINE_MAX);
    expect(stored.record.historyChunks).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(stored.record).length).toBeLessThan(12_000);
    const history = (await svc.request('GET', `/v3/jobs/${job.id}/history`)).body;
    const patched = history.events.filter((e: { event: string; detail?: string }) => e.event === 'status' && e.detail === 'set through the API');
    expect(patched.map((e: { status: string }) => e.status)).toEqual(sent);
    expect(history.events[0]).toMatchObject({ event: 'created', status: 'creating', time: job.created });
    const times = history.events.map((e: { time: string }) => e.time);
    expect([...times].sort()).toEqual(times);
    expectNoContent(await svc.request('DELETE', `/v3/jobs/${job.id}`));
    expect(await svc.app.store.get('job-history', `${job.id}.0`)).toBeUndefined();
  });

  test('404 for an unknown job, a deleted one, and outside /v3', async () => {
    expectNotFound(await svc.request('GET', `/v3/jobs/${randomUUID()}/history`));
    const job = await createJob();
    expect((await svc.request('GET', `/v3/jobs/${job.id}/history`)).status).toBe(200);
    expectNoContent(await svc.request('DELETE', `/v3/jobs/${job.id}`));
    expectNotFound(await svc.request('GET', `/v3/jobs/${job.id}/history`));
    const other = await createJob();
    expectProblem(await svc.request('GET', `/v2/jobs/${other.id}/history`), 404, URL_NOT_FOUND);
    expectProblem(await svc.request('GET', `/jobs/${other.id}/history`), 404, URL_NOT_FOUND);
  });
});
