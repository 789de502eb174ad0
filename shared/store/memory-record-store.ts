/**
 * RecordStore in this process's memory, for the embedded runtime: the semantics of
 * DynamoRecordStore (conditional versions, creation order, name order for a name-prefix query,
 * combined filters, cursors bound to their index, claims with their age), without a database
 * round trip. Each record is held as its JSON text (keys in code point order, as responses
 * write them) with the few values lists filter on, and, for a kind listed by a part of its record
 * (RecordIndexValues.listed: a job's wire record), the text of that part, which lists serve while
 * gets read the whole; once a whole list has been read, the listed texts of its records are the
 * UTF-8 bytes of its blocks, which the next whole list writes as they are.
 * With a journal (record-journal.ts) every change is also appended to a file, and the records
 * are read back from it at start.
 *
 * Every method does its work synchronously: a write and the read of the version it checks
 * cannot interleave with another's.
 */
import { InvalidCursorError } from '../domain/errors.js';
import { toJsonText } from '../domain/json-text.js';
import type { ClaimHolder, ListedBatch, ListedRecord, ListQuery, RecordIndexer, RecordPage, RecordStore, StoredRecord } from '../domain/ports.js';
import type { RecordKind, RecordState } from '../domain/records.js';
import { compareKeys, decodeCursor, encodeCursor, listSortKey, nameSortKey } from './keys.js';
import type { JournalEntry, RecordJournal } from './record-journal.js';
import { BY_META_INDEX, BY_NAME_INDEX, BY_NAME_PREFIX_INDEX, BY_STATE_INDEX, FACET_INDEXES } from './table-design.js';

const MAX_PAGE = 1000;
/** Records handed out at a time by a stream (the whole list is taken at once; this bounds what is wrapped at once). */
const STREAM_BATCH = 1000;
const COMMA = 0x2c;

interface Entry {
  kind: RecordKind;
  id: string;
  state: RecordState;
  version: number;
  order: string;
  /**
   * The record as toJsonText writes it (textOf): as a string until a whole list has put it in its
   * block's text, then as the `size` bytes at `at` of that text. An entry listed by a part of its
   * record keeps the record here as a string, and the block (listedTextOf) holds the part.
   */
  json?: string;
  /**
   * What lists serve, when it is a part of the record (RecordIndexValues.listed), as toJsonText
   * writes it: a string until a whole list has put it in its block's text.
   */
  listed?: string;
  block?: Buffer;
  at?: number;
  size?: number;
  name?: string;
  slots?: (string | undefined)[];
  meta?: Record<string, string>;
}

/** The text in the entry's block. */
const blockSlice = (entry: Entry) => entry.block!.toString('utf8', entry.at, entry.at! + entry.size!);

/** The record's text, wherever the entry keeps it. */
function textOf(entry: Entry): string {
  return entry.json ?? blockSlice(entry);
}

/**
 * Whether lists serve a part of the entry's record: its own string, or (the record's text being
 * a string still) the text in its block.
 */
const partListed = (entry: Entry) => entry.listed !== undefined || (entry.json !== undefined && entry.block !== undefined);

/** What lists serve of the record (the listed part, when there is one), wherever the entry keeps it. */
function listedTextOf(entry: Entry): string {
  return entry.listed ?? (entry.block !== undefined ? blockSlice(entry) : entry.json!);
}

/** The listed text of an entry as a string, or undefined when it is in the entry's block already. */
const listedString = (entry: Entry) => entry.listed ?? (entry.block === undefined ? entry.json : undefined);

/**
 * The listed texts of entries (listedTextOf), comma-separated, as one buffer, which the entries
 * then keep that text in (it was a string, or bytes of an older block's text: those are copied,
 * not decoded). An entry listed by a part keeps its record's text as the string it was.
 */
