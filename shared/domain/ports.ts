/**
 * What the use cases need from the outside world, as small interfaces. shared/store and
 * shared/artifacts implement them; tests and the embedded runtime wire the same implementations.
 */
import type { RecordKind, RecordState } from './records.js';

export interface StoredRecord<T> {
  record: T;
  state: RecordState;
  /**
   * Increases by one on every write; writes name the version they read (optimistic locking),
   * which `get` gives. Lists give it too, except for kinds listed by a part (RecordIndexValues.listed): 0.
   */
  version: number;
  /** Time-ordered key of the record's creation, stable across soft delete and undelete. */
  order: string;
  /**
   * The record as JSON text with the keys of every object in code point order (domain/json-text.ts),
   * when the store keeps it so: responses then write it as it is. Describes `record` as read (a
   * list's: the listed part, for kinds listed by a part; a get's: the whole).
   */
  json?: string;
}

/** What a whole list serves of a record: the record (or its listed part), and its text when the store keeps it. */
export type ListedRecord<T> = Pick<StoredRecord<T>, 'record' | 'json'>;

/** Records of a whole list as a store hands them out, a batch at a time. */
export interface ListedBatch<T> {
  readonly records: ListedRecord<T>[];
  /** The records' texts (their `json`) comma-separated, as UTF-8: present when the store keeps them so. */
  readonly text?: Uint8Array;
}

export interface RecordPage<T> {
  items: StoredRecord<T>[];
  /** Opaque; present when more records follow. */
  cursor?: string;
}

/** What a record is found by in lists, computed from the record by a RecordIndexer. */
export interface RecordIndexValues {
  name?: string;
  /** Single-valued facets, `<facet>=<value>`, in the kind's slot order (see domain/record-index.ts). */
  slots?: (string | undefined)[];
  /** Multi-valued: each entry is findable as key/value. */
  meta?: Record<string, string>;
  /**
   * What lists serve of the record, when that is less than the whole (a job: its wire record). The
   * indexes then hold only this part, so a write that leaves it as it was does not touch them;
   * `get` still reads the whole record. A list of such a kind reports version 0.
   */
  listed?: unknown;
}

export type RecordIndexer = (kind: RecordKind, record: unknown) => RecordIndexValues;

export interface ListQuery {
  limit?: number;
  cursor?: string;
  name?: string;
  namePrefix?: string;
  /** `<facet>=<value>` per slot; undefined slots are not filtered. */
  slots?: (string | undefined)[];
  meta?: { key: string; value: string };
}

export interface RecordStore {
  /** Writes a new record; false when the id already exists. */
  create<T>(kind: RecordKind, id: string, record: T, order: string): Promise<boolean>;
  get<T>(kind: RecordKind, id: string): Promise<StoredRecord<T> | undefined>;
  /**
   * One page of the records of a kind in one state that match the query: oldest first, or by
   * name for a name-prefix query. Served by Queries on indexes. Throws InvalidCursorError for a
   * cursor it did not issue for this query.
   */
  list<T>(kind: RecordKind, state: RecordState, query?: ListQuery): Promise<RecordPage<T>>;
  /**
   * Every record `list` would return for the query (its limit and cursor aside), in the same
   * order, in batches as the store reads them: a whole list in as few reads of as few bytes as
   * the store allows, each record only with what a list serves of it.
   */
  stream<T>(kind: RecordKind, state: RecordState, query?: ListQuery): AsyncIterable<ListedBatch<T>>;
  /** Replaces record and state when the stored version is `expectedVersion`; false otherwise. */
  update<T>(kind: RecordKind, id: string, expectedVersion: number, record: T, state: RecordState): Promise<boolean>;
  /** Removes the record when the stored version is `expectedVersion`; false otherwise. */
  remove(kind: RecordKind, id: string, expectedVersion: number): Promise<boolean>;
  /**
   * Claims `value` in a uniqueness scope for `owner` (claiming again refreshes the claim's time).
   * Returns undefined when the claim is now ours, else the other owner and how long ago, in
   * milliseconds, it claimed.
   */
  claim(scope: string, value: string, owner: string): Promise<ClaimHolder | undefined>;
  /** Drops a claim, only when `owner` holds it. */
  release(scope: string, value: string, owner: string): Promise<void>;
  /** Who holds `value` in a scope, without claiming it; undefined when nobody does. */
  claimHolder(scope: string, value: string): Promise<ClaimHolder | undefined>;
}

