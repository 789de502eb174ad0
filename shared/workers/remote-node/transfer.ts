/**
 * Moving a job's data: the source artifact from its pre-signed URL to the node (streamed, its
 * MD5 checked on the way, so a rootfs is never staged on this host), and the results from the
 * node back to this host for register.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { NodeSession } from '../../remote-nodes/ssh-session.js';
import { RESULT_FILES, type JobLayout, type ResultFile } from './job-layout.js';

/** The download is not what the record says it is: retrying cannot help. */
export class ChecksumError extends Error {}

const ATTEMPTS = 3;

/** GET with a few quick retries on network errors and 5xx (the stage's own retries come on top). */
async function get(url: string, what: string): Promise<Readable> {
  let last: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const response = await fetch(url);
      if (response.ok && response.body) return Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>);
      last = new Error(`downloading the ${what} failed: HTTP ${response.status}`);
      await response.body?.cancel();
      if (response.status < 500) break;
    } catch (error) {
      last = new Error(`downloading the ${what} failed: ${(error as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 500 * attempt));
  }
  throw last;
}

/** Passes the bytes through while hashing them (a Transform: nothing flows before the consumer is attached). */
function hashing(): { stream: Transform; md5: () => string } {
  const hash = createHash('md5');
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { stream, md5: () => hash.digest('hex') };
}

function checkMd5(actual: string, expected: string, what: string): void {
  if (expected && actual !== expected) throw new ChecksumError(`the downloaded ${what} has MD5 ${actual}, expected ${expected}`);
}

/** Streams the URL's object to `remotePath` on the node; an empty `md5` is not checked (as the original). */
export async function uploadFromUrl(session: NodeSession, url: string, remotePath: string, md5: string, what: string): Promise<void> {
  const body = await get(url, what);
  const { stream, md5: actual } = hashing();
  await Promise.all([pipeline(body, stream), session.upload(stream, remotePath)]);
  checkMd5(actual(), md5, what);
}

/** Downloads the URL's object to a file on this host. */
export async function downloadToFile(url: string, path: string, md5: string, what: string): Promise<void> {
  const body = await get(url, what);
  const { stream, md5: actual } = hashing();
  await pipeline(body, stream, createWriteStream(path));
  checkMd5(actual(), md5, what);
}

export type LocalResults = Partial<Record<ResultFile, string>>;

/** Copies the results the node has (`present`) into the job's directory on this host. */
export async function fetchResults(session: NodeSession, layout: JobLayout, present: (file: ResultFile) => boolean): Promise<LocalResults> {
  await rm(layout.local, { recursive: true, force: true });
  await mkdir(layout.local, { recursive: true });
  const results: LocalResults = {};
  for (const file of RESULT_FILES) {
    if (!present(file)) continue;
    const local = join(layout.local, file);
    await session.download(`${layout.image}/out/${file}`, local);
    results[file] = local;
  }
  return results;
}