function blockText(entries: Entry[]): Buffer {
  let size = Math.max(0, entries.length - 1);
  for (const e of entries) {
    const own = listedString(e);
    size += own !== undefined ? Buffer.byteLength(own) : e.size!;
  }
  const text = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (i > 0) text[at++] = COMMA;
    const own = listedString(e);
    const written = own !== undefined ? text.write(own, at) : e.block!.copy(text, at, e.at, e.at! + e.size!);
    if (e.listed !== undefined) e.listed = undefined;
    else if (e.block === undefined) e.json = undefined;
    e.block = text;
    e.at = at;
    e.size = written;
    at += written;
  }
  return text;
}

/** The creation-order key of an entry (made when compared, not kept: one string less per record). */
const sortKey = (entry: Entry) => listSortKey(entry.order, entry.id);

/**
 * What a get or a list returns: the entry itself, its record parsed only when someone reads it.
 * `listed`: as a list serves it (the listed part, version 0, as DynamoDB's indexes hold it).
 */
class StoredEntry<T> implements StoredRecord<T> {
  private parsed?: T;
  constructor(
    private readonly entry: Entry,
    private readonly listed = false,
  ) {}
  get state(): RecordState {
    return this.entry.state;
  }
  get version(): number {
    return this.listed && partListed(this.entry) ? 0 : this.entry.version;
  }
  get order(): string {
    return this.entry.order;
  }
  get json(): string {
    return this.listed ? listedTextOf(this.entry) : textOf(this.entry);
  }
  get record(): T {
    return (this.parsed ??= JSON.parse(this.json) as T);
  }
}

/**
 * The records of one kind in one state, in creation order (and, built when first asked for, in
 * name order), with the text a whole list writes: for each block of STREAM_BATCH records in a row,
 * their texts comma-separated as UTF-8, made when first listed and kept until a record of the
 * block changes (an insertion or removal shifts, and so drops, the blocks after it too; records
 * are mostly added at the end).
 */
class StateList {
  readonly entries: Entry[] = [];
  /** The named entries by name (then id), with their name-prefix index keys. */
  private byName?: { entries: Entry[]; keys: string[] };
  private readonly texts: (Buffer | undefined)[] = [];

  add(entry: Entry): void {
    const at = this.entries.length === 0 || compareKeys(sortKey(this.entries[this.entries.length - 1]), sortKey(entry)) < 0 ? this.entries.length : this.after(sortKey(entry));
    this.entries.splice(at, 0, entry);
    this.shifted(at);
  }

  delete(entry: Entry): void {
    const at = this.after(sortKey(entry)) - 1;
    if (this.entries[at] !== entry) return;
    this.entries.splice(at, 1);
    this.shifted(at);
  }

  /** Puts `entry` (the same creation key) where `old` is. */
  replace(old: Entry, entry: Entry): void {
    const at = this.after(sortKey(old)) - 1;
    this.entries[at] = entry;
    this.texts[Math.floor(at / STREAM_BATCH)] = undefined;
    this.byName = undefined;
  }

  /** The position of the first entry whose creation key is after `sk`. */
  after(sk: string): number {
    return upperBound(this.entries.length, sk, (i) => sortKey(this.entries[i]));
  }

  named(): { entries: Entry[]; keys: string[] } {
    if (!this.byName) {
      const keyed = this.entries.filter((e) => e.name !== undefined).map((e) => ({ e, key: nameSortKey(e.name!, e.id) }));
      keyed.sort((a, b) => compareKeys(a.key, b.key));
      this.byName = { entries: keyed.map((k) => k.e), keys: keyed.map((k) => k.key) };
    }
    return this.byName;
  }

  /** The whole list as it is now, in batches that carry their text. */
  batches<T>(): ListedBatch<T>[] {
    const out: ListedBatch<T>[] = [];
    for (let at = 0, block = 0; at < this.entries.length; at += STREAM_BATCH, block++) {
      const entries = this.entries.slice(at, at + STREAM_BATCH);
      const text = (this.texts[block] ??= blockText(entries));
      out.push(new EntryBatch<T>(entries, text));
    }
    return out;
  }

