/**
 * Lets a host that can stream (the embedded server) receive a list as a stream instead of one
 * buffered body. API Gateway cannot, so events from it are never marked.
 */
import type { HttpEvent, HttpResult } from './types.js';

const streamingEvents = new WeakSet<object>();
export const RESPONSE_STREAM = Symbol('ims.responseStream');

/** A result whose list is written by the host as it comes: pieces of the array's text (ApiResult.stream). */
export type StreamingResult = HttpResult & { [RESPONSE_STREAM]?: AsyncIterable<string | Uint8Array> };

export function markStreaming(event: HttpEvent): void {
  streamingEvents.add(event);
}

export function canStream(event: HttpEvent): boolean {
  return streamingEvents.has(event);
}
