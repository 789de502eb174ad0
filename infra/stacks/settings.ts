/**
 * Every deploy-time setting of the stack: one table of context keys (`-c key=value` or cdk.json's
 * `context`), each with its type, its accepted values, its default and, for the settings the
 * code reads at run time, the environment variable it becomes and which functions get it. A bad
 * value fails the synth with the key and what it accepts; docs/deploy.md lists the same keys (a
 * test compares them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrustedIssuers } from '#shared/config.js';
import { knownHostsFromSetting } from '#shared/workers/remote-node/known-hosts.js';
import { parseHostMap } from '#shared/workers/remote-node/settings.js';
import { DEFAULT_STAGE_TIMEOUTS, type StageTimeouts } from '#shared/workflow/stage-timeouts.js';
import { REPO_ROOT } from '../constructs/ims-function.js';

/**
 * Which functions get a setting's variable:
 * - `all`: every function;
 * - `api`: the HTTP API's functions (authorization);
 * - `data`: every function that reads or writes records (all but the service function);
 * - `jobs`: the functions that create, run or delete jobs (the workflow stages, the reconciler,
 *   the jobs API and the recipe upload);
 * - `pods`: the functions that render job pods (the workflow stages and the reconciler);
 * - `nodes`: the functions that reach the cluster or the remote build nodes (`jobs` and the
 *   remote-build-nodes API): these run in the VPC when one is given.
 */
export type Audience = 'all' | 'api' | 'data' | 'jobs' | 'pods' | 'nodes';

interface Setting<T> {
  /** What the setting is, for docs/deploy.md. */
  doc: string;
  /** The accepted values, as the synth error and docs/deploy.md show them. */
  accepts: string;
  /** Parses a present value; throws a plain message (the caller adds the key). */
  parse(raw: unknown): T;
  /** The value when the key is absent (undefined: the service's own default, no variable). */
  fallback?: T;
  /** The environment variable, and who gets it. */
  env?: { name: string; to: Audience; format?: (value: T) => string | undefined };
}

class InvalidValue extends Error {}

const text = (raw: unknown): string => {
  if (typeof raw !== 'string' || raw.trim() === '') throw new InvalidValue();
  return raw.trim();
};

function str(pattern?: RegExp): (raw: unknown) => string {
  return (raw) => {
    const value = text(raw);
    if (pattern && !pattern.test(value)) throw new InvalidValue();
    return value;
  };
}

function int(min: number, max: number): { accepts: string; parse(raw: unknown): number } {
  return {
    accepts: `an integer from ${min} to ${max}`,
    parse: (raw) => {
      const value = typeof raw === 'number' ? raw : /^\s*-?\d+\s*$/.test(String(raw)) ? Number(raw) : NaN;
      if (!Number.isInteger(value) || value < min || value > max) throw new InvalidValue();
      return value;
    },
  };
}

const bool = {
  accepts: 'true or false',
  parse: (raw: unknown): boolean => {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    throw new InvalidValue();
  },
};

function oneOf<const V extends string>(values: readonly V[]): { accepts: string; parse(raw: unknown): V } {
  return {
    accepts: values.join(', '),
    parse: (raw) => {
      if (!values.includes(raw as V)) throw new InvalidValue();
      return raw as V;
    },
  };
}

