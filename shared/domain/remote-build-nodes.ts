import { getInState, listAll, removeInState } from './lifecycle.js';
import { sortableTimestamp } from './time.js';
import { forEachRecord } from './soft-delete.js';
import type { DomainContext } from './context.js';
import type { RemoteBuildNodeRecord } from './records.js';

const KIND = 'remote-build-node';

export interface RemoteBuildNodeStatus {
  xname: string;
  sshStatus: string;
  podmanStatus: string;
  nodeArch: string;
  numCurrentJobs: number;
  ableToRunJobs: boolean;
}

/** What a probe learned: the status object of the API plus what placement needs beside it. */
export interface NodeHealth extends RemoteBuildNodeStatus {
  /** When the node was looked at (ms since the epoch); jobs started after that are not in numCurrentJobs. */
  probedAtMs: number;
  /** `podman --version` of a node whose podman is present. */
  podmanVersion?: string;
}

/** Health of a remote build node; implementations must bound their time per node. */
export interface NodeProber {
  /** false when nodes cannot be reached at all (no SSH key configured): no job is placed on them. */
  readonly probing: boolean;
  probe(xname: string): Promise<NodeHealth>;
  /** Forgets a cached probe, so the next one looks again. */
  invalidate?(xname: string): void;
}

export function unknownStatus(xname: string): RemoteBuildNodeStatus {
  return { xname, sshStatus: 'Unknown', podmanStatus: 'Unknown', nodeArch: 'Unknown', numCurrentJobs: -1, ableToRunJobs: false };
}

/** Used until SSH probing is configured: every node reports the original's initial values. */
export const unprobedNodes: NodeProber = { probing: false, probe: async (xname) => ({ ...unknownStatus(xname), probedAtMs: Date.now() }) };

/** The status object exactly as the original serves it (six keys, in its order). */
export function wireStatus(health: RemoteBuildNodeStatus): RemoteBuildNodeStatus {
  const { xname, sshStatus, podmanStatus, nodeArch, numCurrentJobs, ableToRunJobs } = health;
  return { xname, sshStatus, podmanStatus, nodeArch, numCurrentJobs, ableToRunJobs };
}

/** Registering an xname that is already registered is a no-op answered like a creation. */
export async function createRemoteBuildNode(ctx: DomainContext, input: RemoteBuildNodeRecord): Promise<RemoteBuildNodeRecord> {
  const record = { xname: input.xname };
  await ctx.store.create(KIND, record.xname, record, sortableTimestamp(ctx.clock.nowMicros()));
  return record;
}

export async function listRemoteBuildNodes(ctx: DomainContext): Promise<RemoteBuildNodeRecord[]> {
  return (await listAll<RemoteBuildNodeRecord>(ctx.store, KIND, 'live')).map((s) => s.record);
}

export async function getRemoteBuildNode(ctx: DomainContext, xname: string): Promise<RemoteBuildNodeRecord> {
  return (await getInState<RemoteBuildNodeRecord>(ctx.store, KIND, xname, 'live')).record;
}

export async function deleteRemoteBuildNode(ctx: DomainContext, xname: string): Promise<void> {
  await removeInState(ctx.store, KIND, xname, 'live');
}

export async function deleteAllRemoteBuildNodes(ctx: DomainContext): Promise<void> {
  await forEachRecord<RemoteBuildNodeRecord>(ctx, KIND, 'live', (xname) => deleteRemoteBuildNode(ctx, xname), (r) => r.xname);
}

export async function remoteBuildNodeStatus(ctx: DomainContext, prober: NodeProber, xname: string): Promise<RemoteBuildNodeStatus> {
  await getRemoteBuildNode(ctx, xname);
  return wireStatus(await prober.probe(xname));
}

/** Probes run side by side, so the slowest node bounds the answer, not the sum of them. */
export async function allRemoteBuildNodeStatus(ctx: DomainContext, prober: NodeProber): Promise<RemoteBuildNodeStatus[]> {
  const nodes = await listRemoteBuildNodes(ctx);
  return Promise.all(nodes.map(async (n) => wireStatus(await prober.probe(n.xname))));
}
