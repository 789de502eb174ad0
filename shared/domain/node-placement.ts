/**
 * Which remote build node a new job runs on. The original SSHes into every node inside POST /jobs
 * and picks the one with the fewest `/tmp/ims_*` directories, without a reservation, so a burst
 * of jobs (sat bootprep) all lands on one node (ims-job-workflow.md §5.2, §9 item 5). Here:
 *
 * * probes are bounded and cached (the NodeProber), so a dead node does not slow job creation;
 * * a node's load is what its probe counted plus the jobs placed there that the probe cannot have
 *   seen yet: reserved but not started, or started after the probe looked;
 * * a placement is a conditional write on the chosen node's `node-load` item (optimistic locking,
 *   no transactions): when two creations pick the same node with the same load, one write loses,
 *   re-reads and picks again, so concurrent jobs spread evenly.
 *
 * A reservation is marked started when the job's first stage on the node has finished (its
 * directory then exists, so the next probe counts it) and dropped when the job ends.
 */
import { mutate } from './lifecycle.js';
import { RecordNotFoundError } from './errors.js';
import { listRemoteBuildNodes, type NodeHealth, type NodeProber } from './remote-build-nodes.js';
import { sortableTimestamp } from './time.js';
import type { DomainContext } from './context.js';
import type { Arch } from './records.js';

const KIND = 'node-load';

/** The worker that runs jobs placed on a node (shared/workers/remote-node). */
export const REMOTE_NODE_WORKER = 'remote-node';

/** A job placed on a node: when it was placed and, once it runs there, when it started. */
export interface NodeJobEntry {
  reservedMs: number;
  startedMs?: number;
}

/** The `node-load` item of one node. */
export interface NodeLoad {
  xname: string;
  jobs: Record<string, NodeJobEntry>;
}

/** A reservation whose job never started (its workflow died before cleanup) stops counting after the prepare stage's default limit. */
export const RESERVATION_TTL_MS = 60 * 60 * 1000;
/** A started job is counted until every probe older than its start has expired (probes are cached for seconds). */
export const STARTED_KEEP_MS = 10 * 60 * 1000;
/** Many more attempts than a PATCH gets: contention here is the normal case, one winner per node and round. */
const MAX_ATTEMPTS = 60;
/**
 * A lost placement retries after a short random pause: every round has a winner per node, so
 * the losers only need to spread out a little, not back off for long as a PATCH does.
 */
function contentionPause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 4 * 2 ** attempt)));
}

/** Nodes whose probe could not count their jobs rank after every node that could (as the original). */
const UNKNOWN_COUNT_RANK = 1_000_000;

export interface PlacementContext extends DomainContext {
  nodes: NodeProber;
}

export type Placement =
  /** The job runs on `xname`; `detail` is the history's account of why. */
  | { xname: string; detail: string }
  /** No node takes the job; `detail` says why when there were nodes to consider. */
  | { xname?: undefined; detail?: string };

function nowMs(ctx: DomainContext): number {
  return Number(ctx.clock.nowMicros() / 1000n);
}

/** Entries that no longer count: never-started reservations past their TTL, long-started jobs. */
function pruned(jobs: Record<string, NodeJobEntry>, now: number): Record<string, NodeJobEntry> {
  return Object.fromEntries(
    Object.entries(jobs).filter(([, e]) => (e.startedMs === undefined ? now - e.reservedMs < RESERVATION_TTL_MS : now - e.startedMs < STARTED_KEEP_MS)),
  );
}

/** The jobs on a node: what the probe counted plus placements it cannot have seen. */
export function nodeLoad(health: NodeHealth, load: NodeLoad | undefined, now: number): number {
  let count = health.numCurrentJobs >= 0 ? health.numCurrentJobs : UNKNOWN_COUNT_RANK;
  for (const entry of Object.values(pruned(load?.jobs ?? {}, now))) {
    if (entry.startedMs === undefined || entry.startedMs > health.probedAtMs) count += 1;
  }
  return count;
}

function describeNode(health: NodeHealth, load: number): string {
  const jobs = load >= UNKNOWN_COUNT_RANK ? `${load - UNKNOWN_COUNT_RANK} placed jobs + an unknown number running` : `${load} job${load === 1 ? '' : 's'}`;
  return `${jobs}, ${health.nodeArch}${health.podmanVersion ? `, podman ${health.podmanVersion}` : ''}`;
}

/**
 * Chooses the healthy node of `arch` with the fewest jobs and reserves it for `jobId`, or says
 * why none takes the job.
 */
