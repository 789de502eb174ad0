/** The API handlers by group, exactly the modules CDK deploys as functions. */
import { handler as deleted } from '#functions/api/deleted.js';
import { handler as images } from '#functions/api/images.js';
import { handler as jobs } from '#functions/api/jobs.js';
import { handler as publicKeys } from '#functions/api/public-keys.js';
import { handler as recipes } from '#functions/api/recipes.js';
import { handler as remoteBuildNodes } from '#functions/api/remote-build-nodes.js';
import { handler as service } from '#functions/api/service.js';
import type { HandlerGroup } from '#shared/http/routes.js';
import type { ApiHandler } from '#shared/http/types.js';

export const apiHandlers: Record<HandlerGroup, ApiHandler> = {
  service,
  'public-keys': publicKeys,
  recipes,
  images,
  deleted,
  'remote-build-nodes': remoteBuildNodes,
  jobs,
};
