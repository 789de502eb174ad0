/**
 * The part of the Step Functions API the service calls (StartExecution, StopExecution,
 * DescribeExecution, SendTaskSuccess/Failure/Heartbeat), served over HTTP from the embedded
 * runner. Handlers that run in their own process, as each Lambda invocation does, reach the
 * embedded workflow through it with the same SDK client and code they use deployed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LocalWorkflowRunner } from './local-workflow-runner.js';

/** The ARN the embedded state machine answers to. */
export const EMBEDDED_STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:ims-job-workflow';

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

type Operation = (runner: LocalWorkflowRunner, body: Record<string, any>) => Promise<Record<string, unknown>>;

const spentToken = () => new ApiError('TaskTimedOut', 'Task Timed Out: the task token is not waited on');

const operations: Record<string, Operation> = {
  StartExecution: async (runner, body) => {
    const input = JSON.parse(body.input ?? '{}') as { jobId?: string };
    if (!input.jobId) throw new ApiError('InvalidExecutionInput', 'the job workflow needs {"jobId": ...}');
    return { executionArn: await runner.start(input.jobId), startDate: Date.now() / 1000 };
  },
  StopExecution: async (runner, body) => {
    await runner.stop(String(body.executionArn));
    return { stopDate: Date.now() / 1000 };
  },
  DescribeExecution: async (runner, body) => {
    const status = await runner.status(String(body.executionArn));
    if (status === 'UNKNOWN') throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${body.executionArn}'`);
    return { executionArn: body.executionArn, stateMachineArn: EMBEDDED_STATE_MACHINE_ARN, status, startDate: 0 };
  },
  SendTaskSuccess: async (runner, body) => {
    if (!(await runner.resume(String(body.taskToken), JSON.parse(body.output ?? '{}')))) throw spentToken();
    return {};
  },
  SendTaskFailure: async (runner, body) => {
    if (!(await runner.fail(String(body.taskToken), String(body.error ?? 'Error'), String(body.cause ?? '')))) throw spentToken();
    return {};
  },
  SendTaskHeartbeat: async (runner, body) => {
    if (!(await runner.heartbeat(String(body.taskToken)))) throw spentToken();
    return {};
  },
};

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
  res.end(JSON.stringify(body));
}

export async function startSfnEndpoint(runner: LocalWorkflowRunner): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = operations[target.replace(/^AWSStepFunctions\./, '')];
    readBody(req)
      .then(async (text) => {
        if (!operation) throw new ApiError('UnknownOperationException', `${target} is not served here`);
        reply(res, 200, await operation(runner, text ? JSON.parse(text) : {}));
      })
      .catch((error: unknown) => {
        const type = error instanceof ApiError ? error.type : 'InvalidParameterValue';
        reply(res, 400, { __type: type, message: (error as Error).message });
      });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
