import { DEFAULT_STAGE_TIMEOUTS, type StageTimeouts } from './workflow/stage-timeouts.js';

/**
 * Settings read from the environment, once per process. The names follow the original where
 * it had one (S3_*, MAX_IMAGE_MANIFEST_SIZE_BYTES, ...); README lists every variable.
 */
export interface Settings {
  tableName: string;
  dynamoEndpoint?: string;
  region: string;
  s3Endpoint?: string;
  s3AccessKey?: string;
  s3SecretKey?: string;
  s3SslValidate: boolean;
  /**
   * Secret (ARN) holding the long-lived S3 key that signs pre-signed URLs and that job pods get
   * (S3_SIGNING_SECRET_ARN; shared/artifacts/signing-key.ts).
   */
  s3SigningSecretArn?: string;
  imsBucket: string;
  bootImagesBucket: string;
  /** Archives uploaded under this prefix of the IMS bucket register recipes (functions/events/recipe-upload.ts). */
  recipeUploadPrefix: string;
  /**
   * The `s3://bucket/prefix` locations recipe links may name (IMS_RECIPE_LINK_PREFIXES, comma
   * separated): deployed, where the signing key may read, so that a job's download URL works;
   * unset, any location (embedded).
   */
  recipeLinkPrefixes?: string[];
  maxManifestBytes: number;
  /**
   * Largest whole list a buffered (Lambda) response carries, in bytes of the Lambda response
   * (IMS_LIST_INLINE_MAX_BYTES); a larger one is written to S3 and answered with a redirect to it.
   */
  listInlineMaxBytes: number;
  /** Lifetime of pre-signed URLs (S3_URL_EXPIRATION), at most MAX_PRESIGNED_URL_SECONDS. */
  urlExpirationSeconds: number;
  /** IMS_JOB_DELETE_INLINE_MS: how long a bulk job deletion works before it answers (domain/job-delete.ts). */
  jobDeleteInlineMs: number;
  version: string;
  jobWorker: string;
  defaultBuildEnvSize: number;
  defaultJobMemSize: number;
  jobNamespace: string;
  customerAccessSubnet: string;
  customerAccessDomain: string;
  jobEnableDkms: boolean;
  stateMachineArn?: string;
  /** A Step Functions-compatible endpoint (the embedded one, for handlers run in their own process). */
  sfnEndpoint?: string;
  /** Credentials for DYNAMODB_ENDPOINT and SFN_ENDPOINT (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else `local`): local stand-ins accept any. */
  endpointCredentials: { accessKeyId: string; secretAccessKey: string };
  stageTimeouts: StageTimeouts;
  /** Authorization by JWT scopes per route class (shared/http/middleware/authorize.ts). */
  auth: AuthSettings;
  /** Secret values (and SSM parameters) are read again once older than this (SECRETS_MAX_AGE_SECONDS). */
  secretsMaxAgeSeconds: number;
  /** The key of job report tokens (shared/job-report-key.ts): a secret (IMS_JOB_REPORT_SECRET_ARN) deployed. */
  jobReportSecretArn?: string;
  /** The same key in a file (IMS_JOB_REPORT_KEY_FILE); `npm start` keeps one in its data directory. */
  jobReportKeyFile?: string;
}

/**
 * IMS_AUTH_*: which scope each class of route needs, and which tokens are valid at all. Deployed,
 * the API's Lambda authorizer checks the token (shared/http/jwt.ts) and hands its claims in the
 * event; under `npm start` the embedded server runs the same check itself.
 */
export interface AuthSettings {
  /** IMS_AUTH_SCOPES=on: every route but the probes needs the scope of its class. */
  scopes: boolean;
  /** The claim holding the scopes: a space-separated string or an array; a dotted path reaches into an object. */
  claim: string;
  readScope: string;
  writeScope: string;
  adminScope: string;
  /** IMS_AUTH_ISSUERS: the issuers whose tokens are valid, each with where its keys are. */
  issuers: TrustedIssuer[];
  /** IMS_AUTH_AUDIENCE: a token must be meant for one of these (none: any audience). */
  audiences: string[];
}

/** An issuer whose tokens are valid: its `iss`, and its JWKS (a URL or a file; absent: its OpenID configuration's). */
export interface TrustedIssuer {
  issuer: string;
  jwks?: string;
}

