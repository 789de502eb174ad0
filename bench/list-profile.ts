/**
 * Where a whole list's time goes in the server: a server started on a data directory holding
 * `count` images runs under `--cpu-prof`; after it has been idle for a moment it answers `runs`
 * whole lists, then stops and writes its profile. The samples after the idle stretch (the lists
 * alone, not the start-up and journal replay) are summed by function, self time.
 * Part of `npm run bench` (BENCH_PARTS=listprofile).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfiledServer {
  proc: ChildProcess;
  url: string;
}

export type StartServer = (options: { nodeArgs?: string[]; keepData?: boolean }) => Promise<ProfiledServer>;

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

const IDLE_BEFORE_LISTS_MS = 1500;

export async function profileWholeList(start: StartServer, root: string, count: number, runs = 20) {
  // Fill a data directory (through the API, as the records part does), then start over on it, profiled.
  const filler = await start({});
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < count; i = next++) {
        const res = await fetch(`${filler.url}/v3/images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `img-${i}`, arch: 'x86_64', metadata: { team: 'bench' } }) });
        await res.arrayBuffer();
      }
    }),
  );
  await stop(filler.proc);
  const dir = join(root, 'bench/tmp/profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const server = await start({ nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`], keepData: true });
  await new Promise((r) => setTimeout(r, IDLE_BEFORE_LISTS_MS));
  let bytes = 0;
  for (let i = 0; i < runs; i++) bytes = (await (await fetch(`${server.url}/v3/images`)).arrayBuffer()).byteLength;
  await stop(server.proc);
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('the profiled server wrote no profile');
  return { records: count, runs, bytes, ...summarize(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, root) };
}

function stop(proc: ChildProcess): Promise<void> {
  return new Promise((ok) => {
    proc.once('exit', () => ok());
    proc.kill('SIGTERM');
  });
}

/** Self time by function over the samples after the last idle stretch of IDLE_BEFORE_LISTS_MS / 2 or more. */
function summarize(profile: CpuProfile, root: string) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const isIdle = (i: number) => byId.get(profile.samples[i])?.functionName === '(idle)';
  let from = 0;
  let idleMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    if (isIdle(i)) idleMs += profile.timeDeltas[i] / 1000;
    else {
      if (idleMs >= IDLE_BEFORE_LISTS_MS / 2) from = i;
      idleMs = 0;
    }
  }
  const self = new Map<string, number>();
  let totalMs = 0;
  for (let i = from; i < profile.samples.length; i++) {
    if (isIdle(i)) continue;
    const frame = byId.get(profile.samples[i])!;
    const where = frame.url ? ` ${relative(root, frame.url.replace(/^file:\/\//, ''))}:${frame.lineNumber + 1}` : '';
    const name = `${frame.functionName || '(anonymous)'}${where}`;
    const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i]) / 1000;
    self.set(name, (self.get(name) ?? 0) + ms);
    totalMs += ms;
  }
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([fn, ms]) => ({ fn, ms: Number(ms.toFixed(1)), share: Number(((100 * ms) / totalMs).toFixed(1)) }));
  return { busyMs: Number(totalMs.toFixed(1)), top };
}
