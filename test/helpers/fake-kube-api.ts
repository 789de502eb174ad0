/**
 * A recording fake of the Kubernetes API server (node:http on 127.0.0.1:0), used behind a real
 * KubeConfig so the real @kubernetes/client-node serialises every request. It stores objects per
 * collection path and answers like the API server for the calls IMS makes: POST 201 / 409
 * AlreadyExists, GET 200 / 404, list with an equality labelSelector, PUT (replace) 200 / 404 / 409
 * Conflict on an outdated resourceVersion, DELETE 200 / 404. Tests can seed objects (pods,
 * secrets), set a Job's or Pod's status, make the next matching calls fail, and be told of every
 * object created (`onCreate`: test/helpers/pod-player.ts plays a Job's pod from it). Every request
 * is recorded (`requests`, `calls()`), so a test can assert what was asked of the cluster.
 *
 * Every POSTed object goes through an optional validator first; an invalid one is refused with
 * 422 Invalid (as a real API server would) and kept in `rejected` for the test to assert on.
 *
 * Every request is authorized first against the Role the repository ships for the worker
 * (deploy/kubernetes/ims-job-worker-rbac.yaml, or the rules a test passes): a call no rule of the
 * request's namespace allows answers 403 Forbidden, as the API server's RBAC does, and is kept in
 * `forbidden`; `assertWithinRole()` (each test file's afterEach) fails the test then. Objects a
 * test seeds with `put` are not requests and need no permission.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { Job } from 'kubernetes-models/batch/v1';

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
};

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: KubeObject;
}

export interface InjectedFailure {
  method: string;
  path: string | RegExp;
  status: number;
  reason: string;
  message?: string;
  /** How many matching calls fail (default 1). */
  times?: number;
}

export type Validator = (resource: string, body: KubeObject) => void;

/** Told of each object the fake stored from a POST: its collection path, resource and the object. */
export type CreateListener = (created: { collection: string; resource: string; object: KubeObject }) => void;

/** One rule of a Role, as RBAC reads it. */
export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Who the worker is, and the rules bound to it per namespace. */
export interface Rbac {
  user: string;
  rules: Record<string, RbacRule[]>;
}

/** The Role and RoleBinding the repository ships for the worker. */
export const SHIPPED_RBAC_MANIFEST = fileURLToPath(new URL('../../deploy/kubernetes/ims-job-worker-rbac.yaml', import.meta.url));

type ManifestDoc = KubeObject & { rules?: RbacRule[]; roleRef?: { kind?: string; name?: string }; subjects?: Array<{ kind?: string; name?: string; namespace?: string }> };

/**
 * The rules a manifest grants its one ServiceAccount: every Role bound to it by a RoleBinding of
 * the Role's namespace. A ClusterRole binding is refused (the worker needs none).
 */
