/**
 * `npm start` runs plain JavaScript: scripts/build-local.mjs transpiles the sources into a
 * directory inside the repository, and `node <out>/infra/local/main.js` is the whole service.
 * Built into a scratch directory, the server starts on free ports, keeps a record, and stops
 * cleanly on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const out = join(root, 'dist', `test-${randomBytes(6).toString('hex')}`);
let dataDir: string;
let server: ChildProcess | undefined;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let url: string;
let output = '';

/** The node options of `npm start`, read from package.json so the two cannot drift apart. */
function startNodeOptions(): string {
  const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const match = /NODE_OPTIONS='([^']*)'/.exec(scripts.start);
  if (!match) throw new Error('package.json scripts.start sets no NODE_OPTIONS');
  return match[1];
}

function running(child: ChildProcess | undefined): child is ChildProcess {
  return !!child && child.exitCode === null && child.signalCode === null;
}

function call(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

beforeAll(async () => {
  execFileSync(process.execPath, [join(root, 'scripts/build-local.mjs'), out], {
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: 'pipe',
  });
  dataDir = mkdtempSync(join(tmpdir(), 'ims-dist-'));
  const child = spawn(process.execPath, [join(out, 'infra/local/main.js')], {
    cwd: root,
    env: {
      ...process.env,
      NODE_OPTIONS: startNodeOptions(),
      PORT: '0',
      S3_PORT: '0',
      HOST: '127.0.0.1',
      IMS_DATA_DIR: dataDir,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server = child;
  exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "IMS API:" line within 10 s:\n${output}`)), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const found = /IMS API: (\S+)/.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
});

afterAll(async () => {
  if (running(server)) {
    server.kill('SIGKILL');
    await exited;
  }
  rmSync(out, { recursive: true, force: true });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the compiled embedded server', () => {
  test('the build keeps the layout, the run-time files and the imports map', () => {
    expect(existsSync(join(out, 'shared/workflow/generated/job-workflow.asl.json'))).toBe(true);
    expect(existsSync(join(out, 'shared/workers/kubernetes/templates'))).toBe(true);
    const script = 'shared/workers/local/scripts/sshd.sh';
    expect(statSync(join(out, script)).mode).toBe(statSync(join(root, script)).mode);
    const { type, imports } = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) as { type: string; imports: unknown };
    expect(type).toBe('module');
    expect(imports).toEqual((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { imports: unknown }).imports);
  });

  test('listens on the port it was given (0: a free one) and is ready', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);
    expect(output).toMatch(/S3: http:\/\/127\.0\.0\.1:[1-9]\d*\s/);
    expect((await call('GET', '/healthz/ready')).status).toBe(200);
  });

  test('keeps a public key', async () => {
    const created = await call('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const listed = await call('GET', '/v3/public-keys');
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual([expect.objectContaining({ id, name: 'k', public_key: 'ssh-ed25519 AAAA' })]);
  });

  test('stops on SIGTERM with exit code 0', async () => {
    server!.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
  });
});
