/**
 * A customize job's image root on its node is a view, not a copy: the downloaded rootfs squashfs
 * mounted read-only (loop) at `<job dir>/lower`, under an overlayfs whose upper and work
 * directories are the job's (`<job dir>/upper`, `<job dir>/work`), merged at
 * `<job dir>/image/image-root`. The node mounts it before it starts the job's container, which
 * gets the job's directory with its mounts (podman binds volumes recursively) and so needs no
 * privileges of its own: the shell, plain or jailed, works in the merged view, the user's changes
 * land in the upper directory (deletions as whiteouts), and the container squashes the merged
 * view once. Nothing is unsquashed.
 *
 * Where the node cannot mount (no loop device, no overlayfs, not root), the view is `copy`: the
 * container unsquashes the image as before, and the reason is in `mount.log` and the history.
 * Removing the job (job-layout.ts) unmounts the view before it removes the directory, so no
 * mount and no loop device outlive the job.
 */
import { shq } from './ssh-session.js';
import { viewMounts, type JobLayout } from './job-layout.js';

/** Mounts the view once (a repeat finds `view` written and does nothing); writes `overlay` or `copy <why>` to `<job dir>/view`. */
export function mountViewCommand(layout: JobLayout): string {
  const { merged, lower, upper, work } = viewMounts(layout);
  const [m, l, u, w] = [merged, lower, upper, work].map(shq);
  const image = shq(`${layout.image}/image.sqsh`);
  const log = shq(`${layout.image}/mount.log`);
  const view = shq(`${layout.dir}/view`);
  return [
    `[ -e ${view} ] && exit 0`,
    `mkdir -p ${l} ${u} ${w} ${m}`,
    `if mount -t squashfs -o loop,ro ${image} ${l} 2>${log} && mount -t overlay overlay -o lowerdir=${l},upperdir=${u},workdir=${w} ${m} 2>>${log}; then echo overlay > ${view}`,
    `else if grep -q ${shq(` ${lower} `)} /proc/self/mountinfo; then umount ${l}; fi; rmdir ${m} ${l} ${u} ${w} 2>/dev/null; echo "copy $(tail -n 2 ${log} | tr '\\n' ' ')" > ${view}; fi`,
  ].join('\n');
}

/** The history's words for how the job's image root is seen. */
export function describeView(rootView: string | undefined): string {
  if (rootView === 'overlay') return 'the image root is mounted copy-on-write (the squashfs read-only under overlayfs)';
  const why = rootView?.replace(/^copy\s*/, '').trim();
  return `the image root was unsquashed: the node could not mount it${why ? ` (${why})` : ''}`;
}
