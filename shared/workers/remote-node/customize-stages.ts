/**
 * A customize job on a remote build node: the node downloads the rootfs itself, a per-job image
 * with sshd is built there FROM a local image, the node mounts the image root copy-on-write
 * (customize-view.ts), and the job's container serves the
 * user's shell on a port of the node (host network: no bridge, no NAT rules on the node) and
 * squashes the root when the user is done. The worker follows it from its markers and state.
 */
import { shq } from './ssh-session.js';
import type { Stage, StageProgress } from '../../domain/worker-port.js';
import { packageResults } from './results-upload.js';
import { putImageContents, startChangeListing } from './image-contents.js';
import { CUSTOMIZE_SCRIPT, sshdConfig } from './node-scripts.js';
import {
  buildJobImage,
  COMMAND_TIMEOUT_MS,
  containerGone,
  jobEnv,
  makeJobDir,
  markPrepared,
  shellHost,
  startContainer,
  type NodeJob,
} from './node-job.js';
import { startTask, tasksDir } from './node-tasks.js';
import { startReporter } from './node-reports.js';
import { describeView, mountViewCommand } from './customize-view.js';
import { logger } from '../../logger.js';

function jailed(n: NodeJob): boolean {
  return n.job.job.ssh_containers?.[0]?.jail === true;
}

/**
 * The node downloads the image root from its pre-signed URL in the background (node-tasks.ts),
 * checking its MD5; once it is there, the per-job image is built.
 */
async function prepare(n: NodeJob): Promise<StageProgress> {
  if (n.view.markers.has('prepared')) return { state: 'done', status: 'fetching_image' };
  const fetch = n.view.tasks.fetch;
  if (fetch.kind === 'failed') return { state: 'failed', reason: `${fetch.reason} (on ${n.xname})` };
  if (fetch.kind === 'running') return { state: 'running', status: 'fetching_image', detail: `${fetch.progress || 'downloading the image root'} on ${n.xname}` };
  if (fetch.kind === 'absent') {
    await makeJobDir(n);
    await n.session.run(`mkdir -p ${shq(tasksDir(n))}`, { timeoutMs: COMMAND_TIMEOUT_MS });
    // First the reporter, so that it sees the download end.
    await startReporter(n);
    // A curl config file: the pre-signed URL shows in no process list on the node.
    await n.session.writeFile(`${tasksDir(n)}/fetch.curl`, `url = "${n.job.downloadUrl.replace(/["\\]/g, '\\$&')}"\n`, 0o600);
    await startTask(n, 'fetch', [`${n.layout.image}/image.sqsh`, n.job.downloadMd5, 'image root']);
    return { state: 'running', status: 'fetching_image', detail: `downloading the image root on ${n.xname}` };
  }
  const record = n.job.job;
  const config = sshdConfig({
    listen: n.settings.shellListen,
    jail: jailed(n),
    env: { IMS_JOB_ID: record.id, IMS_ARCH: record.arch, IMS_DKMS_ENABLED: String(record.require_dkms), REMOTE_BUILD_NODE: n.xname },
  });
  const files = { 'ims-customize.sh': CUSTOMIZE_SCRIPT, sshd_config: config, authorized_keys: `${n.job.publicKey.trim()}\n` };
  await buildJobImage(n, n.settings.sshdBaseImage, files, 'ims-customize.sh');
  await markPrepared(n);
  return { state: 'done', status: 'fetching_image', detail: `image root downloaded by ${n.xname} to ${n.layout.dir}` };
}

/**
 * A free port on the node for the job's sshd, claimed in the job directory under a node-wide
 * lock: not listening (from /proc, so no tool is needed) and not claimed by another job there.
 * This is what the original's port collisions lacked (CASMCMS-8939, CASMCMS-9560).
 */
function claimPortCommand(n: NodeJob): string {
  const lock = `${n.settings.workDir}/.ims-ports.lock`;
  const script = [
    `used=$( { for f in /proc/net/tcp /proc/net/tcp6; do [ -r "$f" ] && awk 'NR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' "$f"; done | while read -r h; do printf '%d\\n' "0x$h"; done; cat ${shq(n.settings.workDir)}/ims_*/port 2>/dev/null; } | sort -un )`,
    `p=${n.settings.shellPortBase}`,
    'while printf "%s\\n" "$used" | grep -qx "$p"; do p=$((p + 1)); done',
    `echo "$p" > ${shq(`${n.layout.dir}/port`)}`,
    'echo "$p"',
  ].join('\n');
  return `flock ${shq(lock)} sh -c ${shq(script)}`;
}

async function unpack(n: NodeJob): Promise<StageProgress> {
  const { view } = n;
  const error = view.reasons['image/remote_error'];
  if (error !== undefined) return { state: 'failed', reason: `the customize container on ${n.xname} failed: ${error || 'no reason given'}` };
  if (view.container.kind === 'absent' && !view.markers.has('started')) {
    await n.session.run(mountViewCommand(n.layout), { timeoutMs: COMMAND_TIMEOUT_MS });
    const port = view.port ?? Number((await n.session.run(claimPortCommand(n), { timeoutMs: COMMAND_TIMEOUT_MS })).trim());
    const env = { ...jobEnv(n), SSH_PORT: String(port), SSH_JAIL: String(jailed(n)) };
    const failed = await startContainer(n, { privileged: false, network: 'host', env });
    return failed ?? { state: 'running', detail: `unpacking the image root on ${n.xname}` };
  }
  const gone = containerGone(n, 'customize', 'before its shell was ready');
  if (gone) return { state: 'failed', reason: gone };
  if (!view.markers.has('image/ready') || view.port === undefined) return { state: 'running', detail: `unpacking the image root on ${n.xname}` };
  if (view.rootView !== 'overlay') logger.warn('the node could not mount the image root: it was unsquashed', { jobId: n.job.job.id, xname: n.xname, view: view.rootView });
  const detail = `shell ready on ${shellHost(n)}:${view.port}; ${describeView(view.rootView)}`;
  return { state: 'done', detail, ssh: { status: 'running', host: shellHost(n), port: view.port } };
}

/** Waits for the user's verdict, checking on every poll that the container still serves the shell. */
async function shell(n: NodeJob): Promise<StageProgress> {
  const { view } = n;
  if (view.markers.has('image/remote_exiting')) return { state: 'done', detail: 'the user marked the job complete', ssh: { status: 'complete' } };
  const error = view.reasons['image/remote_error'];
  if (error !== undefined) return { state: 'failed', reason: `the customize container on ${n.xname} failed: ${error || 'no reason given'}` };
  const gone = containerGone(n, 'customize', 'before the user finished');
  if (gone) return { state: 'failed', reason: gone };
  const host = shellHost(n);
  return {
    state: 'running',
    status: 'waiting_on_user',
    detail: `waiting for the user on ${host}:${view.port}`,
    ...(view.port !== undefined ? { ssh: { status: 'running', host, port: view.port } } : {}),
  };
}

export async function advanceCustomize(n: NodeJob, stage: Exclude<Stage, 'register' | 'cleanup'>): Promise<StageProgress> {
  switch (stage) {
    case 'prepare':
      return prepare(n);
    case 'build':
      return unpack(n);
    case 'ssh':
      return shell(n);
    case 'package': {
      // The node lists the changes while it checksums and uploads the results.
      await startChangeListing(n);
      const packaged = await packageResults(n, n.results);
      if (packaged.state !== 'done') return packaged;
      return (await putImageContents(n, n.results)) ?? packaged;
    }
  }
}
