/** api/openapi.yaml is the contract: it must describe exactly the routes the handlers serve. */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { BASE_PATHS, matchRoute, ROUTES } from '#shared/http/routes.js';
import { requestSchemas } from '#shared/domain/contract/request-schemas.js';
import { buildRequestSchemas } from '../../scripts/compile-schemas.js';

const spec = parse(readFileSync(new URL('../../api/openapi.yaml', import.meta.url), 'utf8'));
const METHODS = ['get', 'post', 'patch', 'delete', 'put', 'head', 'options'];

function pathItem(item: Record<string, unknown>): Record<string, unknown> {
  const ref = item.$ref as string | undefined;
  if (!ref) return item;
  return ref.slice(2).split('/').reduce<any>((node, part) => node[part], spec);
}

const described = new Map<string, string[]>(
  Object.entries(spec.paths as Record<string, Record<string, unknown>>).map(([path, item]) => [
    path,
    Object.keys(pathItem(item))
      .filter((k) => METHODS.includes(k))
      .map((k) => k.toUpperCase())
      .sort(),
  ]),
);

describe('api/openapi.yaml', () => {
  test('every route served is described, with the same methods', () => {
    const served = new Map(ROUTES.map((r) => [r.path, [...r.methods].sort()]));
    expect(Object.fromEntries(described)).toEqual(Object.fromEntries(served));
  });

  test('the spec names /apis/ims as a base path of the same server, as the route table serves it', () => {
    const servers = (spec.servers as Array<{ url: string }>).map((s) => new URL(s.url).pathname.replace(/\/$/, ''));
    expect(servers).toEqual([...BASE_PATHS]);
    expect(matchRoute('/apis/ims/v3/images/abc', 'GET')).toMatchObject({ route: { path: '/v3/images/{image_id}' }, params: { image_id: 'abc' }, version: 'v3' });
    expect(matchRoute('/apis/ims/images', 'POST')).toMatchObject({ route: { path: '/images' }, version: 'v2' });
    expect(matchRoute('/apis/ims/v2/jobs/j', 'PATCH')).toMatchObject({ route: { path: '/v2/jobs/{job_id}' }, version: 'v2' });
    expect(matchRoute('/apis/imsx/images', 'GET')).toBeUndefined();
    expect(matchRoute('/apis/ims', 'GET')).toBeUndefined();
  });

  test('the compiled request schemas are those of the spec (run `npm run generate` after editing it)', () => {
    expect(requestSchemas).toEqual(buildRequestSchemas(spec));
  });

  test('every operation body the handlers validate names a request schema of the spec', () => {
    for (const name of ['PublicKeyCreate', 'RecipeCreate', 'RecipePatch', 'ImageCreate', 'ImagePatch', 'DeletedPatch', 'RemoteBuildNodeCreate', 'JobCreate', 'JobPatch']) {
      expect(Object.keys(requestSchemas)).toContain(name);
    }
  });
});
