/**
 * Image manifests (manifest.json version 1.0): the checks the original runs before it accepts an
 * image link (same checks, same order, same codes), and reading manifests for delete and undelete.
 */
import { InvalidRequestError, ManifestValidationError } from './errors.js';
import { linkRepr, parseS3Path, requireArtifact } from './links.js';
import { ObjectTooLargeError, type ArtifactStore, type S3Location } from './ports.js';
import type { ArtifactLink } from './records.js';

export const ROOTFS_TYPE = 'application/vnd.cray.image.rootfs.squashfs';
export const MANIFEST_TYPE = 'application/vnd.cray.image.manifest';
export const SUPPORTED_VERSIONS = ['1.0'];

export interface ManifestArtifact {
  link: ArtifactLink;
  type: string;
  md5?: string;
}

export interface Manifest {
  version: string;
  created?: string;
  artifacts: ManifestArtifact[];
}

const MALFORMED = "The image's manifest.json is malformed.";
const RETRY = 'Please determine the specific information that is missing or invalid and then re-run the request with valid information.';
const DETERMINE = 'Determine the specific information that is missing or invalid and then re-run the request with valid information.';

/** Reads and parses a JSON object; undefined when absent, unreadable or not a JSON object. */
export async function readJsonObject(artifacts: ArtifactStore, location: S3Location, maxBytes: number): Promise<Record<string, unknown> | undefined> {
  let text: string | undefined;
  try {
    text = await artifacts.readText(location, maxBytes);
  } catch (error) {
    if (error instanceof ObjectTooLargeError) return undefined;
    throw error;
  }
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads a manifest the way the original's read_manifest_json does, failing with its texts:
 * 400 when too large, 422 when unreadable or not JSON. Returns whatever JSON value it holds.
 */
export async function readManifest(artifacts: ArtifactStore, link: ArtifactLink, maxBytes: number): Promise<unknown> {
  const location = parseS3Path(link.path);
  let text: string | undefined;
  try {
    text = location ? await artifacts.readText(location, maxBytes) : undefined;
  } catch (error) {
    if (error instanceof ObjectTooLargeError) {
      throw new InvalidRequestError(`Image manifest file is larger than the expected maximum size for the s3 artifact ${linkRepr(link)}. ${RETRY}`);
    }
    throw error;
  }
  if (text === undefined) throw new ManifestValidationError(`Unable to read manifest file for the s3 artifact ${linkRepr(link)}. ${RETRY}`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ManifestValidationError(`Manifest file is not valid Json for the s3 artifact ${linkRepr(link)}. ${RETRY}`);
  }
}

/**
 * §6.3 steps 2–15 for the manifest a link points at (step 1, uniqueness, is the caller's claim).
 * Unlike the original, a manifest that is unreadable, not JSON, or not a JSON object is a 422
 * rather than a 500 (or, on v3 PATCH, silently accepted).
 */
export async function validateImageManifest(
  artifacts: ArtifactStore,
  link: ArtifactLink,
  imageLabel: string,
  maxBytes: number,
): Promise<Manifest> {
  const { location, info } = await requireArtifact(artifacts, link);
  const tooLarge = () =>
    new InvalidRequestError(`Image manifest file is larger than the expected maximum size for the s3 artifact ${linkRepr(link)}. ${RETRY}`);
  if (info.size >= maxBytes) throw tooLarge();
  let text: string | undefined;
  try {
    text = await artifacts.readText(location, maxBytes);
  } catch (error) {
    if (error instanceof ObjectTooLargeError) throw tooLarge();
    throw error;
  }
  if (text === undefined) throw new ManifestValidationError(`Unable to read manifest file for the s3 artifact ${linkRepr(link)}. ${RETRY}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ManifestValidationError(`Manifest file is not valid Json for the s3 artifact ${linkRepr(link)}. ${RETRY}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ManifestValidationError(`${MALFORMED} It is not a json object.`);
  }
  const manifest = parsed as Record<string, unknown>;
  if (!('version' in manifest)) throw new ManifestValidationError("The image's manifest.json does not contain a version field.");
  if (typeof manifest.version !== 'string' || !SUPPORTED_VERSIONS.includes(manifest.version)) {
    throw new ManifestValidationError(
      `The image's manifest.json has a version that is not supported. Supported image manifest versions are: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  if (!('artifacts' in manifest)) throw new ManifestValidationError(`${MALFORMED} It does not contain an artifacts map.`);
  if (!Array.isArray(manifest.artifacts)) throw new ManifestValidationError(`${MALFORMED} The artifacts property is not a json list.`);
  for (const artifact of manifest.artifacts as unknown[]) {
    if (typeof artifact !== 'object' || artifact === null || Array.isArray(artifact)) {
      throw new ManifestValidationError(`${MALFORMED} A listed artifact is not a json dictionary.`);
    }
    const a = artifact as Record<string, unknown>;
    if (!('link' in a) || typeof a.link !== 'object' || a.link === null) {
      throw new ManifestValidationError(`${MALFORMED} An artifact does not have a link value`);
    }
    const artifactLink = a.link as Record<string, unknown>;
    if (!('type' in artifactLink)) throw new ManifestValidationError(`${MALFORMED} An artifact does not have a link type field`);
    if (artifactLink.type !== 's3') throw new ManifestValidationError(`${MALFORMED} An artifact link type '${String(artifactLink.type)}' not supported`);
    if (!('path' in artifactLink)) throw new ManifestValidationError(`${MALFORMED} An artifact does not have a link path field`);
    await requireArtifact(artifacts, artifactLink, true); // repr in the manifest's own key order
  }
  const list = manifest.artifacts as Record<string, unknown>[];
  if (list.some((a) => !('type' in a))) throw new ManifestValidationError(`${MALFORMED} An artifact does not have a type field`);
  const rootfs = list.filter((a) => typeof a.type === 'string' && a.type.startsWith(ROOTFS_TYPE));
  // The original's texts differ: "for IMS {link}" without, "for {link}" with several rootfs.
  if (rootfs.length === 0) {
    throw new InvalidRequestError(`Error reading the manifest.json for IMS ${imageLabel}. The manifest does not include any rootfs artifacts. ${DETERMINE}`);
  }
  if (rootfs.length > 1) {
    throw new InvalidRequestError(`Error reading the manifest.json for ${imageLabel}. The manifest includes multiple rootfs artifacts. ${DETERMINE}`);
  }
  return manifest as unknown as Manifest;
}

/** The label the original uses in rootfs messages: the repr of the image's link. */
export function imageLabelFor(link: ArtifactLink): string {
  return linkRepr(link);
}

/** The locations of every linked artifact a manifest lists, skipping entries S3 cannot address. */
export function linkedArtifacts(manifest: Record<string, unknown>): { entry: Record<string, unknown>; location: S3Location }[] {
  const list = Array.isArray(manifest.artifacts) ? (manifest.artifacts as unknown[]) : [];
  const out: { entry: Record<string, unknown>; location: S3Location }[] = [];
  for (const entry of list) {
    if (typeof entry !== 'object' || entry === null) continue;
    const link = (entry as Record<string, unknown>).link as Record<string, unknown> | undefined;
    const location = typeof link?.path === 'string' ? parseS3Path(link.path) : undefined;
    if (location) out.push({ entry: entry as Record<string, unknown>, location });
  }
  return out;
}

export { RETRY as RETRY_HINT };
