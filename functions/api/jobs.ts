import { listResult } from '#shared/http/list-response.js';
import { createApiHandler } from '#shared/http/api-handler.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { WORKERS } from '#shared/worker-table.js';
import { created, noContent, ok } from '#shared/http/results.js';
import { createJob, type JobCreateInput } from '#shared/domain/job-create.js';
import { deleteJob, deleteJobs } from '#shared/domain/job-delete.js';
import { jobHistory } from '#shared/domain/job-history.js';
import { getJob, patchJob, type JobState, type JobPatchInput } from '#shared/domain/job-state.js';
import { parseJobFilter } from '#shared/domain/job-filters.js';
import { readJobLogs } from '#shared/workflow/job-logs.js';
import { resumeReportedStage } from '#shared/workflow/stages.js';
import { requireJobReportToken } from '#shared/http/job-report-access.js';
import type { ApiHandler, Operations } from '#shared/http/types.js';

const operations: Operations = {
  'jobs.collection GET': { run: (r) => listResult<JobState>(r, r.path, { kind: 'job', allow: { arch: true, job: true }, view: (s) => s.job }) },
  'jobs.collection POST': {
    body: { schema: 'JobCreate' },
    run: async (r) => created(await createJob(r.app, r.body as JobCreateInput)),
  },
  'jobs.collection DELETE': {
    run: async (r) => {
      await deleteJobs(r.app, parseJobFilter(r.query, Date.now()));
      return noContent();
    },
  },
  'jobs.item GET': { run: async (r) => ok(await getJob(r.app, r.params.job_id)) },
  'jobs.item PATCH': {
    precheck: async (r) => void (await getJob(r.app, r.params.job_id)),
    body: { schema: 'JobPatch' },
    run: async (r) => {
      const job = await patchJob(r.app, r.params.job_id, r.body as JobPatchInput);
      // A pod's report is news for the stage waiting on it: resume it now, not at the next reconciler pass.
      await resumeReportedStage(r.app, job.id);
      return ok(job);
    },
  },
  // A job's work reports that a step of it ended: the stage waiting on it is checked now. A check
  // is idempotent, so a repeated report changes nothing; the token is checked before the job is looked up.
  'jobs.checks POST': {
    run: async (r) => {
      await requireJobReportToken(r.app, r.params.job_id, r.authorization);
      await getJob(r.app, r.params.job_id);
      await resumeReportedStage(r.app, r.params.job_id);
      return { status: 202, body: { job_id: r.params.job_id } };
    },
  },
  'jobs.item DELETE': { run: async (r) => (await deleteJob(r.app, r.params.job_id), noContent()) },
  'jobs.history GET': { run: async (r) => ok(await jobHistory(r.app, r.params.job_id)) },
  'jobs.logs GET': { run: async (r) => ok(await readJobLogs(r.app, r.params.job_id)) },
};

export const handlerWith = (context: () => AppContext): ApiHandler => createApiHandler('jobs', operations, context);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = handlerWith(contextFrom(process.env, { workers: WORKERS }));
