import { runCleanupStage, type CleanupInput } from '#shared/workflow/stages.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { WORKERS } from '#shared/worker-table.js';
import { lambdaHandler } from '#shared/observability.js';

/** Workflow stage `cleanup`: records the error on failure paths, then removes what the worker created. */
export const handlerWith =
  (context: () => AppContext) =>
  async (input: CleanupInput) =>
    runCleanupStage(context(), input);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = lambdaHandler(handlerWith(contextFrom(process.env, { workers: WORKERS })));
