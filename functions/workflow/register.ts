import { runRegisterStage, type StageInput } from '#shared/workflow/stages.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { WORKERS } from '#shared/worker-table.js';
import { lambdaHandler } from '#shared/observability.js';

/** Workflow stage `register`: uploads or checks the artifacts, creates the image record, ends in success. */
export const handlerWith =
  (context: () => AppContext) =>
  async (input: StageInput) =>
    runRegisterStage(context(), input);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = lambdaHandler(handlerWith(contextFrom(process.env, { workers: WORKERS })));
