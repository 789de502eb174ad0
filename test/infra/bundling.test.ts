/**
 * The one test that really bundles: ImsFunction's esbuild settings (ESM, createRequire banner,
 * the AWS SDK bundled in, files copied beside the bundle) must give a bundle that Node loads and
 * runs as Lambda would, outside the repository, with nothing to import but Node's built-ins.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ImsFunction, REPO_ROOT } from '#infra/constructs/ims-function.js';
import { STAGE_FILES } from '#infra/stacks/ims-stack.js';

const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };

let outdir: string;
let assetDir: string;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'ims-bundle-'));
  const app = new App({ outdir, context: cdkJson.context });
  const stack = new Stack(app, 'BundleProbe');
  // Asset staging bundles while the function is constructed, announcing it on stderr; the test
  // report is no place for that.
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  let service: ImsFunction;
  try {
    // The stage functions' files ride along, so that copying them is checked too.
    service = new ImsFunction(stack, 'Service', { entry: 'functions/api/service.ts', kind: 'api', description: 'bundle probe', files: STAGE_FILES });
  } finally {
    stderr.mockRestore();
  }
  const fn = Template.fromStack(stack).toJSON().Resources[stack.getLogicalId(service.fn.node.defaultChild as CfnElement)];
  assetDir = join(outdir, `asset.${(fn.Properties.Code.S3Key as string).replace(/\.zip$/, '')}`);
}, 120_000);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe('ImsFunction bundling', () => {
  test('emits a minified ESM bundle with its source map', () => {
    expect(existsSync(join(assetDir, 'index.mjs'))).toBe(true);
    expect(existsSync(join(assetDir, 'index.mjs.map'))).toBe(true);
    const code = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
    expect(code.startsWith("import { createRequire as __createRequire } from 'node:module';")).toBe(true);
    // Minified: long lines (the few line breaks left are inside template literals).
    expect(code.length / code.split('\n').length).toBeGreaterThan(2000);
    // The SDK is inside the bundle: nothing is imported from node_modules at run time.
    expect(code).not.toMatch(/from\s*"@aws-sdk\//);
    expect(statSync(join(assetDir, 'index.mjs')).size).toBeLessThan(1.5 * 1024 * 1024);
  });

  test('ships the files the code reads at run time beside the bundle', () => {
    const filesUnder = (dir: string) =>
      (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
        .filter((entry) => entry.isFile())
        .map((entry) => join(entry.parentPath, entry.name).slice(dir.length))
        .sort();
    for (const [from, to] of Object.entries(STAGE_FILES)) {
      const source = filesUnder(join(REPO_ROOT, from));
      expect(source.length).toBeGreaterThan(0);
      expect(filesUnder(join(assetDir, to))).toEqual(source);
    }
  });

  test('loads in plain Node and answers a health probe', () => {
    const event = {
      version: '2.0',
      routeKey: 'ANY /healthz/live',
      rawPath: '/healthz/live',
      rawQueryString: '',
      headers: {},
      requestContext: { http: { method: 'GET', path: '/healthz/live', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, requestId: 'probe', routeKey: 'ANY /healthz/live', stage: '$default' },
      isBase64Encoded: false,
    };
    const script = `
      const { handler } = await import('./index.mjs');
      const context = { awsRequestId: 'probe', functionName: 'probe', getRemainingTimeInMillis: () => 10000 };
      const event = JSON.parse(process.env.PROBE_EVENT);
      process.stdout.write(JSON.stringify(await handler(event, context)));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: assetDir,
      env: {
        PATH: process.env.PATH,
        AWS_REGION: 'us-east-1',
        POWERTOOLS_LOG_LEVEL: 'SILENT',
        // This machine's Node may be older than the Lambda runtime's; the SDK would say so.
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        PROBE_EVENT: JSON.stringify(event),
      },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result = JSON.parse(out) as { statusCode: number; body: string };
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({});
  });
});
