/**
 * An S3 endpoint on loopback in front of another one (path-style): every request is forwarded
 * as it came (its Host header too, so SigV4 signatures still match) unless the rule answers it
 * itself, as a deployment's S3 would refuse a role what its policy does not grant.
 */
import { createServer, request as forward, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { makeS3Client } from '#shared/clients.js';
import { readSettings } from '#shared/config.js';
import { EMBEDDED_S3_CREDENTIALS } from '#infra/local/embedded.js';

export interface ProxiedRequest {
  method: string;
  bucket: string;
  key: string;
  /** A server-side copy (CopyObject or UploadPartCopy). */
  copy: boolean;
}

/** An S3 error the proxy answers with; undefined forwards the request. */
export type ProxyRule = (request: ProxiedRequest) => { status: number; code: string } | undefined;

export interface S3Proxy {
  url: string;
  /** Every request seen, answered or forwarded. */
  seen: ProxiedRequest[];
  /** A client of the proxy, configured as the service's is (the embedded S3's credentials). */
  client(): S3Client;
  stop(): Promise<void>;
}

function describe(req: IncomingMessage): ProxiedRequest {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://proxy').pathname).replace(/^\//, '');
  const [bucket, ...key] = path.split('/');
  return { method: req.method ?? 'GET', bucket: bucket ?? '', key: key.join('/'), copy: 'x-amz-copy-source' in req.headers };
}

export async function startS3Proxy(target: string, rule: ProxyRule): Promise<S3Proxy> {
  const to = new URL(target);
  const seen: ProxiedRequest[] = [];
  const server = createServer((req, res) => {
    const request = describe(req);
    seen.push(request);
    const answer = rule(request);
    if (answer) {
      req.resume();
      // A HEAD's error has no body, as S3's has not.
      res.writeHead(answer.status, { 'content-type': 'application/xml' });
      res.end(req.method === 'HEAD' ? undefined : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${answer.code}</Code><Message>${answer.code}</Message></Error>`);
      return;
    }
    const upstream = forward({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    client: () =>
      makeS3Client(
        readSettings({
          S3_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.accessKeyId,
          S3_SECRET_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
          ...process.env,
          S3_ENDPOINT: url,
        }),
      ),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
