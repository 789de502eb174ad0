import '#shared/workers/kubernetes/register.js';
import '#shared/workers/remote-node/register.js';
import '#shared/workers/local/register.js';
import { enterWaitingStage, type WaitingStageInput } from '#shared/workflow/stages.js';
import { appContext } from '#shared/wiring.js';
import { lambdaHandler } from '#shared/observability.js';

/** Workflow stage `prepare`: parks the task token, starts or checks the worker's work, and resumes the execution when it is done. */
export const handler = lambdaHandler(async (input: Omit<WaitingStageInput, 'stage'>): Promise<void> => enterWaitingStage(appContext(), { ...input, stage: 'prepare' }));
