/**
 * Settings of the local worker, read from the environment. Work directories must not be under
 * /tmp: sshd's ChrootDirectory (jailed shells) refuses a path with a component that is not
 * root-owned or is writable by others, and /tmp is world-writable.
 */
import { hostname } from 'node:os';
import { squashfsOptionsFromEnv } from '../squashfs-options.js';

export interface LocalWorkerSettings {
  /** IMS_WORK_ROOT: one root-owned directory per job below it. */
  workRoot: string;
  /** IMS_SSH_LISTEN_ADDRESS: where the jobs' sshd listen. */
  sshListenAddress: string;
  /** IMS_SSH_HOST: the host users connect to (shown in connection_info); the listen address unless it is a wildcard. */
  sshHost: string;
  /** IMS_REPO_WAIT_TIMEOUT: seconds a create job waits for its recipe's repositories (the original's default, 500). */
  repoWaitSeconds: number;
  /** IMS_SQUASHFS_OPTIONS: compression options of the rootfs (../squashfs-options.ts). */
  squashfsOptions: string[];
  /** IMS_KIWI_LOCK: the lock that serialises kiwi builds, which share /var/cache/kiwi and its apt lock. */
  kiwiLock: string;
  /**
   * IMS_LOCAL_OVERLAY (on, the default; off): a customize job's image root is an overlay on the
   * downloaded rootfs, mounted read-only through a loop device. Off, or where the kernel refuses
   * either mount, the rootfs is unsquashed into the image root instead (and the job says so).
   */
  overlay: boolean;
}

function positive(value: string | undefined, fallback: number): number {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export function localSettingsFromEnv(env: Readonly<Record<string, string | undefined>>): LocalWorkerSettings {
  const listen = env.IMS_SSH_LISTEN_ADDRESS || '127.0.0.1';
  const wildcard = listen === '0.0.0.0' || listen === '::';
  return {
    workRoot: env.IMS_WORK_ROOT || '/var/lib/ims/jobs',
    sshListenAddress: listen,
    sshHost: env.IMS_SSH_HOST || (wildcard ? hostname() : listen),
    repoWaitSeconds: positive(env.IMS_REPO_WAIT_TIMEOUT, 500),
    squashfsOptions: squashfsOptionsFromEnv(env),
    kiwiLock: env.IMS_KIWI_LOCK || '/run/lock/ims-kiwi.lock',
    overlay: (env.IMS_LOCAL_OVERLAY || 'on').trim().toLowerCase() !== 'off',
  };
}
