/**
 * build (create only): kiwi-ng prepares the image root from the recipe (status
 * building_image). A failed build fails the job, unless enable_debug is set: then, as in the
 * original, the failure is noted (build_failed) and the ssh stage opens the debug shell; the job
 * ends in error once the user is done.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageProgress } from '../../domain/worker-port.js';
import { missingTools, type Tool } from './host-tools.js';
import { exists, pollStep, type LocalJob } from './local-job.js';

const TOOLS: readonly Tool[] = ['kiwi-ng', 'gpg', 'rsync', 'unshare', 'flock', 'dpkg-query'];

export async function build(job: LocalJob): Promise<StageProgress> {
  const record = job.job.job;
  if (record.job_type !== 'create') return { state: 'done' };
  if (job.job.recipeType && job.job.recipeType !== 'kiwi-ng') {
    return { state: 'failed', reason: `the local worker builds kiwi-ng recipes only, not ${job.job.recipeType}` };
  }
  if (await exists(job.paths.buildFailed)) return { state: 'done', detail: 'the build failed; the debug shell opens' };
  // A host without kiwi is no failed build to debug.
  const missing = missingTools(TOOLS);
  if (missing) return { state: 'failed', reason: `kiwi-ng system prepare is not possible: ${missing}` };
  const step = await pollStep(job, {
    name: 'build',
    script: 'kiwi-prepare.sh',
    vars: {
      RECIPE: job.paths.recipe,
      ROOT: job.paths.imageRoot,
      LOGS: job.paths.logs,
      GNUPGHOME: join(job.paths.dir, 'gnupg'),
      KIWI_LOCK: job.settings.kiwiLock,
      DEBUG: record.enable_debug ? '1' : '',
      PACKAGES: job.paths.packages,
    },
    log: 'build.log',
    tools: TOOLS,
    status: 'building_image',
    what: 'kiwi-ng system prepare',
  });
  if (step?.state === 'failed' && record.enable_debug) {
    await writeFile(job.paths.buildFailed, step.reason);
    await job.log('enable_debug: the debug shell opens for the failed build');
    return { state: 'done', detail: 'the build failed; the debug shell opens' };
  }
  return step ?? { state: 'done', status: 'building_image' };
}
