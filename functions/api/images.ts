import { createApiHandler } from '#shared/http/api-handler.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { listResult } from '#shared/http/list-response.js';
import { cascadeOf, created, deleteModeOf, noContent, ok } from '#shared/http/results.js';
import {
  createImage,
  deleteAllImages,
  deleteImage,
  getImage,
  normalizeImageCreateBody,
  patchImage,
  type ImageInput,
  type ImagePatch,
} from '#shared/domain/images.js';
import { comparePackageLists, imageChanges, imageLineage, imagePackages } from '#shared/domain/image-contents.js';
import { InvalidRequestError } from '#shared/domain/errors.js';
import { canonicalUuid } from '#shared/domain/validation.js';
import type { ApiHandler, Operations } from '#shared/http/types.js';

/** `compare_to`: one image id, or none. */
function compareTo(query: Record<string, string[]>): string | undefined {
  const values = query.compare_to;
  if (!values) return undefined;
  const id = values.length === 1 ? canonicalUuid(values[0]) : undefined;
  if (!id) throw new InvalidRequestError('compare_to must be the id of one image (a UUID). Re-run the request with a valid image id.');
  return id;
}

const operations: Operations = {
  'images.collection GET': { run: (r) => listResult(r, r.path, { kind: 'image', allow: { arch: true, metadata: true } }) },
  'images.collection POST': {
    body: { schema: 'ImageCreate', prepare: normalizeImageCreateBody },
    run: async (r) => created(await createImage(r.app, r.body as ImageInput)),
  },
  'images.collection DELETE': {
    run: async (r) => {
      await deleteAllImages(r.app, deleteModeOf(r), cascadeOf(r));
      return noContent();
    },
  },
  'images.item GET': { run: async (r) => ok(await getImage(r.app, r.params.image_id)) },
  'images.item PATCH': {
    precheck: async (r) => void (await getImage(r.app, r.params.image_id)),
    body: { schema: 'ImagePatch' },
    run: async (r) => {
      const sentLink = (r.rawBody as { link?: Record<string, unknown> }).link;
      return ok(await patchImage(r.app, r.params.image_id, r.body as ImagePatch, sentLink));
    },
  },
  'images.item DELETE': {
    run: async (r) => {
      await deleteImage(r.app, r.params.image_id, deleteModeOf(r), cascadeOf(r));
      return noContent();
    },
  },
  'images.packages GET': {
    run: async (r) => {
      const other = compareTo(r.query);
      return ok(other === undefined ? await imagePackages(r.app, r.params.image_id) : await comparePackageLists(r.app, r.params.image_id, other));
    },
  },
  'images.changes GET': { run: async (r) => ok(await imageChanges(r.app, r.params.image_id)) },
  'images.lineage GET': { run: async (r) => ok(await imageLineage(r.app, r.params.image_id)) },
};

export const handlerWith = (context: () => AppContext): ApiHandler => createApiHandler('images', operations, context);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = handlerWith(contextFrom(process.env));
