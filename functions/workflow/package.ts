import { enterWaitingStage, type WaitingStageInput } from '#shared/workflow/stages.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { WORKERS } from '#shared/worker-table.js';
import { lambdaHandler } from '#shared/observability.js';

/** Workflow stage `package`: parks the task token, starts or checks the worker's work, and resumes the execution when it is done. */
export const handlerWith =
  (context: () => AppContext) =>
  async (input: Omit<WaitingStageInput, 'stage'>): Promise<void> =>
    enterWaitingStage(context(), { ...input, stage: 'package' });

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = lambdaHandler(handlerWith(contextFrom(process.env, { workers: WORKERS })));
