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

/** The record kinds the store keeps; each is one entity type of the single table. */
export type RecordKind = 'public-key' | 'recipe' | 'image' | 'job' | 'remote-build-node';

export type RecordState = 'live' | 'deleted';
