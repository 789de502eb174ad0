/**
 * The whole list without paging, deployed: the API handlers answered as API Gateway and Lambda
 * answer them (no streaming, a 6 MiB response limit that fails the invocation). A list over the
 * inline limit is written to S3 and answered with a redirect that python requests (here fetch,
 * which follows it the same way) follows to the very list the embedded server streams.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { apiHandlers } from '#infra/local/handlers.js';
import { createApiServer, LAMBDA_RESPONSE_BYTES } from '#infra/local/http-server.js';
import { LIST_OBJECT_PREFIX, LIST_URL_SECONDS } from '#shared/http/list-objects.js';
import { startTestService, type TestService } from '../helpers/service.js';

const LOWERED_LIMIT = 200_000;

let svc: TestService;
let lambda: Server;
let lambdaUrl: string;

beforeAll(async () => {
  process.env.IMS_LIST_INLINE_MAX_BYTES = String(LOWERED_LIMIT);
  try {
    svc = await startTestService();
  } finally {
    delete process.env.IMS_LIST_INLINE_MAX_BYTES;
  }
  // The same handlers and records, answered as API Gateway in front of Lambda answers them.
  lambda = createApiServer(apiHandlers(() => svc.app), { lambdaLimits: true });
  await new Promise<void>((ok) => lambda.listen(0, '127.0.0.1', () => ok()));
  lambdaUrl = `http://127.0.0.1:${(lambda.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => {
    lambda.close(() => r());
    lambda.closeAllConnections();
  });
  await svc.stop();
});

/** Creates `count` images, 16 at a time. */
async function createImages(count: number, pad = 0, from = 0): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < from + count; i = next++) {
        const res = await svc.request('POST', '/v3/images', { name: `img-${i}`, arch: 'x86_64', metadata: pad ? { pad: '"'.repeat(pad) } : { n: String(i) } });
        expect(res.status).toBe(201);
      }
    }),
  );
}

/** What python requests does with the list URL: GET with the caller's Authorization header, redirects followed. */
const asRequests = (url: string) => fetch(url, { headers: { authorization: 'Bearer token-of-the-caller' }, redirect: 'follow' });

describe('the unpaginated list behind API Gateway and Lambda', () => {
  test('a small list is answered inline', async () => {
    const res = await fetch(`${lambdaUrl}/v3/recipes`, { redirect: 'manual' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('[]');
  });

  test('over the inline limit: a redirect to the list in S3, which a requests-like client follows to the whole list', async () => {
    await createImages(2000);
    const streamed = await (await fetch(`${svc.url}/v3/images`)).text();
    expect(streamed.length).toBeGreaterThan(LOWERED_LIMIT);
    expect(JSON.parse(streamed)).toHaveLength(2000);

    const redirect = await fetch(`${lambdaUrl}/v3/images`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    const location = new URL(redirect.headers.get('location')!);
    expect(location.origin).toBe(svc.s3Endpoint);
    expect(decodeURIComponent(location.pathname)).toMatch(new RegExp(`^/${svc.app.config.imsBucket}/${LIST_OBJECT_PREFIX}[0-9a-f-]{36}\\.json$`));
    expect(location.searchParams.get('X-Amz-Expires')).toBe(String(LIST_URL_SECONDS));

    const followed = await asRequests(`${lambdaUrl}/v3/images`);
    expect(followed.status).toBe(200);
    expect(followed.headers.get('content-type')).toBe('application/json');
    expect(await followed.text()).toBe(streamed);

    // Filters apply as to the streamed list.
    const filtered = await (await asRequests(`${lambdaUrl}/v3/images?metadata_key=n&metadata_value=7`)).json();
    expect(filtered).toEqual(JSON.parse(streamed).filter((i: { metadata: { n: string } }) => i.metadata.n === '7'));
  });

  test('near the real limit: inline just under Lambda’s 6 MiB, through S3 over it', async () => {
    svc.app.config.listInlineMaxBytes = 6_000_000;
    try {
      // Metadata of quotes, each escaped in the Lambda response: the limit counts the response, not the body.
      await svc.request('DELETE', '/v3/images');
      await createImages(650, 2000, 10_000);
      const inline = await fetch(`${lambdaUrl}/v3/images`, { redirect: 'manual' });
      expect(inline.status).toBe(200);
      const body = await inline.text();
      expect(JSON.stringify(body).length).toBeGreaterThan(5_000_000);
      expect(JSON.stringify(body).length).toBeLessThan(LAMBDA_RESPONSE_BYTES);

      await createImages(150, 2000, 20_000);
      const streamed = await (await fetch(`${svc.url}/v3/images`)).text();
      expect(JSON.stringify(streamed).length).toBeGreaterThan(LAMBDA_RESPONSE_BYTES);
      const redirect = await fetch(`${lambdaUrl}/v3/images`, { redirect: 'manual' });
      expect(redirect.status).toBe(302);
      expect(await (await asRequests(`${lambdaUrl}/v3/images`)).text()).toBe(streamed);
    } finally {
      svc.app.config.listInlineMaxBytes = LOWERED_LIMIT;
    }
  }, 60_000);
});
