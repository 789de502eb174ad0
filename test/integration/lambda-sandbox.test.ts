/**
 * The Lambda sandbox (infra/local/lambda-sandbox.ts) the remote-node tests run their stages in:
 * a process per invocation, the deployed timeout, a size-limited TMPDIR, errors by name.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { LambdaSandbox, lambdaNode, PACKAGED_LAMBDA_NODE } from '#infra/local/lambda-sandbox.js';

const HANDLER = resolve('test/fixtures/lambda-sandbox-handler.mjs');
let sandbox: LambdaSandbox;

beforeAll(async () => {
  sandbox = await LambdaSandbox.create({ tmpMiB: 16, env: { SANDBOX_TEST_MARKER: 'from-options' } });
}, 30_000);

afterAll(async () => {
  const tmp = sandbox?.tmpDir;
  await sandbox?.close();
  if (tmp) expect(existsSync(tmp)).toBe(false);
});

describe('LambdaSandbox', () => {
  test('each invocation is a fresh process: JSON in and out, the environment passed through, TMPDIR the sandbox’s', async () => {
    process.env.SANDBOX_TEST_PARENT = 'parent';
    const first = await sandbox.invoke(HANDLER, { action: 'echo', n: 1 });
    const second = await sandbox.invoke(HANDLER, { action: 'echo', n: 2 }, { SANDBOX_TEST_MARKER: 'per-call' });
    expect(first).toEqual({ event: { action: 'echo', n: 1 }, calls: 1, tmp: sandbox.tmpDir, marker: 'from-options', when: '1970-01-01T00:00:00.000Z' });
    // No memory carried over: the module's counter starts again.
    expect(second).toMatchObject({ calls: 1, marker: 'per-call' });
    expect(await sandbox.invoke(HANDLER, { action: 'nothing' })).toBeNull();
  });

  test('invocations run on the Node binary of the deployed runtime: the packaged Node 22 when installed, or IMS_LAMBDA_NODE', async () => {
    const packaged = existsSync(PACKAGED_LAMBDA_NODE);
    expect(sandbox.node).toBe(packaged ? PACKAGED_LAMBDA_NODE : process.execPath);
    const version = await sandbox.invoke(HANDLER, { action: 'version' });
    expect(version).toBe(execFileSync(sandbox.node, ['--version'], { encoding: 'utf8' }).trim());
    if (packaged) expect(version).toMatch(/^v22\./);
    expect(lambdaNode({ IMS_LAMBDA_NODE: process.execPath })).toBe(process.execPath);
  });

  test('a handler’s error comes back with its name and message', async () => {
    await expect(sandbox.invoke(HANDLER, { action: 'throw' })).rejects.toMatchObject({ name: 'StageGaveUpError', message: 'the handler gave up' });
  });

  test('a process that exits without answering is a runtime error', async () => {
    await expect(sandbox.invoke(HANDLER, { action: 'exit' })).rejects.toMatchObject({ name: 'Runtime.ExitError', message: expect.stringContaining('exit status 3') });
  });

  test('TMPDIR is as small as configured and outlives the invocation', async () => {
    await expect(sandbox.invoke(HANDLER, { action: 'fill', mib: 32 })).rejects.toMatchObject({ message: expect.stringContaining('ENOSPC') });
    expect(await sandbox.tmpUsedBytes()).toBeGreaterThan(14 * 1024 * 1024);
    expect(await sandbox.tmpUsedBytes()).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(existsSync(join(sandbox.tmpDir, 'fill'))).toBe(true);
  });

  test('an invocation past its timeout is killed and reported as Lambda reports it', async () => {
    const short = await LambdaSandbox.create({ tmpMiB: 1, timeoutSeconds: 1 });
    try {
      const started = Date.now();
      await expect(short.invoke(HANDLER, { action: 'sleep', ms: 10_000 })).rejects.toMatchObject({ name: 'Sandbox.Timedout', message: 'Task timed out after 1.00 seconds' });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(short.invocations).toEqual([expect.objectContaining({ outcome: 'timeout' })]);
    } finally {
      await short.close();
    }
  });

  test('a handler named as a CDK entry names it runs from the compiled tree, and reaches services only through the environment', async () => {
    // No DynamoDB endpoint in this file: the stage fails the way it would without its table.
    const error = await sandbox.invoke('functions/workflow/prepare', { jobId: 'nope' }, { DYNAMODB_ENDPOINT: 'http://127.0.0.1:1', AWS_MAX_ATTEMPTS: '1' }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect(sandbox.invocations.at(-1)).toMatchObject({ handler: 'functions/workflow/prepare', outcome: 'error' });
  }, 30_000);
});
