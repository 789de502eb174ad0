/**
 * Soft delete and undelete of an image with a large rootfs, through the embedded server: the
 * requests' times, beside one server-side copy of that rootfs in the same S3, which is what each
 * artifact cost a soft delete, and its undelete again, when they moved artifacts under deleted/.
 * Part of `npm run bench` (BENCH_PARTS=softdelete; BENCH_SOFT_DELETE_MIB sizes the rootfs).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedPart } from './embedded-part.js';

const ROUNDS = 5;
const ROOTFS = 'application/vnd.cray.image.rootfs.squashfs';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (value: number) => Number(value.toFixed(1));

export async function benchSoftDelete(rootfsMiB: number): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ims-bench-softdelete-'));
  const { startEmbedded, PutObjectCommand, s3Client } = await embeddedPart({ TABLE_NAME: 'ims-bench-softdelete', POWERTOOLS_LOG_LEVEL: 'SILENT' });
  const svc = await startEmbedded({ port: 0, s3Port: 0, scratchDir: join(dir, 's3'), reconcileMs: 0 });
  try {
    const s3 = s3Client();
    const put = (key: string, body: string | Buffer) => s3.send(new PutObjectCommand({ Bucket: 'boot-images', Key: key, Body: body }));
    await put('large/rootfs', Buffer.alloc(rootfsMiB * 1024 * 1024, 7));
    await put('large/kernel', 'kernel');
    await put('large/initrd', 'initrd');
    const artifacts = [
      { type: ROOTFS, md5: 'm', link: { path: 's3://boot-images/large/rootfs', type: 's3', etag: '' } },
      { type: 'application/vnd.cray.image.kernel', md5: 'k', link: { path: 's3://boot-images/large/kernel', type: 's3', etag: '' } },
      { type: 'application/vnd.cray.image.initrd', md5: 'i', link: { path: 's3://boot-images/large/initrd', type: 's3', etag: '' } },
    ];
    await put('large/manifest.json', JSON.stringify({ version: '1.0', created: '2026-12-01 00:00:00', artifacts }));
    const call = async (method: string, path: string, body?: unknown) => {
      const started = performance.now();
      const res = await fetch(`${svc.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return { ms: performance.now() - started, body: text ? (JSON.parse(text) as { id?: string }) : {} };
    };
    const { id } = (await call('POST', '/v3/images', { name: 'large', link: { path: 's3://boot-images/large/manifest.json', type: 's3' } })).body;
    const deletes: number[] = [];
    const undeletes: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      deletes.push((await call('DELETE', `/v3/images/${id}`)).ms);
      undeletes.push((await call('PATCH', `/v3/deleted/images/${id}`, { operation: 'undelete' })).ms);
    }
    const started = performance.now();
    await svc.app.artifacts.copy({ bucket: 'boot-images', key: 'large/rootfs' }, { bucket: 'boot-images', key: 'deleted/large/rootfs' });
    const copyMs = performance.now() - started;
    process.stderr.write(`softdelete: ${rootfsMiB} MiB rootfs, delete p50 ${ms(median(deletes))} ms, undelete p50 ${ms(median(undeletes))} ms, one copy ${ms(copyMs)} ms\n`);
    return {
      rootfsMiB,
      rounds: ROUNDS,
      softDeleteMs: { p50: ms(median(deletes)), max: ms(Math.max(...deletes)) },
      undeleteMs: { p50: ms(median(undeletes)), max: ms(Math.max(...undeletes)) },
      oneRootfsCopyMs: ms(copyMs),
    };
  } finally {
    await svc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
