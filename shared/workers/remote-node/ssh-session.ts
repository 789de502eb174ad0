/**
 * One SSH connection to a remote build node (ssh2): run commands, write and stream files with
 * SFTP, bring files back. Every step is bounded in time, so an unresponsive node costs a known
 * delay and never a hung stage. ssh2 is loaded on first use: API processes that never probe a
 * node never pay for it. With known hosts (REMOTE_NODE_KNOWN_HOSTS) the node's host key must be
 * listed for it; without, any host key is accepted.
 */
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { Client, ConnectConfig, SFTPWrapper } from 'ssh2';
import type { NodeTarget } from './settings.js';
import { checkHostKey, fingerprintOf, knownHostName, keyTypeOf, sourceOf, type KnownHosts } from './known-hosts.js';

export interface ExecResult {
  /** null when the command ended by a signal (or the channel closed without a status). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** With `partialOnTimeout`: the command was cut off; stdout and stderr hold what came until then. */
  timedOut?: boolean;
}

export interface ExecOptions {
  timeoutMs?: number;
  stdin?: string | Buffer;
  /** On timeout resolve with the output so far instead of rejecting. */
  partialOnTimeout?: boolean;
}

/** The node could not be reached or refused us: the caller treats the node as down. */
export class NodeUnreachableError extends Error {
  constructor(
    readonly xname: string,
    override readonly cause: Error,
  ) {
    super(cause.message);
    this.name = 'NodeUnreachableError';
  }
}

/** A command or transfer on a reachable node that did not finish in time. */
export class NodeTimeoutError extends Error {
  override name = 'NodeTimeoutError';
}

export interface NodeSession {
  readonly target: NodeTarget;
  /** The connection broke (not closed by us): a failed call was the node's doing, not the command's. */
  readonly connectionLost: boolean;
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** exec that throws, with the command's stderr, unless it exits 0. */
  run(command: string, options?: ExecOptions): Promise<string>;
  writeFile(path: string, data: string | Buffer, mode?: number): Promise<void>;
  /** Streams `source` into `path` on the node. */
  upload(source: Readable, path: string, mode?: number): Promise<void>;
  /** Copies the file `local` on this host to `remote` on the node (parallel writes). */
  uploadFile(local: string, remote: string): Promise<void>;
  /** Copies `remote` to `local` on this host (parallel reads). */
  download(remote: string, local: string): Promise<void>;
  close(): void;
}

/** Output kept per stream; commands whose output matters print little. */
const MAX_OUTPUT = 64 * 1024;

let ssh2Module: Promise<typeof import('ssh2')> | undefined;
const loadSsh2 = () => (ssh2Module ??= import('ssh2').then((m) => ((m as { default?: typeof import('ssh2') }).default ?? m)));

function keep(buffer: string, chunk: Buffer): string {
  const next = buffer + chunk.toString('utf8');
  return next.length > MAX_OUTPUT ? next.slice(next.length - MAX_OUTPUT) : next;
}

export interface SessionOptions {
  /** When given, the node's host key must be listed for its address or its xname (known-hosts-source.ts). */
  knownHosts?: KnownHosts;
}

/** Why a host key is refused, or undefined when it is listed for the node. */
export function hostKeyRefusal(known: KnownHosts, target: NodeTarget, key: Buffer): string | undefined {
  const verdict = checkHostKey(known, [knownHostName(target.host, target.port), knownHostName(target.xname, target.port)], key);
  if (verdict === 'trusted') return undefined;
  const described = `${keyTypeOf(key) ?? 'unknown key type'} ${fingerprintOf(key)}`;
  const where = verdict === 'revoked' ? 'is marked @revoked in' : 'is not in';
  return `the host key of ${target.xname} (${target.host}:${target.port}, ${described}) ${where} ${sourceOf(known)}`;
}