/** A list: a JSON array in cdk.json, or comma-separated on the command line. */
function list(item: RegExp): (raw: unknown) => string[] {
  return (raw) => {
    const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
    const values = items?.map((v) => (typeof v === 'string' ? v.trim() : '')).filter(Boolean);
    if (!values?.length || values.some((v) => !item.test(v))) throw new InvalidValue();
    return values;
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?$/;
const IMAGE = /^[^\s]+$/;
const IAM_PRINCIPAL_ARN = /^arn:aws[a-z-]*:(iam|sts)::\d{12}:(root|(user|role|assumed-role)\/.+)$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/;
const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** The retention periods CloudWatch Logs offers (days). */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/** Lambda allows 4 KB for a function's whole environment; known_hosts text beyond this goes in a secret or parameter. */
export const MAX_KNOWN_HOSTS_TEXT_BYTES = 3072;

const packageVersion = (): string => (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** A stage's time limit; its default is the service's own (DEFAULT_STAGE_TIMEOUTS). */
const stage = (name: keyof StageTimeouts) =>
  ({
    doc: `time limit (s) of the ${name} stage`,
    ...int(60, 129_600),
    env: { name: `IMS_STAGE_TIMEOUT_${name.toUpperCase()}`, to: 'jobs' },
    defaultText: String(DEFAULT_STAGE_TIMEOUTS[name]),
  }) as const;

const string = (doc: string, name: string, to: Audience, pattern: RegExp, accepts: string, defaultText: string) =>
  ({ doc, accepts, parse: str(pattern), env: { name, to }, defaultText }) as const;

/** The table. `defaultText` is what docs/deploy.md shows when the key is absent. */
export const SETTINGS = {
  // The stack
  stackName: { doc: 'the CloudFormation stack name (to deploy more than one copy)', accepts: 'a stack name (letters, digits, -)', parse: str(/^[A-Za-z][A-Za-z0-9-]{0,127}$/), fallback: 'Ims', defaultText: '`Ims`' },
  imsBucketName: { doc: 'the recipes bucket (`S3_IMS_BUCKET`), versioned', accepts: 'an S3 bucket name', parse: str(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/), defaultText: 'generated' },
  bootImagesBucketName: { doc: 'the image artifacts bucket (`S3_BOOT_IMAGES_BUCKET`), versioned', accepts: 'an S3 bucket name', parse: str(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/), defaultText: 'generated' },
  noncurrentVersionDays: { doc: 'days a replaced or deleted object version is kept in either bucket', ...int(1, 3650), fallback: 30, defaultText: '30' },
  imsVersion: { doc: 'what `GET /version` answers', accepts: 'a version string', parse: str(), env: { name: 'IMS_VERSION', to: 'all' }, defaultText: '`version` in package.json' },
  logLevel: { doc: 'level of the functions\' structured logs', ...oneOf(['DEBUG', 'INFO', 'WARN', 'ERROR']), env: { name: 'POWERTOOLS_LOG_LEVEL', to: 'all' }, defaultText: '`INFO`' },
  secretsMaxAgeSeconds: { doc: 'a secret or parameter value is read again once older than this', ...int(0, 86_400), env: { name: 'SECRETS_MAX_AGE_SECONDS', to: 'data' }, defaultText: '300' },

  customerManagedKey: {
    doc: 'encrypt the buckets, the records table and the log groups with a KMS key of the stack (rotated yearly, retained) instead of AWS-owned keys ([Encryption](#encryption))',
    ...bool,
    fallback: false,
    defaultText: '`false`',
  },
  logRetentionDays: {
    doc: 'days the log groups (functions, job workflow, API access) keep their events',
    accepts: `one of CloudWatch Logs' retention periods: ${LOG_RETENTION_DAYS.join(', ')}`,
    parse: (raw: unknown) => {
      const days = int(1, 3653).parse(raw);
      if (!(LOG_RETENTION_DAYS as readonly number[]).includes(days)) throw new InvalidValue();
      return days;
    },
    fallback: 365,
    defaultText: '365',
  },

  // Network
  vpcId: { doc: 'the VPC the functions that reach the cluster and the nodes run in ([Network](#network))', accepts: 'a VPC id (vpc-...)', parse: str(/^vpc-[0-9a-f]{8,17}$/), defaultText: 'none: outside any VPC' },
  subnetIds: { doc: 'their subnets (private, routed to the cluster and the nodes); required with `vpcId`', accepts: 'subnet ids (subnet-...), comma-separated', parse: list(/^subnet-[0-9a-f]{8,17}$/), defaultText: '–' },
  subnetAvailabilityZones: {
    doc: 'the Availability Zone of each of `subnetIds`, in the same order: an interface endpoint takes one subnet per zone (AWS refuses two in one); required when endpoints are created in more than one subnet',
    accepts: 'Availability Zone names (us-east-1a), comma-separated',
    parse: list(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/),
    defaultText: '–',
  },
  securityGroupIds: { doc: 'their security groups (egress to the cluster API, the nodes\' SSH port and the endpoints); required with `vpcId`', accepts: 'security group ids (sg-...), comma-separated', parse: list(/^sg-[0-9a-f]{8,17}$/), defaultText: '–' },
  createVpcEndpoints: { doc: 'create the VPC endpoints the functions need (S3 and DynamoDB gateways; Step Functions, Secrets Manager, SSM, X-Ray interfaces)', ...bool, defaultText: '`true` with `vpcId`' },
  routeTableIds: { doc: 'route tables of `subnetIds`, for the S3 and DynamoDB gateway endpoints; required when endpoints are created', accepts: 'route table ids (rtb-...), comma-separated', parse: list(/^rtb-[0-9a-f]{8,17}$/), defaultText: '–' },

  // Authorization
  authorization: { doc: 'check the token\'s scopes per route class (read, write, admin); `off`: any valid token may do everything', ...oneOf(['on', 'off']), fallback: 'on', env: { name: 'IMS_AUTH_SCOPES', to: 'api' }, defaultText: '`on`' },
  authIssuers: {
    doc: "further issuers whose tokens the API takes beside `JwtIssuer`, each with its JWKS URL: e.g. the cluster-internal Keycloak job pods get their tokens from, whose `iss` names its internal host ([Prerequisites](#prerequisites))",
    accepts: 'issuer=https-JWKS-URL entries, comma-separated',
    parse: (raw: unknown) => {
      const entries = list(/^\S+$/)(raw);
      let issuers;
      try {
        issuers = parseTrustedIssuers(entries.join(','), 'authIssuers');
      } catch (e) {
        throw new InvalidValue((e as Error).message);
      }
      const keyless = issuers.find((i) => !i.jwks?.startsWith('https://'));
      if (keyless) throw new InvalidValue(`${keyless.issuer} needs its JWKS as an https URL the authorizer can fetch (issuer=https://…)`);
      return entries;
    },
    defaultText: '–',
  },
  authClaim: string('claim holding the scopes: a space-separated string or an array; a dotted path (`realm_access.roles`) is allowed', 'IMS_AUTH_CLAIM', 'api', /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/, 'a claim name or dotted path', '`scope`'),
  authReadScope: string('scope of reads (GET, HEAD)', 'IMS_AUTH_READ_SCOPE', 'api', SCOPE, 'a scope name (no spaces)', '`ims:read`'),
  authWriteScope: string('scope of record writes and `create` jobs; implies read', 'IMS_AUTH_WRITE_SCOPE', 'api', SCOPE, 'a scope name (no spaces)', '`ims:write`'),
  authAdminScope: string('scope of deletes, undeletes and `customize` jobs (a root shell); implies write', 'IMS_AUTH_ADMIN_SCOPE', 'api', SCOPE, 'a scope name (no spaces)', '`ims:admin`'),

  // Recipe uploads
  recipeUploadTrigger: { doc: 'archives uploaded under `recipes/` of the ims bucket register recipes and may start builds ([Recipe uploads](#recipe-uploads))', ...bool, fallback: false, defaultText: '`false`' },
  recipeUploadPrincipals: { doc: 'the IAM principals allowed to put objects under `recipes/`; required with `recipeUploadTrigger`', accepts: 'IAM user or role ARNs, comma-separated', parse: list(IAM_PRINCIPAL_ARN), defaultText: '–' },

  // Monitoring
  alarmTopicArn: { doc: 'SNS topic the alarms notify', accepts: 'an SNS topic ARN', parse: str(SNS_TOPIC_ARN), defaultText: 'a topic of the stack (KMS-encrypted)' },
  remoteBuildNodesConcurrency: {
    doc: 'reserved concurrency of the remote-build-nodes API function (each request probes every node): the account must keep its minimum unreserved beside it ([Prerequisites](#prerequisites))',
    ...int(1, 100),
    defaultText: 'none reserved',
  },

  // Jobs
  jobWorker: { doc: 'the worker new jobs run on', ...oneOf(['kubernetes', 'remote-node', 'none']), fallback: 'kubernetes', env: { name: 'IMS_JOB_WORKER', to: 'data' }, defaultText: '`kubernetes`' },
  s3UrlExpiration: { doc: 'lifetime (s) of the pre-signed URLs handed to jobs', ...int(900, 604_800), env: { name: 'S3_URL_EXPIRATION', to: 'jobs' }, defaultText: '432000' },
  maxImageManifestSizeBytes: { doc: 'manifests at or above this size are refused', ...int(1024, 104_857_600), env: { name: 'MAX_IMAGE_MANIFEST_SIZE_BYTES', to: 'data' }, defaultText: '1048576' },
  stageTimeoutPrepare: stage('prepare'),
  stageTimeoutBuild: stage('build'),
  stageTimeoutSsh: stage('ssh'),
  stageTimeoutPackage: stage('package'),
  defaultImageSize: { doc: 'default `build_env_size` (GiB)', ...int(1, 10_000), env: { name: 'DEFAULT_IMS_IMAGE_SIZE', to: 'jobs' }, defaultText: '60' },
  defaultJobMemSize: { doc: 'default `job_mem_size` (GiB)', ...int(1, 4096), env: { name: 'DEFAULT_IMS_JOB_MEM_SIZE', to: 'jobs' }, defaultText: '8' },
  jobNamespace: string('Kubernetes namespace of job objects', 'DEFAULT_IMS_JOB_NAMESPACE', 'jobs', DNS_LABEL, 'a Kubernetes namespace name', '`ims`'),
  jobCustomerAccessSubnetName: string('subnet part of the SSH host names in `connection_info`', 'JOB_CUSTOMER_ACCESS_SUBNET_NAME', 'jobs', DNS_LABEL, 'a DNS label', '`cmn`'),
  jobCustomerAccessNetworkDomain: string('domain of the SSH host names in `connection_info`', 'JOB_CUSTOMER_ACCESS_NETWORK_DOMAIN', 'jobs', DNS_NAME, 'a DNS name', '`shasta.local`'),
  jobCustomerAccessNetworkAccessPool: string('MetalLB pool of job Services', 'JOB_CUSTOMER_ACCESS_NETWORK_ACCESS_POOL', 'jobs', DNS_NAME, 'a pool name', '`customer-management`'),
  jobEnableDkms: { doc: 'customize jobs default to DKMS', ...bool, env: { name: 'JOB_ENABLE_DKMS', to: 'jobs', format: String }, defaultText: '`true`' },
  jobKataRuntime: string('runtime class of DKMS job pods', 'JOB_KATA_RUNTIME', 'jobs', DNS_NAME, 'a runtime class name', '`kata-qemu`'),
  jobAarch64Runtime: string('runtime class of aarch64 job pods', 'JOB_AARCH64_RUNTIME', 'jobs', DNS_NAME, 'a runtime class name', '`kata-qemu`'),
  jobS3Credentials: { doc: '`write`: the worker keeps `ims-s3-credentials` in the job namespace; `cluster`: the cluster provides it', ...oneOf(['write', 'cluster']), env: { name: 'IMS_JOB_S3_CREDENTIALS', to: 'jobs' }, defaultText: '`write`' },
  jobS3Endpoint: string('S3 endpoint written for the pods', 'IMS_JOB_S3_ENDPOINT', 'jobs', /^https?:\/\/[^\s/]+\/?$/, 'an http(s) URL', '`https://s3.<region>.amazonaws.com`'),
  jobIstio: { doc: 'create the Istio DestinationRule of each job', ...bool, env: { name: 'IMS_JOB_ISTIO', to: 'jobs', format: String }, defaultText: '`true`' },
  jobAllowUnsigned: { doc: 'a create job whose RPM signing keys cannot be read runs without them instead of failing', ...bool, env: { name: 'IMS_JOB_ALLOW_UNSIGNED', to: 'jobs', format: String }, defaultText: '`false`' },
  jobUtilsImage: string('ims-utils image of job pods', 'IMS_JOB_UTILS_IMAGE', 'jobs', IMAGE, 'an image reference', "the original's"),
  jobKiwiNgBuilderImage: string('kiwi-ng builder image of create jobs', 'IMS_JOB_KIWI_NG_BUILDER_IMAGE', 'jobs', IMAGE, 'an image reference', "the original's"),
  jobSshdImage: string('sshd image of customize jobs and debug shells', 'IMS_JOB_SSHD_IMAGE', 'jobs', IMAGE, 'an image reference', "the original's"),
  podApiHostname: { doc: 'host (`host` or `host:port`) job pods reach IMS at ([The deployed job path](#the-deployed-job-path))', accepts: 'host or host:port', parse: str(/^[A-Za-z0-9.-]+(:\d{1,5})?$/), env: { name: 'API_GATEWAY_HOSTNAME', to: 'pods' }, defaultText: "the HTTP API's host" },
  podApiScheme: { doc: "scheme of the pods' IMS URL", ...oneOf(['https', 'http']), env: { name: 'IMS_JOB_API_SCHEME', to: 'pods' }, defaultText: '`https`' },
  squashfsOptions: string('mksquashfs options of the rootfs built on a remote node', 'IMS_SQUASHFS_OPTIONS', 'nodes', /^[-\w .=]+$/, 'mksquashfs options', '`-comp zstd -Xcompression-level 3 -b 1M`'),

  // Remote build nodes
  remoteNodeSshUser: string('user the nodes are reached as', 'REMOTE_NODE_SSH_USER', 'nodes', /^[a-z_][a-z0-9_-]{0,31}$/, 'a user name', '`root`'),
  remoteNodeSshPort: { doc: 'SSH port of the nodes', ...int(1, 65_535), env: { name: 'REMOTE_NODE_SSH_PORT', to: 'nodes' }, defaultText: '22' },
  remoteNodeHostMap: {
    doc: '`xname=host[:port],…`; an unmapped node is reached at its xname',
    accepts: 'xname=host[:port] entries, comma-separated',
    parse: (raw: unknown) => {
      const value = text(raw);
      try {
        parseHostMap(value);
      } catch {
        throw new InvalidValue();
      }
      return value;
    },
    env: { name: 'REMOTE_NODE_HOST_MAP', to: 'nodes' },
    defaultText: '–',
  },
  remoteNodeKnownHosts: {
    doc: `known_hosts text the nodes' host keys must match (at most ${MAX_KNOWN_HOSTS_TEXT_BYTES} bytes: more goes in a secret or parameter)`,
    accepts: `OpenSSH known_hosts lines (one text, or a JSON array of lines in cdk.json), at most ${MAX_KNOWN_HOSTS_TEXT_BYTES} bytes`,
    parse: (raw: unknown) => {
      // The text arrives whole, line breaks included, or is refused: never cut at a line.
      const value = text(Array.isArray(raw) && raw.every((line) => typeof line === 'string') ? raw.join('\n') : raw);
      if (Buffer.byteLength(value) > MAX_KNOWN_HOSTS_TEXT_BYTES) {
        throw new InvalidValue(
          `${Buffer.byteLength(value)} bytes is more than a function's environment holds (${MAX_KNOWN_HOSTS_TEXT_BYTES}); put the known_hosts text in a secret (remoteNodeKnownHostsSecretArn) or an SSM parameter (remoteNodeKnownHostsParameter)`,
        );
      }
      knownHostsFromSetting(value);
      return value;
    },
    env: { name: 'REMOTE_NODE_KNOWN_HOSTS', to: 'nodes' },
    defaultText: '–',
  },
  remoteNodeKnownHostsSecretArn: { doc: 'Secrets Manager secret holding the known_hosts text', accepts: 'a complete secret ARN (…:secret:name-XXXXXX)', parse: str(SECRET_ARN), env: { name: 'REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN', to: 'nodes' }, defaultText: '–' },
  remoteNodeKnownHostsParameter: { doc: 'SSM parameter (String or SecureString) holding the known_hosts text', accepts: 'a parameter name (/path/name)', parse: str(/^\/?[A-Za-z0-9_.\-/]{1,1011}$/), env: { name: 'REMOTE_NODE_KNOWN_HOSTS_PARAMETER', to: 'nodes' }, defaultText: '–' },
  remoteNodeAcceptUnknownHosts: {
    doc: 'accept any host key (no known hosts): an explicit opt-out, for a trial only',
    ...bool,
    env: { name: 'REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS', to: 'nodes', format: (v: boolean) => (v ? 'true' : undefined) },
    defaultText: '`false`: a node without a known host key is refused',
  },
  remoteNodeProbeTimeoutMs: { doc: 'bound of one node probe (ms)', ...int(100, 60_000), env: { name: 'REMOTE_NODE_PROBE_TIMEOUT_MS', to: 'nodes' }, defaultText: '3000' },
  remoteNodeProbeCacheMs: { doc: 'reuse of one node probe (ms)', ...int(0, 600_000), env: { name: 'REMOTE_NODE_PROBE_CACHE_MS', to: 'nodes' }, defaultText: '10000' },
  remoteNodeHeartbeatTimeoutSeconds: { doc: 'how long a node may be unreachable before its job fails (s)', ...int(10, 3600), env: { name: 'REMOTE_NODE_HEARTBEAT_TIMEOUT_SECONDS', to: 'nodes' }, defaultText: '60' },
  remoteNodePodman: string('the podman command on the nodes', 'REMOTE_NODE_PODMAN', 'nodes', /^[-\w ./=]+$/, 'a command line', '`podman`'),
  remoteNodeBuilderImage: string('image with kiwi-ng and mksquashfs on the nodes', 'REMOTE_NODE_BUILDER_IMAGE', 'nodes', IMAGE, 'an image reference', '`localhost/ims-kiwi-ng-builder:latest`'),
  remoteNodeSshdImage: string('image with sshd on the nodes', 'REMOTE_NODE_SSHD_IMAGE', 'nodes', IMAGE, 'an image reference', '`localhost/ims-sshd:latest`'),
  remoteNodeBuildNetwork: string('network of the builder container', 'REMOTE_NODE_BUILD_NETWORK', 'nodes', /^[\w.-]+$/, 'a podman network name (`host`, `none`, …)', '`host`'),
  remoteNodeShellPortBase: { doc: "first port of the users' shells on a node", ...int(1024, 65_000), env: { name: 'REMOTE_NODE_SHELL_PORT_BASE', to: 'nodes' }, defaultText: '2022' },
  remoteNodeShellListen: string("address of the users' shells on a node", 'REMOTE_NODE_SHELL_LISTEN', 'nodes', /^[0-9a-fA-F.:]+$/, 'an IP address', '`0.0.0.0`'),
  remoteNodeWorkDir: string('job directories on the nodes', 'REMOTE_NODE_WORK_DIR', 'nodes', /^\/[\w./-]*$/, 'an absolute path', '`/tmp`'),
} satisfies Record<string, Setting<any> & { defaultText: string }>;

export type SettingKey = keyof typeof SETTINGS;
type ValueOf<K extends SettingKey> = ReturnType<(typeof SETTINGS)[K]['parse']>;
type HasFallback<K extends SettingKey> = (typeof SETTINGS)[K] extends { fallback: unknown } ? K : never;

/** The parsed settings: a key with a fallback always has a value. */
export type DeploySettings = { [K in SettingKey as HasFallback<K>]: ValueOf<K> } & { [K in SettingKey as Exclude<K, HasFallback<K>>]?: ValueOf<K> } & {
  /** The environment variables each audience gets. */
  environment: Record<Audience, Record<string, string>>;
};

export class SettingError extends Error {}

/** Keys that were settings once, and why they are not: given, they fail the synth instead of being ignored. */
export const REMOVED_SETTINGS: Record<string, string> = {
  stageTimeoutRegister:
    'the register stage waits on nothing: it is one invocation, bounded by its function\'s timeout and the state machine task\'s (300 s), and retried once',
};

function fail(key: string, raw: unknown, accepts: string, why?: string): never {
  const shown = typeof raw === 'string' ? `'${raw.length > 60 ? `${raw.slice(0, 60)}…` : raw}'` : JSON.stringify(raw);
  throw new SettingError(`context ${key}: ${shown} is not valid${why ? ` (${why})` : ''}; accepted: ${accepts}`);
}

/**
 * Reads and checks every setting. `context` gives a key's raw value (App.node.tryGetContext);
 * an empty string counts as absent. Unknown keys are left alone (cdk.json holds CDK's feature flags).
 */
export function readDeploySettings(context: (key: string) => unknown): DeploySettings {
  const values: Record<string, unknown> = {};
  const environment: Record<Audience, Record<string, string>> = { all: {}, api: {}, data: {}, jobs: {}, pods: {}, nodes: {} };
  for (const [key, why] of Object.entries(REMOVED_SETTINGS)) {
    const raw = context(key);
    if (raw !== undefined && raw !== null && raw !== '') throw new SettingError(`context ${key} is no longer a setting: ${why}`);
  }
  for (const [key, spec] of Object.entries(SETTINGS) as [SettingKey, Setting<unknown>][]) {
    const raw = context(key);
    let value: unknown;
    if (raw === undefined || raw === null || raw === '') value = key === 'imsVersion' ? packageVersion() : spec.fallback;
    else {
      try {
        value = spec.parse(raw);
      } catch (e) {
        fail(key, raw, spec.accepts, e instanceof InvalidValue ? e.message || undefined : (e as Error).message);
      }
    }
    values[key] = value;
    if (value !== undefined && spec.env) {
      const formatted = spec.env.format ? spec.env.format(value) : String(value);
      if (formatted !== undefined) environment[spec.env.to][spec.env.name] = formatted;
    }
  }
  checkCombinations(values as Record<SettingKey, unknown>);
  return { ...values, environment } as DeploySettings;
}

/** Settings that only make sense together. */
function checkCombinations(v: Record<SettingKey, unknown>): void {
  const need = (key: SettingKey, because: string) => {
    if (v[key] === undefined) throw new SettingError(`context ${key} is required ${because}`);
  };
  if (v.vpcId !== undefined) {
    need('subnetIds', 'with vpcId');
    need('securityGroupIds', 'with vpcId');
    if (v.createVpcEndpoints !== false) need('routeTableIds', 'for the S3 and DynamoDB gateway endpoints (or set createVpcEndpoints=false when the VPC has them)');
    const subnets = v.subnetIds as string[];
    const zones = v.subnetAvailabilityZones as string[] | undefined;
    if (zones && zones.length !== subnets.length) {
      throw new SettingError(`context subnetAvailabilityZones: ${zones.length} zones for ${subnets.length} subnets; give the zone of each of subnetIds, in the same order`);
    }
    if (!zones && v.createVpcEndpoints !== false && subnets.length > 1) {
      throw new SettingError(
        'context subnetAvailabilityZones is required with more than one of subnetIds when endpoints are created: an interface endpoint takes one subnet per Availability Zone (AWS refuses two in one zone), so give the zone of each subnet, in the same order (aws ec2 describe-subnets --subnet-ids ... --query Subnets[].AvailabilityZone)',
      );
    }
  } else {
    for (const key of ['subnetIds', 'subnetAvailabilityZones', 'securityGroupIds', 'routeTableIds', 'createVpcEndpoints'] as const) {
      if (v[key] !== undefined) throw new SettingError(`context ${key} needs vpcId`);
    }
  }
  if (v.recipeUploadTrigger === true) need('recipeUploadPrincipals', 'with recipeUploadTrigger=true (the principals allowed to upload recipes)');
  else if (v.recipeUploadPrincipals !== undefined) throw new SettingError('context recipeUploadPrincipals needs recipeUploadTrigger=true');
  const sources = (['remoteNodeKnownHosts', 'remoteNodeKnownHostsSecretArn', 'remoteNodeKnownHostsParameter'] as const).filter((k) => v[k] !== undefined);
  if (sources.length > 1) throw new SettingError(`context ${sources.join(' and ')}: set one source of known hosts, not ${sources.length}`);
  if (sources.length && v.remoteNodeAcceptUnknownHosts === true) {
    throw new SettingError(`context remoteNodeAcceptUnknownHosts=true contradicts ${sources[0]}: host keys are either checked or not`);
  }
}

/** The context table of docs/deploy.md, as the table above defines it (a test keeps the doc equal to it). */
export function renderSettingsTable(): string {
  const rows = Object.entries(SETTINGS).map(([key, s]) => {
    const env = 'env' in s ? `\`${s.env.name}\`` : '–';
    return `| \`${key}\` | ${env} | ${s.accepts} | ${s.defaultText} | ${s.doc} |`;
  });
  return ['| context key | variable | accepts | default | what it sets |', '|---|---|---|---|---|', ...rows].join('\n');
}
