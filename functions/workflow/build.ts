import '#shared/workers/kubernetes/register.js';
import '#shared/workers/remote-node/register.js';
import '#shared/workers/local/register.js';
import { runPolledStage, type StageInput } from '#shared/workflow/stages.js';
import { appContext } from '#shared/wiring.js';

/** Workflow stage `build`: advances the job's worker and reports running, done, failed or gone. */
export const handler = async (input: StageInput) => runPolledStage(appContext(), 'build', input);
