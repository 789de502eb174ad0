/**
 * The checks of a node probe, with the original's texts (Cray-HPE/ims
 * `models/remote_build_nodes.py`): arch, podman present, job count; plus podman's version.
 *
 * The original runs one SSH command per check. Here they run as one script in one command, each
 * step's exit code, stdout and stderr printed (base64) as soon as the step ends: one session and
 * one login shell instead of four (a root login shell can take a quarter of a second to start),
 * and a step that hangs still leaves the earlier steps' answers.
 */
import { logger } from '../../logger.js';
import type { NodeHealth } from '../../domain/remote-build-nodes.js';
import { shq, type NodeSession } from './ssh-session.js';
import type { RemoteNodeSettings } from './settings.js';

export const PODMAN_OK = 'Podman present at /usr/bin/podman';

interface StepResult {
  rc: number;
  stdout: string;
  stderr: string;
}

type StepName = 'arch' | 'which' | 'version' | 'jobs';

export function probeScript(settings: RemoteNodeSettings): string {
  return [
    't=$(mktemp -d) || exit 1',
    `step() { name=$1; shift; sh -c "$1" >"$t/o" 2>"$t/e"; rc=$?; echo "@ims $name $rc $(base64 <"$t/o" | tr -d '\\n') $(base64 <"$t/e" | tr -d '\\n')"; }`,
    // `uname -m`, not the original's `uname -i`: on Debian and Ubuntu `-i` prints "unknown".
    "step arch 'uname -m'",
    "step which 'which podman'",
    `step version ${shq(`${settings.podman} --version`)}`,
    // Per-job directories `<workDir>/ims_<job>` exist while a job runs on the node.
    `step jobs ${shq(`find ${shq(settings.workDir)} -mindepth 1 -maxdepth 1 -type d -name 'ims_*' | wc -l`)}`,
    'rm -rf "$t"',
  ].join('\n');
}

export function parseProbeOutput(output: string): Partial<Record<StepName, StepResult>> {
  const steps: Partial<Record<StepName, StepResult>> = {};
  for (const line of output.split('\n')) {
    const [tag, name, rc, out = '', err = ''] = line.split(' ');
    if (tag !== '@ims' || !name || rc === undefined) continue;
    const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
    steps[name as StepName] = { rc: Number(rc), stdout: decode(out), stderr: decode(err) };
  }
  return steps;
}

function archOf(output: string): string | undefined {
  if (output.includes('aarch64')) return 'aarch64';
  if (output.includes('x86')) return 'x86_64';
  return undefined;
}

/** Runs the checks on an open session and fills in `status`; stops, as the original, at the first that fails. */
export async function checkNode(session: NodeSession, status: NodeHealth, settings: RemoteNodeSettings, timeoutMs: number): Promise<void> {
  let steps: Partial<Record<StepName, StepResult>>;
  let cutOff = '';
  try {
    const result = await session.exec(probeScript(settings), { timeoutMs, partialOnTimeout: true });
    steps = parseProbeOutput(result.stdout);
    if (result.timedOut) cutOff = `the node did not answer within ${timeoutMs} ms`;
    else if (result.code !== 0 && !steps.arch) cutOff = `the probe failed: ${result.stderr.trim() || `exit ${result.code}`}`;
  } catch (error) {
    steps = {};
    cutOff = (error as Error).message;
  }

  const arch = steps.arch;
  if (!arch) {
    status.nodeArch = `Unable to determine architecture of node. Error: ${cutOff}`;
    return;
  }
  if (arch.rc !== 0) {
    status.nodeArch = `Unable to determine architecture of node. Error: ${arch.stdout} ${arch.stderr}`;
    return;
  }
  const known = archOf(arch.stdout);
  if (!known) {
    status.nodeArch = `Undefined architecture type for node, result: ${arch.stdout}`;
    return;
  }
  status.nodeArch = known;

  const which = steps.which;
  if (!which) {
    status.podmanStatus = `Unable determine if tools are installed on node. Error: ${cutOff}`;
    return;
  }
  if (which.rc !== 0) {
    status.podmanStatus = `Unable to determine if podman is installed on node. Error: ${which.stdout} ${which.stderr}`;
    return;
  }
  if (!which.stdout.includes('/usr/bin/podman')) {
    status.podmanStatus = 'Podman not installed on node.';
    return;
  }
  status.podmanStatus = PODMAN_OK;
  // As the original: the job count is not required for the node to take jobs.
  status.ableToRunJobs = true;

  const version = steps.version && steps.version.rc === 0 ? /(\d+\.\d+(?:\.\d+)?)/.exec(steps.version.stdout)?.[1] : undefined;
  if (version) status.podmanVersion = version;
  const jobs = steps.jobs;
  const count = jobs && jobs.rc === 0 ? Number.parseInt(jobs.stdout.trim(), 10) : NaN;
  if (Number.isInteger(count)) status.numCurrentJobs = count;
  else logger.warn('could not count the jobs on a remote build node', { xname: status.xname, error: cutOff || jobs?.stderr });
}
