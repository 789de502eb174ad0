/**
 * The node tells IMS when a step of its job ends, so the stage waiting on it is checked at once
 * rather than at the reconciler's next pass. Beside the job's tasks runs one more background
 * process, its reporter (`<job dir>/tasks/report/`): it watches the job's outcomes — a task's
 * `done` or `failed` (download, checksums, upload), the markers of the job's container (sshd
 * listening, the build's or the squash's outcome, an error) and the container's end (`podman
 * wait`) — and on each change POSTs `<report URL>/v3/jobs/<id>/checks` with the job's report
 * token (shared/domain/job-report-token.ts), which can do nothing but ask for that check.
 *
 * A report is bounded (connect 5 s, 15 s in all, three tries) and never fails the job: where the
 * node cannot reach IMS, the reconciler finds the same progress at its pass. The URL and token
 * sit in a curl config file only root can read, outside the directory the job's shell sees; the
 * token shows in no process list and no log. The reporter ends when the job's directory goes, at
 * the token's expiry, or with the job's other tasks (killTasksCommand).
 */
import { shq } from './ssh-session.js';
import type { NodeJob } from './node-job.js';
import { detachedCommand, tasksDir } from './node-tasks.js';

/** Where a job's node reports to, and with what; absent when reports are not configured. */
export interface ReportTarget {
  /** The service's base URL as the node reaches it (REMOTE_NODE_REPORT_URL). */
  url: string;
  token: string;
  /** Unix seconds: the reporter stops with its token. */
  expiresAt: number;
}

/** The outcomes the reporter watches, relative to the job directory. */
const WATCHED = [
  'image/ready',
  'image/build_succeeded',
  'image/build_failed',
  'image/remote_error',
  'image/remote_exiting',
  'tasks/*/done',
  'tasks/*/failed',
  'tasks/report/container-ended',
];

/** reporter <job dir> <expiry> <container> <podman…>: see the file comment. */
const REPORTER_SCRIPT = `set -u
echo $$ > pid
job=$1; expires=$2; container=$3; podman=$4
report() {
  try=1
  while [ "$try" -le 3 ]; do
    if curl -sS -f -o /dev/null --connect-timeout 5 --max-time 15 -X POST -K ../report.curl 2>curl.err; then
      echo "$(date +%s) reported: $1" >> log; return 0
    fi
    sleep "$try"; try=$((try + 1))
  done
  echo "$(date +%s) not delivered ($(tail -n 1 curl.err | tr '\\n' ' ')); the reconciler finds it: $1" >> log
}
last=; waiting=
while [ -d "$job" ] && [ "$(date +%s)" -lt "$expires" ]; do
  if [ -z "$waiting" ] && [ -e "$job/started" ]; then
    ( eval "$podman wait $container" >/dev/null 2>&1; touch container-ended ) &
    waiting=yes
  fi
  now=$(cd "$job" && ls -d ${WATCHED.join(' ')} 2>/dev/null | tr '\\n' ' ')
  if [ "$now" != "$last" ]; then
    [ -n "$now" ] && report "$now"
    last=$now
  fi
  sleep 0.25 2>/dev/null || sleep 1
done
`;

/**
 * Starts the job's reporter on the node unless it runs already (its directory is its claim, as
 * for every task). The curl config is written first, owner-only.
 */
export async function startReporter(n: NodeJob): Promise<void> {
  const target = await n.reports?.(n.job.job.id);
  if (!target) return;
  const dir = `${tasksDir(n)}/report`;
  const endpoint = `${target.url.replace(/\/+$/, '')}/v3/jobs/${encodeURIComponent(n.job.job.id)}/checks`;
  const quote = (text: string) => text.replace(/["\\]/g, '\\$&');
  await n.session.run(`mkdir -p ${shq(tasksDir(n))}`, { timeoutMs: 30_000 });
  await n.session.writeFile(`${tasksDir(n)}/report.curl`, `url = "${quote(endpoint)}"\nheader = "Authorization: Bearer ${quote(target.token)}"\n`, 0o600);
  const command = detachedCommand(
    `mkdir ${shq(dir)}`,
    dir,
    `sh -c ${shq(REPORTER_SCRIPT)} reporter ${shq(n.layout.dir)} ${Math.floor(target.expiresAt)} ${shq(n.layout.container)} ${shq(n.settings.podman)}`,
    '/dev/null',
  );
  await n.session.run(command, { timeoutMs: 30_000 });
}
