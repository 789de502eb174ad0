import { createApiHandler } from '#shared/http/api-handler.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { created, deleteModeOf, noContent, ok } from '#shared/http/results.js';
import { listResult } from '#shared/http/list-response.js';
import { createPublicKey, deleteAllPublicKeys, deletePublicKey, getPublicKey, type PublicKeyInput } from '#shared/domain/public-keys.js';
import type { ApiHandler, Operations } from '#shared/http/types.js';

const operations: Operations = {
  'public-keys.collection GET': { run: (r) => listResult(r, r.path, { kind: 'public-key' }) },
  'public-keys.collection POST': {
    body: { schema: 'PublicKeyCreate' },
    run: async (r) => created(await createPublicKey(r.app, r.body as PublicKeyInput)),
  },
  'public-keys.collection DELETE': {
    run: async (r) => {
      await deleteAllPublicKeys(r.app, deleteModeOf(r));
      return noContent();
    },
  },
  'public-keys.item GET': { run: async (r) => ok(await getPublicKey(r.app, r.params.public_key_id)) },
  'public-keys.item DELETE': {
    run: async (r) => {
      await deletePublicKey(r.app, r.params.public_key_id, deleteModeOf(r));
      return noContent();
    },
  },
};

export const handlerWith = (context: () => AppContext): ApiHandler => createApiHandler('public-keys', operations, context);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = handlerWith(contextFrom(process.env));
