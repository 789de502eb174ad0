import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { MiddyfiedHandler } from '@middy/core';
import type { AppContext } from '../wiring.js';
import type { RequestSchemaName } from '../domain/contract/request-schemas.js';
import type { ApiVersion, Method, RouteDef } from './routes.js';

export interface ApiRequest<B = unknown> {
  method: Method;
  /** The request path as received (without the query). */
  path: string;
  version: ApiVersion;
  params: Record<string, string>;
  /** Every value of each query parameter, in order. */
  query: Record<string, string[]>;
  /** The body after validation (defaults applied, values coerced). */
  body: B;
  /** The body as sent, parsed from JSON. */
  rawBody: unknown;
  /** The Authorization header as sent: job report routes check their own token (job-report-access.ts). */
  authorization?: string;
  app: AppContext;
}

export interface ApiResult {
  status: number;
  body?: unknown;
  /**
   * A JSON array produced piece by piece (lists), used instead of `body`: each piece the JSON
   * texts of one or more items, comma-separated (never empty), as a string or as UTF-8; the array
   * is `[` + pieces joined by `,` + `]`.
   */
  stream?: AsyncIterable<string | Uint8Array>;
  headers?: Record<string, string>;
}

export interface Operation<B = any> {
  /** Runs before the body is looked at: the original answers 404 before 400 and 422 on item PATCH. */
  precheck?: (request: ApiRequest<unknown>) => Promise<void>;
  /** The operation takes a JSON body, validated against this request schema of api/openapi.yaml. */
  body?: { schema: RequestSchemaName; prepare?: (raw: unknown) => unknown };
  run: (request: ApiRequest<B>) => Promise<ApiResult>;
}

/** Keyed `${resource} ${method}`, e.g. `images.item PATCH`. */
export type Operations = Record<string, Operation>;

/** What the middlewares of one request share. */
export interface ImsRequestState {
  route?: RouteDef;
  operation?: Operation;
  request?: ApiRequest;
}

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;
export type ApiHandler = MiddyfiedHandler<HttpEvent, HttpResult, Error, Context>;
