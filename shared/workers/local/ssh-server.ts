/**
 * The job's own Debian sshd: host keys made for the job, the job's public key as the only
 * authorized key, root login by key only, on a free port of IMS_SSH_LISTEN_ADDRESS. Not jailed:
 * a ForceCommand wrapper gives a root shell on the host whose working directory is the image
 * root (sftp included). Jailed: ChrootDirectory into the image root, internal-sftp. Either way
 * sshd runs in a private mount namespace where the work directory is /mnt/image (scripts/sshd.sh).
 */
import { execFile } from 'node:child_process';
import { copyFile, chmod, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KEY_ONLY_ROOT_LOGIN } from '../job-sshd.js';
import { fileInRoot } from './boot-files.js';
import { TOOL_PATH } from './host-tools.js';
import { JOB_MARKER } from './job-processes.js';
import { exists, SCRIPTS, type LocalJob } from './local-job.js';

const run = promisify(execFile);

export interface ShellPlan {
  jail: boolean;
  /** The shell's working directory as sshd's namespace sees it. */
  shellDir: string;
}

/** The jail as sshd's namespace sees it (the work directory is mounted at /mnt/image there). */
export const JAIL_IN_NAMESPACE = '/mnt/image/image-root';

export function sshdConfigText(job: LocalJob, plan: ShellPlan, port: number): string {
  const ssh = job.paths.ssh;
  const record = job.job.job;
  const lines = [
    `# sshd of IMS job ${record.id} (local worker); jail: ${plan.jail}`,
    `ListenAddress ${job.settings.sshListenAddress}`,
    `Port ${port}`,
    `HostKey ${join(ssh, 'ssh_host_ed25519_key')}`,
    `AuthorizedKeysFile ${join(ssh, 'authorized_keys')}`,
    'AllowUsers root',
    'PubkeyAuthentication yes',
    ...KEY_ONLY_ROOT_LOGIN,
    'X11Forwarding no',
    'PrintMotd no',
    // What the original's sshd sets for the user; the marker lets cleanup find every session.
    `SetEnv IMS_JOB_ID=${record.id} IMS_ARCH=${record.arch} IMS_DKMS_ENABLED=${record.require_dkms} IMS_SHELL_DIR=${plan.shellDir} ${JOB_MARKER}=${record.id}`,
  ];
  if (plan.jail) {
    lines.push('Subsystem sftp internal-sftp', `ChrootDirectory ${JAIL_IN_NAMESPACE}`);
  } else {
    lines.push('Subsystem sftp /usr/lib/openssh/sftp-server', `ForceCommand /bin/sh ${join(ssh, 'shell.sh')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Host key, authorized key, wrapper and config for sshd on `port`; returns the config's path. */
export async function writeSshdFiles(job: LocalJob, plan: ShellPlan, port: number): Promise<string> {
  const ssh = job.paths.ssh;
  const hostKey = join(ssh, 'ssh_host_ed25519_key');
  if (!(await exists(hostKey))) {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `ims-job-${job.job.job.id}`, '-f', hostKey], { env: { PATH: TOOL_PATH } });
  }
  await writeFile(join(ssh, 'authorized_keys'), `${job.job.publicKey.trim()}\n`, { mode: 0o600 });
  await copyFile(join(SCRIPTS, 'shell.sh'), join(ssh, 'shell.sh'));
  await chmod(join(ssh, 'shell.sh'), 0o755);
  const config = join(ssh, 'sshd_config');
  await writeFile(config, sshdConfigText(job, plan, port), { mode: 0o600 });
  return config;
}

/** A port nobody listens on now (sshd may still lose it to a race: the stage then tries another). */
export function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * sshd runs the user's commands with the login shell from the host's passwd, inside the jail
 * when jailed: an image without it gives no shell, only sftp. Returns a warning, or undefined.
 */
export async function jailShellWarning(imageRoot: string): Promise<string | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const shell = passwd.split('\n').find((l) => l.startsWith('root:'))?.split(':')[6] || '/bin/sh';
  if (await fileInRoot(imageRoot, shell)) return undefined;
  return `the image has no ${shell} (root's login shell on this host, which sshd runs inside the jail): only sftp will work`;
}