export async function openSession(target: NodeTarget, privateKey: string, timeoutMs: number, options: SessionOptions = {}): Promise<NodeSession> {
  const { Client } = await loadSsh2();
  const client: Client = new Client();
  // ssh2 may report more than one error for one failure (a handshake timeout, then the lost
  // connection); the ones nobody waits for any more must not become unhandled.
  client.on('error', () => undefined);
  let closedByUs = false;
  let connectionLost = false;
  client.on('close', () => {
    if (!closedByUs) connectionLost = true;
  });
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    privateKey,
    readyTimeout: timeoutMs,
    // The original keeps sessions alive with 10 s probes; a node that stops answering is noticed.
    keepaliveInterval: 10_000,
    keepaliveCountMax: 3,
  };
  let refused: string | undefined;
  const known = options.knownHosts;
  if (known) {
    // Without hostHash, ssh2 hands the verifier the raw key blob.
    config.hostVerifier = (key: Buffer) => {
      refused = hostKeyRefusal(known, target, key);
      return refused === undefined;
    };
  }
  await new Promise<void>((resolve, reject) => {
    // readyTimeout covers the handshake; a TCP connect that hangs (a dropped SYN) is bounded too.
    const timer = setTimeout(() => {
      client.end();
      reject(new NodeUnreachableError(target.xname, new Error(`Timed out after ${timeoutMs} ms connecting to ${target.host}:${target.port}`)));
    }, timeoutMs + 100);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
    client.once('error', (error: Error) => {
      clearTimeout(timer);
      // ssh2 reports a refused host key as 'Host denied (verification failed)'; say which key and why.
      reject(new NodeUnreachableError(target.xname, refused === undefined ? error : new Error(refused, { cause: error })));
    });
    client.connect(config);
  });
  let sftp: Promise<SFTPWrapper> | undefined;
  const getSftp = () =>
    (sftp ??= new Promise<SFTPWrapper>((resolve, reject) => client.sftp((error, s) => (error ? reject(error) : resolve(s)))));

  const exec = (command: string, options: ExecOptions = {}): Promise<ExecResult> =>
    new Promise((resolve, reject) => {
      client.exec(command, (error, channel) => {
        if (error) return reject(error);
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        const timer =
          options.timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                channel.close();
                if (options.partialOnTimeout) resolve({ code: null, stdout, stderr, timedOut: true });
                else reject(new NodeTimeoutError(`'${command.slice(0, 80)}' did not finish within ${options.timeoutMs} ms on ${target.xname}`));
              }, options.timeoutMs);
        channel.on('data', (chunk: Buffer) => (stdout = keep(stdout, chunk)));
        channel.stderr.on('data', (chunk: Buffer) => (stderr = keep(stderr, chunk)));
        channel.on('exit', (exitCode: number | null) => (code = typeof exitCode === 'number' ? exitCode : null));
        channel.on('close', () => {
          if (timer) clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
        if (options.stdin !== undefined) channel.end(options.stdin);
        else channel.end();
      });
    });

  return {
    target,
    get connectionLost() {
      return connectionLost;
    },
    exec,
    async run(command, options) {
      const result = await exec(command, options);
      if (result.code !== 0) {
        const output = (result.stderr || result.stdout).trim().split('\n').slice(-5).join(' | ');
        throw new Error(`command on ${target.xname} failed (exit ${result.code ?? 'signal'}): ${output || command.slice(0, 120)}`);
      }
      return result.stdout;
    },
    async writeFile(path, data, mode = 0o644) {
      const s = await getSftp();
      await new Promise<void>((resolve, reject) => s.writeFile(path, data, { mode }, (error) => (error ? reject(error) : resolve())));
    },
    async upload(source, path, mode = 0o644) {
      const s = await getSftp();
      await pipeline(source, s.createWriteStream(path, { mode }));
    },
    async uploadFile(local, remote) {
      const s = await getSftp();
      await new Promise<void>((resolve, reject) => s.fastPut(local, remote, (error) => (error ? reject(error) : resolve())));
    },
    async download(remote, local) {
      const s = await getSftp();
      await new Promise<void>((resolve, reject) => s.fastGet(remote, local, (error) => (error ? reject(error) : resolve())));
    },
    close() {
      closedByUs = true;
      client.end();
    },
  };
}

/** Single-quotes a value for the node's POSIX shell. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
