/** The API handlers by group, exactly the modules CDK deploys as functions, served with one context. */
import { handlerWith as deleted } from '#functions/api/deleted.js';
import { handlerWith as images } from '#functions/api/images.js';
import { handlerWith as jobs } from '#functions/api/jobs.js';
import { handlerWith as publicKeys } from '#functions/api/public-keys.js';
import { handlerWith as recipes } from '#functions/api/recipes.js';
import { handlerWith as remoteBuildNodes } from '#functions/api/remote-build-nodes.js';
import { handlerWith as service } from '#functions/api/service.js';
import type { HandlerGroup } from '#shared/http/routes.js';
import type { ApiHandler } from '#shared/http/types.js';
import type { AppContext } from '#shared/wiring.js';

export function apiHandlers(context: () => AppContext): Record<HandlerGroup, ApiHandler> {
  return {
    service: service(context),
    'public-keys': publicKeys(context),
    recipes: recipes(context),
    images: images(context),
    deleted: deleted(context),
    'remote-build-nodes': remoteBuildNodes(context),
    jobs: jobs(context),
  };
}
