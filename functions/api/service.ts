import { createApiHandler } from '#shared/http/api-handler.js';
import { ok } from '#shared/http/results.js';
import type { Operations } from '#shared/http/types.js';

const operations: Operations = {
  'healthz.ready GET': { run: async () => ok({}) },
  'healthz.live GET': { run: async () => ok({}) },
  'version GET': { run: async (r) => ok({ version: r.app.config.version }) },
};

/** Health, version, and the API's catch-all route (unknown URLs get the original's 404 problem). */
export const handler = createApiHandler('service', operations);
