/** The "Job latency" rows of a remote build node in bench/results.md (bench/job-latency-remote.ts measures them). */
import type { RemoteLatencyRow } from './job-latency-remote.js';

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function remoteLatencyTable(rows: RemoteLatencyRow[]): string[] {
  return [
    '## Job latency: remote build node (customize, reconciler at the deployed 60 s)',
    '',
    "POST → shell: from POST /v3/jobs to `waiting_on_user` with the shell answering; complete → success: from the user's `touch /mnt/image/complete` (over the job's SSH) to `success`. The job moves on the node's own reports (POST /v3/jobs/{id}/checks), not the reconciler's pass. Beside each: the work's own parts run alone on the same host (download with its MD5 + the loop and overlay mounts + the container script's 1 s wait for sshd; mksquashfs of the merged view + MD5 + upload), and the ratio. The node is this host (sshd on 127.0.0.1, podman); one SSH round trip (connect and one command) is shown, of which a job makes several per stage.",
    '',
    '| image | POST → shell | work alone | ratio | complete → success | work alone | ratio | SSH round trip |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.imageMiB} MiB | ${s(r.postToShellMs)} | ${s(r.shellWorkMs)} | ${r.shellRatio} | ${s(r.completeToSuccessMs)} | ${s(r.successWorkMs)} | ${r.successRatio} | ${r.sshRoundTripMs} ms |`),
    '',
  ];
}
