/**
 * What the build tests share: the Debian kiwi recipe uploaded and registered the way a user
 * would, a create job followed to its end, and each stage's wall time from the job's history.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from '@jest/globals';
import type { TestService } from '../helpers/service.js';
import { sleep } from '../helpers/until.js';

export const FIXTURE = join(process.cwd(), 'test', 'fixtures', 'kiwi-debian-bookworm');

/** The host's Debian mirror: the first URIs of /etc/apt/sources.list.d/debian.sources. */
export function debianMirror(): string {
  const sources = readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8');
  const uri = /^URIs:\s*(\S+)/m.exec(sources)?.[1];
  if (!uri) throw new Error('no URIs: line in /etc/apt/sources.list.d/debian.sources');
  return uri;
}

/** `stage  seconds` per stage of a job, from its history's stage-started / stage-finished times. */
export function stageTimes(events: { time: string; event: string; stage?: string }[]): string {
  const ms = (t: string) => Date.parse(t.endsWith('Z') ? t : `${t}Z`);
  const lines: string[] = [];
  for (const start of events.filter((e) => e.event === 'stage-started')) {
    const end = events.find((e) => e.event === 'stage-finished' && e.stage === start.stage && ms(e.time) >= ms(start.time));
    lines.push(`  ${start.stage!.padEnd(10)} ${end ? ((ms(end.time) - ms(start.time)) / 1000).toFixed(1).padStart(7) : '      -'} s`);
  }
  return lines.join('\n');
}

/**
 * Uploads the recipe fixture as a tar.gz (with its md5 as S3 metadata), registers it with the
 * mirror as template value, and registers a public key: what a create job needs.
 */
export async function registerDebianRecipe(svc: TestService, scratch: string, extra: Record<string, unknown> = {}): Promise<{ recipeId: string; keyId: string }> {
  const archive = join(scratch, 'recipe.tar.gz');
  execFileSync('tar', ['-czf', archive, '-C', FIXTURE, '.']);
  const body = readFileSync(archive);
  await svc.putObject('ims', 'build-test/recipe.tar.gz', body, { md5sum: createHash('md5').update(body).digest('hex') });
  const recipe = await svc.request('POST', '/v3/recipes', {
    name: 'debian12-minimal',
    recipe_type: 'kiwi-ng',
    linux_distribution: 'sles15',
    link: { path: 's3://ims/build-test/recipe.tar.gz', type: 's3' },
    template_dictionary: [{ key: 'DEBIAN_MIRROR', value: debianMirror() }],
    ...extra,
  });
  expect(recipe.status).toBe(201);
  const key = await svc.request('POST', '/v3/public-keys', { name: 'builder', public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1aWxkZXIta2V5LW5vdC11c2VkLWZvci1sb2dpbg builder' });
  expect(key.status).toBe(201);
  return { recipeId: recipe.body.id, keyId: key.body.id };
}

/** Polls a job until it ends (or 50 minutes pass); returns its record and the seconds it took. */
export async function jobEnd(svc: TestService, id: string, started: number): Promise<{ job: any; seconds: string }> {
  let job: any;
  for (;;) {
    job = (await svc.request('GET', `/v3/jobs/${id}`)).body;
    if (job.status === 'success' || job.status === 'error' || Date.now() - started > 50 * 60_000) break;
    await sleep(2000);
  }
  return { job, seconds: ((Date.now() - started) / 1000).toFixed(1) };
}

/** For a job that failed: its stage times and the tail of each of its logs, to read in CI. */
export async function printFailure(svc: TestService, id: string, events: { time: string; event: string; stage?: string }[]): Promise<void> {
  process.stdout.write(`\n${stageTimes(events)}\n`);
  const logs = (await svc.request('GET', `/v3/jobs/${id}/logs`)).body.logs as { name: string; text: string }[];
  process.stdout.write(logs.map((l) => `--- ${l.name}\n${l.text.slice(-3000)}`).join('\n'));
}
