/**
 * The memory store's file: one line per change, appended before the change is answered, so a
 * crash of the process loses nothing. Lines are flushed to disk (fdatasync) within a second of
 * being written, so a crash of the machine loses at most that second. A torn last line (the
 * process died while writing it) is ignored at start. When the file holds many more lines than
 * records, it is rewritten with one line per record (to a new file, renamed over the old one).
 *
 * A record line keeps the record's JSON text as it is, as the line's last member:
 *   {"k":"image","i":"<id>","s":"live","v":3,"o":"<order>","r":{…}}
 * A removal is {"k":…,"i":…,"d":1}; a claim {"c":scope,"x":value,"w":owner,"t":ms}, its release {"c":…,"x":…}.
 */
import { closeSync, existsSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordKind, RecordState } from '../domain/records.js';

export type JournalEntry =
  | { k: RecordKind; i: string; s: RecordState; v: number; o: string; r: string }
  | { k: RecordKind; i: string; d: 1 }
  | { c: string; x: string; w: string; t: number }
  | { c: string; x: string; w?: undefined };

const FILE = 'records.jsonl';
const RECORD_MEMBER = ',"r":';
/** Rewrite when the file has this many lines more than twice the records it describes. */
const SLACK_LINES = 10_000;
const FLUSH_MS = 1000;
const NEWLINE = 0x0a;
const CLOSING_BRACE = 0x7d;

export class RecordJournal {
  private fd: number;
  private lines = 0;
  private dirty = false;
  private readonly timer: NodeJS.Timeout;
  private size: () => number = () => 0;
  private snapshot?: () => Iterable<JournalEntry>;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.fd = openSync(join(dir, FILE), 'a');
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /**
   * The changes in the file, oldest first. The file is read as bytes and each record's text
   * decoded on its own, so the records kept keep no part of the file (strings sliced from it
   * would hold the whole file, every old version included, in memory).
   */
  *replay(): Generator<JournalEntry> {
    const path = join(this.dir, FILE);
    if (!existsSync(path)) return;
    const bytes = readFileSync(path);
    let start = 0;
    for (;;) {
      const end = bytes.indexOf(NEWLINE, start);
      // No newline: the last line was torn by a crash, and is ignored.
      if (end < 0) break;
      if (end > start) {
        let entry: JournalEntry;
        try {
          entry = decode(bytes, start, end);
        } catch (error) {
          // Only the last line can be torn (after a crash of the machine, also ending in zeros).
          if (/[^\0\s]/.test(bytes.toString('latin1', end + 1))) throw new Error(`${join(this.dir, FILE)}: line ${this.lines + 1} is not a change: ${(error as Error).message}`);
          break;
        }
        this.lines++;
        yield entry;
      }
      start = end + 1;
    }
    // Rewrite at once when something was torn, so that nothing is appended to the torn part.
    if (start < bytes.length) this.lines = Number.MAX_SAFE_INTEGER;
  }

  /**
   * Tells the journal how many records it describes, and how to list them: it rewrites itself
   * from that list when it has grown too long (now, and later as changes are appended).
   */
  compactIf(size: () => number, snapshot: () => Iterable<JournalEntry>): void {
    this.size = size;
    this.snapshot = snapshot;
    this.compactWhenLong();
  }

  append(entry: JournalEntry): void {
    writeSync(this.fd, `${encode(entry)}\n`);
    this.lines++;
    this.dirty = true;
    this.compactWhenLong();
  }

  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    fdatasyncSync(this.fd);
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
    closeSync(this.fd);
  }

  private compactWhenLong(): void {
    if (!this.snapshot || this.lines <= 2 * this.size() + SLACK_LINES) return;
    const path = join(this.dir, FILE);
    const next = `${path}.next`;
    const fd = openSync(next, 'w');
    let lines = 0;
    let chunk = '';
    for (const entry of this.snapshot()) {
      chunk += `${encode(entry)}\n`;
      lines++;
      if (chunk.length > 1 << 20) {
        writeSync(fd, chunk);
        chunk = '';
      }
    }
    writeSync(fd, chunk);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(next, path);
    closeSync(this.fd);
    this.fd = openSync(path, 'a');
    this.lines = lines;
    this.dirty = false;
  }
}

function encode(entry: JournalEntry): string {
  if ('r' in entry) {
    const { r, ...head } = entry;
    return `${JSON.stringify(head).slice(0, -1)}${RECORD_MEMBER}${r}}`;
  }
  return JSON.stringify(entry);
}

/** The change on the line bytes[start, end) (without its newline). */
function decode(bytes: Buffer, start: number, end: number): JournalEntry {
  // Inside a JSON string every quote is escaped, so the first `,"r":` is the member itself.
  const at = bytes.indexOf(RECORD_MEMBER, start);
  if (at < 0 || at >= end) return JSON.parse(bytes.toString('utf8', start, end)) as JournalEntry;
  const head = JSON.parse(`${bytes.toString('utf8', start, at)}}`) as Omit<Extract<JournalEntry, { r: string }>, 'r'>;
  // The line ends with the record's text and the line's closing brace.
  if (bytes[end - 1] !== CLOSING_BRACE) throw new Error('the line is cut short');
  return { ...head, r: bytes.toString('utf8', at + RECORD_MEMBER.length, end - 1) };
}
