/**
 * A job's work directory, `<IMS_WORK_ROOT>/<job id>`, laid out as the original job pod's
 * /mnt/image (the shell sees it at that path): `image-root/` (customize) or
 * `build/image-root/` (create), `recipe/`, the signal files `complete` / `failed`, plus the
 * worker's own `logs/`, `tasks/` (background process state) and `ssh/` (the job's sshd). A
 * customize job's `image-root/` is an overlay: the downloaded `rootfs-source.sqsh` mounted
 * read-only at `rootfs-lower/`, the user's changes in `overlay/upper/`.
 */
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { WorkerJob } from '../../domain/worker-port.js';
import type { LocalWorkerSettings } from './settings.js';

export interface JobPaths {
  dir: string;
  logs: string;
  tasks: string;
  ssh: string;
  recipe: string;
  /** The root the user customizes or kiwi builds. */
  imageRoot: string;
  /** Where the shell starts: the image root (customize), the work directory (create's debug shell). */
  shellDir: string;
  rootfs: string;
  /** customize: the downloaded rootfs, the overlay's read-only lower layer (loop-mounted at `lower`). */
  source: string;
  lower: string;
  /** customize: the overlay's upper and work directories (the user's changes; whiteouts for deletions). */
  upper: string;
  overlayWork: string;
  /** customize: how prepare made the image root (`overlay`, or `unsquashfs <why>`). */
  imageRootMode: string;
  packages: string;
  /** customize: the change listing of the upper layer (package stage), and the report and package list made from it. */
  changeListing: string;
  changes: string;
  newPackages: string;
  /** What the package stage found: the files the register stage uploads. */
  artifacts: string;
  /** Written by the build when it failed and enable_debug opens a shell: the failure's reason. */
  buildFailed: string;
  /** Stage state that is neither a task nor a log (rendered recipe, repository wait). */
  state: string;
}

/** What a job id must look like to name a work directory. */
export const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9-]*$/;

export function jobPaths(settings: LocalWorkerSettings, job: WorkerJob): JobPaths {
  const id = job.job.id;
  // The id becomes a path; the API makes UUIDs, anything else is refused rather than trusted.
  if (!SAFE_ID.test(id)) throw new Error(`job id ${JSON.stringify(id)} cannot name a work directory`);
  const dir = join(settings.workRoot, id);
  const create = job.job.job_type === 'create';
  const imageRoot = create ? join(dir, 'build', 'image-root') : join(dir, 'image-root');
  return {
    dir,
    logs: join(dir, 'logs'),
    tasks: join(dir, 'tasks'),
    ssh: join(dir, 'ssh'),
    recipe: join(dir, 'recipe'),
    imageRoot,
    shellDir: create ? '/mnt/image' : '/mnt/image/image-root',
    rootfs: join(dir, 'rootfs.sqsh'),
    source: join(dir, 'rootfs-source.sqsh'),
    lower: join(dir, 'rootfs-lower'),
    upper: join(dir, 'overlay', 'upper'),
    overlayWork: join(dir, 'overlay', 'work'),
    imageRootMode: join(dir, 'state', 'image-root-mode'),
    packages: join(dir, 'build', 'image.packages'),
    changeListing: join(dir, 'state', 'change-listing'),
    changes: join(dir, 'state', 'changes.json'),
    newPackages: join(dir, 'state', 'image.packages'),
    artifacts: join(dir, 'artifacts.json'),
    buildFailed: join(dir, 'build_failed'),
    state: join(dir, 'state'),
  };
}

/**
 * Makes the work directory, root-only (mode 0700) since it holds the job's host keys and
 * pre-signed URLs, and checks every component of the path up to `/`: sshd's ChrootDirectory
 * needs them root-owned and not writable by group or others.
 */
export async function ensureWorkDir(paths: JobPaths): Promise<void> {
  await mkdir(dirname(paths.dir), { recursive: true, mode: 0o755 });
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await chmod(paths.dir, 0o700);
  for (const sub of [paths.logs, paths.tasks, paths.ssh, paths.state]) await mkdir(sub, { recursive: true, mode: 0o700 });
  for (let at = paths.dir; ; at = dirname(at)) {
    const info = await stat(at);
    if (info.uid !== 0 || (info.mode & 0o022) !== 0) {
      throw new Error(
        `${at} must be owned by root and not writable by group or others (sshd refuses to chroot below it); set IMS_WORK_ROOT to a directory such as /var/lib/ims/jobs`,
      );
    }
    if (at === dirname(at)) break;
  }
}
