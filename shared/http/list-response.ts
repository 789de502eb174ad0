/**
 * Answers a list route: one page (with a Link header to the next) when `limit` is given,
 * otherwise the whole collection as a stream of records. The embedded server writes that stream
 * to the socket as it comes. Under API Gateway (no response streaming; Lambda responses stop at
 * 6 MB) a list that fits is answered inline, and a larger one is written to S3 as it is read
 * (a few parts in memory at most) and answered with a redirect to a short-lived pre-signed URL
 * of it: the original's clients (python requests, the cray CLI) follow it and get the whole list
 * without paging (requests drops the Authorization header for the other host).
 */
import { randomUUID } from 'node:crypto';
import { listPage, streamRecords } from '../domain/lifecycle.js';
import type { RecordKind, RecordState } from '../domain/records.js';
import { JsonText, toJsonText } from '../domain/json-text.js';
import type { ArtifactStore, ListedRecord, StoredRecord } from '../domain/ports.js';
import { LIST_OBJECT_PREFIX, LIST_URL_SECONDS } from './list-objects.js';
import { nextPageLink, parseListParams } from './list-params.js';
import type { ApiRequest, ApiResult, HttpResult } from './types.js';

export interface ListOptions<T> {
  kind: RecordKind;
  state?: RecordState;
  allow?: { arch?: boolean; metadata?: boolean; job?: boolean };
  /** Turns a stored record into what the list shows (jobs show their wire record). */
  view?: (stored: T) => unknown;
}

export async function listResult<T>(request: ApiRequest, path: string, options: ListOptions<T>): Promise<ApiResult> {
  const params = parseListParams(request, options.allow);
  const state = options.state ?? 'live';
  if (params.limit !== undefined) {
    // A record shown as stored is written as the store's text of it, when it keeps one.
    const view = options.view ? (stored: StoredRecord<T>) => options.view!(stored.record) : (stored: StoredRecord<T>) => (stored.json !== undefined ? new JsonText(stored.json) : stored.record);
    const page = await listPage<T>(request.app.store, options.kind, state, params.filter, { limit: params.limit, cursor: params.cursor });
    return {
      status: 200,
      body: page.items.map(view),
      headers: page.cursor ? { link: nextPageLink(request, path, page.cursor) } : {},
    };
  }
  const text = options.view ? (listed: ListedRecord<T>) => toJsonText(options.view!(listed.record)) : (listed: ListedRecord<T>) => listed.json ?? toJsonText(listed.record);
  const batches = streamRecords<T>(request.app.store, options.kind, state, params.filter);
  return {
    status: 200,
    stream: (async function* () {
      // One piece of text per batch the store reads: its records' texts, comma-separated (as the store keeps them, when it does).
      // With the batch's text there, its records are never made: no object per record.
      for await (const batch of batches) {
        const piece = !options.view && batch.text ? batch.text : batch.records.map(text).join(',');
        if (piece.length > 0) yield piece;
      }
    })(),
  };
}

/** Text gathered before it goes to S3 as one piece of the upload. */
const UPLOAD_PIECE = 1024 * 1024;

export interface ListSpill {
  artifacts: ArtifactStore;
  bucket: string;
  /** Bytes of the Lambda response (the body as a JSON string) above which the list goes to S3. */
  inlineMaxBytes: number;
}

/**
 * A streamed list as a buffered response: inline while it fits, else (as soon as it is known not
 * to) the whole list written to S3 and a 302 to it. Sizes count the body as the Lambda response
 * carries it, a JSON string (quotes and backslashes escaped).
 */
export async function bufferedList(stream: AsyncIterable<string | Uint8Array>, headers: Record<string, string>, spill: ListSpill): Promise<HttpResult> {
  const pieces = textsOf(stream);
  const texts: string[] = [];
  let size = 2;
  for (;;) {
    const next = await pieces.next();
    if (next.done) return { statusCode: 200, headers: { 'content-type': 'application/json', ...headers }, body: `[${texts.join(',')}]` };
    texts.push(next.value);
    size += Buffer.byteLength(JSON.stringify(next.value)) - 1;
    if (size > spill.inlineMaxBytes) break;
  }
  const location = { bucket: spill.bucket, key: `${LIST_OBJECT_PREFIX}${randomUUID()}.json` };
  await spill.artifacts.putTextStream(location, listText(texts, pieces), 'application/json');
  return { statusCode: 302, headers: { ...headers, location: await spill.artifacts.presignGet(location, LIST_URL_SECONDS) }, body: '' };
}

/** The pieces as strings (a Lambda response is a string). */
async function* textsOf(stream: AsyncIterable<string | Uint8Array>): AsyncGenerator<string> {
  for await (const piece of stream) yield typeof piece === 'string' ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).toString('utf8');
}

/** The JSON text of the list: the pieces read so far, then the rest, in parts of about UPLOAD_PIECE. */
async function* listText(first: string[], rest: AsyncIterator<string>): AsyncGenerator<string> {
  let part = `[${first.join(',')}`;
  first.length = 0;
  for (;;) {
    const next = await rest.next();
    if (next.done) break;
    part += `,${next.value}`;
    if (part.length >= UPLOAD_PIECE) {
      yield part;
      part = '';
    }
  }
  yield `${part}]`;
}
