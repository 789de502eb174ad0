/**
 * One Lambda invocation in a process of its own, started by LambdaSandbox (lambda-sandbox.ts):
 * `node lambda-sandbox-child.js <handler module> <function name> <timeout ms>`. The event comes
 * as the one IPC message; the handler's result (JSON, as Lambda returns it) or its error's name
 * and message go back the same way, and the process ends: nothing is carried to the next
 * invocation.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const [modulePath, functionName, timeoutMs] = process.argv.slice(2);

export type ChildReply = { ok: true; result: unknown } | { ok: false; error: { name: string; message: string; stack?: string } };

function reply(message: ChildReply): void {
  process.send!(message, () => process.exit(0));
}

process.once('message', (message: { event: unknown }) => {
  const deadline = Date.now() + Number(timeoutMs);
  const context = {
    functionName,
    functionVersion: '$LATEST',
    awsRequestId: randomUUID(),
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  void (async () => {
    try {
      const { handler } = (await import(pathToFileURL(modulePath!).href)) as { handler: (event: unknown, context: unknown) => Promise<unknown> };
      const result = await handler(message.event, context);
      reply({ ok: true, result: result === undefined ? null : result });
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      reply({ ok: false, error: { name: e.name, message: e.message, stack: e.stack } });
    }
  })();
});
