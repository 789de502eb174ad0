/**
 * Lists that scale: pages with limit + cursor (Link header), filters served by index Queries,
 * streamed whole-collection answers on the embedded server (large-lists.test.ts: behind API
 * Gateway and Lambda).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeResult } from '#infra/local/lambda-adapter.js';
import { RESPONSE_STREAM, type StreamingResult } from '#shared/http/streaming.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const created: { id: string; name: string; arch: string; team: string }[] = [];

beforeAll(async () => {
  svc = await startTestService();
  for (let i = 0; i < 23; i++) {
    const name = i % 3 === 0 ? `compute-${i}` : `login-${i}`;
    const arch = i % 4 === 0 ? 'aarch64' : 'x86_64';
    const team = i % 5 === 0 ? 'red' : 'blue';
    const res = await svc.request('POST', '/v3/images', { name, arch, metadata: { team, idx: String(i) } });
    created.push({ id: res.body.id, name, arch, team });
  }
});
afterAll(async () => {
  await svc.stop();
});

function nextOf(link: string | null): string | undefined {
  const m = /^<([^>]+)>; rel="next"$/.exec(link ?? '');
  return m?.[1];
}

async function walk(first: string): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let url: string | undefined = first;
  let pages = 0;
  while (url) {
    const res = await svc.request('GET', url);
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body)).toBe(true);
    ids.push(...res.body.map((r: { id: string }) => r.id));
    url = nextOf(res.headers.get('link'));
    pages++;
  }
  return { ids, pages };
}

describe('paginated lists', () => {
  test('limit and the Link header walk the whole collection in creation order, once each', async () => {
    const { ids, pages } = await walk('/v3/images?limit=5');
    expect(ids).toEqual(created.map((c) => c.id));
    expect(pages).toBe(5);
  });

  test('the plain list is still the whole array, in creation order', async () => {
    const res = await svc.request('GET', '/images');
    expect(res.body.map((r: { id: string }) => r.id)).toEqual(created.map((c) => c.id));
  });

  test('name filters: exact and prefix', async () => {
    const exact = await svc.request('GET', '/v3/images?name=compute-3');
    expect(exact.body.map((r: { id: string }) => r.id)).toEqual(created.filter((c) => c.name === 'compute-3').map((c) => c.id));
    const prefix = await walk('/v3/images?name_prefix=compute-&limit=2');
    expect(prefix.ids.sort()).toEqual(created.filter((c) => c.name.startsWith('compute-')).map((c) => c.id).sort());
  });

  test('arch and metadata filters, alone and combined', async () => {
    const arch = await walk('/v3/images?arch=aarch64&limit=2');
    expect(arch.ids).toEqual(created.filter((c) => c.arch === 'aarch64').map((c) => c.id));
    const team = await walk('/v3/images?metadata_key=team&metadata_value=red&limit=2');
    expect(team.ids).toEqual(created.filter((c) => c.team === 'red').map((c) => c.id));
    const both = await svc.request('GET', '/v3/images?arch=aarch64&metadata_key=team&metadata_value=red');
    expect(both.body.map((r: { id: string }) => r.id)).toEqual(created.filter((c) => c.team === 'red' && c.arch === 'aarch64').map((c) => c.id));
  });

  test('a metadata change moves the image between metadata filters', async () => {
    const target = created[1];
    await svc.request('PATCH', `/v3/images/${target.id}`, { metadata: { operation: 'set', key: 'team', value: 'green' } });
    const green = await svc.request('GET', '/v3/images?metadata_key=team&metadata_value=green');
    expect(green.body.map((r: { id: string }) => r.id)).toEqual([target.id]);
    const blue = await svc.request('GET', '/v3/images?metadata_key=team&metadata_value=blue');
    expect(blue.body.map((r: { id: string }) => r.id)).not.toContain(target.id);
  });

  test('soft-deleted records leave the live filters and appear in the deleted ones', async () => {
    const target = created[0];
    expect((await svc.request('DELETE', `/v3/images/${target.id}`)).status).toBe(204);
    const live = await svc.request('GET', `/v3/images?name=${target.name}`);
    expect(live.body).toEqual([]);
    const deleted = await svc.request('GET', `/v3/deleted/images?name=${target.name}`);
    expect(deleted.body.map((r: { id: string }) => r.id)).toEqual([target.id]);
    expect((await svc.request('PATCH', `/v3/deleted/images/${target.id}`, { operation: 'undelete' })).status).toBe(204);
  });

  test('bad paging and filter values are 400 problems, never 500', async () => {
    for (const q of ['limit=0', 'limit=abc', 'limit=1001', 'limit=5&cursor=garbage', 'cursor=abc', 'arch=sparc', 'metadata_key=team']) {
      const res = await svc.request('GET', `/v3/images?${q}`);
      expect([q, res.status]).toEqual([q, 400]);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
    }
    const jobs = await svc.request('GET', '/v3/jobs?status=bogus');
    expect(jobs.status).toBe(400);
  });

  test('a cursor from one filter is refused for another', async () => {
    const first = await svc.request('GET', '/v3/images?arch=x86_64&limit=2');
    const cursor = new URL(`http://x${nextOf(first.headers.get('link'))}`).searchParams.get('cursor')!;
    const res = await svc.request('GET', `/v3/images?limit=2&cursor=${cursor}`);
    expect(res.status).toBe(400);
  });
});

describe('large answers', () => {
  test('the embedded server streams whole lists (chunked, valid JSON)', async () => {
    const res = await fetch(`${svc.url}/v3/images`);
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const body = await res.json();
    expect(body).toHaveLength(created.length);
  });

  test('a client that goes away in the middle of a whole list ends the read of it', async () => {
    let pieces = 0;
    let ended!: () => void;
    const closed = new Promise<void>((r) => (ended = r));
    async function* endless(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) {
          pieces++;
          yield Buffer.alloc(256 * 1024, 0x31);
        }
      } finally {
        ended();
      }
    }
    const server = createServer((_req, res) => {
      const result: StreamingResult = { statusCode: 200, headers: { 'content-type': 'application/json' } };
      result[RESPONSE_STREAM] = endless();
      void writeResult(res, result);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    try {
      const abort = new AbortController();
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal: abort.signal });
      const reader = res.body!.getReader();
      await reader.read();
      abort.abort();
      await closed;
      const after = pieces;
      await new Promise((r) => setTimeout(r, 100));
      expect(pieces).toBe(after);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('a whole list is byte for byte its records as GET answers them, also after changes and filtered', async () => {
    const textOf = async (url: string) => (await fetch(`${svc.url}${url}`)).text();
    const records = async (ids: string[]) => `[${(await Promise.all(ids.map((id) => textOf(`/v3/images/${id}`)))).join(',')}]`;
    const ids = created.map((c) => c.id);
    expect(await textOf('/v3/images')).toBe(await records(ids));
    // Changed in place, soft-deleted (a move out of the list): the next whole list has it as it now is.
    expect((await svc.request('PATCH', `/v3/images/${ids[2]}`, { metadata: { operation: 'set', key: 'zz', value: 'ä' } })).status).toBe(200);
    expect((await svc.request('DELETE', `/v3/images/${ids[4]}`)).status).toBe(204);
    const live = ids.filter((id) => id !== ids[4]);
    expect(await textOf('/v3/images')).toBe(await records(live));
    expect(await textOf('/v3/images?arch=aarch64')).toBe(await records(created.filter((c) => c.arch === 'aarch64' && c.id !== ids[4]).map((c) => c.id)));
    expect(await textOf('/v3/deleted/images')).toBe(`[${await textOf(`/v3/deleted/images/${ids[4]}`)}]`);
    expect((await svc.request('PATCH', `/v3/deleted/images/${ids[4]}`, { operation: 'undelete' })).status).toBe(204);
    expect((await svc.request('PATCH', `/v3/images/${ids[2]}`, { metadata: { operation: 'remove', key: 'zz' } })).status).toBe(200);
    expect(await textOf('/v3/images')).toBe(await records(ids));
  });
});

describe('unusual keys and names', () => {
  test('metadata keys such as __proto__ and constructor are kept, listed and filtered like any other', async () => {
    const res = await svc.request('POST', '/v3/images', { name: 'odd\u00e9\ud83d\ude00', metadata: { __proto__: 'a', constructor: 'b', 'k=v': 'x=y' } });
    // JSON.stringify of a literal with __proto__ would set the prototype: send the raw text instead.
    const raw = await svc.request('POST', '/v3/images', '{"name":"odd2","metadata":{"__proto__":"a","constructor":"b","k=v":"x=y"}}');
    expect(res.status).toBe(201);
    expect(raw.status).toBe(201);
    expect(JSON.parse(raw.text).metadata).toEqual(JSON.parse('{"__proto__":"a","constructor":"b","k=v":"x=y"}'));
    const fetched = await svc.request('GET', `/v3/images/${raw.body.id}`);
    expect(fetched.text).toContain('"__proto__":"a"');
    const byMeta = await svc.request('GET', '/v3/images?metadata_key=constructor&metadata_value=b');
    expect(byMeta.body.map((r: { id: string }) => r.id)).toContain(raw.body.id);
    const byEq = await svc.request('GET', `/v3/images?metadata_key=${encodeURIComponent('k=v')}&metadata_value=${encodeURIComponent('x=y')}`);
    expect(byEq.body.map((r: { id: string }) => r.id)).toEqual([res.body.id, raw.body.id]);
    const named = await svc.request('GET', `/v3/images?name=${encodeURIComponent('odd\u00e9\ud83d\ude00')}`);
    expect(named.body.map((r: { id: string }) => r.id)).toEqual([res.body.id]);
    await svc.request('DELETE', `/v3/images/${raw.body.id}`);
    await svc.request('DELETE', `/v3/images/${res.body.id}`);
  });
});
