/**
 * One look at a job on its node, in one SSH command: which markers exist, the reasons the job's
 * container wrote, its port, and the container's state. Every poll starts with it; it is the
 * heartbeat of the job (the node answers) and of its container (podman knows it, running or not).
 */
import { shq, type NodeSession } from './ssh-session.js';
import type { RemoteNodeSettings } from './settings.js';
import type { JobLayout } from './job-layout.js';
import { parseTask, tasksViewCommand, TASKS, type TaskName, type TaskState } from './node-tasks.js';

/** Markers the worker reads (paths relative to the job directory). */
const MARKERS = [
  'prepared',
  'started',
  'image/ready',
  'image/build_succeeded',
  'image/remote_exiting',
  'image/out/rootfs.sqsh',
  'image/out/kernel',
  'image/out/initrd',
  'image/out/parameters',
  'image/out/packages',
  // The results' upload to S3 (results-upload.ts): planned, and completed.
  'tasks/upload.plan',
  'tasks/completed',
] as const;
/** Markers whose content is the reason of a failure. */
const REASONS = ['image/build_failed', 'image/remote_error'] as const;

export type Marker = (typeof MARKERS)[number];
export type ReasonMarker = (typeof REASONS)[number];

/** `running` includes podman's transitional states (created, stopping, …): the next poll tells more. */
export type ContainerState = { kind: 'absent' } | { kind: 'running'; status: string } | { kind: 'stopped'; status: string; exitCode: number };

/** States of a container that has ended (podman's `exited`; `stopped` and `dead` are rarer). */
const ENDED = new Set(['exited', 'stopped', 'dead']);

export interface JobView {
  /** The job directory exists on the node. */
  present: boolean;
  markers: Set<Marker>;
  reasons: Partial<Record<ReasonMarker, string>>;
  port?: number;
  container: ContainerState;
  /** The node's background transfers (node-tasks.ts); absent until started. */
  tasks: Record<TaskName, TaskState>;
  /** The results' sizes and MD5s, once the `sums` task is done. */
  sums: Map<string, { size: number; md5: string }>;
  /** How a customize job's image root is seen (customize-view.ts): `overlay`, or `copy <why not>`. */
  rootView?: string;
}

export function viewCommand(settings: RemoteNodeSettings, layout: JobLayout): string {
  const d = shq(layout.dir);
  return [
    `cd ${d} 2>/dev/null || { echo dir=absent; exit 0; }`,
    'echo dir=present',
    // The container first: when it is seen stopped, every marker it wrote before stopping is
    // already there to be seen (the other order can see a result-less container that just wrote one).
    `echo "container=$(${settings.podman} container inspect --format '{{.State.Status}} {{.State.ExitCode}}' ${shq(layout.container)} 2>/dev/null || echo absent)"`,
    `for f in ${MARKERS.join(' ')}; do [ -e "$f" ] && echo "has=$f"; done`,
    `for f in ${REASONS.join(' ')}; do [ -e "$f" ] && echo "$f=$(head -c 600 "$f" | tr '\\n' ' ')"; done`,
    `[ -e port ] && echo "port=$(cat port)"`,
    `[ -e view ] && echo "view=$(head -c 400 view | tr '\\n' ' ')"`,
    tasksViewCommand(),
    `[ -e tasks/sums/done ] && sed 's/^/sum=/' tasks/sums/sums`,
    'true',
  ].join('\n');
}

/** Whether the job's container left the result file `file` (in `<image>/out`). */
export function hasResult(view: JobView, file: string): boolean {
  return view.markers.has(`image/out/${file}` as Marker);
}

export function parseView(output: string): JobView {
  const tasks = Object.fromEntries(TASKS.map((t) => [t, { kind: 'absent' }])) as Record<TaskName, TaskState>;
  const view: JobView = { present: false, markers: new Set(), reasons: {}, container: { kind: 'absent' }, tasks, sums: new Map() };
  for (const line of output.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).trim();
    if (key === 'dir') view.present = value === 'present';
    else if (key === 'has') view.markers.add(value as Marker);
    else if ((REASONS as readonly string[]).includes(key)) view.reasons[key as ReasonMarker] = value;
    else if (key === 'port' && /^\d+$/.test(value)) view.port = Number(value);
    else if (key === 'view') view.rootView = value;
    else if (key === 'container') view.container = parseContainer(value);
    else if (key.startsWith('task.') && (TASKS as readonly string[]).includes(key.slice(5))) view.tasks[key.slice(5) as TaskName] = parseTask(value);
    else if (key === 'sum') {
      const [file, size, md5] = value.split(/\s+/);
      if (file && /^\d+$/.test(size ?? '') && /^[0-9a-f]{32}$/.test(md5 ?? '')) view.sums.set(file, { size: Number(size), md5: md5! });
    }
  }
  return view;
}

function parseContainer(value: string): ContainerState {
  const [status, code] = value.split(/\s+/);
  if (!status || status === 'absent') return { kind: 'absent' };
  if (!ENDED.has(status)) return { kind: 'running', status };
  return { kind: 'stopped', status, exitCode: Number.parseInt(code ?? '', 10) };
}

export async function readView(session: NodeSession, settings: RemoteNodeSettings, layout: JobLayout, timeoutMs: number): Promise<JobView> {
  const result = await session.exec(viewCommand(settings, layout), { timeoutMs });
  return parseView(result.stdout);
}

/** How the container ended, for a reason text. */
export function describeStopped(state: ContainerState): string {
  if (state.kind !== 'stopped') return state.kind;
  const killed = state.exitCode === 137 ? ', killed' : '';
  return `${state.status} with exit code ${Number.isNaN(state.exitCode) ? 'unknown' : state.exitCode}${killed}`;
}
