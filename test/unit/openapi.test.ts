/** api/openapi.yaml is the contract: it must describe exactly the routes the handlers serve. */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { ROUTES } from '#shared/http/routes.js';
import { requestSchemas } from '#shared/http/generated/request-schemas.js';
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

  test('the compiled request schemas are those of the spec (run `npm run generate` after editing it)', () => {
    expect(requestSchemas).toEqual(buildRequestSchemas(spec));
  });

  test('every operation body the handlers validate names a request schema of the spec', () => {
    for (const name of ['PublicKeyCreate', 'RecipeCreate', 'RecipePatch', 'ImageCreate', 'ImagePatch', 'DeletedPatch', 'RemoteBuildNodeCreate', 'JobCreate', 'JobPatch']) {
      expect(Object.keys(requestSchemas)).toContain(name);
    }
  });
});