  /** Entries from `at` on moved: their blocks' texts no longer hold. */
  private shifted(at: number): void {
    this.texts.length = Math.min(this.texts.length, Math.floor(at / STREAM_BATCH));
    this.byName = undefined;
  }
}

/** A batch of a stream: the entries' records made when someone reads them. */
class EntryBatch<T> implements ListedBatch<T> {
  private listed?: ListedRecord<T>[];
  constructor(
    private readonly entries: Entry[],
    readonly text?: Buffer,
  ) {}
  get records(): ListedRecord<T>[] {
    return (this.listed ??= this.entries.map((e) => new StoredEntry<T>(e, true)));
  }
}

/** The first of `length` ordered keys (the i-th being keyAt(i)) that comes after `key`. */
function upperBound(length: number, key: string, keyAt: (i: number) => string): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keyAt(mid), key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface Claim {
  owner: string;
  claimedAt: number;
}

export class MemoryRecordStore implements RecordStore {
  /** By kind, then id (the id string is the entry's own: no key string per record). */
  private readonly records = new Map<RecordKind, Map<string, Entry>>();
  private readonly lists = new Map<string, StateList>();
  private readonly claims = new Map<string, Claim>();

  constructor(
    private readonly indexer: RecordIndexer,
    private readonly journal?: RecordJournal,
  ) {
    if (journal) {
      for (const change of journal.replay()) this.apply(change);
      journal.compactIf(() => this.size() + this.claims.size, () => this.snapshot());
    }
  }

  /** Ends the journal's writes (flushed to disk); the store must not be written to afterwards. */
  close(): void {
    this.journal?.close();
  }

  async create<T>(kind: RecordKind, id: string, record: T, order: string): Promise<boolean> {
    if (this.find(kind, id)) return false;
    this.put(this.entry(kind, id, 'live', 1, order, record));
    return true;
  }

  async get<T>(kind: RecordKind, id: string): Promise<StoredRecord<T> | undefined> {
    const entry = this.find(kind, id);
    return entry ? new StoredEntry<T>(entry) : undefined;
  }

  async update<T>(kind: RecordKind, id: string, expectedVersion: number, record: T, state: RecordState): Promise<boolean> {
    const old = this.find(kind, id);
    if (!old || old.version !== expectedVersion) return false;
    this.put(this.entry(kind, id, state, expectedVersion + 1, old.order, record), old);
    return true;
  }

  async remove(kind: RecordKind, id: string, expectedVersion: number): Promise<boolean> {
    const old = this.find(kind, id);
    if (!old || old.version !== expectedVersion) return false;
    this.drop(old);
    this.journal?.append({ k: kind, i: id, d: 1 });
    return true;
  }

  async list<T>(kind: RecordKind, state: RecordState, query: ListQuery = {}): Promise<RecordPage<T>> {
    const limit = Math.min(query.limit ?? MAX_PAGE, MAX_PAGE);
    const { index, keyName, entries, keyAt } = this.ordered(kind, state, query);
    const after = decodeCursor(query.cursor, index, () => new InvalidCursorError())?.[keyName];
    if (query.cursor && after === undefined) throw new InvalidCursorError();
    const matches = matcher(query);
    const items: StoredRecord<T>[] = [];
    let last = -1;
    for (let i = after === undefined ? 0 : upperBound(entries.length, after, keyAt); i < entries.length; i++) {
      const entry = entries[i];
      if (matches && !matches(entry)) continue;
      if (items.length === limit) return { items, cursor: encodeCursor(index, { [keyName]: keyAt(last) }) };
      items.push(new StoredEntry<T>(entry, true));
      last = i;
    }
    return { items };
  }

