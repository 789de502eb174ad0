/**
 * The change report of a customize job, made from its copy-on-write shell: the overlay's upper
 * directory is exactly what the user changed (whiteouts and opaque directories are deletions), and
 * the image it started from is the rootfs squashfs the job downloaded, listed without mounting it.
 * The package lists before and after come from the image's dpkg database (the lower layer's, and
 * the upper layer's where the shell changed it) and from its rpm database when the host has rpm.
 *
 * The listing is one bash script (CHANGE_LISTING_SCRIPT: find, stat, getfattr, unsquashfs, rpm
 * when present), so the local worker runs it on this host and the remote-node worker on its node,
 * and this module turns what it wrote into the report on either side.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { diffPackages, type ChangeReport, type FileChange, type ImagePackage } from '../domain/image-contents.js';
import { readIfPresent } from './files.js';

/**
 * `bash -c CHANGE_LISTING_SCRIPT listing <rootfs.sqsh> <upper dir> <out dir>` writes into the out
 * directory: `upper` (NUL-separated `type\tsize\tpath\ttarget` records of the upper layer),
 * `whiteouts` (`major:minor\tpath` of its character devices), `opaque` (getfattr's report of
 * its opaque directories), `lower` (unsquashfs -lln of the image), `dpkg-before`/`dpkg-after`
 * (the dpkg databases of the image and of the upper layer, where they exist), and
 * `rpm-before`/`rpm-after` when the image has an rpm database and the host has rpm. These are
 * the files a report is made from (LISTING_FILES); `lower-root/` is the script's scratch.
 */
export const CHANGE_LISTING_SCRIPT = String.raw`set -euo pipefail
sqsh=$1 upper=$2 out=$3
command -v getfattr >/dev/null || { echo 'getfattr is missing (Debian package attr): opaque directories cannot be found' >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out"
find "$upper" -mindepth 1 \( -type l -printf 'l\t%s\t%P\t%l\0' \) -o -printf '%y\t%s\t%P\t\0' >"$out/upper"
find "$upper" -mindepth 1 -type c -exec stat --printf '%t:%T\t%n\0' {} + >"$out/whiteouts"
# getfattr names only the directories that carry the attribute; it fails for the others.
find "$upper" -mindepth 1 -type d -exec getfattr --absolute-names -h -n trusted.overlay.opaque -e text {} + >"$out/opaque" 2>/dev/null || true
# Numeric owners: -lls looks every owner's name up, which costs more than the listing itself.
unsquashfs -no-progress -lln "$sqsh" >"$out/lower"
unsquashfs -no-progress -f -d "$out/lower-root" "$sqsh" var/lib/dpkg/status var/lib/rpm usr/lib/sysimage/rpm >/dev/null 2>&1 || true
# The dpkg databases before and after (the upper layer's where the shell changed it), as flat files.
[ -f "$out/lower-root/var/lib/dpkg/status" ] && cp "$out/lower-root/var/lib/dpkg/status" "$out/dpkg-before"
[ -f "$upper/var/lib/dpkg/status" ] && [ ! -L "$upper/var/lib/dpkg/status" ] && cp "$upper/var/lib/dpkg/status" "$out/dpkg-after"
if command -v rpm >/dev/null; then
  qf='%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|None|None\n'
  for db in var/lib/rpm usr/lib/sysimage/rpm; do
    [ -d "$out/lower-root/$db" ] || [ -d "$upper/$db" ] || continue
    mkdir -p "$out/after-root/$db"
    [ -d "$out/lower-root/$db" ] && cp -a "$out/lower-root/$db/." "$out/after-root/$db/"
    [ -d "$upper/$db" ] && find "$upper/$db" -mindepth 1 -maxdepth 1 ! -type c -exec cp -a {} "$out/after-root/$db/" \;
    [ -d "$out/lower-root/$db" ] && rpm --dbpath "$out/lower-root/$db" -qa --qf "$qf" >>"$out/rpm-before" 2>/dev/null || true
    rpm --dbpath "$out/after-root/$db" -qa --qf "$qf" >>"$out/rpm-after" 2>/dev/null || true
  done
fi
`;

/**
 * The listing as a command (append the rootfs, the upper directory and the out directory): at the
 * lowest CPU priority, since it runs beside mksquashfs in the package stage and must not slow it.
 */
