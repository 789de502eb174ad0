import { InvalidInputError, PatchConflictError } from './errors.js';
import { getInState, mutate, removeInState } from './lifecycle.js';
import {
  claimLink,
  cannotValidateArtifact,
  copyForMove,
  deletedLocation,
  parseS3Path,
  releaseLink,
  requireArtifact,
  restoredLocation,
  sameLink,
} from './links.js';
import { formatTimestamp, sortableTimestamp } from './time.js';
import { forEachRecord, markDeleted, markLive, purge, withArtifactLease, type DeleteMode } from './soft-delete.js';
import type { DomainContext } from './context.js';
import type { ArtifactLink, Deleted, RecipeRecord, RecordState, TemplateValue } from './records.js';

const KIND = 'recipe';

export type RecipeInput = Omit<RecipeRecord, 'id' | 'created'>;

export interface RecipePatch {
  link?: ArtifactLink;
  arch?: RecipeRecord['arch'];
  require_dkms?: boolean;
  template_dictionary?: TemplateValue[] | null;
}

/**
 * A recipe's link must name a location its download URL can be signed for (a job fetches the
 * archive through it): deployed, the signing key may read only some prefixes, and a link
 * elsewhere would be accepted now and answer 403 to every job later.
 */
function requireSignableLocation(ctx: DomainContext, link: ArtifactLink): void {
  const prefixes = ctx.settings.recipeLinkPrefixes;
  if (!prefixes || prefixes.some((prefix) => link.path.startsWith(prefix))) return;
  const where = prefixes.join(', ');
  throw new InvalidInputError(
    `The link path ${link.path} is outside the locations this service can give download URLs for (${where}), so no job could fetch the recipe. Store the archive under one of them and re-run the request with valid information.`,
    { link: { path: [`Must start with one of: ${where}.`] } },
  );
}

/**
 * `id` is chosen by callers that may repeat themselves (a re-delivered upload event): when a
 * record with that id exists already, the repeat returns it instead of writing a second one.
 */
export async function createRecipe(ctx: DomainContext, input: RecipeInput, id: string = ctx.ids.newId()): Promise<RecipeRecord> {
  const micros = ctx.clock.nowMicros();
  const record: RecipeRecord = {
    id,
    created: formatTimestamp(micros),
    name: input.name,
    recipe_type: input.recipe_type,
    linux_distribution: input.linux_distribution,
    link: input.link,
    template_dictionary: input.template_dictionary,
    require_dkms: input.require_dkms,
    arch: input.arch,
  };
  if (record.link) {
    requireSignableLocation(ctx, record.link);
    await claimLink(ctx.store, KIND, record.link.path, record.id);
    try {
      await requireArtifact(ctx.artifacts, record.link);
      if (!(await ctx.store.create(KIND, record.id, record, sortableTimestamp(micros)))) return await getRecipe(ctx, id);
    } catch (error) {
      await releaseLink(ctx.store, KIND, record.link.path, record.id);
      throw error;
    }
  } else if (!(await ctx.store.create(KIND, record.id, record, sortableTimestamp(micros)))) {
    return getRecipe(ctx, id);
  }
  return record;
}

export async function getRecipe(ctx: DomainContext, id: string, state: RecordState = 'live') {
  return (await getInState<RecipeRecord>(ctx.store, KIND, id, state)).record;
}

/** Every check runs before the single conditional write: the patch applies wholly or not at all. */
export async function patchRecipe(ctx: DomainContext, id: string, patch: RecipePatch, sentLink?: Record<string, unknown>): Promise<RecipeRecord> {
  let claimed: string | undefined;
  try {
    const updated = await mutate<RecipeRecord>(ctx.store, KIND, id, 'live', async ({ record }) => {
      const next: RecipeRecord = { ...record };
      if (patch.link) {
        if (record.link) {
          if (!sameLink(record.link, sentLink ?? patch.link)) throw new PatchConflictError();
        } else {
          if (claimed !== patch.link.path) {
            requireSignableLocation(ctx, patch.link);
            await claimLink(ctx.store, KIND, patch.link.path, id);
            claimed = patch.link.path;
          }
          await requireArtifact(ctx.artifacts, patch.link);
          next.link = patch.link;
        }
      }
      if (patch.arch !== undefined) next.arch = patch.arch;
      if (patch.require_dkms !== undefined) next.require_dkms = patch.require_dkms;
      if (patch.template_dictionary !== undefined) next.template_dictionary = patch.template_dictionary;
      return { record: next, state: 'live' };
    });
    return updated!;
  } catch (error) {
    if (claimed) await releaseLink(ctx.store, KIND, claimed, id);
    throw error;
  }
}

