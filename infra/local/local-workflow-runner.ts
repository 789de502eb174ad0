/**
 * The embedded stand-in for Step Functions: aws-local-stepfunctions runs the ASL that CDK
 * synthesizes from infra/workflow/definition.ts, with each Lambda task mapped to the same
 * handler module CDK deploys. The library does not emulate task tokens, so this runner does:
 * a `.waitForTaskToken` task mints a token, passes it to the stage's handler in place of
 * `$$.Task.Token`, and waits until resume/fail (SendTaskSuccess/Failure) is called with it, or
 * until its HeartbeatSeconds or TimeoutSeconds pass without a heartbeat, by this runner's clock
 * (tests drive a virtual one). Executions live in this process; on start the embedded runtime
 * resumes unfinished jobs (every stage is idempotent), so a restart leaves no job stuck.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { logger } from '#shared/logger.js';
import type { ExecutionStatus, WorkflowRunner } from '#shared/domain/ports.js';
import type { AppContext } from '#shared/wiring.js';
import { TASK_STATES, WAITING_STATES } from '#shared/workflow/definition-names.js';

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

/** The stage handlers CDK deploys, each served with the embedded runtime's context. */
async function loadHandlers(context: () => AppContext): Promise<Record<string, StageHandler>> {
  const modules = {
    prepare: await import('#functions/workflow/prepare.js'),
    build: await import('#functions/workflow/build.js'),
    ssh: await import('#functions/workflow/ssh.js'),
    package: await import('#functions/workflow/package.js'),
    register: await import('#functions/workflow/register.js'),
    cleanup: await import('#functions/workflow/cleanup.js'),
  };
  return Object.fromEntries(Object.entries(TASK_STATES).map(([state, stage]) => [state, modules[stage].handlerWith(context) as StageHandler]));
}

/** Milliseconds since some origin; tests pass a virtual clock. */
export interface RunnerClock {
  nowMs(): number;
}

export interface LocalRunnerOptions {
  /** Milliseconds between retries of a failed task (the definition says 2 s, backing off). */
  retryMs?: number;
  /** Wraps each task handler; tests use it to inject faults, or to run each invocation in its own process. */
  wrapTask?: (state: string, handler: StageHandler) => StageHandler;
  /** Judges heartbeat and task timeouts; real time unless given. */
  clock?: RunnerClock;
}

export interface LocalExecution {
  jobId: string;
  result: Promise<unknown>;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  /** What the execution did, as the library logs it (StateEntered, StateExited, StateRetried, ...). */
  events: { type: string; state?: string }[];
}

interface ParkedTask {
  executionId: string;
  state: string;
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
  startedMs: number;
  lastBeatMs: number;
  heartbeatMs?: number;
  timeoutMs?: number;
}

function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

export class LocalWorkflowRunner implements WorkflowRunner {
  private readonly definition: any;
  private readonly waiting: Map<string, { heartbeatMs?: number; timeoutMs?: number }>;
  private handlers?: Record<string, StageHandler>;
  /** Built (and the definition validated) once: validating it takes a few hundred ms of CPU, at every job's start otherwise. */
  private machine?: InstanceType<typeof StateMachine>;
  private readonly clock: RunnerClock;
  readonly executions = new Map<string, LocalExecution & { abort: () => void }>();
  private readonly parked = new Map<string, ParkedTask>();
  private timer?: NodeJS.Timeout;
  /** Set by stopAll(): no execution starts after it (a start still loading the handlers would outlive the store). */
  private stopped = false;
  /**
   * Task handlers still running. Aborting an execution settles its result at once, but a task
   * already started (a cleanup deleting objects, a register writing a record) runs to its end;
   * drain() waits for those too, so nothing touches the store after shutdown.
   */
  private readonly inFlight = new Set<Promise<unknown>>();

  /** `context` is the embedded runtime's, which its stage handlers use (asked for when the first execution starts). */
  constructor(
    private readonly options: LocalRunnerOptions = {},
    private readonly context: () => AppContext = () => {
      throw new Error('the embedded workflow runner has no context to run stages with');
    },
  ) {
    const path = fileURLToPath(new URL('../../shared/workflow/generated/job-workflow.asl.json', import.meta.url));
    this.definition = JSON.parse(readFileSync(path, 'utf8'));
    this.clock = options.clock ?? { nowMs: () => Date.now() };
    this.waiting = new Map(
      WAITING_STATES.map((state) => {
        const def = this.definition.States[state];
        if (!String(def?.Resource).endsWith('.waitForTaskToken')) throw new Error(`state ${state} of the job workflow does not wait for a task token`);
        return [state, { heartbeatMs: def.HeartbeatSeconds ? def.HeartbeatSeconds * 1000 : undefined, timeoutMs: def.TimeoutSeconds ? def.TimeoutSeconds * 1000 : undefined }];
      }),
    );
  }

