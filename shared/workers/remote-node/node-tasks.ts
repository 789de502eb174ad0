/**
 * Long transfers run on the node, in the background, never inside a stage invocation: the node
 * downloads its input from a pre-signed GET URL, checksums its results and uploads them to S3
 * through pre-signed part URLs. A stage starts such a task once and then only looks at it on
 * each poll, so an invocation takes seconds whatever the image size, and no byte of an image
 * passes through this host.
 *
 * A task lives in `<job dir>/tasks/<name>/`: the directory is its claim (mkdir is atomic, so two
 * invocations never start it twice), `pid` its process (a session of its own, so the cleanup
 * can end it and its children), `progress` a line for the job's history, and `done` or
 * `failed` (a reason inside) its outcome. The job view (job-view.ts) reads them on every poll.
 * The scripts are POSIX sh; besides what the job scripts need, a node needs curl, md5sum, dd
 * and stat (coreutils or busybox).
 */
import { CHANGE_LISTING_SCRIPT } from '../change-report.js';
import { shq } from './ssh-session.js';
import type { NodeJob } from './node-job.js';

/** Starting a task is one quick command (the job's poll commands have the same bound). */
const START_TIMEOUT_MS = 30_000;

export const TASKS = ['fetch', 'sums', 'upload', 'changes'] as const;
export type TaskName = (typeof TASKS)[number];

export type TaskState =
  | { kind: 'absent' }
  | { kind: 'running'; progress: string }
  | { kind: 'done' }
  /** The task wrote why it failed, or ended without a word (`dead`: killed, the node restarted). */
  | { kind: 'failed'; reason: string };

/** Shared by the task scripts: `fail <reason>` records the reason and ends the task. */
const PRELUDE = `set -u
echo $$ > pid
fail() { echo "$1" > failed.part && mv failed.part failed; exit 0; }
`;

/**
 * fetch <target> <md5> <what>: downloads the URL in ../fetch.curl (a curl config file, so the
 * pre-signed URL shows in no process list) to <target>, hashing it on the way; an empty <md5>
 * is not checked (as the original).
 */
const FETCH_SCRIPT = `${PRELUDE}
target=$1; expected=$2; what=$3
rm -f "$target.part"
echo "downloading the $what" > progress
{ curl -sS -f -L --retry 3 --retry-delay 2 --connect-timeout 30 -K ../fetch.curl -o - 2>curl.err; echo $? > curl.rc; } | tee "$target.part" | md5sum | cut -d' ' -f1 > md5
rc=$(cat curl.rc)
[ "$rc" = 0 ] || fail "downloading the $what failed: curl exited with status $rc ($(tail -n 2 curl.err | tr '\\n' ' '))"
actual=$(cat md5)
[ -z "$expected" ] || [ "$actual" = "$expected" ] || { rm -f "$target.part"; fail "the downloaded $what has MD5 $actual, expected $expected"; }
mv "$target.part" "$target" || fail "moving the downloaded $what into place failed"
touch done
`;

/** sums <dir> <file>...: size and MD5 of each file of <dir> that exists, one `<file> <size> <md5>` line each, in ./sums. */
const SUMS_SCRIPT = `${PRELUDE}
dir=$1; shift
: > sums.part
for f in "$@"; do
  [ -e "$dir/$f" ] || continue
  echo "checksumming $f" > progress
  size=$(stat -c %s "$dir/$f") || fail "stat $f failed"
  md5=$(md5sum < "$dir/$f" | cut -d' ' -f1) || fail "md5sum $f failed"
  echo "$f $size $md5" >> sums.part
done
mv sums.part sums && touch done
`;

/**
 * upload <dir>: PUTs the parts listed in ../upload.plan (\`P <file> <part> <offset> <length> <url>\`,
 * offsets in whole MiB) from the files of <dir>, one part at a time through a part file, and
 * writes \`<file> <part> <etag>\` lines to ./etags. A part already sent (an etag file) is not sent
 * again, so a restarted upload goes on where it stopped.
 */
const UPLOAD_SCRIPT = `${PRELUDE}
dir=$1
mkdir -p parts
total=$(grep -c '^P ' ../upload.plan)
sent=0
grep '^P ' ../upload.plan > plan.parts
while read -r _ f part offset length url; do
  e=parts/$f.$part
  if [ ! -s "$e" ]; then
    echo "uploading part $((sent + 1)) of $total ($f)" > progress
    dd if="$dir/$f" of=part.bin bs=1048576 skip=$((offset / 1048576)) count=$(( (length + 1048575) / 1048576 )) 2>dd.err || fail "reading part $part of $f failed: $(tail -n 1 dd.err)"
    have=$(stat -c %s part.bin)
    [ "$have" = "$length" ] || fail "part $part of $f has $have bytes, expected $length"
    printf 'url = "%s"\\n' "$url" | curl -sS -f --retry 3 --retry-delay 2 --connect-timeout 30 -X PUT -T part.bin -D headers -o /dev/null -K - 2>curl.err || fail "uploading part $part of $f failed: curl exited with status $? ($(tail -n 2 curl.err | tr '\\n' ' '))"
    etag=$(tr -d '\\r' < headers | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' | tail -n 1)
    [ -n "$etag" ] || fail "S3 answered part $part of $f without an ETag"
    echo "$etag" > "$e"
  fi
  sent=$((sent + 1))
done < plan.parts
rm -f part.bin
: > etags.part
while read -r _ f part _rest; do echo "$f $part $(cat "parts/$f.$part")" >> etags.part; done < plan.parts
mv etags.part etags && touch done
`;

