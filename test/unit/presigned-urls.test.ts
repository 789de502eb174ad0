/**
 * Pre-signed URLs live as long as S3_URL_EXPIRATION says: they are signed with the long-lived
 * signing key (an IAM user's access key, from the secret S3_SIGNING_SECRET_ARN names), never with
 * the temporary credentials of the function's role, and SigV4's 7-day cap is applied to the setting.
 */
import { describe, expect, test } from '@jest/globals';
import { S3ArtifactStore } from '#shared/artifacts/s3-artifact-store.js';
import { makeSigningS3Client, parseSigningKey, signingKeySource, SIGNING_KEY_MAX_AGE_MS } from '#shared/artifacts/signing-key.js';
import { makeS3Client } from '#shared/clients.js';
import { MAX_PRESIGNED_URL_SECONDS, readSettings } from '#shared/config.js';
import type { SecretReadOptions } from '#shared/secrets.js';

const SIGNING = { accessKeyId: 'AKIASIGNINGUSER00001', secretAccessKey: 'signing-secret' };
/** What a Lambda role gives a function: temporary credentials with a session token. */
const ROLE = { accessKeyId: 'ASIAROLESESSION00001', secretAccessKey: 'role-secret', sessionToken: 'role-session-token' };

function deployedSettings(extra: Record<string, string> = {}) {
  return readSettings({ AWS_REGION: 'eu-west-1', S3_SIGNING_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:signing', ...extra });
}

function fakeSecrets(values: string[]) {
  const reads: Array<{ id: string; options?: SecretReadOptions }> = [];
  const load = async (id: string, options?: SecretReadOptions) => {
    reads.push({ id, options });
    return values[Math.min(reads.length - 1, values.length - 1)]!;
  };
  return { load, reads };
}

describe('S3_URL_EXPIRATION', () => {
  test('defaults to 5 days, as the original', () => {
    expect(readSettings({}).urlExpirationSeconds).toBe(432000);
    expect(readSettings({ S3_URL_EXPIRATION: '3600' }).urlExpirationSeconds).toBe(3600);
  });

  test('is capped at 7 days, the longest a SigV4 pre-signed URL lives', () => {
    expect(MAX_PRESIGNED_URL_SECONDS).toBe(604800);
    expect(readSettings({ S3_URL_EXPIRATION: '604800' }).urlExpirationSeconds).toBe(604800);
    expect(readSettings({ S3_URL_EXPIRATION: '2592000' }).urlExpirationSeconds).toBe(604800);
  });
});

describe('the signing key', () => {
  test('deployed: read from the secret, re-read after SIGNING_KEY_MAX_AGE_MS', async () => {
    const { load, reads } = fakeSecrets([JSON.stringify(SIGNING)]);
    const source = signingKeySource(deployedSettings(), load)!;
    expect(await source()).toEqual(SIGNING);
    expect(reads).toEqual([{ id: 'arn:aws:secretsmanager:eu-west-1:1:secret:signing', options: { maxAgeMs: SIGNING_KEY_MAX_AGE_MS } }]);
  });

  test('the secret wins over static keys; without either there is none', () => {
    const { load } = fakeSecrets([JSON.stringify(SIGNING)]);
    expect(signingKeySource(readSettings({ S3_ACCESS_KEY: 'A', S3_SECRET_KEY: 'B' }), load)).toBeDefined();
    expect(signingKeySource(readSettings({}), load)).toBeUndefined();
  });

  test('embedded or another S3: the static S3_ACCESS_KEY and S3_SECRET_KEY', async () => {
    const source = signingKeySource(readSettings({ S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER' }))!;
    expect(await source()).toEqual({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  });

  test('a secret that is not the expected JSON is refused with what it must hold', () => {
    expect(() => parseSigningKey('AKIA...', 'arn:x')).toThrow('secret arn:x must hold JSON {"accessKeyId": "...", "secretAccessKey": "..."}');
    expect(() => parseSigningKey('{"accessKeyId": "A"}', 'arn:x')).toThrow('must hold JSON');
    expect(parseSigningKey(JSON.stringify(SIGNING), 'arn:x')).toEqual(SIGNING);
  });
});

describe('presignGet', () => {
  test('signs with the signing key, not the role: its access key id, the full lifetime, no session token', async () => {
    const settings = deployedSettings();
    const { load } = fakeSecrets([JSON.stringify(SIGNING)]);
    const roleClient = makeS3Client(settings, ROLE);
    const store = new S3ArtifactStore(roleClient, { presigner: makeSigningS3Client(settings, signingKeySource(settings, load)!) });
    const url = new URL(await store.presignGet({ bucket: 'boot-images', key: 'image-1/rootfs' }, settings.urlExpirationSeconds));
    const q = url.searchParams;
    expect(q.get('X-Amz-Credential')).toMatch(new RegExp(`^${SIGNING.accessKeyId}/\\d{8}/eu-west-1/s3/aws4_request$`));
    expect(q.get('X-Amz-Expires')).toBe('432000');
    expect(q.has('X-Amz-Security-Token')).toBe(false);
    expect(q.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });

  test('part URLs of a node\'s upload are signed by the signing key too, for their whole lifetime', async () => {
    const settings = deployedSettings();
    const { load } = fakeSecrets([JSON.stringify(SIGNING)]);
    const store = new S3ArtifactStore(makeS3Client(settings, ROLE), { presigner: makeSigningS3Client(settings, signingKeySource(settings, load)!) });
    const q = new URL(await store.presignUploadPart({ bucket: 'boot-images', key: 'image-1/rootfs' }, 'upload-1', 3, settings.urlExpirationSeconds)).searchParams;
    expect(q.get('X-Amz-Credential')).toMatch(new RegExp(`^${SIGNING.accessKeyId}/`));
    expect(q.get('X-Amz-Expires')).toBe('432000');
    expect(q.has('X-Amz-Security-Token')).toBe(false);
    expect({ partNumber: q.get('partNumber'), uploadId: q.get('uploadId') }).toEqual({ partNumber: '3', uploadId: 'upload-1' });
  });

  test('without a presigner the store signs with its own client (here the role, whose token shows)', async () => {
    const store = new S3ArtifactStore(makeS3Client(deployedSettings(), ROLE));
    const q = new URL(await store.presignGet({ bucket: 'b', key: 'k' }, 60)).searchParams;
    expect(q.get('X-Amz-Credential')).toMatch(/^ASIAROLESESSION00001\//);
    expect(q.get('X-Amz-Security-Token')).toBe('role-session-token');
  });

  test('the source asks the secret loader at each use (the maxAgeMs of the loader decides when the secret is read again)', async () => {
    const settings = deployedSettings();
    const rotated = { accessKeyId: 'AKIASIGNINGUSER00002', secretAccessKey: 'rotated' };
    const { load, reads } = fakeSecrets([JSON.stringify(SIGNING), JSON.stringify(rotated)]);
    const source = signingKeySource(settings, load)!;
    expect(await source()).toEqual(SIGNING);
    expect(await source()).toEqual(rotated);
    expect(reads).toHaveLength(2);
  });
});
