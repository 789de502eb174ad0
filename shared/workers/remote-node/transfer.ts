/**
 * The one download on this host: a create job's recipe archive (small; it is templated here).
 * Images never come here: the node downloads its image root and uploads its results itself
 * (node-tasks.ts, results-upload.ts).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

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

/** Downloads the URL's object to a file on this host. */
export async function downloadToFile(url: string, path: string, md5: string, what: string): Promise<void> {
  const body = await get(url, what);
  const { stream, md5: actual } = hashing();
  await pipeline(body, stream, createWriteStream(path));
  checkMd5(actual(), md5, what);
}