export const CHANGE_LISTING_COMMAND: readonly string[] = ['nice', '-n', '19', 'bash', '-c', CHANGE_LISTING_SCRIPT, 'listing'];

/** What changeReportFrom reads of a listing: a worker whose listing is on another host fetches these (absent ones are not needed). */
export const LISTING_FILES = ['upper', 'whiteouts', 'opaque', 'lower', 'dpkg-before', 'dpkg-after', 'rpm-before', 'rpm-after'] as const;
export const REQUIRED_LISTING_FILES: readonly string[] = ['upper', 'whiteouts', 'opaque', 'lower'];

/**
 * What a customize job's report leaves out: what the workers' mksquashfs leaves out of the new
 * rootfs (kiwi's excludes: its description, profile files, the contents of /run and /tmp, where a
 * jailed shell leaves its signal files). None of it is a change of the image.
 */
export const NOT_CHANGES: readonly string[] = ['image', '.profile', '.kconfig', 'run/*', 'tmp/*', '.buildenv', 'var/cache/kiwi'];

const TYPES: Record<string, FileChange['type']> = {
  f: 'file',
  '-': 'file',
  d: 'directory',
  l: 'symlink',
  p: 'fifo',
  s: 'socket',
  c: 'char-device',
  b: 'block-device',
};

interface Entry {
  type: FileChange['type'];
  size: number;
  target?: string;
}

const ROOT_MARK = ' squashfs-root/';

/**
 * The lower layer from `unsquashfs -lln` (or -lls): path (relative to the image root) → its line.
 * Only the lines of the paths a report needs are parsed (entryOf).
 */
export function indexSquashfsListing(text: string): Map<string, string> {
  const lines = new Map<string, string>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    const at = line.indexOf(ROOT_MARK);
    if (at < 0) continue;
    let path = line.slice(at + ROOT_MARK.length);
    if (line[0] === 'l') {
      const arrow = path.indexOf(' -> ');
      if (arrow >= 0) path = path.slice(0, arrow);
    }
    lines.set(path, line);
  }
  return lines;
}

const LINE = /^(\S)\S*\s+\S+\s+([\d,\s]+?)\s+\d{4}-\d\d-\d\d \d\d:\d\d squashfs-root\/(.*)$/;

/** The entry of one listing line. */
export function entryOf(line: string): Entry {
  const m = LINE.exec(line);
  const type = (m && TYPES[m[1]]) ?? 'file';
  let target: string | undefined;
  if (m && type === 'symlink') {
    const arrow = m[3].indexOf(' -> ');
    if (arrow >= 0) target = m[3].slice(arrow + 4);
  }
  return { type, size: m && type === 'file' ? Number(m[2]) : 0, ...(target !== undefined ? { target } : {}) };
}

/** The dpkg status file's installed packages. */
export function parseDpkgStatus(text: string): ImagePackage[] {
  const packages: ImagePackage[] = [];
  for (const paragraph of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of paragraph.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1].toLowerCase(), m[2].trim());
    }
    const name = fields.get('package');
    const status = fields.get('status') ?? '';
    // `want flag state`: only the state `installed` is a package the image has.
    if (!name || status.split(/\s+/)[2] !== 'installed') continue;
    packages.push({ name, version: fields.get('version') ?? '', arch: fields.get('architecture') ?? '' });
  }
  return packages;
}

/** A package list in kiwi's `.packages` format, the one create jobs register. */
export function formatPackageList(packages: ImagePackage[]): string {
  return packages.map((p) => `${p.name}|None|${p.version}|None|${p.arch || 'None'}|None|None\n`).join('');
}

function parseKiwiLines(text: string): ImagePackage[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [name, epoch, version, release, arch] = l.split('|');
      let full = version;
      if (release && release !== 'None' && release !== '(none)') full = `${full}-${release}`;
      if (epoch && epoch !== 'None' && epoch !== '(none)') full = `${epoch}:${full}`;
      return { name, version: full, arch: arch === 'None' ? '' : arch };
    });
}

const byPath = (a: FileChange, b: FileChange) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
const byName = (a: ImagePackage, b: ImagePackage) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0);


export interface ChangeReportInput {
  /** The out directory the listing script wrote. */
  listing: string;
  /** The upper directory the script listed (the prefix of the paths in `whiteouts` and `opaque`; it need not be on this host). */
  upper: string;
  parentId: string;
  jobId: string;
  /**
   * Paths (relative to the image root) the job itself made in the image root, not the user, or
   * that the new image leaves out: `p` leaves out p and what is below it, `p/*` what is below p.
   */
  ignore?: readonly string[];
}