  /**
   * The list as it is when the stream is first read: the matching entries (a copy of the
   * references, nothing else), then handed out a batch at a time; the whole list (no condition)
   * with the text its blocks keep.
   */
  async *stream<T>(kind: RecordKind, state: RecordState, query: ListQuery = {}): AsyncGenerator<ListedBatch<T>> {
    const matches = matcher(query);
    if (!matches) {
      yield* this.lists.get(listKey(kind, state))?.batches<T>() ?? [];
      return;
    }
    const taken = this.ordered(kind, state, query).entries.filter(matches);
    for (let at = 0; at < taken.length; at += STREAM_BATCH) yield new EntryBatch<T>(taken.slice(at, at + STREAM_BATCH));
  }

  /** The entries a query walks, in the order of the index DynamoRecordStore would query (its cursors are the ones to keep). */
  private ordered(kind: RecordKind, state: RecordState, query: ListQuery) {
    const list = this.lists.get(listKey(kind, state));
    const slotIndex = query.slots?.findIndex((s) => s !== undefined) ?? -1;
    const index =
      query.name !== undefined
        ? BY_NAME_INDEX
        : slotIndex >= 0
          ? FACET_INDEXES[slotIndex]
          : query.meta
            ? BY_META_INDEX
            : query.namePrefix !== undefined
              ? BY_NAME_PREFIX_INDEX
              : BY_STATE_INDEX;
    const byName = index === BY_NAME_PREFIX_INDEX;
    const keyName = byName ? 'nameSk' : 'listSk';
    const named = byName ? list?.named() : undefined;
    const entries = named ? named.entries : (list?.entries ?? []);
    const keyAt = named ? (i: number) => named.keys[i] : (i: number) => sortKey(entries[i]);
    return { index, keyName, entries, keyAt };
  }

  async claim(scope: string, value: string, owner: string): Promise<ClaimHolder | undefined> {
    const now = Date.now();
    const held = this.claims.get(claimKey(scope, value));
    if (held && held.owner !== owner) return { owner: held.owner, ageMs: Math.max(0, now - held.claimedAt) };
    this.claims.set(claimKey(scope, value), { owner, claimedAt: now });
    this.journal?.append({ c: scope, x: value, w: owner, t: now });
    return undefined;
  }

  async claimHolder(scope: string, value: string): Promise<ClaimHolder | undefined> {
    const held = this.claims.get(claimKey(scope, value));
    return held ? { owner: held.owner, ageMs: Math.max(0, Date.now() - held.claimedAt) } : undefined;
  }

  async release(scope: string, value: string, owner: string): Promise<void> {
    if (this.claims.get(claimKey(scope, value))?.owner !== owner) return;
    this.claims.delete(claimKey(scope, value));
    this.journal?.append({ c: scope, x: value });
  }

  private entry(kind: RecordKind, id: string, state: RecordState, version: number, order: string, record: unknown): Entry {
    return withIndex(this.indexer, { kind, id, state, version, order, json: toJsonText(record) }, record);
  }

  /** Stores a new version of a record (replacing `old`), and journals it. */
  private put(entry: Entry, old?: Entry): void {
    this.place(entry, old);
    this.journal?.append({ k: entry.kind, i: entry.id, s: entry.state, v: entry.version, o: entry.order, r: textOf(entry) });
  }

  /** Puts a record's new version where its lists and lookups find it, in place of `old`. */
  private place(entry: Entry, old?: Entry): void {
    if (old && old.state === entry.state && old.order === entry.order) {
      this.lists.get(listKey(old.kind, old.state))!.replace(old, entry);
    } else {
      if (old) this.lists.get(listKey(old.kind, old.state))?.delete(old);
      this.listOf(entry).add(entry);
    }
    this.keep(entry);
  }

  /** How many records there are (a handful of kinds: a sum of map sizes). */
  private size(): number {
    let n = 0;
    for (const byId of this.records.values()) n += byId.size;
    return n;
  }

