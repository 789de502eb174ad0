import { createApiHandler } from '#shared/http/api-handler.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { noContent, ok } from '#shared/http/results.js';
import * as images from '#shared/domain/images.js';
import * as publicKeys from '#shared/domain/public-keys.js';
import * as recipes from '#shared/domain/recipes.js';
import type { DomainContext } from '#shared/domain/context.js';
import type { RecordKind } from '#shared/domain/records.js';
import { listResult } from '#shared/http/list-response.js';
import type { ApiHandler, Operations } from '#shared/http/types.js';

interface DeletedKind {
  name: string;
  kind: RecordKind;
  idParam: string;
  get: (ctx: DomainContext, id: string) => Promise<unknown>;
  undelete: (ctx: DomainContext, id: string) => Promise<void>;
  undeleteAll: (ctx: DomainContext) => Promise<void>;
  purge: (ctx: DomainContext, id: string) => Promise<void>;
  purgeAll: (ctx: DomainContext) => Promise<void>;
}

const kinds: DeletedKind[] = [
  {
    name: 'public-keys',
    kind: 'public-key',
    idParam: 'public_key_id',
    get: (c, id) => publicKeys.getPublicKey(c, id, 'deleted'),
    undelete: publicKeys.undeletePublicKey,
    undeleteAll: publicKeys.undeleteAllPublicKeys,
    purge: publicKeys.purgePublicKey,
    purgeAll: publicKeys.purgeAllPublicKeys,
  },
  {
    name: 'recipes',
    kind: 'recipe',
    idParam: 'recipe_id',
    get: (c, id) => recipes.getRecipe(c, id, 'deleted'),
    undelete: recipes.undeleteRecipe,
    undeleteAll: recipes.undeleteAllRecipes,
    purge: recipes.purgeRecipe,
    purgeAll: recipes.purgeAllRecipes,
  },
  {
    name: 'images',
    kind: 'image',
    idParam: 'image_id',
    get: (c, id) => images.getImage(c, id, 'deleted'),
    undelete: images.undeleteImage,
    undeleteAll: images.undeleteAllImages,
    purge: images.purgeImage,
    purgeAll: images.purgeAllImages,
  },
];

const operations: Operations = Object.fromEntries(
  kinds.flatMap((k) => [
    [`deleted.${k.name}.collection GET`, { run: (r) => listResult(r, r.path, { kind: k.kind, state: 'deleted', allow: { arch: k.kind !== 'public-key', metadata: k.kind === 'image' } }) }],
    [
      `deleted.${k.name}.collection PATCH`,
      { body: { schema: 'DeletedPatch' }, run: async (r) => (await k.undeleteAll(r.app), noContent()) },
    ],
    [`deleted.${k.name}.collection DELETE`, { run: async (r) => (await k.purgeAll(r.app), noContent()) }],
    [`deleted.${k.name}.item GET`, { run: async (r) => ok(await k.get(r.app, r.params[k.idParam])) }],
    [
      `deleted.${k.name}.item PATCH`,
      {
        precheck: async (r) => void (await k.get(r.app, r.params[k.idParam])),
        body: { schema: 'DeletedPatch' },
        run: async (r) => (await k.undelete(r.app, r.params[k.idParam]), noContent()),
      },
    ],
    [`deleted.${k.name}.item DELETE`, { run: async (r) => (await k.purge(r.app, r.params[k.idParam]), noContent()) }],
  ]),
) as Operations;

export const handlerWith = (context: () => AppContext): ApiHandler => createApiHandler('deleted', operations, context);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = handlerWith(contextFrom(process.env));