async function removeLinkedObject(ctx: DomainContext, link: ArtifactLink | null): Promise<void> {
  const location = link ? parseS3Path(link.path) : undefined;
  if (!location) return;
  try {
    await ctx.artifacts.remove(location);
  } catch {
    // The original ignores failures to remove artifacts; the record goes regardless.
  }
}

/** Delete, undelete and purge hold the recipe's artifact lease, so that they never interleave. */
export function deleteRecipe(ctx: DomainContext, id: string, mode: DeleteMode, cascade = true): Promise<void> {
  return withArtifactLease(ctx, KIND, id, () => deleteRecipeHoldingLease(ctx, id, mode, cascade));
}

async function deleteRecipeHoldingLease(ctx: DomainContext, id: string, mode: DeleteMode, cascade: boolean): Promise<void> {
  if (mode === 'hard') {
    let link: ArtifactLink | null = null;
    await removeInState<RecipeRecord>(ctx.store, KIND, id, 'live', async ({ record }) => {
      link = record.link;
      if (cascade) await removeLinkedObject(ctx, record.link);
    });
    await releaseLink(ctx.store, KIND, (link as ArtifactLink | null)?.path, id);
    return;
  }
  const { record } = await getInState<RecipeRecord>(ctx.store, KIND, id, 'live');
  const source = record.link ? parseS3Path(record.link.path) : undefined;
  // Copy first, then the record, then remove the original: a crash at any point leaves the
  // archive in at least one place the record (or a retry) knows about.
  const moved = source ? await copyForMove(ctx.artifacts, source, deletedLocation(source)).catch(() => undefined) : undefined;
  await markDeleted<RecipeRecord>(ctx, KIND, id, moved ? { link: moved } : {});
  if (source && moved) await ctx.artifacts.remove(source);
  await releaseLink(ctx.store, KIND, record.link?.path, id);
}

export async function deleteAllRecipes(ctx: DomainContext, mode: DeleteMode, cascade = true): Promise<void> {
  await forEachRecord<RecipeRecord>(ctx, KIND, 'live', (id) => deleteRecipe(ctx, id, mode, cascade));
}

export function undeleteRecipe(ctx: DomainContext, id: string): Promise<void> {
  return withArtifactLease(ctx, KIND, id, () => undeleteRecipeHoldingLease(ctx, id));
}

async function undeleteRecipeHoldingLease(ctx: DomainContext, id: string): Promise<void> {
  const { record } = await getInState<Deleted<RecipeRecord>>(ctx.store, KIND, id, 'deleted');
  const deletedAt = record.link ? parseS3Path(record.link.path) : undefined;
  const original = deletedAt ? restoredLocation(deletedAt) : undefined;
  if (!record.link || !deletedAt || !original) {
    // Never moved (no link, or the soft delete could not move it): the link stays as it is.
    if (record.link) await claimLink(ctx.store, KIND, record.link.path, id);
    await markLive<RecipeRecord>(ctx, KIND, id);
    return;
  }
  const originalPath = `s3://${original.bucket}/${original.key}`;
  await claimLink(ctx.store, KIND, originalPath, id);
  try {
    const restored = await copyForMove(ctx.artifacts, deletedAt, original);
    if (!restored) throw cannotValidateArtifact(record.link);
    await markLive<RecipeRecord>(ctx, KIND, id, { link: restored });
  } catch (error) {
    await releaseLink(ctx.store, KIND, originalPath, id);
    throw error;
  }
  await ctx.artifacts.remove(deletedAt);
}

export async function undeleteAllRecipes(ctx: DomainContext): Promise<void> {
  await forEachRecord(ctx, KIND, 'deleted', (id) => undeleteRecipe(ctx, id));
}

export async function purgeRecipe(ctx: DomainContext, id: string): Promise<void> {
  await withArtifactLease(ctx, KIND, id, () => purge<RecipeRecord>(ctx, KIND, id, ({ record }) => removeLinkedObject(ctx, record.link)));
}

export async function purgeAllRecipes(ctx: DomainContext): Promise<void> {
  await forEachRecord(ctx, KIND, 'deleted', (id) => purgeRecipe(ctx, id));
}

