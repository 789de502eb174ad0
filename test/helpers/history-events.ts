/**
 * What an execution run by aws-local-stepfunctions would have written to a Step Functions
 * Standard history, counted from the library's event log with the events AWS writes per state:
 * a Lambda task writes TaskStateEntered, TaskScheduled, TaskStarted (TaskSubmitted too with a
 * task token), TaskSucceeded or TaskFailed, TaskStateExited; other states Entered and Exited.
 * Heartbeats write nothing. AWS stops an execution at 25,000 events.
 */
export interface HistoryCount {
  /** Estimated history events. */
  events: number;
  /** States entered: what Step Functions Standard bills. */
  transitions: number;
}

export function countHistory(log: { type: string; state?: string }[], definition: { States: Record<string, { Type: string; Resource?: string }> }): HistoryCount {
  let events = 0;
  let transitions = 0;
  const isTask = (state?: string) => definition.States[state ?? '']?.Type === 'Task';
  const callback = (state?: string) => String(definition.States[state ?? '']?.Resource ?? '').endsWith('.waitForTaskToken');
  for (const e of log) {
    switch (e.type) {
      case 'ExecutionStarted':
      case 'ExecutionSucceeded':
      case 'ExecutionFailed':
      case 'ExecutionTerminated':
        events += 1;
        break;
      case 'StateEntered':
        transitions += 1;
        events += isTask(e.state) ? 3 + (callback(e.state) ? 1 : 0) : 1;
        break;
      case 'StateExited':
        events += isTask(e.state) ? 2 : 1;
        break;
      case 'StateFailed':
        events += 1;
        break;
      case 'StateRetried':
        // The failed attempt's TaskFailed is its StateFailed; a new attempt is scheduled and started.
        events += 2 + (callback(e.state) ? 1 : 0);
        break;
      case 'StateCaught':
        events += 1;
        break;
      default:
        events += 1;
    }
  }
  return { events, transitions };
}