export async function placeJob(ctx: PlacementContext, jobId: string, arch: Arch): Promise<Placement> {
  if (!ctx.nodes.probing) return {};
  const registered = await listRemoteBuildNodes(ctx);
  if (registered.length === 0) return {};
  const health = await Promise.all(registered.map((n) => ctx.nodes.probe(n.xname)));
  const candidates = health.filter((h) => h.ableToRunJobs && h.nodeArch === arch);
  if (candidates.length === 0) return { detail: `no healthy ${arch} node among ${registered.length} remote build node${registered.length === 1 ? '' : 's'}` };
  return inTurn(() => reserveLeastLoaded(ctx, jobId, arch, candidates));
}

/**
 * Placements in one process take turns (the embedded server takes a burst of POSTs in one
 * process): they would only lose writes to each other. Across processes (Lambda runs one request
 * per instance) the conditional writes decide.
 */
let lastTurn: Promise<unknown> = Promise.resolve();
function inTurn<T>(work: () => Promise<T>): Promise<T> {
  const result = lastTurn.then(work, work);
  lastTurn = result.catch(() => undefined);
  return result;
}

/** Reserves the least loaded of `candidates` (healthy nodes of `arch`) for the job, by conditional writes alone. */
export async function reserveLeastLoaded(ctx: DomainContext, jobId: string, arch: Arch, candidates: NodeHealth[]): Promise<Placement> {
  // Only the node a write lost on is read again: the others' loads can only have grown meanwhile
  // (a release during a burst only makes this placement a little conservative), so the node
  // chosen from these reads, whose own load the conditional write confirms, is still the least
  // loaded one.
  const stored = await Promise.all(candidates.map((c) => ctx.store.get<NodeLoad>(KIND, c.xname)));
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const now = nowMs(ctx);
    const ranked = candidates
      .map((h, i) => ({ index: i, health: h, stored: stored[i], load: nodeLoad(h, stored[i]?.record, now) }))
      .sort((a, b) => a.load - b.load || a.health.xname.localeCompare(b.health.xname));
    const best = ranked[0];
    const kept = pruned(best.stored?.record.jobs ?? {}, now);
    // A repeated creation of the same job keeps its entry (and whether it started).
    const jobs = { ...kept, [jobId]: kept[jobId] ?? { reservedMs: now } };
    const next: NodeLoad = { xname: best.health.xname, jobs };
    const written = best.stored
      ? await ctx.store.update(KIND, best.health.xname, best.stored.version, next, 'live')
      : await ctx.store.create(KIND, best.health.xname, next, sortableTimestamp(ctx.clock.nowMicros()));
    if (written) return { xname: best.health.xname, detail: `placed on ${best.health.xname}: ${describeNode(best.health, best.load)}` };
    await contentionPause(attempt);
    stored[best.index] = await ctx.store.get<NodeLoad>(KIND, best.health.xname);
  }
  return { detail: `placement on the ${arch} nodes kept losing to concurrent placements` };
}

async function changeEntries(ctx: DomainContext, xname: string, change: (jobs: Record<string, NodeJobEntry>, now: number) => Record<string, NodeJobEntry> | undefined): Promise<void> {
  try {
    await mutate<NodeLoad>(ctx.store, KIND, xname, 'live', async ({ record }) => {
      const now = nowMs(ctx);
      const jobs = change(record.jobs, now);
      return jobs ? { record: { ...record, jobs: pruned(jobs, now) }, state: 'live' } : undefined;
    });
  } catch (error) {
    // No item: nothing was ever placed there, so there is nothing to change.
    if (!(error instanceof RecordNotFoundError)) throw error;
  }
}

/** The job now runs on the node: from here on the node's probes count it. */
export async function markNodeJobStarted(ctx: DomainContext, xname: string, jobId: string): Promise<void> {
  await changeEntries(ctx, xname, (jobs, now) => {
    const entry = jobs[jobId];
    if (!entry || entry.startedMs !== undefined) return undefined;
    return { ...jobs, [jobId]: { ...entry, startedMs: now } };
  });
}

/** The job ended (or was deleted): it no longer counts on the node. */
export async function releaseNodeJob(ctx: DomainContext, xname: string, jobId: string): Promise<void> {
  await changeEntries(ctx, xname, (jobs) => {
    if (!(jobId in jobs)) return undefined;
    const { [jobId]: _gone, ...rest } = jobs;
    return rest;
  });
}
