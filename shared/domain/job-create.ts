/**
 * Job creation with the original's validation order, artifact resolution and derived fields
 * (ims-api-behaviour.md §9); the new job's workflow is started once its state is stored.
 */
import { createHash } from 'node:crypto';
import { InvalidRequestError } from './errors.js';
import { cannotValidateArtifact, parseS3Path, requireArtifact } from './links.js';
import { ROOTFS_TYPE, readJsonObject, SUPPORTED_VERSIONS } from './manifest.js';
import { sortableTimestamp, formatTimestamp } from './time.js';
import { placeJob, releaseNodeJob, REMOTE_NODE_WORKER, type Placement } from './node-placement.js';
import { getJobState, JOB_KIND as KIND, recordJobError, updateJobState, type JobContext, type JobState } from './job-state.js';
import type { Arch, ImageRecord, JobRecord, JobType, PublicKeyRecord, RecipeRecord, SshContainer } from './records.js';

const RETRY = 'Determine the specific information that is missing or invalid and then re-run the request with valid information.';
// The original's texts differ in small ways from message to message; they are kept as it sends them.
const PLEASE_RETRY = 'Please determine the specific information that is missing or invalid and then re-run the request with valid information.';

export interface JobCreateInput {
  job_type: JobType;
  artifact_id: string;
  public_key_id: string;
  image_root_archive_name: string;
  enable_debug: boolean;
  build_env_size?: number;
  job_mem_size?: number;
  kernel_file_name?: string;
  initrd_file_name?: string;
  kernel_parameters_file_name?: string;
  require_dkms?: boolean;
  ssh_containers?: { name?: string; jail: boolean }[] | null;
}

export const KERNEL_DEFAULT: Record<Arch, string> = { x86_64: 'vmlinuz', aarch64: 'Image' };

