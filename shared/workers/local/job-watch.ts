/**
 * The local worker's reports: the moment a step of a job's work ends, the job's waiting stage is
 * checked (WorkerDeps.wake), instead of at the reconciler's next pass. Steps end in files, so the
 * watches are on files: a background task's exit status appearing in `tasks/` (downloads and
 * mounts, kiwi, mksquashfs), sshd's log growing (it listens), the user's `complete` or `failed`
 * (in the work directory, or a jail's /tmp). The in-process uploads of the package stage report
 * themselves. Watches never keep the process alive, are dropped when the job's work is removed,
 * and are armed again by the next look at the job, so a restarted service gets them back at its
 * reconciler's first pass (which finds what ended while it was down).
 */
import { watch, type FSWatcher } from 'node:fs';
import { resolveInRoot } from './boot-files.js';
import type { LocalJob } from './local-job.js';

type Wake = (jobId: string) => void;

const SIGNALS = new Set(['complete', 'failed']);

/** The watches of one worker's jobs, each reporting to the worker's wake. */
export class JobWatches {
  private readonly watches = new Map<string, Map<string, FSWatcher>>();

  constructor(private readonly wake: Wake) {}

  /** Arms the job's watches that are not armed yet (cheap when they are). */
  async watch(job: LocalJob): Promise<void> {
    const jobId = job.job.job.id;
    const { paths } = job;
    this.watchDir(jobId, paths.tasks, (name) => name.endsWith('.exit'));
    this.watchDir(jobId, paths.logs, (name) => name === 'sshd.log');
    this.watchDir(jobId, paths.dir, (name) => SIGNALS.has(name));
    // A jailed user signals in the image's /tmp, resolved inside the image (never a host directory).
    if (job.job.job.ssh_containers?.[0]?.jail) {
      const tmp = await resolveInRoot(paths.imageRoot, 'tmp');
      if (tmp) this.watchDir(jobId, tmp, (name) => SIGNALS.has(name));
    }
  }

  /** Drops the job's watches (before its work directory is unmounted and removed). */
  unwatch(jobId: string): void {
    for (const watcher of this.watches.get(jobId)?.values() ?? []) watcher.close();
    this.watches.delete(jobId);
  }

  private watchDir(jobId: string, dir: string, matches: (name: string) => boolean): void {
    const own = this.watches.get(jobId) ?? new Map<string, FSWatcher>();
    this.watches.set(jobId, own);
    if (own.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (name && matches(String(name))) this.wake(jobId);
      });
    } catch {
      // Not there (yet): the next look at the job tries again.
      return;
    }
    // The directory went away (cleanup): forget the watch.
    watcher.on('error', () => {
      watcher.close();
      if (own.get(dir) === watcher) own.delete(dir);
    });
    watcher.unref();
    own.set(dir, watcher);
  }
}
