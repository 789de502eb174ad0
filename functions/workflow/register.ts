import '#shared/workers/kubernetes/register.js';
import '#shared/workers/remote-node/register.js';
import '#shared/workers/local/register.js';
import { runRegisterStage, type StageInput } from '#shared/workflow/stages.js';
import { appContext } from '#shared/wiring.js';
import { lambdaHandler } from '#shared/observability.js';

/** Workflow stage `register`: uploads or checks the artifacts, creates the image record, ends in success. */
export const handler = lambdaHandler(async (input: StageInput) => runRegisterStage(appContext(), input));
