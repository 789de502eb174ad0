import type { MiddlewareObj } from '@middy/core';
import type { HttpEvent, HttpResult } from '../types.js';
import { imsState } from './route-request.js';

/** Runs the operation's precheck (e.g. "does this record exist") before its body is read. */
export function precheck(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      const state = imsState(request);
      if (state.operation?.precheck && state.request) await state.operation.precheck(state.request);
    },
  };
}
