/**
 * What every stage of the local worker works with: the job, its paths and settings, its stage
 * log, and the way it runs a step as a background task.
 */
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobStatus } from '../../domain/records.js';
import type { StageProgress, WorkerJob } from '../../domain/worker-port.js';
import { startTask, taskStatus } from './background-task.js';
import { missingTools, TOOL_PATH, type Tool } from './host-tools.js';
import { JOB_MARKER } from './job-processes.js';
import type { LocalWorkerSettings } from './settings.js';
import { stageLog } from './stage-log.js';
import type { JobPaths } from './work-dir.js';

export const SCRIPTS = fileURLToPath(new URL('./scripts/', import.meta.url));

export interface LocalJob {
  settings: LocalWorkerSettings;
  job: WorkerJob;
  paths: JobPaths;
  log(message: string): Promise<void>;
}

export function localJob(settings: LocalWorkerSettings, job: WorkerJob, paths: JobPaths): LocalJob {
  return { settings, job, paths, log: (message) => stageLog(paths.logs, job.job.id, message) };
}

/** A task's whole environment: what the tools need and the job marker, none of this process's secrets. */
export function taskEnv(job: LocalJob, vars: Record<string, string>): Record<string, string> {
  return { PATH: TOOL_PATH, HOME: '/root', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', [JOB_MARKER]: job.job.job.id, ...vars };
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The last lines of a log, for a failure's reason. */
export async function logTail(path: string, lines = 3, maxBytes = 8192): Promise<string> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .slice(-lines)
      .join(' | ')
      .slice(-600);
  } finally {
    await handle.close();
  }
}

export interface StepSpec {
  /** Task name (state files in tasks/). */
  name: string;
  /** Script in scripts/. */
  script: string;
  vars: Record<string, string>;
  /** Log file name in logs/. */
  log: string;
  tools: readonly Tool[];
  /** The job status while the step runs. */
  status: JobStatus;
  /** What the step does, for reasons: "fetching the image". */
  what: string;
}

/**
 * One poll of a step that runs as a background task: starts it when it has not run, reports it
 * running, or answers undefined once it succeeded. A failure's reason quotes the end of its log.
 */
export async function pollStep(job: LocalJob, spec: StepSpec): Promise<StageProgress | undefined> {
  const status = await taskStatus(job.paths.tasks, spec.name);
  const log = join(job.paths.logs, spec.log);
  switch (status.state) {
    case 'absent': {
      const missing = missingTools(spec.tools);
      if (missing) {
        await job.log(`${spec.what}: ${missing}`);
        return { state: 'failed', reason: `${spec.what} is not possible: ${missing}` };
      }
      await startTask(job.paths.tasks, { name: spec.name, script: join(SCRIPTS, spec.script), env: taskEnv(job, spec.vars), log });
      await job.log(`${spec.what}: started (log ${spec.log})`);
      return { state: 'running', status: spec.status, detail: spec.what };
    }
    case 'running':
      return { state: 'running', status: spec.status, detail: spec.what };
    case 'exited': {
      if (status.code === 0) return undefined;
      const reason = `${spec.what} failed (exit status ${status.code}): ${(await logTail(log)) || 'no output'}`;
      await job.log(reason);
      return { state: 'failed', reason };
    }
    case 'lost': {
      const reason = `${spec.what} ended without reporting a result (killed, or the host restarted); see ${spec.log}`;
      await job.log(reason);
      return { state: 'failed', reason };
    }
  }
}
