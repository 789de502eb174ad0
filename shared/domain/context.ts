import type { ArtifactStore, Clock, IdGenerator, RecordStore } from './ports.js';

/** Settings the use cases read; sourced from the environment by shared/config.ts. */
export interface DomainSettings {
  /** Where deleted image manifests are written (the original's S3_BOOT_IMAGES_BUCKET). */
  bootImagesBucket: string;
  /**
   * Where recipe links may point (`s3://bucket/prefix`, any of them); undefined: anywhere. Deployed,
   * the locations the signing key may read, so every recipe a job downloads has a working URL.
   */
  recipeLinkPrefixes?: string[];
  /** Manifests at or over this size are refused (MAX_IMAGE_MANIFEST_SIZE_BYTES). */
  maxManifestBytes: number;
}

/** Everything a use case needs, handed in by the handler that runs it. */
export interface DomainContext {
  store: RecordStore;
  artifacts: ArtifactStore;
  clock: Clock;
  ids: IdGenerator;
  settings: DomainSettings;
}
