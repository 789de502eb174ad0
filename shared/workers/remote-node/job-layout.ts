/**
 * Where a job lives on its node and on this host, and the podman commands that act on it. One
 * directory per job, `<workDir>/ims_<job id>` (the original's name: the node's job count is the
 * number of these), one per-job image and one container, both named after the job, so cleanup
 * can always find everything from the job id alone.
 */
import { join } from 'node:path';
import { shq } from './ssh-session.js';
import type { RemoteNodeSettings } from './settings.js';
import { killTasksCommand } from './node-tasks.js';

export interface JobLayout {
  /** `<workDir>/ims_<id>` on the node. */
  dir: string;
  /** `<dir>/image`, mounted as /mnt/image in the job's container. */
  image: string;
  /** `<dir>/context`, the per-job image's build context. */
  context: string;
  container: string;
  /** The per-job image, built on the node FROM a local image. */
  imageName: string;
  /**
   * This host's directory for the job's small files: the tails of its node logs (cleanup uploads
   * them). Never an image: results go from the node to S3 directly.
   */
  local: string;
}

export function jobLayout(settings: RemoteNodeSettings, jobId: string): JobLayout {
  const dir = `${settings.workDir === '/' ? '' : settings.workDir}/ims_${jobId}`;
  return {
    dir,
    image: `${dir}/image`,
    context: `${dir}/context`,
    container: `ims-${jobId}`,
    imageName: `localhost/ims-job-${jobId}:latest`,
    local: join(settings.localDir, jobId),
  };
}

/** Results in `<image>/out` (`packages`: a create job's package list). */
export const RESULT_FILES = ['rootfs.sqsh', 'kernel', 'initrd', 'parameters', 'packages'] as const;
export type ResultFile = (typeof RESULT_FILES)[number];

export interface RunOptions {
  privileged: boolean;
  network: string;
  env: Record<string, string>;
}

/**
 * `podman run` detached, never pulling: every image comes from the node's own storage. Ulimits,
 * runtime and cgroup manager are the node's business (its containers.conf, or REMOTE_NODE_PODMAN).
 */
export function podmanRun(settings: RemoteNodeSettings, layout: JobLayout, options: RunOptions): string {
  const env = Object.entries(options.env).map(([k, v]) => `-e ${shq(`${k}=${v}`)}`);
  return [
    settings.podman,
    'run --detach --pull=never',
    `--name ${shq(layout.container)}`,
    options.privileged ? '--privileged' : '',
    `--network=${shq(options.network)}`,
    `--volume ${shq(`${layout.image}:/mnt/image`)}`,
    ...env,
    shq(layout.imageName),
  ]
    .filter(Boolean)
    .join(' ');
}

export function podmanBuild(settings: RemoteNodeSettings, layout: JobLayout): string {
  return `${settings.podman} build --pull=never --quiet --tag ${shq(layout.imageName)} --file ${shq(`${layout.context}/Containerfile`)} ${shq(layout.context)}`;
}

/** Ends the job's transfers, removes the container, the image and the directory; each is absent-tolerant, so cleanup can repeat. */
export function removeJobCommand(settings: RemoteNodeSettings, layout: JobLayout): string {
  return [
    killTasksCommand(layout.dir),
    `${settings.podman} rm --force --time 0 ${shq(layout.container)} >/dev/null 2>&1`,
    `${settings.podman} rmi --force ${shq(layout.imageName)} >/dev/null 2>&1`,
    // The copy-on-write view (customize-view.ts): merged view first, then the squashfs under it
    // (its loop device goes with it); only then the directory, never across a mount.
    unmountViewCommand(layout),
    `rm -rf --one-file-system ${shq(layout.dir)}`,
    // Whatever podman said, the job is gone only when none of it is left.
    `! ${settings.podman} container exists ${shq(layout.container)} && ! ${settings.podman} image exists ${shq(layout.imageName)} && [ ! -e ${shq(layout.dir)} ] && ! grep -q ${shq(` ${layout.dir}/`)} /proc/self/mountinfo`,
  ].join('; ');
}

/** The mounts of a customize job's view, in the order they come off. */
export function viewMounts(layout: JobLayout): { merged: string; lower: string; upper: string; work: string } {
  return { merged: `${layout.image}/image-root`, lower: `${layout.dir}/lower`, upper: `${layout.dir}/upper`, work: `${layout.dir}/work` };
}

function unmountViewCommand(layout: JobLayout): string {
  const { merged, lower } = viewMounts(layout);
  return `for m in ${shq(merged)} ${shq(lower)}; do if grep -q " $m " /proc/self/mountinfo; then umount "$m" 2>/dev/null || umount -l "$m"; fi; done`;
}