export interface ClaimHolder {
  owner: string;
  ageMs: number;
}

export interface S3Location {
  bucket: string;
  key: string;
}

export interface ObjectInfo {
  etag: string;
  size: number;
  metadata: Record<string, string>;
}

export interface ArtifactStore {
  /**
   * undefined when the object is absent or cannot be addressed (an S3 client error); a refusal
   * of the service's own permissions (403) throws DependencyAccessDeniedError, as every method does.
   */
  head(location: S3Location): Promise<ObjectInfo | undefined>;
  /** The object's text; undefined when absent or unreadable. Throws ObjectTooLargeError over maxBytes. */
  readText(location: S3Location, maxBytes: number): Promise<string | undefined>;
  /** The last `maxBytes` bytes of the object as text (logs), and the object's size; undefined when absent. */
  readTail(location: S3Location, maxBytes: number): Promise<{ text: string; size: number } | undefined>;
  putJson(location: S3Location, value: unknown): Promise<{ etag: string }>;
  putText(location: S3Location, text: string, contentType: string, metadata?: Record<string, string>): Promise<{ etag: string }>;
  /** Writes text as it comes (multipart, a few parts in memory at most), for objects too large to hold whole. */
  putTextStream(location: S3Location, text: AsyncIterable<string>, contentType: string): Promise<void>;
  /** Server-side copy (multipart above the single-copy limit); returns the copy's ETag. `metadata` replaces the source's. */
  copy(from: S3Location, to: S3Location, metadata?: Record<string, string>): Promise<{ etag: string }>;
  /**
   * Uploads a local file (multipart, parts in parallel), computing its MD5 while it streams, so
   * each byte is read from disk once; the object then carries `md5sum` in its metadata.
   */
  uploadFile(location: S3Location, path: string, metadata?: Record<string, string>): Promise<{ etag: string; md5: string; size: number }>;
  /** Deletes the object; absent objects are not an error. */
  remove(location: S3Location): Promise<void>;
  presignGet(location: S3Location, expiresInSeconds: number): Promise<string>;
  /**
   * Starts a multipart upload that someone else fills through pre-signed part URLs (a remote
   * build node uploads its results itself); `metadata` is the finished object's. Returns the upload id.
   */
  createMultipartUpload(location: S3Location, metadata: Record<string, string>): Promise<string>;
  /** A pre-signed PUT URL for one part (1-based) of the upload. */
  presignUploadPart(location: S3Location, uploadId: string, partNumber: number, expiresInSeconds: number): Promise<string>;
  /** Completes the upload from its parts' ETags, in part order; returns the object's ETag. */
  completeMultipartUpload(location: S3Location, uploadId: string, etags: string[]): Promise<{ etag: string }>;
  /** Aborts the upload; an upload already completed or aborted is not an error. */
  abortMultipartUpload(location: S3Location, uploadId: string): Promise<void>;
}

export class ObjectTooLargeError extends Error {
  constructor(readonly size: number) {
    super(`object is ${size} bytes`);
  }
}

export interface Clock {
  nowMicros(): bigint;
}

export interface IdGenerator {
  newId(): string;
}

/** Where a workflow execution stands; UNKNOWN when the runner does not know the execution (e.g. after a restart). */
export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'UNKNOWN';

/**
 * Runs the job workflow: Step Functions when deployed, aws-local-stepfunctions embedded. A stage
 * that waits on outside work parks on a task token; whoever learns of its progress resumes it.
 */
export interface WorkflowRunner {
  /** Starts the workflow for a job; starting it twice for one job is harmless. Returns the execution id. */
  start(jobId: string): Promise<string>;
  /** Stops a running execution; an execution that already ended is not an error. */
  stop(executionId: string, reason: string): Promise<void>;
  /** Ends the wait of the stage parked on `token` with `output`; false when nothing waits on the token any more. */
  resume(token: string, output: Record<string, unknown>): Promise<boolean>;
  /** Fails the stage parked on `token` with an error its Retry and Catch see; false when nothing waits on the token any more. */
  fail(token: string, error: string, cause: string): Promise<boolean>;
  /** Tells the stage parked on `token` that its work is alive; false when nothing waits on the token any more. */
  heartbeat(token: string): Promise<boolean>;
  status(executionId: string): Promise<ExecutionStatus>;
}
