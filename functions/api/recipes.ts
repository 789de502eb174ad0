import { createApiHandler } from '#shared/http/api-handler.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { cascadeOf, created, deleteModeOf, noContent, ok } from '#shared/http/results.js';
import { getRecipe } from '#shared/domain/recipes.js';
import { listResult } from '#shared/http/list-response.js';
import { createRecipe, deleteAllRecipes, deleteRecipe, patchRecipe, type RecipeInput, type RecipePatch } from '#shared/domain/recipes.js';
import type { ApiHandler, Operations } from '#shared/http/types.js';

const operations: Operations = {
  'recipes.collection GET': { run: (r) => listResult(r, r.path, { kind: 'recipe', allow: { arch: true } }) },
  'recipes.collection POST': {
    body: { schema: 'RecipeCreate' },
    run: async (r) => created(await createRecipe(r.app, r.body as RecipeInput)),
  },
  'recipes.collection DELETE': {
    run: async (r) => {
      await deleteAllRecipes(r.app, deleteModeOf(r), cascadeOf(r));
      return noContent();
    },
  },
  'recipes.item GET': { run: async (r) => ok(await getRecipe(r.app, r.params.recipe_id)) },
  'recipes.item PATCH': {
    precheck: async (r) => void (await getRecipe(r.app, r.params.recipe_id)),
    body: { schema: 'RecipePatch' },
    run: async (r) => {
      const sentLink = (r.rawBody as { link?: Record<string, unknown> }).link;
      return ok(await patchRecipe(r.app, r.params.recipe_id, r.body as RecipePatch, sentLink));
    },
  },
  'recipes.item DELETE': {
    run: async (r) => {
      await deleteRecipe(r.app, r.params.recipe_id, deleteModeOf(r), cascadeOf(r));
      return noContent();
    },
  },
};

export const handlerWith = (context: () => AppContext): ApiHandler => createApiHandler('recipes', operations, context);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = handlerWith(contextFrom(process.env));