export function rbacFromManifest(text: string): Rbac {
  const docs = parseAllDocuments(text).map((d) => d.toJS() as ManifestDoc).filter((d) => d && typeof d === 'object');
  const accounts = docs.filter((d) => d.kind === 'ServiceAccount');
  if (accounts.length !== 1) throw new Error(`the RBAC manifest must define one ServiceAccount, not ${accounts.length}`);
  const account = { name: accounts[0]!.metadata?.name, namespace: accounts[0]!.metadata?.namespace };
  const rules: Record<string, RbacRule[]> = {};
  for (const binding of docs.filter((d) => d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding')) {
    const bound = (binding.subjects ?? []).some((s) => s.kind === 'ServiceAccount' && s.name === account.name && s.namespace === account.namespace);
    if (!bound) continue;
    if (binding.kind !== 'RoleBinding' || binding.roleRef?.kind !== 'Role') throw new Error(`binding ${binding.metadata?.name}: only Roles bound in their namespace are expected`);
    const namespace = binding.metadata?.namespace;
    const role = docs.find((d) => d.kind === 'Role' && d.metadata?.name === binding.roleRef?.name && d.metadata?.namespace === namespace);
    if (!namespace || !role) throw new Error(`binding ${binding.metadata?.name}: no Role ${binding.roleRef?.name} in namespace ${namespace}`);
    (rules[namespace] ??= []).push(...(role.rules ?? []));
  }
  return { user: `system:serviceaccount:${account.namespace}:${account.name}`, rules };
}

export const shippedRbac = (): Rbac => rbacFromManifest(readFileSync(SHIPPED_RBAC_MANIFEST, 'utf8'));

/** The verb RBAC checks for a request (watch and patch are never sent by the worker, but named right). */
function verbOf(method: string, named: boolean, query: URLSearchParams): string {
  switch (method) {
    case 'GET':
      return named ? 'get' : query.get('watch') === 'true' ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

const allows = (list: string[], value: string): boolean => list.includes('*') || list.includes(value);

interface ParsedPath {
  collection: string;
  namespace: string;
  resource: string;
  name?: string;
  subresource?: string;
}

const PATH = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/;

function parsePath(path: string): ParsedPath | undefined {
  const m = PATH.exec(path);
  if (!m) return undefined;
  const [, prefix, namespace, resource, name, subresource] = m;
  return { collection: `${prefix}/namespaces/${namespace}/${resource}`, namespace: namespace!, resource: resource!, name, subresource };
}

/** The API group of a path: "" for the core group (/api/v1). */
const apiGroupOf = (path: string): string => /^\/apis\/([^/]+)\//.exec(path)?.[1] ?? '';

/** Collection paths of the kinds IMS uses. */
export const collections = {
  configmaps: (ns: string) => `/api/v1/namespaces/${ns}/configmaps`,
  services: (ns: string) => `/api/v1/namespaces/${ns}/services`,
  pvcs: (ns: string) => `/api/v1/namespaces/${ns}/persistentvolumeclaims`,
  secrets: (ns: string) => `/api/v1/namespaces/${ns}/secrets`,
  pods: (ns: string) => `/api/v1/namespaces/${ns}/pods`,
  jobs: (ns: string) => `/apis/batch/v1/namespaces/${ns}/jobs`,
  destinationRules: (ns: string) => `/apis/networking.istio.io/v1beta1/namespaces/${ns}/destinationrules`,
};

/** The RPM signing keys create jobs copy (IMS_JOB_SIGNING_KEYS_SECRET's default, services/hpe-signing-key). */
export const SIGNING_KEYS: KubeObject = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'hpe-signing-key', namespace: 'services' },
  type: 'Opaque',
  data: { 'hpe.asc': Buffer.from('key').toString('base64') },
};

function status(code: number, reason: string, message: string): KubeObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function matchesSelector(obj: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  const labels = obj.metadata?.labels ?? {};
  return selector.split(',').every((term) => {
    const [key, value] = term.split('=');
    return key !== undefined && labels[key] === value;
  });
}

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  readonly rejected: Array<{ path: string; error: string }> = [];
  /** The calls RBAC refused, as `<verb> <resource>[/<name>] in <namespace>`. */
  readonly forbidden: string[] = [];
  private readonly store = new Map<string, Map<string, KubeObject>>();
  private failures: InjectedFailure[] = [];
  private readonly listeners: CreateListener[] = [];
  private uid = 0;
  private version = 0;

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly validate: Validator | undefined,
    private readonly rbac: Rbac,
  ) {}

  /** `rbac` defaults to the shipped manifest's rules. */
  static async start(options: { validate?: Validator; rbac?: Rbac } = {}): Promise<FakeKubeApi> {
    const rbac = options.rbac ?? shippedRbac();
    let fake: FakeKubeApi | undefined;
    const server = http.createServer((req, res) => {
      void fake!.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    fake = new FakeKubeApi(server, `http://127.0.0.1:${port}`, options.validate, rbac);
    return fake;
  }

  /** A real KubeConfig pointing at this server. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'tester', token: 't' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'tester' }],
      currentContext: 'fake',
    });
    return kc;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.requests.length = 0;
    this.rejected.length = 0;
    this.forbidden.length = 0;
    this.store.clear();
    this.failures = [];
  }

  /** Calls the listener for every object created from now on (after the 201 is sent). */
  onCreate(listener: CreateListener): void {
    this.listeners.push(listener);
  }

  /** Every request so far as `METHOD /path`, in order. */
  calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }

  /** Fails (throws) when any call went beyond the Role, naming each. */
  assertWithinRole(): void {
    if (this.forbidden.length > 0) throw new Error(`calls outside the worker's Role (deploy/kubernetes): ${this.forbidden.join('; ')}`);
  }

  /** The 403 RBAC answers, or undefined when a rule of the namespace allows the call. */
  private authorize(method: string, url: URL): KubeObject | undefined {
    const parsed = parsePath(url.pathname);
    const verb = verbOf(method, parsed?.name !== undefined, url.searchParams);
    const group = apiGroupOf(url.pathname);
    const resource = parsed ? (parsed.subresource ? `${parsed.resource}/${parsed.subresource}` : parsed.resource) : url.pathname;
    const allowed =
      parsed !== undefined &&
      (this.rbac.rules[parsed.namespace] ?? []).some(
        (rule) =>
          allows(rule.verbs, verb) &&
          allows(rule.apiGroups, group) &&
          allows(rule.resources, resource) &&
          (!rule.resourceNames?.length || (parsed.name !== undefined && rule.resourceNames.includes(parsed.name))),
      );
    if (allowed) return undefined;
    const what = parsed?.name ? `${resource} "${parsed.name}"` : resource;
    const where = parsed ? ` in the namespace "${parsed.namespace}"` : ' at the cluster scope';
    this.forbidden.push(`${verb} ${resource}${parsed?.name ? `/${parsed.name}` : ''} in ${parsed?.namespace ?? '(cluster)'}`);
    return status(403, 'Forbidden', `${what} is forbidden: User "${this.rbac.user}" cannot ${verb} resource "${resource}" in API group "${group}"${where}`);
  }

  failNext(failure: InjectedFailure): void {
    this.failures.push({ times: 1, ...failure });
  }

  put(collection: string, obj: KubeObject): void {
    const name = obj.metadata?.name;
    if (!name) throw new Error('fake kube api: object without metadata.name');
    this.collection(collection).set(name, structuredClone(obj));
  }

  /** Seeds the signing keys a create job's prepare copies, as the cluster keeps them. */
  putSigningKeys(): void {
    this.put(collections.secrets('services'), SIGNING_KEYS);
  }

  get(collection: string, name: string): KubeObject | undefined {
    return this.store.get(collection)?.get(name);
  }

  names(collection: string): string[] {
    return [...(this.store.get(collection)?.keys() ?? [])];
  }

  setStatus(collection: string, name: string, objectStatus: unknown): void {
    const obj = this.get(collection, name);
    if (!obj) throw new Error(`fake kube api: no ${collection}/${name}`);
    obj.status = objectStatus;
  }

  remove(collection: string, name: string): void {
    this.store.get(collection)?.delete(name);
  }

  /** The POSTs that reached the server, in order. */
  creates(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST');
  }

  deletes(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'DELETE');
  }

  private collection(path: string): Map<string, KubeObject> {
    let c = this.store.get(path);
    if (!c) this.store.set(path, (c = new Map()));
    return c;
  }

  private takeFailure(method: string, path: string): InjectedFailure | undefined {
    const failure = this.failures.find(
      (f) => f.method === method && (typeof f.path === 'string' ? f.path === path : f.path.test(path)),
    );
    if (failure && --failure.times! <= 0) this.failures = this.failures.filter((f) => f !== failure);
    return failure;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as KubeObject) : undefined;
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });

    const send = (code: number, payload: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const refused = this.authorize(method, url);
    if (refused) return send(403, refused);
    const failure = this.takeFailure(method, url.pathname);
    if (failure) {
      send(failure.status, status(failure.status, failure.reason, failure.message ?? `injected ${failure.reason}`));
      return;
    }
    const parsed = parsePath(url.pathname);
    if (!parsed) {
      send(404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
      return;
    }
    const items = this.collection(parsed.collection);
    const notFound = (): void =>
      send(404, status(404, 'NotFound', `${parsed.resource} "${parsed.name}" not found`));

    if (method === 'POST' && !parsed.name) {
      const name = body?.metadata?.name;
      if (!body || !name) return send(422, status(422, 'Invalid', 'metadata.name: Required value'));
      if (body.metadata?.namespace && body.metadata.namespace !== parsed.namespace) {
        return send(400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'));
      }
      if (this.validate) {
        try {
          this.validate(parsed.resource, body);
        } catch (error) {
          this.rejected.push({ path: url.pathname, error: String(error) });
          return send(422, status(422, 'Invalid', `${parsed.resource} "${name}" is invalid: ${String(error)}`));
        }
      }
      if (items.has(name)) return send(409, status(409, 'AlreadyExists', `${parsed.resource} "${name}" already exists`));
      const stored: KubeObject = {
        ...body,
        metadata: {
          ...body.metadata,
          namespace: parsed.namespace,
          uid: `uid-${++this.uid}`,
          resourceVersion: String(++this.version),
          creationTimestamp: new Date().toISOString(),
        },
      };
      items.set(name, stored);
      send(201, stored);
      for (const listener of this.listeners) listener({ collection: parsed.collection, resource: parsed.resource, object: structuredClone(stored) });
      return;
    }
    if (method === 'PUT' && parsed.name && !parsed.subresource) {
      const current = items.get(parsed.name);
      if (!current) return notFound();
      if (!body || body.metadata?.name !== parsed.name) return send(400, status(400, 'BadRequest', 'the name of the object does not match the name on the URL'));
      if (this.validate) {
        try {
          this.validate(parsed.resource, body);
        } catch (error) {
          this.rejected.push({ path: url.pathname, error: String(error) });
          return send(422, status(422, 'Invalid', `${parsed.resource} "${parsed.name}" is invalid: ${String(error)}`));
        }
      }
      const expected = body.metadata?.resourceVersion;
      if (expected !== undefined && expected !== current.metadata?.resourceVersion) {
        return send(409, status(409, 'Conflict', `Operation cannot be fulfilled on ${parsed.resource} "${parsed.name}": the object has been modified`));
      }
      const replaced: KubeObject = { ...body, metadata: { ...current.metadata, ...body.metadata, resourceVersion: String(++this.version) } };
      items.set(parsed.name, replaced);
      return send(200, replaced);
    }
    if (method === 'GET' && !parsed.name) {
      const selected = [...items.values()].filter((o) => matchesSelector(o, url.searchParams.get('labelSelector') ?? undefined));
      return send(200, { kind: 'List', apiVersion: 'v1', metadata: {}, items: selected });
    }
    if (method === 'GET' && parsed.name) {
      const obj = items.get(parsed.name);
      return obj ? send(200, obj) : notFound();
    }
    if (method === 'DELETE' && parsed.name) {
      const obj = items.get(parsed.name);
      if (!obj) return notFound();
      items.delete(parsed.name);
      return send(200, obj);
    }
    send(405, status(405, 'MethodNotAllowed', `${method} is not supported by the fake`));
  }
}

/** Istio's DestinationRule is not in kubernetes-models: its required shape, checked by hand. */
function checkDestinationRule(body: KubeObject): void {
  const spec = body.spec as { host?: unknown; trafficPolicy?: { tls?: { mode?: unknown } } } | undefined;
  const problems: string[] = [];
  if (body.apiVersion !== 'networking.istio.io/v1beta1') problems.push(`apiVersion ${String(body.apiVersion)}`);
  if (body.kind !== 'DestinationRule') problems.push(`kind ${String(body.kind)}`);
  if (typeof body.metadata?.name !== 'string' || !body.metadata.name) problems.push('metadata.name missing');
  if (typeof spec?.host !== 'string' || !spec.host) problems.push('spec.host missing');
  const mode = spec?.trafficPolicy?.tls?.mode;
  if (mode !== undefined && !['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'].includes(String(mode))) {
    problems.push(`spec.trafficPolicy.tls.mode ${String(mode)}`);
  }
  if (problems.length > 0) throw new Error(`invalid DestinationRule: ${problems.join(', ')}`);
}

/**
 * Validates against the Kubernetes OpenAPI schemas (kubernetes-models). Throws for a resource it
 * has no schema for, so nothing the worker sends goes unchecked.
 */
export function validateWithKubernetesModels(resource: string, body: KubeObject): void {
  // The model constructors take the typed interfaces; the point here is to check untyped input.
  const data = body as never;
  switch (resource) {
    case 'configmaps':
      return new ConfigMap(data).validate();
    case 'services':
      return new Service(data).validate();
    case 'persistentvolumeclaims':
      return new PersistentVolumeClaim(data).validate();
    case 'secrets':
      return new Secret(data).validate();
    case 'jobs':
      return new Job(data).validate();
    case 'destinationrules':
      return checkDestinationRule(body);
    default:
      throw new Error(`no schema to validate ${resource}`);
  }
}
