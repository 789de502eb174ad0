/**
 * Answers a list route: one page (with a Link header to the next) when `limit` is given,
 * otherwise the whole collection as a stream of records. The embedded server writes that stream
 * to the socket as it comes; under API Gateway (whose Lambda responses stop at 6 MB) an answer
 * that would not fit is refused with a 413 that says how to page.
 */
import { ProblemError } from '../domain/errors.js';
import { listPage, streamRecords } from '../domain/lifecycle.js';
import type { RecordKind, RecordState } from '../domain/records.js';
import { JsonText, toJsonText } from '../domain/json-text.js';
import type { StoredRecord } from '../domain/ports.js';
import { nextPageLink, parseListParams } from './list-params.js';
import type { ApiRequest, ApiResult } from './types.js';

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
  // A record shown as stored is written as the store's text of it, when it keeps one.
  const view = options.view
    ? (stored: StoredRecord<T>) => options.view!(stored.record)
    : (stored: StoredRecord<T>) => (stored.json !== undefined ? new JsonText(stored.json) : stored.record);
  if (params.limit !== undefined) {
    const page = await listPage<T>(request.app.store, options.kind, state, params.filter, { limit: params.limit, cursor: params.cursor });
    return {
      status: 200,
      body: page.items.map(view),
      headers: page.cursor ? { link: nextPageLink(request, path, page.cursor) } : {},
    };
  }
  const records = streamRecords<T>(request.app.store, options.kind, state, params.filter);
  return {
    status: 200,
    stream: (async function* () {
      for await (const record of records) yield view(record);
    })(),
  };
}

/** What a Lambda response can carry (6 MB), less room for headers. */
export const MAX_BUFFERED_RESPONSE_BYTES = 6_000_000;

export class ResponseTooLargeError extends ProblemError {
  constructor() {
    super(
      413,
      `The list is larger than one response can carry (${MAX_BUFFERED_RESPONSE_BYTES} bytes). Ask for it in pages: add ?limit=<1-1000> and follow the Link header of each page.`,
    );
  }
}

/** Serializes a streamed list for a buffered response, refusing one that would not fit. */
export async function bufferStream(stream: AsyncIterable<unknown>, maxBytes = MAX_BUFFERED_RESPONSE_BYTES): Promise<string> {
  const parts: string[] = [];
  let size = 2;
  for await (const item of stream) {
    const text = toJsonText(item);
    size += text.length + 1;
    if (size > maxBytes) throw new ResponseTooLargeError();
    parts.push(text);
  }
  return `[${parts.join(',')}]`;
}
