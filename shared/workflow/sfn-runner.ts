import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import type { WorkflowRunner } from '../domain/ports.js';

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
}
