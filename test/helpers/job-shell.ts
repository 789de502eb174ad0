/**
 * The user's side of a job's SSH shell, through the real OpenSSH client and sftp: what the
 * local worker tests log in with, run and upload.
 */
import { expect } from '@jest/globals';
import { execFile } from 'node:child_process';

export interface ShellClient {
  ssh(host: string, port: number, command: string): Promise<{ code: number; stdout: string; stderr: string }>;
  sftp(host: string, port: number, batch: string): Promise<string>;
  sshArgs(host: string, port: number): string[];
}

const COMMON = ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];

/** A client that logs in as root with the private key in `keyFile`. */
export function shellClient(keyFile: string): ShellClient {
  const sshArgs = (host: string, port: number) => [...COMMON, '-i', keyFile, '-p', String(port), '-o', 'ConnectTimeout=10', `root@${host}`];
  return {
    sshArgs,
    ssh: (host, port, command) =>
      new Promise((resolve) => {
        execFile('ssh', [...sshArgs(host, port), command], { timeout: 30_000 }, (error, stdout, stderr) => {
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
        });
      }),
    sftp: (host, port, batch) =>
      new Promise((resolve, reject) => {
        const args = [...COMMON, '-i', keyFile, '-P', String(port), '-b', '-', `root@${host}`];
        const child = execFile('sftp', args, { timeout: 30_000 }, (error, stdout, stderr) => (error ? reject(new Error(`sftp: ${stderr}`)) : resolve(stdout)));
        child.stdin!.end(batch);
      }),
  };
}

interface JobApi {
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

/** Polls until `ok` holds or time runs out, returning the last value (a file's `until`). */
type Until = <T>(what: () => Promise<T>, ok: (value: T) => boolean) => Promise<T>;

/** Posts a customize job and waits until its shell is served; returns the job and where the shell is. */
export async function customizeUntilShell(api: JobApi, until: Until, body: Record<string, unknown>) {
  const created = await api.request('POST', '/v3/jobs', { job_type: 'customize', ...body });
  expect(created.status).toBe(201);
  const id: string = created.body.id;
  const waiting = await until(
    () => api.request('GET', `/v3/jobs/${id}`).then((r) => r.body),
    (j) => j?.status === 'waiting_on_user' || j?.status === 'success' || j?.status === 'error',
  );
  expect(waiting.status).toBe('waiting_on_user');
  const container = waiting.ssh_containers[0];
  const { host, port } = container.connection_info.customer_access;
  return { id, job: waiting, container, host: host as string, port: port as number };
}
