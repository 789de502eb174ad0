/** ArtifactStore on S3 (@aws-sdk/client-s3). */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
  AbortMultipartUploadCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { DependencyAccessDeniedError, DependencyUnavailableError, UnavailableError } from '../domain/errors.js';
import { ObjectTooLargeError, type ArtifactStore, type ObjectInfo, type S3Location } from '../domain/ports.js';

/** S3's limit for a single CopyObject; larger objects are copied part by part. */
export const SINGLE_COPY_LIMIT = 5 * 1024 ** 3;
const COPY_PART_SIZE = 512 * 1024 ** 2;
const PARALLEL_PARTS = 4;
const UPLOAD_PART_SIZE = 16 * 1024 ** 2;

function statusOf(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** A client-side error from S3 other than a refusal (a missing object, a bad bucket name): the object is "not there". */
function isClientError(error: unknown): boolean {
  const status = statusOf(error) ?? (error instanceof S3ServiceException ? 500 : undefined);
  return status !== undefined && status < 500 && status !== 403;
}

/**
 * What a failed S3 call means for the caller. A 403 (AccessDenied, or a HEAD's bare Forbidden)
 * is the service's own permissions refusing it: an error naming the object, never "not there",
 * or a delete the role may not make would pass in silence. Other failures are S3 being unavailable.
 */
function failure(error: unknown, { bucket, key }: S3Location): Error {
  if (error instanceof UnavailableError) return error;
  if (statusOf(error) === 403) return new DependencyAccessDeniedError(`s3://${bucket}/${key}`);
  return new DependencyUnavailableError('The artifact store (S3)');
}

export interface S3ArtifactStoreOptions {
  /** Objects larger than this are copied with multipart copy (tests lower it). */
  singleCopyLimit?: number;
  copyPartSize?: number;
  uploadPartSize?: number;
  /** Signs pre-signed URLs (a client with the long-lived signing key, shared/artifacts/signing-key.ts); default the store's client. */
  presigner?: S3Client;
}

export class S3ArtifactStore implements ArtifactStore {
  private readonly singleCopyLimit: number;
  private readonly copyPartSize: number;
  private readonly uploadPartSize: number;
  private readonly presigner: S3Client;

  constructor(private readonly s3: S3Client, options: S3ArtifactStoreOptions = {}) {
    this.presigner = options.presigner ?? s3;
    this.singleCopyLimit = options.singleCopyLimit ?? SINGLE_COPY_LIMIT;
    this.copyPartSize = options.copyPartSize ?? COPY_PART_SIZE;
    this.uploadPartSize = options.uploadPartSize ?? UPLOAD_PART_SIZE;
  }

  private async call<T>(location: S3Location, what: () => Promise<T>): Promise<T | undefined> {
    try {
      return await what();
    } catch (error) {
      if (isClientError(error)) return undefined;
      throw failure(error, location);
    }
  }

  async head({ bucket, key }: S3Location): Promise<ObjectInfo | undefined> {
    const out = await this.call({ bucket, key }, () => this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })));
    if (!out) return undefined;
    return { etag: (out.ETag ?? '').replaceAll('"', ''), size: out.ContentLength ?? 0, metadata: out.Metadata ?? {} };
  }

  async readText(location: S3Location, maxBytes: number): Promise<string | undefined> {
    const out = await this.call(location, () => this.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key })));
    if (!out?.Body) return undefined;
    if ((out.ContentLength ?? 0) >= maxBytes) {
      (out.Body as { destroy?: () => void }).destroy?.();
      throw new ObjectTooLargeError(out.ContentLength ?? 0);
    }
    return out.Body.transformToString('utf8');
  }

  async readTail(location: S3Location, maxBytes: number): Promise<{ text: string; size: number } | undefined> {
    const info = await this.head(location);
    if (!info) return undefined;
    // An explicit range rather than a suffix range (`bytes=-N`), which not every S3 serves.
    const range = info.size > maxBytes ? `bytes=${info.size - maxBytes}-${info.size - 1}` : undefined;
    const out = await this.call(location, () => this.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key, Range: range })));
    if (!out?.Body) return undefined;
    return { text: await out.Body.transformToString('utf8'), size: info.size };
  }

  async putJson(location: S3Location, value: unknown): Promise<{ etag: string }> {
    return this.putText(location, JSON.stringify(value), 'application/json');
  }

  async putText({ bucket, key }: S3Location, text: string, contentType: string, metadata?: Record<string, string>): Promise<{ etag: string }> {
    try {
      const out = await this.s3.send(
        // The length given: for an empty text the SDK cannot tell it, and warns.
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: text, ContentLength: Buffer.byteLength(text), ContentType: contentType, Metadata: metadata }),
      );
      return { etag: (out.ETag ?? '').replaceAll('"', '') };
    } catch (error) {
      throw failure(error, { bucket, key });
    }
  }

  async copy(from: S3Location, to: S3Location, metadata?: Record<string, string>): Promise<{ etag: string }> {
    const source = await this.head(from);
    if (!source) throw new DependencyUnavailableError(`The artifact s3://${from.bucket}/${from.key}`);
    try {
      if (source.size <= this.singleCopyLimit) {
        const out = await this.s3.send(
          new CopyObjectCommand({
            Bucket: to.bucket,
            Key: to.key,
            CopySource: copySource(from),
            ...(metadata ? { MetadataDirective: 'REPLACE', Metadata: metadata } : { MetadataDirective: 'COPY' }),
          }),
        );
        return { etag: (out.CopyObjectResult?.ETag ?? '').replaceAll('"', '') };
      }
      await this.multipartCopy(from, to, metadata ? { ...source, metadata } : source);
      return { etag: (await this.head(to))?.etag ?? '' };
    } catch (error) {
      throw failure(error, to);
    }
  }

  /** UploadPartCopy in parallel parts; aborted on failure so no half-copy is left behind. */
  private async multipartCopy(from: S3Location, to: S3Location, source: ObjectInfo): Promise<void> {
    const { UploadId } = await this.s3.send(
      new CreateMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, Metadata: source.metadata }),
    );
    try {
      const ranges: { part: number; start: number; end: number }[] = [];
      for (let start = 0, part = 1; start < source.size; start += this.copyPartSize, part++) {
        ranges.push({ part, start, end: Math.min(start + this.copyPartSize, source.size) - 1 });
      }
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (let i = 0; i < ranges.length; i += PARALLEL_PARTS) {
        const batch = await Promise.all(
          ranges.slice(i, i + PARALLEL_PARTS).map(async (r) => {
            const out = await this.s3.send(
              new UploadPartCopyCommand({
                Bucket: to.bucket,
                Key: to.key,
                UploadId,
                PartNumber: r.part,
                CopySource: copySource(from),
                CopySourceRange: `bytes=${r.start}-${r.end}`,
              }),
            );
            return { PartNumber: r.part, ETag: out.CopyPartResult?.ETag ?? '' };
          }),
        );
        parts.push(...batch);
      }
      await this.s3.send(
        new CompleteMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (error) {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, UploadId })).catch(() => undefined);
      throw error;
    }
  }

  async putTextStream({ bucket, key }: S3Location, text: AsyncIterable<string>, contentType: string): Promise<void> {
    try {
      await new Upload({
        client: this.s3,
        params: { Bucket: bucket, Key: key, Body: Readable.from(text, { objectMode: false }), ContentType: contentType },
        partSize: this.uploadPartSize,
        queueSize: 1,
        leavePartsOnError: false,
      }).done();
    } catch (error) {
      if (isClientError(error)) throw error;
      throw failure(error, { bucket, key });
    }
  }

  async uploadFile(location: S3Location, path: string, metadata: Record<string, string> = {}): Promise<{ etag: string; md5: string; size: number }> {
    const hash = createHash('md5');
    let size = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const body = createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(counted);
    try {
      await new Upload({
        client: this.s3,
        params: { Bucket: location.bucket, Key: location.key, Body: body, Metadata: metadata },
        partSize: this.uploadPartSize,
        queueSize: PARALLEL_PARTS,
        leavePartsOnError: false,
      }).done();
    } catch (error) {
      if (isClientError(error)) throw error;
      throw failure(error, location);
    }
    const md5 = hash.digest('hex');
    // The MD5 is known only once the bytes have gone by: record it with a server-side copy onto itself.
    const { etag } = await this.copy(location, location, { ...metadata, md5sum: md5 });
    return { etag: etag || ((await this.head(location))?.etag ?? ''), md5, size };
  }

  async remove({ bucket, key }: S3Location): Promise<void> {
    await this.call({ bucket, key }, () => this.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })));
  }

  async presignGet({ bucket, key }: S3Location, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.presigner, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expiresInSeconds });
  }

  async createMultipartUpload({ bucket, key }: S3Location, metadata: Record<string, string>): Promise<string> {
    const out = await this.call({ bucket, key }, () => this.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: metadata })));
    if (!out?.UploadId) throw new DependencyUnavailableError(`The artifact store (S3), starting an upload to s3://${bucket}/${key},`);
    return out.UploadId;
  }

  /** Signed, as GET URLs are, by the long-lived signing key: a node's upload may outlast the function role's session. */
  async presignUploadPart({ bucket, key }: S3Location, uploadId: string, partNumber: number, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.presigner, new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber }), {
      expiresIn: expiresInSeconds,
    });
  }

  async completeMultipartUpload({ bucket, key }: S3Location, uploadId: string, etags: string[]): Promise<{ etag: string }> {
    const parts = etags.map((etag, i) => ({ PartNumber: i + 1, ETag: etag.startsWith('"') ? etag : `"${etag}"` }));
    try {
      const out = await this.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
      return { etag: (out.ETag ?? '').replaceAll('"', '') };
    } catch (error) {
      // A client error (no such upload, a part missing) is the caller's to judge; anything else is S3 being unavailable.
      if (isClientError(error)) throw error;
      throw failure(error, { bucket, key });
    }
  }

  async abortMultipartUpload({ bucket, key }: S3Location, uploadId: string): Promise<void> {
    await this.call({ bucket, key }, () => this.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })));
  }
}

function copySource({ bucket, key }: S3Location): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
