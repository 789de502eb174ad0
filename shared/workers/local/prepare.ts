/**
 * prepare: fetch what the job starts from. Customize: the rootfs, checksummed as it streams and
 * mounted read-only under an overlay that is the image root, or unsquashed into it where the
 * kernel cannot mount it (status fetching_image). Create: the recipe archive, unpacked and templated (status
 * fetching_recipe), then a wait until the recipe's http(s) repositories answer (status
 * waiting_for_repos), as the original's fetch-recipe and wait-for-repos init containers do.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageProgress } from '../../domain/worker-port.js';
import { isHttp, kiwiRepositories, unansweredRepositories } from './kiwi-repos.js';
import { exists, pollStep, type LocalJob } from './local-job.js';
import { mountsUnder } from './mounts.js';
import { RecipeTemplateError, renderRecipe } from './recipe-template.js';

/** Seconds one repository probe may take; a poll should stay quick. */
const PROBE_TIMEOUT_MS = 5000;

/** What fetch.sh fetches for each job type: the download's file name, where it unpacks, and with what. */
const FETCHES = {
  image: {
    download: (job: LocalJob) => job.paths.source,
    target: (job: LocalJob) => job.paths.imageRoot,
    tools: ['curl', 'md5sum', 'mount', 'umount', 'unsquashfs'],
    status: 'fetching_image',
    vars: (job: LocalJob): Record<string, string> => ({
      OVERLAY: job.settings.overlay ? 'on' : 'off',
      LOWER: job.paths.lower,
      UPPER: job.paths.upper,
      OVERLAY_WORK: job.paths.overlayWork,
      MODE_FILE: job.paths.imageRootMode,
    }),
  },
  recipe: {
    download: (job: LocalJob) => join(job.paths.dir, 'recipe.archive'),
    target: (job: LocalJob) => job.paths.recipe,
    tools: ['curl', 'md5sum', 'tar'],
    status: 'fetching_recipe',
    vars: (): Record<string, string> => ({}),
  },
} as const;

/** Downloads the job's artifact (md5 checked) and unpacks it; undefined once done. */
function fetchArtifact(job: LocalJob, kind: keyof typeof FETCHES): Promise<StageProgress | undefined> {
  const fetch = FETCHES[kind];
  return pollStep(job, {
    name: 'fetch',
    script: 'fetch.sh',
    vars: { KIND: kind, URL: job.job.downloadUrl, MD5: job.job.downloadMd5, DOWNLOAD: fetch.download(job), TARGET: fetch.target(job), ...fetch.vars(job) },
    log: 'prepare.log',
    tools: fetch.tools,
    status: fetch.status,
    what: `fetching the ${kind}`,
  });
}

export async function prepareImage(job: LocalJob): Promise<StageProgress> {
  const step = await fetchArtifact(job, 'image');
  if (step) return step;
  const mode = (await readFile(job.paths.imageRootMode, 'utf8').catch(() => 'overlay')).trim();
  if (mode === 'overlay') return { state: 'done', status: 'fetching_image', detail: 'the image root is an overlay on the rootfs, mounted read-only' };
  // Said once, in the worker's log and (as the stage's detail) in the job's history.
  const detail = `the rootfs was unsquashed into the image root: the overlay could not be used (${mode.replace(/^unsquashfs \(|\)$/g, '')})`;
  const noted = join(job.paths.state, 'image-root-noted');
  if (!(await exists(noted))) {
    await job.log(detail);
    await writeFile(noted, '');
  }
  return { state: 'done', status: 'fetching_image', detail };
}

/**
 * Why a customize job's image root is no longer what prepare made, or undefined: an overlay
 * does not survive a reboot of the host (its work directory does), and an empty image root must
 * not be shelled into or packaged.
 */
export async function lostImageRoot(job: LocalJob): Promise<string | undefined> {
  if (job.job.job.job_type !== 'customize') return undefined;
  const mode = await readFile(job.paths.imageRootMode, 'utf8').catch(() => undefined);
  if (mode?.trim() !== 'overlay' || (await mountsUnder(job.paths.imageRoot)).includes(job.paths.imageRoot)) return undefined;
  return 'the image root (an overlay on the rootfs) is no longer mounted: the host restarted since the job prepared it';
}

export async function prepareRecipe(job: LocalJob): Promise<StageProgress> {
  const step = await fetchArtifact(job, 'recipe');
  if (step) return step;
  const rendered = await renderOnce(job);
  if (rendered) return rendered;
  return waitForRepositories(job);
}

async function renderOnce(job: LocalJob): Promise<StageProgress | undefined> {
  const marker = join(job.paths.state, 'recipe-rendered');
  if (await exists(marker)) return undefined;
  try {
    const files = await renderRecipe(job.paths.recipe, job.job.templateDictionary ?? {});
    await job.log(files.length ? `recipe templates rendered: ${files.join(', ')}` : 'recipe has nothing to render');
  } catch (error) {
    if (!(error instanceof RecipeTemplateError)) throw error;
    const reason = `the recipe cannot be rendered: ${error.message}`;
    await job.log(reason);
    return { state: 'failed', reason };
  }
  await writeFile(marker, new Date().toISOString());
  return undefined;
}

/** kiwi reads config.xml, or else the one *.kiwi file of the description. */
async function configFile(recipeDir: string): Promise<string | undefined> {
  if (await exists(join(recipeDir, 'config.xml'))) return join(recipeDir, 'config.xml');
  const kiwi = (await readdir(recipeDir).catch(() => [] as string[])).filter((n) => n.endsWith('.kiwi'));
  return kiwi.length === 1 ? join(recipeDir, kiwi[0]) : undefined;
}

interface RepoWait {
  startedMs: number;
}

async function waitForRepositories(job: LocalJob): Promise<StageProgress> {
  const config = await configFile(job.paths.recipe);
  if (!config) return { state: 'failed', reason: 'the recipe has no kiwi description (config.xml) at its top level' };
  const repos = kiwiRepositories(await readFile(config, 'utf8')).filter(isHttp);
  // The original fails a recipe without http(s) repositories; there is simply nothing to wait for.
  if (repos.length === 0) {
    await job.log('the recipe has no http(s) repositories to wait for');
    return { state: 'done', status: 'waiting_for_repos' };
  }
  const statePath = join(job.paths.state, 'repo-wait.json');
  let wait: RepoWait;
  try {
    wait = JSON.parse(await readFile(statePath, 'utf8')) as RepoWait;
  } catch {
    wait = { startedMs: Date.now() };
    await writeFile(statePath, JSON.stringify(wait));
    await job.log(`waiting for the recipe's repositories: ${repos.map((r) => r.path).join(', ')}`);
  }
  const unanswered = await unansweredRepositories(repos, PROBE_TIMEOUT_MS);
  if (unanswered.length === 0) {
    await job.log('every repository answers');
    return { state: 'done', status: 'waiting_for_repos' };
  }
  const waited = (Date.now() - wait.startedMs) / 1000;
  if (waited > job.settings.repoWaitSeconds) {
    const reason = `the recipe's repositories did not answer within ${job.settings.repoWaitSeconds} s: ${unanswered.join(', ')}`;
    await job.log(reason);
    return { state: 'failed', reason };
  }
  return { state: 'running', status: 'waiting_for_repos', detail: `waiting for ${unanswered.join(', ')}` };
}
