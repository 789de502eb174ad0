/** The records as they are served on the wire: exactly the original's keys. */

export interface ArtifactLink {
  path: string;
  etag: string;
  type: 's3';
}

export interface TemplateValue {
  key: string;
  value: string;
}

export type Arch = 'x86_64' | 'aarch64';

export interface PublicKeyRecord {
  id: string;
  created: string;
  name: string;
  public_key: string;
}

export interface RecipeRecord {
  id: string;
  created: string;
  name: string;
  recipe_type: 'kiwi-ng' | 'packer';
  linux_distribution: 'sles12' | 'sles15' | 'centos7';
  link: ArtifactLink | null;
  template_dictionary: TemplateValue[] | null;
  require_dkms: boolean;
  arch: Arch;
}

export interface ImageRecord {
  id: string;
  created: string;
  name: string;
  link: ArtifactLink | null;
  arch: Arch;
  metadata: Record<string, string>;
}

export interface RemoteBuildNodeRecord {
  xname: string;
}

export type Deleted<T> = T & { deleted: string };

/**
 * The record kinds the store keeps; each is one entity type of the single table. `node-load` is
 * internal (never served): the jobs placed on a remote build node (domain/node-placement.ts). So
 * are `lineage`: where a job's image came from (domain/image-contents.ts), found by its parent;
 * and `job-history`: the older part of a job's history (domain/job-history.ts).
 */
export type RecordKind = 'public-key' | 'recipe' | 'image' | 'job' | 'remote-build-node' | 'node-load' | 'lineage' | 'job-history';

export type RecordState = 'live' | 'deleted';

export const JOB_STATUSES = [
  'creating',
  'fetching_image',
  'fetching_recipe',
  'waiting_for_repos',
  'building_image',
  'packaging_artifacts',
  'waiting_on_user',
  'error',
  'success',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type JobType = 'create' | 'customize';

export interface SshConnectionInfo {
  host: string;
  port: number;
}

export interface SshContainer {
  /** Absent when the user's container had none (the original's schema dump leaves it out). */
  name?: string;
  jail: boolean;
  status: string;
  connection_info: Record<string, SshConnectionInfo>;
}

/** The job record on the wire: exactly the original's 24 keys. */
export interface JobRecord {
  id: string;
  created: string;
  job_type: JobType;
  artifact_id: string;
  public_key_id: string;
  image_root_archive_name: string;
  enable_debug: boolean;
  build_env_size: number;
  job_mem_size: number;
  kernel_file_name: string;
  initrd_file_name: string;
  kernel_parameters_file_name: string;
  ssh_containers: SshContainer[] | null;
  require_dkms: boolean;
  arch: Arch;
  status: JobStatus;
  resultant_image_id: string | null;
  kubernetes_job: string;
  kubernetes_service: string;
  kubernetes_configmap: string;
  kubernetes_pvc: string;
  kubernetes_namespace: string;
  kubernetes_secret: string | null;
  remote_build_node: string;
}
