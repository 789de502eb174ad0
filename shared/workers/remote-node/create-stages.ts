/**
 * A create job on a remote build node: the recipe (a small archive) is fetched and templated on
 * this host, in a temporary directory, and copied to the node; kiwi-ng runs there in the builder
 * container (natively for the node's arch, no emulation); the root is squashed there too, and
 * the node uploads the results to S3 itself (results-upload.ts).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecipeTemplateError, renderRecipe } from '../local/recipe-template.js';
import { shq } from './ssh-session.js';
import type { Stage, StageProgress } from '../../domain/worker-port.js';
import { packageResults } from './results-upload.js';
import { BUILD_SCRIPT } from './node-scripts.js';
import { buildJobImage, COMMAND_TIMEOUT_MS, containerGone, jobEnv, makeJobDir, markPrepared, startContainer, type NodeJob } from './node-job.js';
import { downloadToFile } from './transfer.js';
import { startReporter } from './node-reports.js';

/** Runs tar on this host; rejects with its stderr. */
function tar(args: string[]): Promise<void> {
  const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar ${args[0]} failed: ${stderr.trim() || `exit ${code}`}`))));
  });
}

async function copyRecipe(n: NodeJob): Promise<StageProgress | undefined> {
  const work = await mkdtemp(join(tmpdir(), 'ims-recipe-'));
  const archive = join(work, 'recipe.tgz');
  const recipe = join(work, 'recipe');
  await mkdir(recipe);
  try {
    await downloadToFile(n.job.downloadUrl, archive, n.job.downloadMd5, 'recipe');
    // Any compression tar recognises, as the original's fetch accepts.
    await tar(['-xf', archive, '-C', recipe]);
    try {
      await renderRecipe(recipe, n.job.templateDictionary ?? {});
    } catch (error) {
      if (error instanceof RecipeTemplateError) return { state: 'failed', reason: `recipe templating failed: ${error.message}` };
      throw error;
    }
    // Packed to a file first: a child's output not yet read when it exits is discarded by Node.
    const packed = join(work, 'recipe.tar');
    await tar(['-cf', packed, '-C', recipe, '.']);
    const remote = `${n.layout.image}/recipe.tar`;
    await n.session.uploadFile(packed, remote);
    const target = `${n.layout.image}/recipe`;
    await n.session.run(`rm -rf ${shq(target)} && mkdir ${shq(target)} && tar -xf ${shq(remote)} -C ${shq(target)} && rm -f ${shq(remote)}`, {
      timeoutMs: COMMAND_TIMEOUT_MS,
    });
    return undefined;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function prepare(n: NodeJob): Promise<StageProgress> {
  if (n.view.markers.has('prepared')) return { state: 'done', status: 'fetching_recipe' };
  await makeJobDir(n);
  await startReporter(n);
  const failed = await copyRecipe(n);
  if (failed) return failed;
  await buildJobImage(n, n.settings.builderImage, { 'ims-build.sh': BUILD_SCRIPT }, 'ims-build.sh');
  await markPrepared(n);
  return { state: 'done', status: 'fetching_recipe', detail: `recipe copied to ${n.xname}:${n.layout.dir}` };
}

async function build(n: NodeJob): Promise<StageProgress> {
  const { view } = n;
  if (view.markers.has('image/build_succeeded')) return { state: 'done', detail: `built on ${n.xname}` };
  const failure = view.reasons['image/build_failed'];
  if (failure !== undefined) return { state: 'failed', reason: `the build on ${n.xname} failed: ${failure || 'no reason given'}` };
  if (view.container.kind === 'absent' && !view.markers.has('started')) {
    // kiwi needs privileges (bind mounts, chroot, device nodes) and, usually, its repositories.
    const failed = await startContainer(n, { privileged: true, network: n.settings.buildNetwork, env: jobEnv(n) });
    return failed ?? { state: 'running', status: 'building_image', detail: `kiwi-ng started on ${n.xname}` };
  }
  const gone = containerGone(n, 'builder', 'without a result');
  if (gone) return { state: 'failed', reason: gone };
  return { state: 'running', status: 'building_image', detail: `kiwi-ng running on ${n.xname}` };
}

export async function advanceCreate(n: NodeJob, stage: Exclude<Stage, 'register' | 'cleanup'>): Promise<StageProgress> {
  switch (stage) {
    case 'prepare':
      return prepare(n);
    case 'build':
      return build(n);
    case 'ssh':
      // A failed remote build ends at `build`: its root stays on no shell (as the original, whose
      // debug shell on a remote create had nothing to inspect).
      return { state: 'done' };
    case 'package':
      return packageResults(n, n.results);
  }
}
