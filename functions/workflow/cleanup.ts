import '#shared/workers/kubernetes/register.js';
import '#shared/workers/remote-node/register.js';
import '#shared/workers/local/register.js';
import { runCleanupStage, type CleanupInput } from '#shared/workflow/stages.js';
import { appContext } from '#shared/wiring.js';
import { lambdaHandler } from '#shared/observability.js';

/** Workflow stage `cleanup`: records the error on failure paths, then removes what the worker created. */
export const handler = lambdaHandler(async (input: CleanupInput) => runCleanupStage(appContext(), input));
