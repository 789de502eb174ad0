/**
 * What is inside an image and where it came from: its package list, the change report of the
 * customize job that made it, and its lineage. The package list and the change report are
 * artifacts of the image (listed in its manifest by type, so they follow soft delete, undelete and
 * delete like the rootfs, and an image uploaded by hand may carry them too); lineage is a record
 * of its own per image (`lineage`, never served as such), written when a job registers the image.
 */
import { NotFoundError } from './errors.js';
import { parseS3Path } from './links.js';
import { readJsonObject } from './manifest.js';
import { ObjectTooLargeError } from './ports.js';
import { sortableTimestamp } from './time.js';
import type { DomainContext } from './context.js';
import type { ImageRecord, RecipeRecord, RecordState } from './records.js';

/** The package list's artifact type: kiwi's `.packages` text (`name|epoch|version|release|arch|disturl|license`) or a JSON array of packages. */
export const PACKAGES_TYPE = 'application/vnd.ims.image.packages';
/** The change report's artifact type: the JSON object `GET /images/{id}/changes` serves. */
export const CHANGES_TYPE = 'application/vnd.ims.image.changes+json';

/** Package lists and change reports are read whole; larger ones are refused rather than held. */
const MAX_CONTENTS_BYTES = 64 * 1024 * 1024;

export interface ImagePackage {
  name: string;
  version: string;
  arch: string;
}

export interface PackageChanges {
  added: { name: string; version: string; arch: string }[];
  removed: { name: string; version: string; arch: string }[];
  changed: { name: string; arch: string; from: string; to: string }[];
}

export interface FileChange {
  path: string;
  /** `file`, `directory`, `symlink`, `fifo`, `socket`, `char-device`, `block-device`. */
  type: string;
  /** Bytes in the new image (0 for deletions and directories). */
  size: number;
  /** A symlink's target. */
  target?: string;
}

export interface FileChanges {
  added: FileChange[];
  modified: FileChange[];
  deleted: FileChange[];
}

/** The change report of a customize job: what the shell changed in the image. */
export interface ChangeReport {
  parent_id: string;
  job_id: string;
  files: FileChanges;
  packages: PackageChanges;
}

const NONE = new Set(['', 'None', '(none)']);

/** Reads a package list: kiwi's `.packages` lines or a JSON array of `{name, version, arch}`; sorted by name, then arch. */
export function parsePackageList(text: string): ImagePackage[] {
  const trimmed = text.trimStart();
  let packages: ImagePackage[];
  if (trimmed.startsWith('[')) {
    const parsed = JSON.parse(trimmed) as unknown;
    if (!Array.isArray(parsed)) throw new Error('not a list');
    packages = parsed.map((p) => {
      const entry = p as Record<string, unknown>;
      if (typeof entry?.name !== 'string' || typeof entry.version !== 'string') throw new Error('a package without name or version');
      return { name: entry.name, version: entry.version, arch: typeof entry.arch === 'string' ? entry.arch : '' };
    });
  } else {
    packages = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const [name, epoch = '', version = '', release = '', arch = ''] = line.split('|');
      if (!name) continue;
      let full = version;
      if (!NONE.has(release)) full = `${full}-${release}`;
      if (!NONE.has(epoch)) full = `${epoch}:${full}`;
      packages.push({ name, version: full, arch: NONE.has(arch) ? '' : arch });
    }
  }
  return packages.sort(comparePackages);
}

