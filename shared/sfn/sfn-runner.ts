import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { ExecutionStatus, WorkflowRunner } from '../domain/ports.js';

/** Step Functions' answers for a token that nothing waits on any more (the task ended, timed out or was stopped). */
const SPENT_TOKEN = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

function spent(error: unknown): boolean {
  return SPENT_TOKEN.has((error as Error).name);
}

/** The deployed runner: one Step Functions execution per job, named after the job id. */
export class SfnWorkflowRunner implements WorkflowRunner {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  async start(jobId: string): Promise<string> {
    try {
      const out = await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: jobId, input: JSON.stringify({ jobId }) }),
      );
      return out.executionArn!;
    } catch (error) {
      // The execution name is the job id, so a repeated start finds the first execution.
      if (error instanceof ExecutionAlreadyExists) {
        return `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${jobId}`;
      }
      throw error;
    }
  }

  async stop(executionId: string, reason: string): Promise<void> {
    try {
      await this.client.send(new StopExecutionCommand({ executionArn: executionId, cause: reason }));
    } catch (error) {
      if ((error as Error).name !== 'ExecutionDoesNotExist') throw error;
    }
  }

  resume(token: string, output: Record<string, unknown>): Promise<boolean> {
    return this.callback(() => this.client.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) })));
  }

  fail(token: string, error: string, cause: string): Promise<boolean> {
    // Step Functions keeps at most 256 characters of the error and 32,768 of the cause.
    return this.callback(() => this.client.send(new SendTaskFailureCommand({ taskToken: token, error: error.slice(0, 256), cause: cause.slice(0, 32_768) })));
  }

  heartbeat(token: string): Promise<boolean> {
    return this.callback(() => this.client.send(new SendTaskHeartbeatCommand({ taskToken: token })));
  }

  /** A task callback; false when nothing waits on the token any more. */
  private async callback(send: () => Promise<unknown>): Promise<boolean> {
    try {
      await send();
      return true;
    } catch (error) {
      if (spent(error)) return false;
      throw error;
    }
  }

  async status(executionId: string): Promise<ExecutionStatus> {
    try {
      const out = await this.client.send(new DescribeExecutionCommand({ executionArn: executionId }));
      return (out.status as ExecutionStatus | undefined) ?? 'UNKNOWN';
    } catch (error) {
      if ((error as Error).name === 'ExecutionDoesNotExist') return 'UNKNOWN';
      throw error;
    }
  }
}
