/**
 * Every route the service serves, with its handler group. The embedded server, the Lambda
 * handlers and the CDK HTTP API all read this one table; a test checks it against api/openapi.yaml.
 */
export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
export type HandlerGroup = 'service' | 'public-keys' | 'recipes' | 'images' | 'deleted' | 'remote-build-nodes' | 'jobs';
export type ApiVersion = 'v2' | 'v3';

/**
 * Who may call a route (IMS_AUTH_SCOPES): `public` routes are never checked (the probes), `read`
 * needs the read scope, `write` the write scope, `admin` the admin scope; admin implies write,
 * write implies read. `job-report` routes take no OAuth token at all: the caller is a job's own
 * work, holding a token scoped to that one job (shared/domain/job-report-token.ts), which the
 * operation checks itself; deployed, API Gateway routes them without the JWT authorizer.
 */
export type AccessClass = 'public' | 'job-report' | 'read' | 'write' | 'admin';

/** Classes whose routes no JWT scope guards (nor API Gateway's JWT authorizer, deployed). */
export function withoutJwt(access: AccessRule): access is 'public' | 'job-report' {
  return access === 'public' || access === 'job-report';
}

/** A class decided by one field of the validated body: a customize job opens a root shell, a create job does not. */
export interface BodyAccess {
  field: string;
  values: Record<string, AccessClass>;
  otherwise: AccessClass;
}

export type AccessRule = AccessClass | BodyAccess;

export interface RouteDef {
  /** OpenAPI-style path, e.g. `/v3/images/{image_id}`. */
  path: string;
  group: HandlerGroup;
  /** Names the operation family independently of the version prefix, e.g. `images.item`. */
  resource: string;
  methods: readonly Method[];
  /** Per method; unlisted: GET `read`, POST and PATCH `write`, DELETE `admin` (soft, hard and purge alike). */
  access?: Partial<Record<Method, AccessRule>>;
}

const DEFAULT_ACCESS: Record<Method, AccessClass> = { GET: 'read', POST: 'write', PATCH: 'write', DELETE: 'admin' };

/** The access rule of a method of a route (HEAD and OPTIONS are GET's). */
export function accessRule(route: RouteDef, method: string): AccessRule {
  const m = (method === 'HEAD' || method === 'OPTIONS' ? 'GET' : method) as Method;
  return route.access?.[m] ?? DEFAULT_ACCESS[m] ?? 'admin';
}

const PUBLIC: RouteDef['access'] = { GET: 'public' };

const VERSIONED: readonly ['', '/v2', '/v3'] = ['', '/v2', '/v3'];

/**
 * The API also answers every route under `/apis/ims`: the base path the original has behind the
 * system's API gateway, which ims-python-helper (in the job pods) and the `cray` CLI use by
 * default (`https://<gateway>/apis/ims`). `/apis/ims/v3/images` is `/v3/images`.
 */
export const API_BASE_PATH = '/apis/ims';
export const BASE_PATHS: readonly string[] = ['', API_BASE_PATH];

/** The path a route is matched on: without the `/apis/ims` base path. */
export function withoutBasePath(path: string): string {
  if (path === API_BASE_PATH) return '/';
  return path.startsWith(`${API_BASE_PATH}/`) ? path.slice(API_BASE_PATH.length) : path;
}

/** Every route path under every base path: what API Gateway routes. */
export function servedPaths(route: RouteDef): string[] {
  return BASE_PATHS.map((base) => `${base}${route.path}`);
}

function versioned(group: HandlerGroup, name: string, idParam: string, collection: readonly Method[], item: readonly Method[], access?: RouteDef['access']): RouteDef[] {
  return VERSIONED.flatMap((prefix) => [
    { path: `${prefix}/${name}`, group, resource: `${name}.collection`, methods: collection, ...(access ? { access } : {}) },
    { path: `${prefix}/${name}/{${idParam}}`, group, resource: `${name}.item`, methods: item },
  ]);
}

/** PATCH of a deleted record restores it: an admin's act, as deleting is. */
const UNDELETE: RouteDef['access'] = { PATCH: 'admin' };

/** A job's work asks for a check of its stage with its report token (functions/api/jobs.ts). */
const JOB_REPORT: RouteDef['access'] = { POST: 'job-report' };

/** A create job builds from a recipe; a customize job opens a root shell into an image. */
const JOB_CREATION: RouteDef['access'] = { POST: { field: 'job_type', values: { create: 'write' }, otherwise: 'admin' } };

function deleted(name: string, idParam: string): RouteDef[] {
  return [
    { path: `/v3/deleted/${name}`, group: 'deleted', resource: `deleted.${name}.collection`, methods: ['GET', 'PATCH', 'DELETE'], access: UNDELETE },
    { path: `/v3/deleted/${name}/{${idParam}}`, group: 'deleted', resource: `deleted.${name}.item`, methods: ['GET', 'PATCH', 'DELETE'], access: UNDELETE },
  ];
}

