/**
 * The whole list as deployed clients get it: the API handler answered as API Gateway and Lambda
 * answer it (no streaming, the 6 MiB response limit), so a large list goes to S3 (here the
 * embedded s3rver) and the client follows the redirect to it. Beside it, the same list streamed
 * by the embedded server. Part of `npm run bench` (BENCH_PARTS=deployedlist), in the bench's own
 * process with records created straight through the domain (no HTTP).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function benchDeployedList(count: number, runs = 3): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'ims-bench-lists-'));
  const saved = { ...process.env };
  Object.assign(process.env, { TABLE_NAME: 'ims-bench-lists', POWERTOOLS_LOG_LEVEL: 'SILENT', IMS_STORE: 'memory', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  delete process.env.S3_ENDPOINT;
  delete process.env.DYNAMODB_ENDPOINT;
  const { startEmbedded } = await import('../infra/local/embedded.js');
  const { createApiServer } = await import('../infra/local/http-server.js');
  const { apiHandlers } = await import('../infra/local/handlers.js');
  const { createImage } = await import('../shared/domain/images.js');
  const svc = await startEmbedded({ port: 0, s3Port: 0, scratchDir: dir });
  const lambda = createApiServer(apiHandlers(() => svc.app), { lambdaLimits: true });
  try {
    for (let i = 0; i < count; i++) await createImage(svc.app, { name: `img-${i}`, arch: 'x86_64', metadata: { team: 'bench' }, link: null } as never);
    await new Promise<void>((ok) => lambda.listen(0, '127.0.0.1', () => ok()));
    const lambdaUrl = `http://127.0.0.1:${(lambda.address() as AddressInfo).port}`;
    const timeList = async (url: string) => {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < runs; i++) {
        const started = performance.now();
        const res = await fetch(url, { redirect: 'follow', headers: { authorization: 'Bearer bench' } });
        const text = await res.text();
        times.push(performance.now() - started);
        bytes = text.length;
        if (res.status !== 200 || !text.endsWith('}]')) throw new Error(`list answered ${res.status}`);
      }
      times.sort((a, b) => a - b);
      return { ms: Number(times[Math.floor(times.length / 2)].toFixed(1)), bytes };
    };
    const redirect = await fetch(`${lambdaUrl}/v3/images`, { redirect: 'manual' });
    await redirect.arrayBuffer();
    const deployed = await timeList(`${lambdaUrl}/v3/images`);
    const streamed = await timeList(`${svc.url}/v3/images`);
    process.stderr.write(`deployed list of ${count}: ${redirect.status} then S3, ${deployed.ms} ms; streamed ${streamed.ms} ms; ${deployed.bytes} bytes\n`);
    return { records: count, bytes: deployed.bytes, firstAnswer: redirect.status, deployedMs: deployed.ms, streamedMs: streamed.ms };
  } finally {
    await new Promise<void>((r) => {
      lambda.close(() => r());
      lambda.closeAllConnections();
    });
    await svc.stop();
    rmSync(dir, { recursive: true, force: true });
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}
