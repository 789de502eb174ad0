/**
 * Turns a node:http request into the API Gateway HTTP API (payload 2.0) event the Lambda
 * handlers receive when deployed, and their result back into an HTTP response.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'aws-lambda';
import type { HttpEvent, HttpResult } from '#shared/http/types.js';
import { RESPONSE_STREAM, type StreamingResult } from '#shared/http/streaming.js';

export function toEvent(req: IncomingMessage, body: Buffer): HttpEvent {
  const url = new URL(req.url ?? '/', 'http://local');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const text = body.toString('utf8');
  const isText = Buffer.from(text, 'utf8').equals(body);
  const now = new Date();
  const queryStringParameters: Record<string, string> = {};
  for (const [k, v] of url.searchParams) queryStringParameters[k] = k in queryStringParameters ? `${queryStringParameters[k]},${v}` : v;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    headers,
    queryStringParameters: Object.keys(queryStringParameters).length ? queryStringParameters : undefined,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    body: body.length ? (isText ? text : body.toString('base64')) : undefined,
    isBase64Encoded: body.length > 0 && !isText,
  };
}

export function lambdaContext(functionName: string): Context {
  const deadline = Date.now() + 30_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Bytes written to the socket before the writer waits for it to drain. */
const STREAM_HIGH_WATER = 1024 * 1024;

/**
 * Writes a list the handler streamed as its pieces come (each a batch of the store's records as
 * one text), so no answer is held in memory whole: one socket write per piece, corked with its
 * separator.
 */
async function writeStream(res: ServerResponse, result: StreamingResult, stream: AsyncIterable<string | Uint8Array>): Promise<void> {
  res.writeHead(result.statusCode ?? 200, { ...(result.headers as Record<string, string>), 'transfer-encoding': 'chunked' });
  let separator = '[';
  try {
    for await (const piece of stream) {
      res.cork();
      res.write(separator);
      const more = res.write(piece);
      res.uncork();
      separator = ',';
      if (!more && res.writableLength > STREAM_HIGH_WATER) await drainedOrClosed(res);
      // A client that went away gets no more: the store's stream is closed with the loop.
      if (res.destroyed) return;
    }
    res.end(separator === '[' ? '[]' : ']');
  } catch (error) {
    // Headers are gone already: end the connection so the client sees a broken body, not a short list.
    res.destroy(error as Error);
  }
}

/** Until the socket has taken what was written, or the connection is gone (then no drain comes). */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export async function writeResult(res: ServerResponse, result: HttpResult): Promise<void> {
  const stream = (result as StreamingResult)[RESPONSE_STREAM];
  if (stream) return writeStream(res, result as StreamingResult, stream);
  const headers = { ...(result.headers ?? {}) } as Record<string, string | number | boolean>;
  const body = result.body === undefined ? Buffer.alloc(0) : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body);
  res.writeHead(result.statusCode ?? 200, { ...headers, 'content-length': body.length });
  res.end(body);
}