export const ROUTES: readonly RouteDef[] = [
  { path: '/healthz/ready', group: 'service', resource: 'healthz.ready', methods: ['GET'], access: PUBLIC },
  { path: '/healthz/live', group: 'service', resource: 'healthz.live', methods: ['GET'], access: PUBLIC },
  { path: '/version', group: 'service', resource: 'version', methods: ['GET'], access: PUBLIC },
  ...versioned('public-keys', 'public-keys', 'public_key_id', ['GET', 'POST', 'DELETE'], ['GET', 'DELETE']),
  ...versioned('recipes', 'recipes', 'recipe_id', ['GET', 'POST', 'DELETE'], ['GET', 'PATCH', 'DELETE']),
  ...versioned('images', 'images', 'image_id', ['GET', 'POST', 'DELETE'], ['GET', 'PATCH', 'DELETE']),
  ...versioned('jobs', 'jobs', 'job_id', ['GET', 'POST', 'DELETE'], ['GET', 'PATCH', 'DELETE'], JOB_CREATION),
  ...VERSIONED.flatMap((prefix) =>
    (['packages', 'changes', 'lineage'] as const).map((part): RouteDef => ({ path: `${prefix}/images/{image_id}/${part}`, group: 'images', resource: `images.${part}`, methods: ['GET'] })),
  ),
  ...VERSIONED.map((prefix): RouteDef => ({ path: `${prefix}/jobs/{job_id}/checks`, group: 'jobs', resource: 'jobs.checks', methods: ['POST'], access: JOB_REPORT })),
  { path: '/v3/jobs/{job_id}/history', group: 'jobs', resource: 'jobs.history', methods: ['GET'] },
  { path: '/v3/jobs/{job_id}/logs', group: 'jobs', resource: 'jobs.logs', methods: ['GET'] },
  ...deleted('public-keys', 'public_key_id'),
  ...deleted('recipes', 'recipe_id'),
  ...deleted('images', 'image_id'),
  // The static status routes come before `{xname}` so that they win, as in the original.
  { path: '/v3/remote-build-nodes/status', group: 'remote-build-nodes', resource: 'remote-build-nodes.status.collection', methods: ['GET'] },
  { path: '/v3/remote-build-nodes/status/{xname}', group: 'remote-build-nodes', resource: 'remote-build-nodes.status.item', methods: ['GET'] },
  { path: '/v3/remote-build-nodes', group: 'remote-build-nodes', resource: 'remote-build-nodes.collection', methods: ['GET', 'POST', 'DELETE'] },
  { path: '/v3/remote-build-nodes/{xname}', group: 'remote-build-nodes', resource: 'remote-build-nodes.item', methods: ['GET', 'DELETE'] },
];

interface CompiledRoute extends RouteDef {
  pattern: RegExp;
  params: string[];
}

const COMPILED: CompiledRoute[] = ROUTES.map((route) => {
  const params: string[] = [];
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
    params.push(name);
    return '([^/]+)';
  });
  return { ...route, pattern: new RegExp(`^${source}$`), params };
});

export interface RouteMatch {
  route: RouteDef;
  params: Record<string, string>;
  version: ApiVersion;
}

function toMatch(route: CompiledRoute, m: RegExpExecArray, path: string): RouteMatch {
  const params: Record<string, string> = {};
  route.params.forEach((name, i) => {
    try {
      params[name] = decodeURIComponent(m[i + 1]);
    } catch {
      params[name] = m[i + 1];
    }
  });
  return { route, params, version: path.startsWith('/v3/') ? 'v3' : 'v2' };
}

/**
 * The route for a path and method; undefined for an unknown URL. As in the original (Werkzeug),
 * a path that several routes match goes to the first one serving the method, so `DELETE
 * /v3/remote-build-nodes/status` reaches the node named `status` while `GET` gets the status
 * route. When none serves the method, the first route of the path is returned (a 405). A path
 * under `/apis/ims` matches as the same path without it.
 */
export function matchRoute(requestPath: string, method?: string): RouteMatch | undefined {
  const path = withoutBasePath(requestPath);
  let first: RouteMatch | undefined;
  for (const route of COMPILED) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    if (method === undefined || route.methods.includes(method.toUpperCase() as Method)) return toMatch(route, m, path);
    first ??= toMatch(route, m, path);
  }
  return first;
}

/** Every method some route of the path serves (a 405's `Allow`, before HEAD and OPTIONS). */
export function allowedMethods(requestPath: string): Method[] {
  const path = withoutBasePath(requestPath);
  const methods = new Set<Method>();
  for (const route of COMPILED) if (route.pattern.test(path)) route.methods.forEach((m) => methods.add(m));
  return [...methods];
}
