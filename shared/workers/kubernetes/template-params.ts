/**
 * The values the job templates are filled with (the original's `template_params`). Only values
 * that apply to the job are present, so a template that references, say, `template_dictionary`
 * for a customize job fails clearly instead of rendering an empty key.
 */
import type { JobRecord } from '../../domain/records.js';
import type { WorkerJob } from '../../domain/worker-port.js';
import type { KubernetesWorkerSettings } from './settings.js';

/** The scripts in the pod compare with Python's str(bool). */
const pyBool = (value: boolean): string => (value ? 'True' : 'False');

function gib(value: number, field: string): string {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${field} must be a whole number of GiB ≥ 1, not ${value}`);
  return `${value}Gi`;
}

/** The create job's copy of the RPM signing keys, which its build container mounts (optional there). */
export function signingKeysSecretName(record: Pick<JobRecord, 'id' | 'kubernetes_secret'>): string {
  return record.kubernetes_secret ?? `cray-ims-${record.id}-signing-keys`;
}

/** Namespace of the job's objects: the record's, else the configured default. */
export function jobNamespace(job: WorkerJob, settings: KubernetesWorkerSettings): string {
  return job.job.kubernetes_namespace || settings.namespace;
}

/**
 * Runtime class: DKMS mounts are contained in a Kata VM; aarch64 emulation gets its own runtime
 * class; a remote build node does the heavy work itself, so no VM is needed.
 */
function runtimeClass(job: WorkerJob, settings: KubernetesWorkerSettings): string {
  if (job.job.remote_build_node) return '';
  if (job.arch === 'aarch64') return settings.runtime.aarch64;
  if (job.job.require_dkms) return settings.runtime.kata;
  return '';
}

/** The IMS base URL of the job pods: the API answers under `/apis/ims`, as the original's gateway does. */
export function imsUrl(settings: KubernetesWorkerSettings): string {
  return `${settings.apiScheme}://${settings.apiGatewayHostname}/apis/ims`;
}

export function templateParameters(job: WorkerJob, settings: KubernetesWorkerSettings): Record<string, string> {
  const record = job.job;
  const dkms = record.require_dkms;
  const params: Record<string, string> = {
    id: record.id,
    namespace: jobNamespace(job, settings),
    job_type: record.job_type,
    public_key: job.publicKey,
    download_url: job.downloadUrl,
    download_md5sum: job.downloadMd5,
    enable_debug: pyBool(record.enable_debug),
    ssh_jail: pyBool(record.ssh_containers?.[0]?.jail ?? false),
    image_root_archive_name: record.image_root_archive_name,
    kernel_filename: record.kernel_file_name,
    initrd_filename: record.initrd_file_name,
    kernel_parameters_filename: record.kernel_parameters_file_name,
    job_arch: job.arch,
    job_enable_dkms: pyBool(dkms),
    remote_build_node: record.remote_build_node,
    remote_heartbeat_timeout_count: String(settings.remoteHeartbeatTimeoutCount),
    // Sizes: the PVC holds recipe, image root, squashfs and artifacts at once, hence ×5.
    pvc_size: gib(record.build_env_size * 5, 'build_env_size'),
    mem_request: gib(record.job_mem_size, 'job_mem_size'),
    mem_limit: gib(record.job_mem_size * 5, 'job_mem_size'),
    storage_class: settings.storageClass,
    runtime_class: runtimeClass(job, settings),
    service_account: dkms ? settings.runtime.dkmsServiceAccount : '',
    security_privileged: dkms ? 'true' : 'false',
    security_capabilities: dkms ? 'SYS_ADMIN' : '',
    virtiofs_extra_args: settings.runtime.kataVirtiofsExtraArgs,
    hostname: `${record.id}.ims.${settings.customerAccess.subnetName}.${settings.customerAccess.networkDomain}`,
    address_pool: settings.customerAccess.addressPool,
    signing_keys_secret: signingKeysSecretName(record),
    api_gateway_hostname: settings.apiGatewayHostname,
    ims_url: imsUrl(settings),
    s3_bucket: settings.s3Bucket,
    log_level: settings.logLevel,
    ims_utils_image: settings.images.imsUtils,
    kiwi_builder_image: settings.images.kiwiBuilder,
    kiwi_arm_builder_image: settings.images.kiwiArmBuilder,
    sshd_image: settings.images.sshd,
    packer_builder_image: settings.images.packerBuilder,
    image_pull_policy: settings.images.pullPolicy,
  };
  if (record.job_type === 'create') {
    params.recipe_type = job.recipeType ?? 'kiwi-ng';
    params.template_dictionary = JSON.stringify(job.templateDictionary ?? {});
  }
  return params;
}