function comparePackages(a: { name: string; arch: string }, b: { name: string; arch: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0;
}

/** The packages `after` has that `before` has not, the other way round, and those whose version differs (by name and arch). */
export function diffPackages(before: ImagePackage[], after: ImagePackage[]): PackageChanges {
  const key = (p: ImagePackage) => `${p.name}\u0000${p.arch}`;
  const old = new Map(before.map((p) => [key(p), p]));
  const now = new Map(after.map((p) => [key(p), p]));
  const changes: PackageChanges = { added: [], removed: [], changed: [] };
  for (const p of after) {
    const was = old.get(key(p));
    if (!was) changes.added.push({ name: p.name, version: p.version, arch: p.arch });
    else if (was.version !== p.version) changes.changed.push({ name: p.name, arch: p.arch, from: was.version, to: p.version });
  }
  for (const p of before) if (!now.has(key(p))) changes.removed.push({ name: p.name, version: p.version, arch: p.arch });
  changes.added.sort(comparePackages);
  changes.removed.sort(comparePackages);
  changes.changed.sort(comparePackages);
  return changes;
}

const noPackages = (id: string) => new NotFoundError(`Image ${id} has no package list. Package lists are kept for the images that jobs make, and for images whose manifest lists an artifact of type ${PACKAGES_TYPE}.`);
const noChanges = (id: string) => new NotFoundError(`Image ${id} has no change report. Change reports are kept for the images that customize jobs make, and for images whose manifest lists an artifact of type ${CHANGES_TYPE}.`);
const unreadable = (id: string, what: string) => new NotFoundError(`The ${what} of image ${id} cannot be read: its artifact is missing or malformed.`);

/** The live image, or the original's 404. */
async function liveImage(ctx: DomainContext, id: string): Promise<ImageRecord> {
  const stored = await ctx.store.get<ImageRecord>('image', id);
  if (!stored || stored.state !== 'live') throw new NotFoundError();
  return stored.record;
}

/** The text of the image's artifact of `type`; undefined when its manifest lists none. */
async function artifactText(ctx: DomainContext, image: ImageRecord, type: string, what: string): Promise<string | undefined> {
  const at = image.link ? parseS3Path(image.link.path) : undefined;
  if (!at) return undefined;
  const manifest = await readJsonObject(ctx.artifacts, at, ctx.settings.maxManifestBytes);
  const entries = Array.isArray(manifest?.artifacts) ? (manifest.artifacts as Record<string, unknown>[]) : [];
  const entry = entries.find((a) => a && typeof a === 'object' && a.type === type);
  if (!entry) return undefined;
  const path = (entry.link as Record<string, unknown> | undefined)?.path;
  const location = typeof path === 'string' ? parseS3Path(path) : undefined;
  if (!location) throw unreadable(image.id, what);
  try {
    const text = await ctx.artifacts.readText(location, MAX_CONTENTS_BYTES);
    if (text === undefined) throw unreadable(image.id, what);
    return text;
  } catch (error) {
    if (error instanceof ObjectTooLargeError) throw unreadable(image.id, what);
    throw error;
  }
}

/** The image's packages, sorted by name; 404 when the image is unknown or has no package list. */
export async function imagePackages(ctx: DomainContext, id: string): Promise<ImagePackage[]> {
  const image = await liveImage(ctx, id);
  const text = await artifactText(ctx, image, PACKAGES_TYPE, 'package list');
  if (text === undefined) throw noPackages(id);
  try {
    return parsePackageList(text);
  } catch {
    throw unreadable(id, 'package list');
  }
}

/** How the packages of `otherId` differ from those of `id` (`id` is the one compared to: added = in `id`, not in `otherId`). */
export async function comparePackageLists(ctx: DomainContext, id: string, otherId: string): Promise<PackageChanges> {
  const [mine, theirs] = await Promise.all([imagePackages(ctx, id), imagePackages(ctx, otherId)]);
  return diffPackages(theirs, mine);
}

/** The change report of the customize job that made the image; 404 when there is none. */
export async function imageChanges(ctx: DomainContext, id: string): Promise<ChangeReport> {
  const image = await liveImage(ctx, id);
  const text = await artifactText(ctx, image, CHANGES_TYPE, 'change report');
  if (text === undefined) throw noChanges(id);
  try {
    const report = JSON.parse(text) as ChangeReport;
    if (!report || typeof report !== 'object' || !report.files || !report.packages) throw new Error('not a report');
    return report;
  } catch {
    throw unreadable(id, 'change report');
  }
}

/** Where an image came from: kept per image when a job registers it. */
export interface LineageRecord {
  image_id: string;
  parent_kind: 'image' | 'recipe';
  parent_id: string;
  job_id: string;
}

/** Records where a job's image came from; recording it again changes nothing. */
export async function recordLineage(ctx: DomainContext, entry: LineageRecord): Promise<void> {
  await ctx.store.create<LineageRecord>('lineage', entry.image_id, entry, sortableTimestamp(ctx.clock.nowMicros()));
}

export interface LineageEntry {
  id: string;
  name: string | null;
  kind: 'image' | 'recipe';
  /** The job that made it (null for an image registered by hand, and for a recipe). */
  job_id: string | null;
  created: string | null;
  deleted: boolean;
  /** The record itself is gone (hard-deleted); its id is still known from its descendants. */
  missing?: boolean;
  /** The image or recipe this one was made from (descendants only). */
  parent_id?: string;
}

export interface Lineage {
  id: string;
  /** Nearest first: images, then the recipe at the root of a created image. */
  ancestors: LineageEntry[];
  /** Every image made from this one, transitively, nearest generation first. */
  descendants: LineageEntry[];
}

async function describe(ctx: DomainContext, kind: 'image' | 'recipe', id: string, jobId: string | null): Promise<LineageEntry> {
  const stored = await ctx.store.get<ImageRecord | RecipeRecord>(kind, id);
  if (!stored) return { id, name: null, kind, job_id: jobId, created: null, deleted: false, missing: true };
  const state: RecordState = stored.state;
  return { id, name: stored.record.name, kind, job_id: jobId, created: stored.record.created, deleted: state === 'deleted' };
}

/** Longest chain followed either way: lineage is acyclic by construction, this only bounds damage. */
const MAX_GENERATIONS = 1000;

/** The image's ancestors and descendants (soft-deleted ones included and marked); 404 for an unknown image. */
export async function imageLineage(ctx: DomainContext, id: string): Promise<Lineage> {
  const image = await ctx.store.get<ImageRecord>('image', id);
  if (!image || image.state !== 'live') throw new NotFoundError();
  const ancestors: LineageEntry[] = [];
  const seen = new Set([id]);
  let at = (await ctx.store.get<LineageRecord>('lineage', id))?.record;
  while (at && !seen.has(at.parent_id) && ancestors.length < MAX_GENERATIONS) {
    seen.add(at.parent_id);
    const parentLineage = at.parent_kind === 'image' ? (await ctx.store.get<LineageRecord>('lineage', at.parent_id))?.record : undefined;
    ancestors.push(await describe(ctx, at.parent_kind, at.parent_id, parentLineage?.job_id ?? null));
    at = parentLineage;
  }
  const descendants: LineageEntry[] = [];
  let generation = [id];
  for (let depth = 0; generation.length > 0 && depth < MAX_GENERATIONS; depth++) {
    const next: string[] = [];
    for (const parent of generation) {
      for (const child of await childrenOf(ctx, parent)) {
        if (seen.has(child.image_id)) continue;
        seen.add(child.image_id);
        descendants.push({ ...(await describe(ctx, 'image', child.image_id, child.job_id)), parent_id: parent });
        next.push(child.image_id);
      }
    }
    generation = next;
  }
  return { id, ancestors, descendants };
}

async function childrenOf(ctx: DomainContext, parentId: string): Promise<LineageRecord[]> {
  const children: LineageRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await ctx.store.list<LineageRecord>('lineage', 'live', { slots: [`parent=${parentId}`], limit: 1000, cursor });
    children.push(...page.items.map((item) => item.record));
    cursor = page.cursor;
  } while (cursor);
  return children;
}
