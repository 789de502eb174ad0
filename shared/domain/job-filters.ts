/**
 * Filters of DELETE /jobs: `status` (repeatable), `job_type`, `age`. Unlike the original, an
 * age that does not parse is a 400 (the original read it as 0 and deleted every job), combined
 * ages add up (`1h30m` is 90 minutes), and filter errors carry their text in `detail`.
 */
import { InvalidRequestError } from './errors.js';
import { JOB_STATUSES, type JobRecord, type JobStatus } from './records.js';

export interface JobFilter {
  statuses?: JobStatus[];
  jobType?: string;
  /** Only jobs created before this time (epoch ms) match. */
  createdBefore?: number;
}

const UNIT_MS: Record<string, number> = { w: 7 * 86400_000, d: 86400_000, h: 3600_000, m: 60_000 };
const AGE_PART = /(\d+)\s*(w(?:eeks?|ks?)?|d(?:ays?)?|h(?:ours?|rs?)?|m(?:in(?:ute)?s?)?)/gy;

/** `1d`, `6h`, `90m`, `2w`, `3days`, `1h30m`, `2w3d` → milliseconds; undefined when it does not parse. */
export function parseAge(text: string): number | undefined {
  const input = text.trim().toLowerCase();
  if (!input) return undefined;
  AGE_PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = AGE_PART.exec(input); m; m = AGE_PART.exec(input)) {
    total += Number(m[1]) * UNIT_MS[m[2][0]];
    consumed = AGE_PART.lastIndex;
    while (input[consumed] === ' ') consumed++;
    AGE_PART.lastIndex = consumed;
  }
  return consumed === input.length ? total : undefined;
}

function badFilter(message: string): InvalidRequestError {
  return new InvalidRequestError(message);
}

export function parseJobFilter(query: Record<string, string[]>, nowMs: number): JobFilter {
  const filter: JobFilter = {};
  if (query.status) {
    filter.statuses = query.status.map((raw) => {
      const value = raw.toLowerCase();
      if (!(JOB_STATUSES as readonly string[]).includes(value)) {
        throw badFilter(`Unsupported status value '${raw}'. Supported values are: ${JOB_STATUSES.join(', ')}.`);
      }
      return value as JobStatus;
    });
  }
  if (query.job_type) {
    const value = query.job_type[0];
    if (value !== 'create' && value !== 'customize') throw badFilter(`Unsupported job_type value '${value}'. Supported values are: create, customize.`);
    filter.jobType = value;
  }
  if (query.age) {
    const age = parseAge(query.age[0]);
    if (age === undefined) {
      throw badFilter(`Unsupported age value '${query.age[0]}'. Give a number with a unit: w, d, h or m (for example 1d, 6h, 90m, 2w, 1h30m).`);
    }
    filter.createdBefore = nowMs - age;
  }
  return filter;
}

/** `created` is naive UTC (see time.ts). */
export function createdMs(job: Pick<JobRecord, 'created'>): number {
  return Date.parse(`${job.created}Z`);
}

export function matchesJobFilter(job: JobRecord, filter: JobFilter): boolean {
  if (filter.statuses && !filter.statuses.includes(job.status)) return false;
  if (filter.jobType && job.job_type !== filter.jobType) return false;
  if (filter.createdBefore !== undefined && !(createdMs(job) < filter.createdBefore)) return false;
  return true;
}
