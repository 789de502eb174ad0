/**
 * The one test that really bundles: ImsFunction's esbuild settings (ESM, createRequire banner,
 * the AWS SDK bundled in, files copied beside the bundle, the lazily imported libraries in
 * bundles of their own) must give assets that Node loads and runs as Lambda would, outside the
 * repository, with nothing to import but Node's built-ins and what the asset holds.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ImsFunction, LAZY_LIBRARIES, REPO_ROOT } from '#infra/constructs/ims-function.js';
import { STAGE_FILES } from '#infra/stacks/ims-stack.js';

const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };

let outdir: string;
let assetDir: string;
let jobsAssetDir: string;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'ims-bundle-'));
  const app = new App({ outdir, context: cdkJson.context });
  const stack = new Stack(app, 'BundleProbe');
  // Asset staging bundles while the function is constructed, announcing it on stderr; the test
  // report is no place for that.
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  let service: ImsFunction;
  let jobs: ImsFunction;
  try {
    // The stage functions' files ride along, so that copying them is checked too.
    service = new ImsFunction(stack, 'Service', { entry: 'functions/api/service.ts', kind: 'api', description: 'bundle probe', files: STAGE_FILES });
    // The jobs API reaches every worker, so it imports the Kubernetes client and ssh2 (lazily).
    jobs = new ImsFunction(stack, 'Jobs', { entry: 'functions/api/jobs.ts', kind: 'api', description: 'bundle probe' });
  } finally {
    stderr.mockRestore();
  }
  const resources = Template.fromStack(stack).toJSON().Resources;
  const assetOf = (f: ImsFunction) =>
    join(outdir, `asset.${(resources[stack.getLogicalId(f.fn.node.defaultChild as CfnElement)].Properties.Code.S3Key as string).replace(/\.zip$/, '')}`);
  assetDir = assetOf(service);
  jobsAssetDir = assetOf(jobs);
}, 180_000);

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
  test('a handler that reaches the workers stays small: the Kubernetes client and ssh2 are bundles of their own', () => {
    const code = readFileSync(join(jobsAssetDir, 'index.mjs'), 'utf8');
    expect(statSync(join(jobsAssetDir, 'index.mjs')).size).toBeLessThan(1.5 * 1024 * 1024);
    for (const name of Object.keys(LAZY_LIBRARIES)) {
      // Imported on first use only, by its bare name: never a static import at the top.
      expect(code).toContain(`import("${name}")`);
      expect(code).not.toMatch(new RegExp(`from\\s*"${name.replace('/', '\\/')}"`));
      expect(JSON.parse(readFileSync(join(jobsAssetDir, 'node_modules', name, 'package.json'), 'utf8'))).toEqual({ name, type: 'module', exports: './index.mjs' });
      expect(statSync(join(jobsAssetDir, 'node_modules', name, 'index.mjs')).size).toBeGreaterThan(100 * 1024);
    }
    // A handler carries only the libraries its code can import: the service handler never
    // reaches a cluster.
    const serviceCode = readFileSync(join(assetDir, 'index.mjs'), 'utf8');
    for (const name of Object.keys(LAZY_LIBRARIES)) {
      expect(existsSync(join(assetDir, 'node_modules', name))).toBe(serviceCode.includes(`import("${name}")`));
    }
    expect(existsSync(join(assetDir, 'node_modules', '@kubernetes/client-node'))).toBe(false);
  });

  test('the library bundles load from the asset as the handler imports them', () => {
    // `-e` resolves bare specifiers from the working directory, as index.mjs does from its own.
    const script = `
      const k8s = await import('@kubernetes/client-node');
      const kc = new k8s.KubeConfig();
      kc.loadFromString(process.env.KUBECONFIG_TEXT);
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const ssh2 = (await import('ssh2')).default;
      const key = ssh2.utils.parseKey(process.env.SSH_KEY);
      process.stdout.write(JSON.stringify({
        server: kc.getCurrentCluster().server,
        core: typeof core.createNamespacedConfigMap,
        client: typeof ssh2.Client,
        keyType: key.type,
        from: import.meta.resolve('@kubernetes/client-node'),
      }));
    `;
    const kubeconfig = [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ].join('\n');
    const keyFile = join(outdir, 'probe-key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
    const sshKey = readFileSync(keyFile, 'utf8');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: jobsAssetDir,
      env: { PATH: process.env.PATH, KUBECONFIG_TEXT: kubeconfig, SSH_KEY: sshKey },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result = JSON.parse(out);
    expect(result).toEqual({
      server: 'https://127.0.0.1:6443',
      core: 'function',
      client: 'function',
      keyType: 'ssh-ed25519',
      from: expect.stringContaining(`${jobsAssetDir}/node_modules/@kubernetes/client-node/index.mjs`),
    });
  });
});
