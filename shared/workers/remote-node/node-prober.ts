/**
 * Health of remote build nodes over SSH, with the original's fields and texts
 * (ims-api-behaviour.md §8, Cray-HPE/ims `models/remote_build_nodes.py`): reachable, arch,
 * podman present, number of IMS jobs on the node. Unlike the original, each probe is bounded
 * (REMOTE_NODE_PROBE_TIMEOUT_MS) and its answer reused for a short while
 * (REMOTE_NODE_PROBE_CACHE_MS), so a dead node slows neither GET /status nor POST /jobs, and a
 * burst of job creations costs one probe per node.
 */
import { logger } from '../../logger.js';
import { unknownStatus, type NodeHealth, type NodeProber } from '../../domain/remote-build-nodes.js';
import { keySourceFor, type KeySource } from './ssh-key.js';
import { checkNode } from './node-checks.js';
import { knownHostsSourceFor, type KnownHostsSource } from './known-hosts-source.js';
import { openSession, type NodeSession } from './ssh-session.js';
import { targetOf, type RemoteNodeSettings } from './settings.js';

export const SSH_OK = 'SSH connection established.';

/** Python prints the exception; ours carry the same information in their message. */
function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface ProberDeps {
  keySource?: KeySource;
  knownHosts?: KnownHostsSource;
  open?: typeof openSession;
  now?: () => number;
}

export class SshNodeProber implements NodeProber {
  readonly probing = true;
  private readonly cache = new Map<string, { at: number; health: Promise<NodeHealth> }>();
  private readonly keySource: KeySource;
  private readonly knownHosts: KnownHostsSource;
  private readonly open: typeof openSession;
  private readonly now: () => number;

  constructor(
    private readonly settings: RemoteNodeSettings,
    deps: ProberDeps = {},
  ) {
    this.keySource = deps.keySource ?? keySourceFor(settings);
    this.knownHosts = deps.knownHosts ?? knownHostsSourceFor(settings);
    this.open = deps.open ?? openSession;
    this.now = deps.now ?? Date.now;
  }

  /** Concurrent callers share one probe; its answer, good or bad, is reused until it is stale. */
  probe(xname: string): Promise<NodeHealth> {
    const cached = this.cache.get(xname);
    if (cached && this.now() - cached.at < this.settings.probeCacheMs) return cached.health;
    const health = this.probeNow(xname);
    this.cache.set(xname, { at: this.now(), health });
    return health;
  }

  /** Forgets a node's last answer (e.g. after a job started or ended there). */
  invalidate(xname: string): void {
    this.cache.delete(xname);
  }

  private async probeNow(xname: string): Promise<NodeHealth> {
    const status: NodeHealth = { ...unknownStatus(xname), probedAtMs: this.now() };
    const started = this.now();
    let session: NodeSession;
    try {
      const [key, knownHosts] = await Promise.all([this.keySource(), this.knownHosts()]);
      session = await this.open(targetOf(this.settings, xname), key, this.settings.probeTimeoutMs, { knownHosts });
    } catch (error) {
      status.sshStatus = `Unable to connect to node. Error: ${describe(error)}`;
      logger.warn('remote build node unreachable', { xname, error: describe(error) });
      return status;
    }
    status.sshStatus = SSH_OK;
    try {
      await checkNode(session, status, this.settings, Math.max(100, started + this.settings.probeTimeoutMs - this.now()));
    } finally {
      session.close();
    }
    return status;
  }
}