  async start(jobId: string): Promise<string> {
    for (const [id, e] of this.executions) if (e.jobId === jobId && e.status === 'RUNNING') return id;
    this.handlers ??= await loadHandlers(this.context);
    if (this.stopped) throw new Error('the embedded workflow is shutting down');
    const executionId = `local:${jobId}:${randomUUID()}`;
    const wrap = this.options.wrapTask ?? ((_s: string, h: StageHandler) => h);
    const track = (handler: StageHandler): StageHandler => (input) => {
      // An execution stopped while it waited to retry must not run a task any more (the store may be gone).
      // Its first task may start before start() has recorded it: not recorded yet is not stopped.
      const status = this.executions.get(executionId)?.status;
      if (status !== undefined && status !== 'RUNNING') return Promise.reject(namedError('States.Aborted', 'the execution was stopped'));
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
      Object.entries(this.handlers).map(([state, handler]) => {
        const wrapped = track(wrap(state, handler));
        const local = this.waiting.has(state) ? this.parking(executionId, state, wrapped) : wrapped;
        return [state, local as (input: any) => Promise<any>];
      }),
    );
    const retryMs = this.options.retryMs;
    const machine = (this.machine ??= new StateMachine(this.definition, { validationOptions: { checkArn: false } }));
    const run = machine.run(
      { jobId },
      {
        // The token each waiting task really gets is minted in parking(); this only lets `$$.Task.Token` resolve.
        context: { Task: { Token: 'minted-per-task' } } as never,
        overrides: {
          taskResourceLocalHandlers,
          ...(retryMs !== undefined ? { retryIntervalOverrides: Object.fromEntries(Object.keys(TASK_STATES).map((s) => [s, retryMs])) } : {}),
        },
      },
    );
    const execution = { jobId, status: 'RUNNING' as LocalExecution['status'], abort: run.abort, result: run.result, events: [] as LocalExecution['events'] };
    this.executions.set(executionId, execution);
    void (async () => {
      for await (const event of run.eventLogs) {
        const e = event as { type: string; state?: { name?: string } };
        execution.events.push({ type: e.type, ...(e.state?.name ? { state: e.state.name } : {}) });
      }
    })().catch(() => undefined);
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

  /** A waiting task: mint a token, hand it to the stage's handler, and wait for the callback. */
  private parking(executionId: string, state: string, handler: StageHandler): StageHandler {
    const limits = this.waiting.get(state)!;
    return async (parameters: { Payload: Record<string, unknown> }) => {
      const token = `local-task:${randomUUID()}`;
      const now = this.clock.nowMs();
      const waited = new Promise<unknown>((resolve, reject) => {
        this.parked.set(token, { executionId, state, resolve, reject, startedMs: now, lastBeatMs: now, ...limits });
      });
      // Stopped while the handler still runs, the wait is rejected before it is awaited below: not an unhandled rejection.
      waited.catch(() => undefined);
      this.ensureTimer();
      try {
        await handler({ ...parameters.Payload, taskToken: token });
      } catch (error) {
        this.parked.delete(token);
        throw error;
      }
      return waited;
    };
  }

  async resume(token: string, output: Record<string, unknown>): Promise<boolean> {
    const task = this.parked.get(token);
    if (!task) return false;
    this.parked.delete(token);
    task.resolve(output);
    return true;
  }

  async fail(token: string, error: string, cause: string): Promise<boolean> {
    const task = this.parked.get(token);
    if (!task) return false;
    this.parked.delete(token);
    task.reject(namedError(error, cause));
    return true;
  }

  async heartbeat(token: string): Promise<boolean> {
    const task = this.parked.get(token);
    if (!task) return false;
    task.lastBeatMs = this.clock.nowMs();
    return true;
  }

  async status(executionId: string): Promise<ExecutionStatus> {
    return this.executions.get(executionId)?.status ?? 'UNKNOWN';
  }

  /** Tasks waiting on a callback right now (token and state), e.g. for tests. */
  waitingTasks(): { token: string; state: string; jobId: string }[] {
    return [...this.parked].map(([token, t]) => ({ token, state: t.state, jobId: this.executions.get(t.executionId)?.jobId ?? '' }));
  }

  /** Fails the waiting tasks whose heartbeat or timeout has passed, by the runner's clock. */
  checkTimeouts(): void {
    const now = this.clock.nowMs();
    for (const [token, task] of this.parked) {
      if (task.timeoutMs !== undefined && now - task.startedMs >= task.timeoutMs) {
        this.parked.delete(token);
        task.reject(namedError('States.Timeout', `${task.state} waited longer than its TimeoutSeconds`));
      } else if (task.heartbeatMs !== undefined && now - task.lastBeatMs >= task.heartbeatMs) {
        this.parked.delete(token);
        task.reject(namedError('States.HeartbeatTimeout', `${task.state} had no heartbeat for its HeartbeatSeconds`));
      }
    }
  }

  /** Real time checks itself once a second while a task waits; a virtual clock's owner calls checkTimeouts(). */
  private ensureTimer(): void {
    if (this.options.clock || this.timer) return;
    this.timer = setInterval(() => {
      this.checkTimeouts();
      if (this.parked.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }, 1000);
    this.timer.unref();
  }

  async stop(executionId: string): Promise<void> {
    const execution = this.executions.get(executionId);
    if (!execution || execution.status !== 'RUNNING') return;
    execution.status = 'ABORTED';
    execution.abort();
    // Settle what its tasks wait on, so the library clears their timers.
    for (const [token, task] of this.parked) {
      if (task.executionId !== executionId) continue;
      this.parked.delete(token);
      task.reject(namedError('States.Aborted', 'the execution was stopped'));
    }
    await execution.result.catch(() => undefined);
  }

  /** Waits for every running execution, and every task it started, to end (tests, shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.executions.values()].map((e) => e.result.catch(() => undefined)));
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  stopAll(): void {
    this.stopped = true;
    for (const [id, e] of this.executions) if (e.status === 'RUNNING') void this.stop(id);
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
