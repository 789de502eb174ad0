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
import type { ApiHandler, Operations } from '#shared/http/types.js';

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
};

export const handlerWith = (context: () => AppContext): ApiHandler => createApiHandler('images', operations, context);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = handlerWith(contextFrom(process.env));
