/**
 * prepare: fetch what the job starts from. Customize: the rootfs, unsquashed into the image
 * root (status fetching_image). Create: the recipe archive, unpacked and templated (status
 * fetching_recipe), then a wait until the recipe's http(s) repositories answer (status
 * waiting_for_repos), as the original's fetch-recipe and wait-for-repos init containers do.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageProgress } from '../../domain/worker-port.js';
import { isHttp, kiwiRepositories, unansweredRepositories } from './kiwi-repos.js';
import { exists, pollStep, type LocalJob } from './local-job.js';
import { RecipeTemplateError, renderRecipe } from './recipe-template.js';

/** Seconds one repository probe may take; a poll should stay quick. */
const PROBE_TIMEOUT_MS = 5000;

/** What fetch.sh fetches for each job type: the download's file name, where it unpacks, and with what. */
const FETCHES = {
  image: { download: 'image.sqsh', target: (job: LocalJob) => job.paths.imageRoot, unpack: 'unsquashfs', status: 'fetching_image' },
  recipe: { download: 'recipe.archive', target: (job: LocalJob) => job.paths.recipe, unpack: 'tar', status: 'fetching_recipe' },
} as const;

/** Downloads the job's artifact (md5 checked) and unpacks it; undefined once done. */
function fetchArtifact(job: LocalJob, kind: keyof typeof FETCHES): Promise<StageProgress | undefined> {
  const fetch = FETCHES[kind];
  return pollStep(job, {
    name: 'fetch',
    script: 'fetch.sh',
    vars: { KIND: kind, URL: job.job.downloadUrl, MD5: job.job.downloadMd5, DOWNLOAD: join(job.paths.dir, fetch.download), TARGET: fetch.target(job) },
    log: 'prepare.log',
    tools: ['curl', 'md5sum', fetch.unpack],
    status: fetch.status,
    what: `fetching the ${kind}`,
  });
}

export async function prepareImage(job: LocalJob): Promise<StageProgress> {
  return (await fetchArtifact(job, 'image')) ?? { state: 'done', status: 'fetching_image' };
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
