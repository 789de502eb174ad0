/**
 * ssh: the user's shell into the image (customize), or the debug shell after a failed build
 * (create with enable_debug). The stage starts the job's sshd, reports where it listens
 * (status waiting_on_user, ssh_containers[0]) and then only looks for the user's verdict:
 * `complete` or `failed` in the work directory (/mnt/image in the shell) or, in a jail, in the
 * image's /tmp. On a verdict it ends sshd and every session, and remembers the verdict, so
 * that a repeated poll answers the same.
 */
import { constants } from 'node:fs';
import { lstat, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageProgress } from '../../domain/worker-port.js';
import { clearTask, startTask, taskStatus } from './background-task.js';
import { resolveInRoot } from './boot-files.js';
import { missingTools, type Tool } from './host-tools.js';
import { killJobProcesses } from './job-processes.js';
import { exists, logTail, SCRIPTS, taskEnv, type LocalJob } from './local-job.js';
import { freePort, jailShellWarning, JAIL_IN_NAMESPACE, writeSshdFiles, type ShellPlan } from './ssh-server.js';

const SSHD_LOG = 'sshd.log';
/** sshd that cannot bind its port exits at once; another free port is tried this many times. */
const START_ATTEMPTS = 3;

interface Attempt {
  port: number;
  count: number;
  /** Size of sshd.log when this attempt started: its own lines follow. */
  logOffset: number;
  listening: boolean;
}

interface Verdict {
  signal: 'complete' | 'failed';
  message: string;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function shellPlan(job: LocalJob): Promise<ShellPlan | undefined> {
  const record = job.job.job;
  if (record.job_type === 'customize') return { jail: record.ssh_containers?.[0]?.jail ?? false, shellDir: job.paths.shellDir };
  if (record.enable_debug && (await exists(job.paths.buildFailed))) return { jail: false, shellDir: job.paths.shellDir };
  return undefined;
}

/**
 * Where the user's verdict may be: /mnt/image always; the image's /tmp for a jail, resolved
 * inside the image, so that a jailed user's `/tmp -> /etc` link cannot make this process look
 * into (or remove files from) the host's directories.
 */
async function signalDirs(job: LocalJob, plan: ShellPlan): Promise<string[]> {
  const jailTmp = plan.jail ? await resolveInRoot(job.paths.imageRoot, 'tmp') : undefined;
  return jailTmp ? [job.paths.dir, jailTmp] : [job.paths.dir];
}

/** A user may write why into `failed`; only its start is kept, and only from a regular file (never through a link). */
async function reasonIn(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (!handle) return '';
  try {
    if (!(await handle.stat()).isFile()) return '';
    const buffer = Buffer.alloc(300);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).toString('utf8').trim();
  } finally {
    await handle.close();
  }
}

async function userVerdict(job: LocalJob, plan: ShellPlan): Promise<Verdict | undefined> {
  const dirs = await signalDirs(job, plan);
  for (const signal of ['failed', 'complete'] as const) {
    for (const dir of dirs) {
      const path = join(dir, signal);
      if (!(await lstat(path).catch(() => undefined))) continue;
      return { signal, message: signal === 'failed' ? await reasonIn(path) : '' };
    }
  }
  return undefined;
}

function verdictProgress(verdict: Verdict, buildFailure: string | undefined): StageProgress {
  if (buildFailure !== undefined) {
    return { state: 'failed', reason: `${buildFailure} (the debug shell was closed with '${verdict.signal}')` };
  }
  if (verdict.signal === 'failed') {
    return { state: 'failed', reason: `the user marked the job failed${verdict.message ? `: ${verdict.message}` : ''}` };
  }
  return { state: 'done', detail: 'the user marked the job complete', ssh: { status: 'complete' } };
}

export async function ssh(job: LocalJob): Promise<StageProgress> {
  const plan = await shellPlan(job);
  if (!plan) return { state: 'done' };
  const buildFailure = job.job.job.job_type === 'create' ? (await readFile(job.paths.buildFailed, 'utf8')).trim() : undefined;
  const verdictPath = join(job.paths.state, 'ssh-verdict.json');
  const known = await readJson<Verdict>(verdictPath);
  if (known) return verdictProgress(known, buildFailure);

  const verdict = await userVerdict(job, plan);
  if (verdict) {
    await closeShell(job, plan);
    await writeFile(verdictPath, JSON.stringify(verdict));
    await job.log(`the user signalled '${verdict.signal}'${verdict.message ? `: ${verdict.message}` : ''}; sshd stopped`);
    return verdictProgress(verdict, buildFailure);
  }
  return serve(job, plan);
}

