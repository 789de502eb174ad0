/**
 * The S3 artifact store against an S3 that refuses the service (403, as a role's policy does):
 * every call that is refused throws an error that says access was denied, naming the object;
 * only a missing object (404) reads as "not there".
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { S3ArtifactStore } from '#shared/artifacts/s3-artifact-store.js';
import { ArtifactValidationError, DependencyAccessDeniedError } from '#shared/domain/errors.js';
import { requireArtifact } from '#shared/domain/links.js';
import { startS3Proxy, type S3Proxy } from '../helpers/s3-proxy.js';

let proxy: S3Proxy;
let store: S3ArtifactStore;
beforeAll(async () => {
  // Nothing is forwarded: every request is answered here.
  proxy = await startS3Proxy('http://127.0.0.1:9', (r) =>
    r.key.startsWith('denied/') || r.copy ? { status: 403, code: 'AccessDenied' } : { status: 404, code: 'NoSuchKey' },
  );
  store = new S3ArtifactStore(proxy.client());
});
afterAll(async () => {
  await proxy.stop();
});

const denied = { bucket: 'boot-images', key: 'denied/jobs/1/logs/build.log' };
const missing = { bucket: 'boot-images', key: 'jobs/1/logs/build.log' };

describe('a 403 is an error, never "not found"', () => {
  test.each([
    ['head', () => store.head(denied)],
    ['readText', () => store.readText(denied, 1024)],
    ['readTail', () => store.readTail(denied, 1024)],
    ['remove', () => store.remove(denied)],
    ['putText', () => store.putText(denied, 'x', 'text/plain')],
    ['putJson', () => store.putJson(denied, {})],
  ])('%s', async (_name, call) => {
    const error = await (call as () => Promise<unknown>)().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DependencyAccessDeniedError);
    expect((error as Error).message).toBe(
      'Access to s3://boot-images/denied/jobs/1/logs/build.log was denied to the service: its permissions do not allow this operation. Retrying will not help until an operator grants it.',
    );
  });

  test('a copy the role may not make names its target', async () => {
    const from = { bucket: 'boot-images', key: 'denied/a' };
    await expect(store.copy(from, { bucket: 'boot-images', key: 'b' })).rejects.toBeInstanceOf(DependencyAccessDeniedError);
  });

  test('a missing object (404) is still "not there"', async () => {
    expect(await store.head(missing)).toBeUndefined();
    expect(await store.readText(missing, 1024)).toBeUndefined();
    await expect(store.remove(missing)).resolves.toBeUndefined();
  });

  test('a link the service may not read is bad input: a 422 that says access is denied, not a 503', async () => {
    const link = { path: 's3://boot-images/denied/manifest.json', etag: '', type: 's3' };
    const error = await requireArtifact(store, link).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ArtifactValidationError);
    expect((error as Error).message).toMatch(/^The s3 artifact \{'etag': '', 'type': 's3', 'path': 's3:\/\/boot-images\/denied\/manifest.json'\} cannot be validated: the service is denied access to it\./);
  });
});
