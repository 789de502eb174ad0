/**
 * A worker that serves the job's SSH shell itself (not behind the Kubernetes Service the
 * record's connection_info names at creation) reports where it listens; the record must then
 * show that host and port, or users could not reach the shell.
 */
import type { JobState } from '../domain/job-state.js';
import type { SshEndpoint } from '../domain/worker-port.js';

/** The state with `ssh_containers[0]` showing the endpoint; the same object when it already does. */
export function withSshEndpoint(state: JobState, endpoint: SshEndpoint | undefined): JobState {
  const first = state.job.ssh_containers?.[0];
  if (!endpoint || !first) return state;
  const connectionInfo = Object.fromEntries(
    Object.entries(first.connection_info).map(([name, info]) => [
      name,
      { host: endpoint.host ?? info.host, port: endpoint.port ?? info.port },
    ]),
  );
  const next = { ...first, status: endpoint.status, connection_info: connectionInfo };
  if (JSON.stringify(next) === JSON.stringify(first)) return state;
  return { ...state, job: { ...state.job, ssh_containers: [next, ...state.job.ssh_containers!.slice(1)] } };
}