/** Ends sshd and every session, and takes the signal files away (a jail's are in the image). */
async function closeShell(job: LocalJob, plan: ShellPlan): Promise<void> {
  const left = await killJobProcesses(job.job.job.id, job.paths.dir);
  if (left.length > 0) throw new Error(`processes ${left.join(', ')} of the job's shell did not end`);
  for (const dir of await signalDirs(job, plan)) {
    for (const signal of ['complete', 'failed']) await rm(join(dir, signal), { force: true, recursive: true });
  }
}

async function serve(job: LocalJob, plan: ShellPlan): Promise<StageProgress> {
  const attemptPath = join(job.paths.ssh, 'attempt.json');
  const attempt = await readJson<Attempt>(attemptPath);
  const status = await taskStatus(job.paths.tasks, 'sshd');
  if (!attempt || status.state === 'absent') return start(job, plan, attemptPath, 1);
  if (status.state === 'running') {
    if (!attempt.listening) {
      if (!(await listening(job, attempt))) return { state: 'running', detail: `starting sshd on port ${attempt.port}` };
      await writeFile(attemptPath, JSON.stringify({ ...attempt, listening: true }));
      await job.log(`sshd serves the ${plan.jail ? 'jailed ' : ''}shell on ${job.settings.sshHost}:${attempt.port}`);
    }
    return {
      state: 'running',
      status: 'waiting_on_user',
      detail: `waiting for the user on ${job.settings.sshHost}:${attempt.port}`,
      ssh: { status: 'running', host: job.settings.sshHost, port: attempt.port },
    };
  }
  const tail = await logTail(join(job.paths.logs, SSHD_LOG));
  if (!attempt.listening && attempt.count < START_ATTEMPTS) {
    await job.log(`sshd did not start on port ${attempt.port} (${tail}); trying another port`);
    await clearTask(job.paths.tasks, 'sshd');
    return start(job, plan, attemptPath, attempt.count + 1);
  }
  const reason = `the job's sshd exited: ${tail || 'no output'}`;
  await job.log(reason);
  return { state: 'failed', reason };
}

async function listening(job: LocalJob, attempt: Attempt): Promise<boolean> {
  const text = await readFile(join(job.paths.logs, SSHD_LOG), 'utf8').catch(() => '');
  return text.slice(attempt.logOffset).includes('Server listening on');
}

async function start(job: LocalJob, plan: ShellPlan, attemptPath: string, count: number): Promise<StageProgress> {
  const tools: Tool[] = ['sshd', 'ssh-keygen', 'unshare', 'mount', ...(plan.jail ? [] : (['sftp-server'] as Tool[]))];
  const missing = missingTools(tools);
  if (missing) return { state: 'failed', reason: `the job's SSH shell cannot be opened: ${missing}` };
  if (plan.jail) {
    const warning = await jailShellWarning(job.paths.imageRoot);
    if (warning) await job.log(`warning: ${warning}`);
  }
  const port = await freePort(job.settings.sshListenAddress);
  const config = await writeSshdFiles(job, plan, port);
  const log = join(job.paths.logs, SSHD_LOG);
  const logOffset = await stat(log).then(
    (s) => s.size,
    () => 0,
  );
  await writeFile(attemptPath, JSON.stringify({ port, count, logOffset, listening: false } satisfies Attempt));
  await startTask(job.paths.tasks, {
    name: 'sshd',
    script: join(SCRIPTS, 'sshd.sh'),
    env: taskEnv(job, { WORK: job.paths.dir, CONFIG: config, JAIL_ROOT: plan.jail ? JAIL_IN_NAMESPACE : '' }),
    log,
  });
  await job.log(`starting sshd on ${job.settings.sshListenAddress}:${port} (${plan.jail ? 'jailed in the image root' : 'shell in the image root'})`);
  return { state: 'running', detail: `starting sshd on port ${port}` };
}
