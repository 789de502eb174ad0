import type { MiddlewareObj, Request } from '@middy/core';
import type { AppContext } from '../../wiring.js';
import { HttpProtocolError, URL_NOT_FOUND_DETAIL } from '../problem.js';
import { allowedMethods, matchRoute, type HandlerGroup, type Method } from '../routes.js';
import type { HttpEvent, HttpResult, ImsRequestState, Operations } from '../types.js';

const states = new WeakMap<object, ImsRequestState>();

/** The state the middlewares of one request share, keyed by its event object. */
export function imsState(request: Request<HttpEvent> | HttpEvent): ImsRequestState {
  const event = 'event' in request && 'internal' in request ? request.event : (request as HttpEvent);
  let state = states.get(event);
  if (!state) {
    state = {};
    states.set(event, state);
  }
  return state;
}

export function parseQuery(raw: string | undefined): Record<string, string[]> {
  const query: Record<string, string[]> = {};
  for (const [key, value] of new URLSearchParams(raw ?? '')) (query[key] ??= []).push(value);
  return query;
}

/**
 * Finds the operation for the request's path and method among the operations of one handler
 * group; the request gets the context its entry point hands in.
 */
export function routeRequest(group: HandlerGroup, operations: Operations, context: () => AppContext): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      const event = request.event;
      const requested = event.requestContext.http.method.toUpperCase();
      // As Flask does: HEAD is GET without the body, OPTIONS lists the methods of the URL.
      const method = (requested === 'HEAD' ? 'GET' : requested) as Method;
      const allowed = allowedMethods(event.rawPath);
      const allow = [...allowed, 'OPTIONS', ...(allowed.includes('GET') ? ['HEAD'] : [])].sort().join(', ');
      if (requested === 'OPTIONS' && allowed.length > 0) return { statusCode: 200, headers: { allow }, body: '' };
      const match = matchRoute(event.rawPath, method);
      if (!match || match.route.group !== group) {
        if (allowed.length > 0) throw new HttpProtocolError(405, 'The method is not allowed for the requested URL.', { allow });
        throw new HttpProtocolError(404, URL_NOT_FOUND_DETAIL, {}, false);
      }
      const operation = match.route.methods.includes(method) ? operations[`${match.route.resource} ${method}`] : undefined;
      if (!operation) throw new HttpProtocolError(405, 'The method is not allowed for the requested URL.', { allow });
      const state = imsState(request);
      state.route = match.route;
      state.operation = operation;
      state.request = {
        method,
        path: event.rawPath,
        version: match.version,
        params: match.params,
        query: parseQuery(event.rawQueryString),
        body: undefined,
        rawBody: undefined,
        authorization: event.headers?.authorization,
        app: context(),
      };
    },
  };
}
