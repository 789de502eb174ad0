import type { MiddlewareObj } from '@middy/core';
import { HttpProtocolError } from '../problem.js';
import type { HttpEvent, HttpResult } from '../types.js';
import { imsState } from './route-request.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * Parses the JSON body of operations that take one. After the operation's precheck, so an
 * unknown id is a 404 whatever the body says, as in the original.
 */
export function jsonBody(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      const state = imsState(request);
      if (!state.operation?.body || !state.request) return;
      const event = request.event;
      const contentType = event.headers?.['content-type'] ?? '';
      if (!JSON_TYPE.test(contentType)) {
        throw new HttpProtocolError(415, "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.");
      }
      const text = event.body === undefined || event.body === null ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
      try {
        state.request.rawBody = JSON.parse(text);
      } catch (error) {
        throw new HttpProtocolError(400, `Failed to decode JSON object: ${(error as Error).message}`);
      }
    },
  };
}
