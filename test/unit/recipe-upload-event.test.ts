/** How the recipe-upload handler reads S3 event records, and which ones count as uploads. */
import { describe, expect, test } from '@jest/globals';
import type { S3EventRecord } from 'aws-lambda';
import { uploadOf } from '#functions/events/recipe-upload.js';
import { isRecipeUpload, type RecipeUpload } from '#shared/domain/recipe-upload.js';
import { parseUploadRequest } from '#shared/domain/recipe-upload-request.js';

const record = (eventSource: string, key: string): S3EventRecord =>
  ({
    eventSource,
    eventName: 'ObjectCreated:Put',
    s3: { bucket: { name: 'ims' }, object: { key, eTag: 'e', versionId: '', sequencer: '01' } },
  }) as unknown as S3EventRecord;

describe('uploadOf', () => {
  test('decodes the URL-encoded keys of AWS events', () => {
    expect(uploadOf(record('aws:s3', 'recipes/my+recipe%2Bv2.tgz')).key).toBe('recipes/my recipe+v2.tgz');
  });

  test('keeps the keys of radosgw events, which come unencoded', () => {
    expect(uploadOf(record('ceph:s3', 'recipes/a b+c.tgz'))).toEqual({
      eventName: 'ObjectCreated:Put',
      bucket: 'ims',
      key: 'recipes/a b+c.tgz',
      etag: 'e',
      versionId: undefined,
      sequencer: '01',
    });
  });
});

describe('isRecipeUpload', () => {
  const rules = { bucket: 'ims', prefix: 'recipes/' };
  const upload = (change: Partial<RecipeUpload>): RecipeUpload => ({ eventName: 'ObjectCreated:Put', bucket: 'ims', key: 'recipes/x/r.tgz', ...change });

  test.each([
    ['a put of a .tgz under the prefix', {}, true],
    ['a .tar.gz', { key: 'recipes/x/r.tar.gz' }, true],
    ['a multipart upload', { eventName: 'ObjectCreated:CompleteMultipartUpload' }, true],
    ['an event name with the s3: prefix', { eventName: 's3:ObjectCreated:Post' }, true],
    ['a copy', { eventName: 'ObjectCreated:Copy' }, false],
    ['a delete', { eventName: 'ObjectRemoved:Delete' }, false],
    ['another bucket', { bucket: 'boot-images' }, false],
    ['a key outside the prefix', { key: 'deleted/recipes/x/r.tgz' }, false],
    ['another suffix', { key: 'recipes/x/r.tgz.json' }, false],
  ])('%s', (_what, change, expected) => {
    expect(isRecipeUpload(upload(change as Partial<RecipeUpload>), rules)).toBe(expected);
  });
});

describe('parseUploadRequest', () => {
  test('applies the defaults of POST /recipes and reads lenient booleans from metadata', () => {
    const parsed = parseUploadRequest({ 'ims-name': 'n', 'ims-recipe-type': 'packer', 'ims-linux-distribution': 'centos7', 'ims-require-dkms': 'no', md5sum: 'x' }, undefined);
    expect(parsed).toEqual({
      kind: 'valid',
      request: { recipe: { name: 'n', recipe_type: 'packer', linux_distribution: 'centos7', link: null, template_dictionary: [], require_dkms: false, arch: 'x86_64' } },
    });
  });

  test('a build defaults its image name to the recipe name; a link is refused', () => {
    const id = '6f1c1fd6-1d5c-4a2b-9a4e-bc8d8e0c3c11';
    const sidecar = JSON.stringify({ name: 'n', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', build: 'yes', public_key_id: id });
    expect(parseUploadRequest({}, sidecar)).toMatchObject({ kind: 'valid', request: { build: { public_key_id: id, image_root_archive_name: 'n', enable_debug: false } } });
    expect(parseUploadRequest({}, JSON.stringify({ name: 'n', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://a/b', type: 's3' } }))).toEqual({
      kind: 'invalid',
      errors: { link: ['The link is the uploaded object; leave it out.'] },
    });
  });

  test('a sidecar that is not a JSON object is reported; no description at all is not an error', () => {
    expect(parseUploadRequest({}, '[1, 2]')).toMatchObject({ kind: 'invalid', errors: { _sidecar: ['Not a JSON object.'] } });
    expect(parseUploadRequest({ md5sum: 'x' }, undefined)).toEqual({ kind: 'undescribed' });
  });
});
