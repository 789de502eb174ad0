/**
 * The long-lived S3 key that signs the pre-signed URLs handed to jobs, and that job pods get in
 * the `ims-s3-credentials` Secret. A URL signed with temporary credentials (a Lambda role's) stops
 * working when they expire, within hours, whatever its X-Amz-Expires says; a URL signed with an
 * IAM user's access key works as long as it says (SigV4: at most 7 days).
 *
 * Deployed, the key is the stack's signing user's, JSON `{"accessKeyId", "secretAccessKey"}` in
 * the secret S3_SIGNING_SECRET_ARN names, read again every SIGNING_KEY_MAX_AGE_MS (or sooner, by
 * SECRETS_MAX_AGE_SECONDS) so a rotated key reaches running containers. Otherwise the static S3_ACCESS_KEY/S3_SECRET_KEY (the embedded
 * S3's, or any S3-compatible store's) are the key.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { makeS3Client } from '../clients.js';
import type { Settings } from '../config.js';
import { loadSecret, type SecretLoader } from '../secrets.js';

export interface S3KeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

export type S3KeySource = () => Promise<S3KeyPair>;

/** How long one read of the signing secret is used before it is read again. */
export const SIGNING_KEY_MAX_AGE_MS = 10 * 60 * 1000;

export function parseSigningKey(text: string, secretId: string): S3KeyPair {
  let value: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    value = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    value = undefined;
  }
  const { accessKeyId, secretAccessKey } = value ?? {};
  if (typeof accessKeyId === 'string' && accessKeyId && typeof secretAccessKey === 'string' && secretAccessKey) {
    return { accessKeyId, secretAccessKey };
  }
  throw new Error(`secret ${secretId} must hold JSON {"accessKeyId": "...", "secretAccessKey": "..."}`);
}

/**
 * Where the signing key comes from: the secret (deployed), else the static S3 keys; undefined
 * when neither is configured (the default credential chain then signs, and a URL lives only as
 * long as those credentials do).
 */
export function signingKeySource(settings: Settings, load: SecretLoader = loadSecret): S3KeySource | undefined {
  const secretId = settings.s3SigningSecretArn;
  if (secretId) return async () => parseSigningKey(await load(secretId, { maxAgeMs: SIGNING_KEY_MAX_AGE_MS }), secretId);
  if (settings.s3AccessKey && settings.s3SecretKey) {
    const pair = { accessKeyId: settings.s3AccessKey, secretAccessKey: settings.s3SecretKey };
    return async () => pair;
  }
  return undefined;
}

/**
 * An S3 client that signs with the key, for pre-signing. The stated expiration makes the SDK ask
 * the source again before it passes, so a rotated key is used from then on.
 */
export function makeSigningS3Client(settings: Settings, source: S3KeySource): S3Client {
  return makeS3Client(settings, async () => ({ ...(await source()), expiration: new Date(Date.now() + SIGNING_KEY_MAX_AGE_MS) }));
}
