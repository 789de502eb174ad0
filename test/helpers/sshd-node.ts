/**
 * A "remote build node" for tests: a real OpenSSH sshd on 127.0.0.1 with its own port, root
 * login by a generated test key only (local-infra.md §8). Two of them on two ports are two
 * nodes. Stopping one makes its node unreachable (connection refused), as a node that went away.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

export interface TestKey {
  privatePath: string;
  publicKey: string;
}

/** An ed25519 key pair made with ssh-keygen. */
export function generateKey(dir: string, name: string): TestKey {
  const privatePath = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `ims-test-${name}`, '-f', privatePath]);
  return { privatePath, publicKey: readFileSync(`${privatePath}.pub`, 'utf8').trim() };
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface SshdNode {
  port: number;
  /** The node's host public key, `keytype base64-key comment` as in its .pub file. */
  hostPublicKey: string;
  /** Starts (again) on the same port. */
  start(): Promise<void>;
  /** Stops the listener; sessions already open go on, new connections are refused. */
  stop(): Promise<void>;
}

export function sshdNode(dir: string, authorizedKey: string, port: number): SshdNode {
  mkdirSync(dir, { recursive: true });
  // sshd's privilege separation needs its directory; Debian creates it only when the service starts.
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(dir, 'host_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  writeFileSync(join(dir, 'authorized_keys'), `${authorizedKey}\n`);
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PidFile none',
      // The key lives under the system temp dir (mode 1777), which strict modes refuse.
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  return {
    port,
    hostPublicKey: readFileSync(`${hostKey}.pub`, 'utf8').trim(),
    async start() {
      if (child) return;
      // An absolute config path: sshd re-executes itself with its original argv.
      child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const started = child;
      const end = Date.now() + 5000;
      while (!(await accepts(port))) {
        if (started.exitCode !== null || Date.now() > end) throw new Error(`sshd on port ${port} did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGTERM');
      await exited;
    },
  };
}