/**
 * changes <rootfs> <upper>: a customize job's change listing (shared/workers/change-report.ts) into
 * ./listing, at the lowest CPU priority beside the packaging; needs bash, find, stat, getfattr
 * and unsquashfs on the node.
 */
const CHANGES_SCRIPT = `${PRELUDE}
echo "listing the changes of the image root" > progress
nice -n 19 bash -c ${shq(CHANGE_LISTING_SCRIPT)} listing "$1" "$2" "$PWD/listing" 2>listing.err || fail "listing the changes failed: $(tail -n 2 listing.err | tr '\\n' ' ')"
touch done
`;

const SCRIPTS: Record<TaskName, string> = { fetch: FETCH_SCRIPT, sums: SUMS_SCRIPT, upload: UPLOAD_SCRIPT, changes: CHANGES_SCRIPT };

export function tasksDir(n: Pick<NodeJob, 'layout'>): string {
  return `${n.layout.dir}/tasks`;
}

/**
 * Starts the task in the background unless it has been started already (by this or another
 * invocation): a detached session with no terminal, so it outlives the SSH command.
 */
export async function startTask(n: NodeJob, name: TaskName, args: string[]): Promise<void> {
  const dir = `${tasksDir(n)}/${name}`;
  const command = detachedCommand(`mkdir -p ${shq(tasksDir(n))} && mkdir ${shq(dir)}`, dir, `sh -c ${shq(SCRIPTS[name])} ${name} ${args.map(shq).join(' ')}`, 'log');
  await n.session.run(command, { timeoutMs: START_TIMEOUT_MS });
}

/**
 * Runs `command` as a detached session in `dir` once `claim` succeeds (else does nothing). Only
 * the command itself goes to the background: a backgrounded and-list would be a subshell of the
 * login shell (bash does not exec its last command) holding the SSH channel's output open until
 * the task ends, so starting a task would wait for it.
 */
export function detachedCommand(claim: string, dir: string, command: string, log: string): string {
  return `${claim} 2>/dev/null || exit 0; cd ${shq(dir)} || exit 1; setsid nohup ${command} </dev/null >${log} 2>&1 &`;
}

/** The part of the job view's command that reports the tasks: one `task.<name>=<state> <text>` line each. */
export function tasksViewCommand(): string {
  return [
    `for t in ${TASKS.join(' ')}; do`,
    '  d=tasks/$t; [ -d "$d" ] || continue',
    '  if [ -e "$d/done" ]; then echo "task.$t=done"',
    `  elif [ -e "$d/failed" ]; then echo "task.$t=failed $(head -c 600 "$d/failed" | tr '\\n' ' ')"`,
    `  elif [ ! -e "$d/pid" ] || kill -0 "$(cat "$d/pid")" 2>/dev/null; then echo "task.$t=running $(head -c 200 "$d/progress" 2>/dev/null | tr '\\n' ' ')"`,
    '  elif [ -e "$d/done" ]; then echo "task.$t=done"',
    `  else echo "task.$t=dead $(tail -c 300 "$d/log" 2>/dev/null | tr '\\n' ' ')"; fi`,
    'done',
  ].join('\n');
}

export function parseTask(value: string): TaskState {
  const space = value.indexOf(' ');
  const kind = space < 0 ? value : value.slice(0, space);
  const text = space < 0 ? '' : value.slice(space + 1).trim();
  if (kind === 'done') return { kind: 'done' };
  if (kind === 'running') return { kind: 'running', progress: text };
  if (kind === 'failed') return { kind: 'failed', reason: text || 'no reason given' };
  if (kind === 'dead') return { kind: 'failed', reason: `it stopped without a result${text ? ` (${text})` : ''}` };
  return { kind: 'absent' };
}

/** Ends every task of the job (each is a process group of its own); part of removing the job. */
export function killTasksCommand(jobDir: string): string {
  return `for p in ${shq(jobDir)}/tasks/*/pid; do [ -e "$p" ] && kill -- -"$(cat "$p")" 2>/dev/null; done; true`;
}
