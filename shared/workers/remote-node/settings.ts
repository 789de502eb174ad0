/**
 * How IMS reaches its remote build nodes, read from the environment. The original SSHes as root
 * to the xname itself (port 22) with one key mounted into its pod; the same is the default here,
 * and a host map lets a node be reached elsewhere (tests, nodes behind a jump port).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { squashfsOptionsFromEnv } from '../squashfs-options.js';
import { knownHostsFromSetting, type KnownHosts } from './known-hosts.js';

export interface NodeTarget {
  xname: string;
  host: string;
  port: number;
  user: string;
}

export interface RemoteNodeSettings {
  /** REMOTE_NODE_SSH_KEY_FILE: a private key on this host (re-read for every connection). */
  keyFile?: string;
  /** REMOTE_NODE_KEY_SECRET_ARN: a Secrets Manager secret holding the private key. */
  keySecretArn?: string;
  user: string;
  port: number;
  /** xname → host and port (REMOTE_NODE_HOST_MAP="x1=host:port,x2=host"). */
  hosts: Map<string, { host: string; port?: number }>;
  /**
   * REMOTE_NODE_KNOWN_HOSTS: known_hosts text; when set, a node must present a host key listed
   * for its address or its xname. The other sources and what happens without any: known-hosts-source.ts.
   */
  knownHosts?: KnownHosts;
  /** REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN: the same text in a Secrets Manager secret. */
  knownHostsSecretArn?: string;
  /** REMOTE_NODE_KNOWN_HOSTS_PARAMETER: the same text in an SSM parameter (String or SecureString). */
  knownHostsParameter?: string;
  /** REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS=true: without known hosts, any host key is accepted, deployed too. */
  acceptUnknownHosts: boolean;
  /** Running as a Lambda function (AWS_LAMBDA_FUNCTION_NAME): without known hosts, nodes are refused. */
  deployed: boolean;
  /** Bound on one probe (connect, arch, podman, job count); a dead node never costs more. */
  probeTimeoutMs: number;
  /** How long a probe's answer is reused (status requests and placement bursts). */
  probeCacheMs: number;
  /** Bound on connecting for a job's commands. */
  connectTimeoutMs: number;
  /** Where per-job directories live on a node; the original's `/tmp/ims_<job>` convention. */
  workDir: string;
  /**
   * The podman command on the node, a shell prefix: e.g. `podman --runtime runc`, or with
   * `CONTAINERS_CONF=… podman --root …` where the node needs its own settings (kiwi-podman.md §3).
   */
  podman: string;
  /** Image that runs kiwi-ng (create jobs); it must already be on the node: nothing is pulled. */
  builderImage: string;
  /** Image with sshd, ssh-keygen, unsquashfs and mksquashfs (customize jobs); also local to the node. */
  sshdBaseImage: string;
  /** Network of the builder container: `host` so kiwi reaches its repositories, or `none`. */
  buildNetwork: string;
  /** First port tried for a customize job's sshd on the node. */
  shellPortBase: number;
  /** Address the job's sshd listens on (the node's own, for users to reach it). */
  shellListen: string;
  /** A node or job container that stays unreachable this long ends the job in error. */
  heartbeatTimeoutSeconds: number;
  /** Where results are brought back to on this host before register uploads them. */
  localDir: string;
  /** mksquashfs options for the image root squashed on the node (IMS_SQUASHFS_OPTIONS, as on this host). */
  squashfsOptions: string[];
  /**
   * REMOTE_NODE_REPORT_URL: the service's base URL as the nodes reach it, where they report that
   * a step of a job ended (node-reports.ts); deployed the API's URL, under `npm start` its own.
   * Unset: no reports, the reconciler's passes find the progress.
   */
  reportUrl?: string;
}

function int(value: string | undefined, fallback: number): number {
  const n = value === undefined ? NaN : Number.parseInt(value, 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** `x1=host:port,x2=host` (commas or whitespace between entries). */
export function parseHostMap(text: string | undefined): Map<string, { host: string; port?: number }> {
  const hosts = new Map<string, { host: string; port?: number }>();
  for (const entry of (text ?? '').split(/[\s,]+/).filter(Boolean)) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new Error(`REMOTE_NODE_HOST_MAP entry '${entry}' is not xname=host[:port]`);
    const xname = entry.slice(0, eq);
    const address = entry.slice(eq + 1);
    const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(address);
    if (!match) throw new Error(`REMOTE_NODE_HOST_MAP entry '${entry}' is not xname=host[:port]`);
    hosts.set(xname, { host: match[1].replace(/^\[|\]$/g, ''), ...(match[2] ? { port: Number(match[2]) } : {}) });
  }
  return hosts;
}

export function remoteNodeSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): RemoteNodeSettings {
  return {
    keyFile: env.REMOTE_NODE_SSH_KEY_FILE || undefined,
    keySecretArn: env.REMOTE_NODE_KEY_SECRET_ARN || undefined,
    user: env.REMOTE_NODE_SSH_USER || 'root',
    port: int(env.REMOTE_NODE_SSH_PORT, 22),
    hosts: parseHostMap(env.REMOTE_NODE_HOST_MAP),
    knownHosts: knownHostsFromSetting(env.REMOTE_NODE_KNOWN_HOSTS),
    knownHostsSecretArn: env.REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN || undefined,
    knownHostsParameter: env.REMOTE_NODE_KNOWN_HOSTS_PARAMETER || undefined,
    acceptUnknownHosts: (env.REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS ?? '').toLowerCase() === 'true',
    deployed: Boolean(env.AWS_LAMBDA_FUNCTION_NAME),
    probeTimeoutMs: int(env.REMOTE_NODE_PROBE_TIMEOUT_MS, 3000),
    probeCacheMs: int(env.REMOTE_NODE_PROBE_CACHE_MS, 10_000),
    connectTimeoutMs: int(env.REMOTE_NODE_CONNECT_TIMEOUT_MS, 10_000),
    workDir: (env.REMOTE_NODE_WORK_DIR || '/tmp').replace(/\/+$/, '') || '/',
    podman: env.REMOTE_NODE_PODMAN || 'podman',
    builderImage: env.REMOTE_NODE_BUILDER_IMAGE || 'localhost/ims-kiwi-ng-builder:latest',
    sshdBaseImage: env.REMOTE_NODE_SSHD_IMAGE || 'localhost/ims-sshd:latest',
    buildNetwork: env.REMOTE_NODE_BUILD_NETWORK || 'host',
    shellPortBase: int(env.REMOTE_NODE_SHELL_PORT_BASE, 2022),
    shellListen: env.REMOTE_NODE_SHELL_LISTEN || '0.0.0.0',
    heartbeatTimeoutSeconds: int(env.REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS, 60),
    localDir: env.REMOTE_NODE_LOCAL_DIR || join(tmpdir(), 'ims-remote-node'),
    squashfsOptions: squashfsOptionsFromEnv(env),
    reportUrl: env.REMOTE_NODE_REPORT_URL || undefined,
  };
}

/** Remote build nodes are used only when IMS has a key to reach them (as the original: no key, no placement). */
export function remoteNodesConfigured(settings: RemoteNodeSettings): boolean {
  return Boolean(settings.keyFile || settings.keySecretArn);
}

export function targetOf(settings: RemoteNodeSettings, xname: string): NodeTarget {
  const mapped = settings.hosts.get(xname);
  return { xname, host: mapped?.host ?? xname, port: mapped?.port ?? settings.port, user: settings.user };
}
