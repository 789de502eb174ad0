import { createApiHandler } from '#shared/http/api-handler.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { ok } from '#shared/http/results.js';
import type { ApiHandler, Operations } from '#shared/http/types.js';

const operations: Operations = {
  'healthz.ready GET': { run: async () => ok({}) },
  'healthz.live GET': { run: async () => ok({}) },
  'version GET': { run: async (r) => ok({ version: r.app.config.version }) },
};

/** Health, version, and the API's catch-all route (unknown URLs get the original's 404 problem). */
export const handlerWith = (context: () => AppContext): ApiHandler => createApiHandler('service', operations, context);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = handlerWith(contextFrom(process.env));