  private find(kind: RecordKind, id: string): Entry | undefined {
    return this.records.get(kind)?.get(id);
  }

  private keep(entry: Entry): void {
    let byId = this.records.get(entry.kind);
    if (!byId) this.records.set(entry.kind, (byId = new Map()));
    byId.set(entry.id, entry);
  }

  private drop(entry: Entry): void {
    this.records.get(entry.kind)?.delete(entry.id);
    this.lists.get(listKey(entry.kind, entry.state))?.delete(entry);
  }

  private listOf(entry: Entry): StateList {
    const key = listKey(entry.kind, entry.state);
    let list = this.lists.get(key);
    if (!list) this.lists.set(key, (list = new StateList()));
    return list;
  }

  /** One change read back from the journal. */
  private apply(change: JournalEntry): void {
    if ('c' in change) {
      if (change.w === undefined) this.claims.delete(claimKey(change.c, change.x));
      else this.claims.set(claimKey(change.c, change.x), { owner: change.w, claimedAt: change.t });
      return;
    }
    const old = this.find(change.k, change.i);
    if ('d' in change) {
      if (old) this.drop(old);
      return;
    }
    this.place(withIndex(this.indexer, { kind: change.k, id: change.i, state: change.s, version: change.v, order: change.o, json: change.r }, JSON.parse(change.r)), old);
  }

  /** Every record and claim, as journal entries (what a compacted journal holds). */
  private *snapshot(): Generator<JournalEntry> {
    for (const byId of this.records.values()) {
      for (const e of byId.values()) yield { k: e.kind, i: e.id, s: e.state, v: e.version, o: e.order, r: textOf(e) };
    }
    for (const [key, claim] of this.claims) {
      const [scope, value] = JSON.parse(key) as [string, string];
      yield { c: scope, x: value, w: claim.owner, t: claim.claimedAt };
    }
  }
}

const listKey = (kind: RecordKind, state: RecordState) => `${kind}#${state}`;
const claimKey = (scope: string, value: string) => JSON.stringify([scope, value]);

/** Values that repeat from record to record (arch=x86_64, {team: 'bench'}): one of each, kept for all. */
const interned = new Map<string, unknown>();
function intern<V>(key: string, value: V): V {
  let same = interned.get(key) as V | undefined;
  if (same === undefined) {
    if (interned.size >= 10_000) interned.clear();
    interned.set(key, (same = value));
  }
  return same;
}

function withIndex(indexer: RecordIndexer, entry: Entry, record: unknown): Entry {
  const index = indexer(entry.kind, record);
  if (index.name !== undefined) entry.name = index.name;
  // Read only (by the lists' tests), so records with the same values share them.
  if (index.slots?.some((s) => s !== undefined)) entry.slots = intern(`s${JSON.stringify(index.slots)}`, index.slots);
  if (index.meta && Object.keys(index.meta).length > 0) entry.meta = intern(`m${JSON.stringify(index.meta)}`, index.meta);
  if (index.listed !== undefined) entry.listed = toJsonText(index.listed);
  return entry;
}

/** The query's conditions as one test, or undefined when it has none. */
function matcher(query: ListQuery): ((entry: Entry) => boolean) | undefined {
  const tests: ((entry: Entry) => boolean)[] = [];
  const { name, namePrefix, meta } = query;
  if (name !== undefined) tests.push((e) => e.name === name);
  if (namePrefix !== undefined) tests.push((e) => e.name !== undefined && e.name.startsWith(namePrefix));
  query.slots?.forEach((slot, i) => {
    if (slot !== undefined) tests.push((e) => e.slots?.[i] === slot);
  });
  if (meta) tests.push((e) => e.meta !== undefined && Object.hasOwn(e.meta, meta.key) && e.meta[meta.key] === meta.value);
  if (tests.length === 0) return undefined;
  return (entry) => tests.every((t) => t(entry));
}
