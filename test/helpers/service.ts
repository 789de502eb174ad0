/**
 * Starts the embedded service for one test file: the real handlers behind node:http, records
 * in the memory store (or in DynamoDB Local when DYNAMODB_ENDPOINT is set, as CI does; or in
 * dynalite, for handlers in processes of their own), artifacts in s3rver. Each file gets its own
 * table, so files never see each other's records.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startEmbedded, type EmbeddedOptions, type EmbeddedService } from '#infra/local/embedded.js';
import { makeS3Client } from '#shared/clients.js';
import { readSettings } from '#shared/config.js';

export interface TestService extends EmbeddedService {
  s3: S3Client;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  putObject(bucket: string, key: string, body: string | Buffer, metadata?: Record<string, string>): Promise<void>;
  getObjectText(bucket: string, key: string): Promise<string | undefined>;
  exists(bucket: string, key: string): Promise<boolean>;
  listKeys(bucket: string, prefix?: string): Promise<string[]>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

export async function startTestService(options: Pick<EmbeddedOptions, 'workflow' | 'reconcileMs' | 'reconcile' | 'workers' | 'recordStore' | 'wakes'> = {}): Promise<TestService> {
  const scratchDir = mkdtempSync(join(tmpdir(), 'ims-test-'));
  process.env.TABLE_NAME = `ims-test-${randomUUID().slice(0, 8)}`;
  const service = await startEmbedded({ port: 0, scratchDir, reconcileMs: 20, ...options, workflow: { retryMs: 10, ...options.workflow } });
  const s3 = makeS3Client(readSettings());

  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${service.url}${path}`, init);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  };

  return {
    ...service,
    s3,
    request,
    putObject: async (bucket, key, body, metadata) => {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
    },
    getObjectText: async (bucket, key) => {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return await out.Body?.transformToString('utf8');
      } catch {
        return undefined;
      }
    },
    exists: async (bucket, key) => {
      try {
        await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch {
        return false;
      }
    },
    listKeys: async (bucket, prefix) => {
      const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (out.Contents ?? []).map((o) => o.Key!).sort();
    },
    stop: async () => {
      s3.destroy();
      await service.stop();
      rmSync(scratchDir, { recursive: true, force: true });
    },
  };
}