export interface ChangeReportResult {
  report: ChangeReport;
  /** The new image's packages (what its package list artifact holds). */
  packages: ImagePackage[];
}

/** The report from what the listing script wrote. */
export async function changeReportFrom(input: ChangeReportInput): Promise<ChangeReportResult> {
  const { listing, upper } = input;
  const read = (name: string) => readFile(join(listing, name), 'utf8');
  const prefix = upper.endsWith('/') ? upper : `${upper}/`;
  const relative = (path: string) => (path.startsWith(prefix) ? path.slice(prefix.length) : path);
  const ignore = input.ignore ?? [];
  // `p` leaves out p and what is below it; `p/*` only what is below it.
  const ignored = (path: string) => ignore.some((p) => (p.endsWith('/*') ? path.startsWith(p.slice(0, -1)) : path === p || path.startsWith(`${p}/`)));

  const listed = indexSquashfsListing(await read('lower'));
  const lowerEntry = (path: string): Entry | undefined => {
    const line = listed.get(path);
    return line === undefined ? undefined : entryOf(line);
  };
  const whiteouts = new Set<string>();
  for (const record of (await read('whiteouts')).split('\0')) {
    const tab = record.indexOf('\t');
    if (tab < 0) continue;
    // A whiteout is a character device with device number 0:0.
    if (record.slice(0, tab) === '0:0') whiteouts.add(relative(record.slice(tab + 1)));
  }
  const opaque = new Set<string>();
  let file: string | undefined;
  for (const line of (await read('opaque')).split('\n')) {
    if (line.startsWith('# file: ')) file = relative(line.slice('# file: '.length));
    else if (file !== undefined && /^trusted\.overlay\.opaque="y"$/.test(line)) opaque.add(file);
  }

  const files = { added: [] as FileChange[], modified: [] as FileChange[], deleted: [] as FileChange[] };
  const inUpper = new Set<string>();
  for (const record of (await read('upper')).split('\0')) {
    if (!record) continue;
    const [code, size, path, target] = record.split('\t');
    if (ignored(path)) continue;
    inUpper.add(path);
    const was = lowerEntry(path);
    if (whiteouts.has(path)) {
      files.deleted.push({ path, type: was?.type ?? 'file', size: 0 });
      continue;
    }
    const type = TYPES[code] ?? 'file';
    const entry: FileChange = { path, type, size: type === 'file' ? Number(size) : 0, ...(type === 'symlink' ? { target } : {}) };
    if (!was) files.added.push(entry);
    // A directory in the upper layer was copied up for what changed inside it, not changed itself.
    else if (type !== 'directory' || was.type !== 'directory') files.modified.push(entry);
  }
  // An opaque directory hides everything the image had below it: what the upper layer does not hold again is deleted.
  for (const dir of opaque) {
    for (const [path, line] of listed) {
      if (path.startsWith(`${dir}/`) && !inUpper.has(path) && !ignored(path)) files.deleted.push({ path, type: entryOf(line).type, size: 0 });
    }
  }
  files.added.sort(byPath);
  files.modified.sort(byPath);
  files.deleted.sort(byPath);

  // Packages: the upper layer's database where the shell changed it, else the image's.
  const dpkg = 'var/lib/dpkg/status';
  const dpkgBefore = await readIfPresent(join(listing, 'dpkg-before'));
  const dpkgAfter = whiteouts.has(dpkg) ? undefined : ((await readIfPresent(join(listing, 'dpkg-after'))) ?? dpkgBefore);
  const rpmBefore = await readIfPresent(join(listing, 'rpm-before'));
  const rpmAfter = await readIfPresent(join(listing, 'rpm-after'));
  const before = [...(dpkgBefore ? parseDpkgStatus(dpkgBefore) : []), ...(rpmBefore ? parseKiwiLines(rpmBefore) : [])].sort(byName);
  const after = [...(dpkgAfter ? parseDpkgStatus(dpkgAfter) : []), ...(rpmAfter ? parseKiwiLines(rpmAfter) : [])].sort(byName);

  return {
    report: { parent_id: input.parentId, job_id: input.jobId, files, packages: diffPackages(before, after) },
    packages: after,
  };
}