/**
 * IMS_AUTH_ISSUERS: `issuer[=jwks]` entries, comma-separated (an issuer URL has no query, so
 * the first `=` ends it). Throws a message naming the entry that is not one.
 */
export function parseTrustedIssuers(text: string, name = 'IMS_AUTH_ISSUERS'): TrustedIssuer[] {
  const issuers: TrustedIssuer[] = [];
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    const at = entry.indexOf('=');
    const issuer = at < 0 ? entry : entry.slice(0, at).trim();
    const jwks = at < 0 ? undefined : entry.slice(at + 1).trim();
    if (!/^https?:\/\/[^\s=]+$/.test(issuer) || jwks === '' || (jwks && /\s/.test(jwks))) {
      throw new Error(`${name}: '${entry}' is not an issuer URL with an optional =JWKS (URL or file)`);
    }
    if (issuers.some((known) => known.issuer === issuer)) throw new Error(`${name}: the issuer ${issuer} is listed twice`);
    issuers.push(jwks ? { issuer, jwks } : { issuer });
  }
  return issuers;
}

/** SigV4 pre-signed URLs live 7 days at most; S3 refuses a longer X-Amz-Expires. */
export const MAX_PRESIGNED_URL_SECONDS = 7 * 24 * 3600;

function intFrom(value: string | undefined, fallback: number): number {
  const n = value === undefined ? NaN : Number.parseInt(value, 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** A comma-separated list; undefined when it names nothing. */
function listFrom(value: string | undefined): string[] | undefined {
  const items = (value ?? '').split(',').map((item) => item.trim()).filter((item) => item.length > 0);
  return items.length > 0 ? items : undefined;
}

function boolFrom(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return ['1', 'true', 'yes', 'on', 't', 'y'].includes(value.toLowerCase());
}

/** `on`/`off` and their usual spellings; anything else stops the service with a clear message. */
function switchFrom(name: string, value: string | undefined): boolean {
  const text = (value ?? '').trim().toLowerCase();
  if (['', 'off', 'false', '0', 'no'].includes(text)) return false;
  if (['on', 'true', '1', 'yes'].includes(text)) return true;
  throw new Error(`${name}='${value}' is not valid: use 'on' or 'off'`);
}

function scopeFrom(name: string, value: string | undefined, fallback: string): string {
  const scope = value?.trim() || fallback;
  if (/\s/.test(scope)) throw new Error(`${name}='${value}' is not valid: a scope has no spaces`);
  return scope;
}

export function readAuthSettings(env: NodeJS.ProcessEnv = process.env): AuthSettings {
  const claim = env.IMS_AUTH_CLAIM?.trim() || 'scope';
  if (claim.split('.').some((part) => part === '')) throw new Error(`IMS_AUTH_CLAIM='${env.IMS_AUTH_CLAIM}' is not valid: a claim name or a dotted path`);
  return {
    scopes: switchFrom('IMS_AUTH_SCOPES', env.IMS_AUTH_SCOPES),
    claim,
    readScope: scopeFrom('IMS_AUTH_READ_SCOPE', env.IMS_AUTH_READ_SCOPE, 'ims:read'),
    writeScope: scopeFrom('IMS_AUTH_WRITE_SCOPE', env.IMS_AUTH_WRITE_SCOPE, 'ims:write'),
    adminScope: scopeFrom('IMS_AUTH_ADMIN_SCOPE', env.IMS_AUTH_ADMIN_SCOPE, 'ims:admin'),
    issuers: parseTrustedIssuers(env.IMS_AUTH_ISSUERS ?? ''),
    audiences: (env.IMS_AUTH_AUDIENCE ?? '').split(',').map((a) => a.trim()).filter(Boolean),
  };
}

/** Powertools settings the service reads itself (the Logger, Tracer and Metrics read theirs). */
export interface ObservabilitySettings {
  /** POWERTOOLS_SERVICE_NAME: the logs' `service` and the metrics' default dimension. */
  serviceName: string;
  /** POWERTOOLS_METRICS_NAMESPACE. */
  metricsNamespace: string;
  /**
   * Metrics are written (as CloudWatch EMF on stdout) in a Lambda function only, and not with
   * POWERTOOLS_METRICS_DISABLED=true: elsewhere nothing collects them.
   */
  metrics: boolean;
}

export function readObservabilitySettings(env: NodeJS.ProcessEnv = process.env): ObservabilitySettings {
  return {
    serviceName: env.POWERTOOLS_SERVICE_NAME || 'ims',
    metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE || 'IMS',
    metrics: Boolean(env.AWS_LAMBDA_FUNCTION_NAME) && !boolFrom(env.POWERTOOLS_METRICS_DISABLED, false),
  };
}

/** Seconds a secret value is reused before it is read again (SECRETS_MAX_AGE_SECONDS). */
export const DEFAULT_SECRETS_MAX_AGE_SECONDS = 300;

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return {
    tableName: env.TABLE_NAME || 'ims',
    dynamoEndpoint: env.DYNAMODB_ENDPOINT || undefined,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    s3Endpoint: env.S3_ENDPOINT || undefined,
    s3AccessKey: env.S3_ACCESS_KEY || undefined,
    s3SecretKey: env.S3_SECRET_KEY || undefined,
    s3SslValidate: boolFrom(env.S3_SSL_VALIDATE, true),
    s3SigningSecretArn: env.S3_SIGNING_SECRET_ARN || undefined,
    imsBucket: env.S3_IMS_BUCKET || 'ims',
    bootImagesBucket: env.S3_BOOT_IMAGES_BUCKET || 'boot-images',
    recipeUploadPrefix: env.RECIPE_UPLOAD_PREFIX ?? 'recipes/',
    recipeLinkPrefixes: listFrom(env.IMS_RECIPE_LINK_PREFIXES),
    maxManifestBytes: intFrom(env.MAX_IMAGE_MANIFEST_SIZE_BYTES, 1024 * 1024),
    listInlineMaxBytes: intFrom(env.IMS_LIST_INLINE_MAX_BYTES, 6_000_000),
    urlExpirationSeconds: Math.min(intFrom(env.S3_URL_EXPIRATION, 432000), MAX_PRESIGNED_URL_SECONDS),
    jobDeleteInlineMs: intFrom(env.IMS_JOB_DELETE_INLINE_MS, 10_000),
    version: env.IMS_VERSION || 'Unknown',
    jobWorker: env.IMS_JOB_WORKER || (env.KUBECONFIG || env.KUBERNETES_SERVICE_HOST ? 'kubernetes' : 'none'),
    defaultBuildEnvSize: intFrom(env.DEFAULT_IMS_IMAGE_SIZE, 60),
    defaultJobMemSize: intFrom(env.DEFAULT_IMS_JOB_MEM_SIZE, 8),
    jobNamespace: env.DEFAULT_IMS_JOB_NAMESPACE || 'ims',
    customerAccessSubnet: env.JOB_CUSTOMER_ACCESS_SUBNET_NAME || 'cmn',
    customerAccessDomain: env.JOB_CUSTOMER_ACCESS_NETWORK_DOMAIN || 'shasta.local',
    jobEnableDkms: boolFrom(env.JOB_ENABLE_DKMS, true),
    stateMachineArn: env.STATE_MACHINE_ARN || undefined,
    sfnEndpoint: env.SFN_ENDPOINT || undefined,
    endpointCredentials: { accessKeyId: env.AWS_ACCESS_KEY_ID || 'local', secretAccessKey: env.AWS_SECRET_ACCESS_KEY || 'local' },
    stageTimeouts: {
      prepare: intFrom(env.IMS_STAGE_TIMEOUT_PREPARE, DEFAULT_STAGE_TIMEOUTS.prepare),
      build: intFrom(env.IMS_STAGE_TIMEOUT_BUILD, DEFAULT_STAGE_TIMEOUTS.build),
      ssh: intFrom(env.IMS_STAGE_TIMEOUT_SSH, DEFAULT_STAGE_TIMEOUTS.ssh),
      package: intFrom(env.IMS_STAGE_TIMEOUT_PACKAGE, DEFAULT_STAGE_TIMEOUTS.package),
    },
    auth: readAuthSettings(env),
    secretsMaxAgeSeconds: intFrom(env.SECRETS_MAX_AGE_SECONDS, DEFAULT_SECRETS_MAX_AGE_SECONDS),
    jobReportSecretArn: env.IMS_JOB_REPORT_SECRET_ARN || undefined,
    jobReportKeyFile: env.IMS_JOB_REPORT_KEY_FILE || undefined,
  };
}