/** A name-based UUID (v5 layout): the same name always gives the same id. */
export function nameBasedId(name: string): string {
  const hash = createHash('sha1').update(name).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** One job always leads to one resultant image id. */
export function resultImageIdFor(jobId: string): string {
  return nameBasedId(`ims-job-result:${jobId}`);
}

interface ResolvedArtifact {
  arch: Arch;
  downloadUrl: string;
  downloadMd5: string;
  recipe?: RecipeRecord;
}

async function resolveRecipe(ctx: JobContext, id: string): Promise<ResolvedArtifact> {
  const stored = await ctx.store.get<RecipeRecord>('recipe', id);
  if (!stored || stored.state !== 'live') {
    throw new InvalidRequestError(`Invalid artifact_id value in job request. No IMS recipe record found matching id=${id}. ${RETRY}`);
  }
  const recipe = stored.record;
  if (!recipe.link) throw new InvalidRequestError(`The IMS recipe does not have an artifact_link for recipe_id=${id}. ${PLEASE_RETRY}`);
  const { location, info } = await requireArtifact(ctx.artifacts, recipe.link);
  return {
    arch: recipe.arch,
    downloadUrl: await ctx.artifacts.presignGet(location, ctx.jobs.urlExpirationSeconds),
    downloadMd5: info.metadata.md5sum ?? '',
    recipe,
  };
}

async function resolveImage(ctx: JobContext, id: string): Promise<ResolvedArtifact> {
  const stored = await ctx.store.get<ImageRecord>('image', id);
  if (!stored || stored.state !== 'live') {
    throw new InvalidRequestError(`Invalid artifact_id value in job request. No IMS image record found matching id=${id}. ${RETRY}`);
  }
  const image = stored.record;
  if (!image.link) throw new InvalidRequestError(`The IMS image does not have an artifact_link for image_id=${id}. ${PLEASE_RETRY}`);
  const { location } = await requireArtifact(ctx.artifacts, image.link);
  const manifest = await readJsonObject(ctx.artifacts, location, ctx.settings.maxManifestBytes);
  // The original answers 500 for an unreadable manifest; it is bad input, so 400 as the other manifest faults.
  if (!manifest || typeof manifest.version !== 'string' || !SUPPORTED_VERSIONS.includes(manifest.version)) {
    throw new InvalidRequestError(`The manifest.json file is corrupt or invalid for IMS image_id=${id}. Could not determine the manifest version or manifest version is unsupported. ${RETRY}`,
    );
  }
  const artifacts = Array.isArray(manifest.artifacts) ? (manifest.artifacts as Record<string, unknown>[]) : [];
  const rootfs = artifacts.filter((a) => a && typeof a.type === 'string' && a.type.startsWith(ROOTFS_TYPE));
  if (rootfs.length !== 1) {
    const which = rootfs.length === 0 ? 'does not include any rootfs artifacts' : 'includes multiple rootfs artifacts';
    throw new InvalidRequestError(`Error reading the manifest.json for IMS image_id=${id}. The manifest ${which}. ${RETRY}`);
  }
  const link = rootfs[0].link as Record<string, unknown> | undefined;
  if (!link || typeof link !== 'object') {
    throw new InvalidRequestError(`The rootfs referenced in the manifest.json for ims_image_id=${id} does not have a artifact link. ${PLEASE_RETRY}`);
  }
  const rootfsAt = typeof link.path === 'string' ? parseS3Path(link.path) : undefined;
  const info = rootfsAt ? await ctx.artifacts.head(rootfsAt) : undefined;
  // The link as the manifest has it: Python's repr keeps the JSON's key order.
  if (!rootfsAt || !info) throw cannotValidateArtifact(link, true);
  return {
    arch: image.arch,
    downloadUrl: await ctx.artifacts.presignGet(rootfsAt, ctx.jobs.urlExpirationSeconds),
    downloadMd5: info.metadata.md5sum ?? (typeof rootfs[0].md5 === 'string' ? rootfs[0].md5 : ''),
  };
}

function sshContainersFor(input: JobCreateInput, id: string, service: string, namespace: string, ctx: JobContext): SshContainer[] | null {
  let containers: { name?: string; jail: boolean }[];
  if (input.job_type === 'create') {
    if (!input.enable_debug) return input.ssh_containers && input.ssh_containers.length === 0 ? [] : null;
    containers = [{ name: 'debug', jail: false }];
  } else {
    containers = input.ssh_containers && input.ssh_containers.length > 0 ? input.ssh_containers : [{ name: 'customize', jail: false }];
  }
  return containers.map((c) => ({
    ...(c.name !== undefined ? { name: c.name } : {}),
    jail: c.jail,
    status: 'pending',
    connection_info: {
      customer_access: { host: `${id}.ims.${ctx.jobs.customerAccessSubnet}.${ctx.jobs.customerAccessDomain}`, port: 22 },
      'cluster.local': { host: `${service}.${namespace}.svc.cluster.local`, port: 22 },
    },
  }));
}

/**
 * `id` is chosen by callers that may repeat themselves (a re-delivered upload event): when the
 * job exists already, the repeat returns it, starting its workflow if the first call could not.
 */
export async function createJob(ctx: JobContext, input: JobCreateInput, id: string = ctx.ids.newId()): Promise<JobRecord> {
  if (input.job_type === 'create' && input.ssh_containers && input.ssh_containers.length > 0) {
    throw new InvalidRequestError(`User defined ssh containers during image create are not currently supported. ${RETRY}`);
  }
  if (input.ssh_containers && input.ssh_containers.length > 1) {
    throw new InvalidRequestError('Only one SSH container is currently supported. Please remove additional containers, determine the specific information that is missing or invalid and then re-run the request with valid information.',
    );
  }
  const artifact = input.job_type === 'create' ? await resolveRecipe(ctx, input.artifact_id) : await resolveImage(ctx, input.artifact_id);
  const key = await ctx.store.get<PublicKeyRecord>('public-key', input.public_key_id);
  if (!key || key.state !== 'live') {
    throw new InvalidRequestError(`Invalid public_key_id value in job request. No IMS public-key record found matching id=${input.public_key_id}`);
  }

  const micros = ctx.clock.nowMicros();
  const placement = await placeOnNode(ctx, id, artifact.arch);
  const worker = placement.xname ? REMOTE_NODE_WORKER : ctx.jobs.worker;
  const namespace = ctx.jobs.namespace;
  const service = `cray-ims-${id}-service`;
  let requireDkms: boolean;
  if (artifact.arch === 'aarch64') requireDkms = true;
  else if (input.require_dkms !== undefined) requireDkms = input.require_dkms;
  else if (input.job_type === 'create') requireDkms = artifact.recipe!.require_dkms;
  else requireDkms = ctx.jobs.enableDkms;

  const job: JobRecord = {
    id,
    created: formatTimestamp(micros),
    job_type: input.job_type,
    artifact_id: input.artifact_id,
    public_key_id: input.public_key_id,
    image_root_archive_name: input.image_root_archive_name,
    enable_debug: input.enable_debug,
    build_env_size: input.build_env_size ?? ctx.jobs.defaultBuildEnvSize,
    job_mem_size: input.job_mem_size ?? ctx.jobs.defaultJobMemSize,
    kernel_file_name: input.kernel_file_name || KERNEL_DEFAULT[artifact.arch],
    initrd_file_name: input.initrd_file_name ?? 'initrd',
    kernel_parameters_file_name: input.kernel_parameters_file_name ?? 'kernel-parameters',
    ssh_containers: sshContainersFor(input, id, service, namespace, ctx),
    require_dkms: requireDkms,
    arch: artifact.arch,
    status: 'creating',
    resultant_image_id: null,
    kubernetes_job: `cray-ims-${id}-${input.job_type}`,
    kubernetes_service: service,
    kubernetes_configmap: `cray-ims-${id}-configmap`,
    kubernetes_pvc: `cray-ims-${id}-job-claim`,
    kubernetes_namespace: namespace,
    kubernetes_secret: null,
    remote_build_node: placement.xname ?? '',
  };
  const templateDictionary = Object.fromEntries((artifact.recipe?.template_dictionary ?? []).map((t) => [t.key, t.value]));
  const state: JobState = {
    job,
    worker,
    input: {
      publicKey: key.record.public_key,
      downloadUrl: artifact.downloadUrl,
      downloadMd5: artifact.downloadMd5,
      recipeType: artifact.recipe?.recipe_type,
      templateDictionary: artifact.recipe ? templateDictionary : undefined,
      resultImageId: resultImageIdFor(id),
      arch: artifact.arch,
    },
    history: [
      { time: job.created, event: 'created', status: 'creating', detail: `worker ${worker}` },
      ...(placement.detail
        ? [{ time: job.created, event: 'note' as const, detail: placement.xname ? placement.detail : `${placement.detail}: running on ${worker}` }]
        : []),
    ],
  };
  let created: boolean;
  try {
    created = await ctx.store.create(KIND, id, state, sortableTimestamp(micros));
  } catch (error) {
    if (placement.xname) await releaseNodeJob(ctx, placement.xname, id).catch(() => undefined);
    throw error;
  }
  if (!created) {
    const existing = await getJobState(ctx, id);
    // A repeat keeps the first call's node; a reservation this call made elsewhere is dropped.
    if (placement.xname && placement.xname !== existing.job.remote_build_node) await releaseNodeJob(ctx, placement.xname, id);
    if (!existing.execution && existing.job.status === 'creating') await startWorkflow(ctx, id);
    return existing.job;
  }
  await startWorkflow(ctx, id);
  return job;
}

async function startWorkflow(ctx: JobContext, id: string): Promise<void> {
  try {
    const execution = await ctx.workflow.start(id);
    await updateJobState(ctx, id, (s) => ({ ...s, execution }));
  } catch (error) {
    await recordJobError(ctx, id, `the job workflow could not be started: ${(error as Error).message}`);
  }
}

/** Placement is an optimisation: when it cannot be decided (the store hiccups), the job runs on the default worker. */
async function placeOnNode(ctx: JobContext, id: string, arch: Arch): Promise<Placement> {
  try {
    return await placeJob(ctx, id, arch);
  } catch (error) {
    return { detail: `remote build node placement failed (${(error as Error).message})` };
  }
}
