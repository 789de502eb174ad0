/**
 * The embedded stand-in for Step Functions: aws-local-stepfunctions runs the ASL that CDK
 * synthesizes from shared/workflow/definition.ts, with each Lambda task mapped to the same
 * handler module CDK deploys. Executions live in this process; on start the embedded runtime
 * resumes unfinished jobs (every stage is idempotent), so a restart leaves no job stuck.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { logger } from '#shared/logger.js';
import type { WorkflowRunner } from '#shared/domain/ports.js';
import { POLL_WAIT_STATES, TASK_STATES } from '#shared/workflow/definition-names.js';

// aws-local-stepfunctions calls Promise.withResolvers, which Node 20 lacks.
type WithResolvers = <T>() => { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void };
const P = Promise as unknown as { withResolvers?: WithResolvers };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function <T>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const { StateMachine } = await import('aws-local-stepfunctions');

type StageHandler = (input: any) => Promise<unknown>;

async function loadHandlers(): Promise<Record<string, StageHandler>> {
  const modules = {
    prepare: await import('#functions/workflow/prepare.js'),
    build: await import('#functions/workflow/build.js'),
    ssh: await import('#functions/workflow/ssh.js'),
    package: await import('#functions/workflow/package.js'),
    register: await import('#functions/workflow/register.js'),
    cleanup: await import('#functions/workflow/cleanup.js'),
  };
  return Object.fromEntries(Object.entries(TASK_STATES).map(([state, stage]) => [state, modules[stage].handler as StageHandler]));
}

export interface LocalRunnerOptions {
  /** Milliseconds between polls of a running stage (the definition says 5 s). */
  pollMs?: number;
  /** Milliseconds between retries of a failed task (the definition says 2 s, backing off). */
  retryMs?: number;
  /** Wraps each task handler; tests use it to inject faults. */
  wrapTask?: (state: string, handler: StageHandler) => StageHandler;
}

export interface LocalExecution {
  jobId: string;
  result: Promise<unknown>;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
}

export class LocalWorkflowRunner implements WorkflowRunner {
  private readonly definition: any;
  private handlers?: Record<string, StageHandler>;
  readonly executions = new Map<string, LocalExecution & { abort: () => void }>();
  /**
   * Task handlers still running. Aborting an execution settles its result at once, but a task
   * already started (a cleanup deleting objects, a register writing a record) runs to its end;
   * drain() waits for those too, so nothing touches the store after shutdown.
   */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly options: LocalRunnerOptions = {}) {
    const path = fileURLToPath(new URL('../../shared/workflow/generated/job-workflow.asl.json', import.meta.url));
    this.definition = JSON.parse(readFileSync(path, 'utf8'));
  }

  async start(jobId: string): Promise<string> {
    for (const [id, e] of this.executions) if (e.jobId === jobId && e.status === 'RUNNING') return id;
    this.handlers ??= await loadHandlers();
    const wrap = this.options.wrapTask ?? ((_s: string, h: StageHandler) => h);
    const track = (handler: StageHandler): StageHandler => (input) => {
      const running = handler(input);
      const settled = running.then(
        () => undefined,
        () => undefined,
      );
      this.inFlight.add(settled);
      void settled.then(() => this.inFlight.delete(settled));
      return running;
    };
    const taskResourceLocalHandlers = Object.fromEntries(
      Object.entries(this.handlers).map(([state, handler]) => [state, track(wrap(state, handler)) as (input: any) => Promise<any>]),
    );
    const pollMs = this.options.pollMs ?? 5000;
    const retryMs = this.options.retryMs;
    const machine = new StateMachine(this.definition, { validationOptions: { checkArn: false } });
    const run = machine.run(
      { jobId },
      {
        overrides: {
          taskResourceLocalHandlers,
          waitTimeOverrides: Object.fromEntries(POLL_WAIT_STATES.map((s) => [s, pollMs])),
          ...(retryMs !== undefined ? { retryIntervalOverrides: Object.fromEntries(Object.keys(TASK_STATES).map((s) => [s, retryMs])) } : {}),
        },
      },
    );
    const executionId = `local:${jobId}:${randomUUID()}`;
    const execution = { jobId, status: 'RUNNING' as LocalExecution['status'], abort: run.abort, result: run.result };
    this.executions.set(executionId, execution);
    run.result.then(
      () => {
        execution.status = 'SUCCEEDED';
      },
      (error: unknown) => {
        if (execution.status === 'RUNNING') execution.status = (error as Error).name === 'ExecutionAbortedError' ? 'ABORTED' : 'FAILED';
        logger.info('job workflow ended without success', { jobId, error: (error as Error).message });
      },
    );
    return executionId;
  }

  async stop(executionId: string): Promise<void> {
    const execution = this.executions.get(executionId);
    if (!execution || execution.status !== 'RUNNING') return;
    execution.status = 'ABORTED';
    execution.abort();
    await execution.result.catch(() => undefined);
  }

  /** Waits for every running execution, and every task it started, to end (tests, shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.executions.values()].map((e) => e.result.catch(() => undefined)));
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  stopAll(): void {
    for (const [id, e] of this.executions) if (e.status === 'RUNNING') void this.stop(id);
  }
}
