/**
 * Renders a job's Kubernetes objects from the template files, all of them before anything is
 * created, so a template problem never leaves a half-created job behind.
 *
 * Layout under the template path, as in the original (plus the PVC and DestinationRule, which the
 * original built in code):
 *   create/<recipe_type>/image_<resource>_create.yaml.template
 *   customize/image_<resource>_customize.yaml.template
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import type { WorkerJob } from '../../domain/worker-port.js';
import type { KubernetesWorkerSettings } from './settings.js';
import { substitute, TemplateError } from './template.js';
import { jobNamespace, templateParameters } from './template-params.js';

export type ResourceKind = 'ConfigMap' | 'Service' | 'Job' | 'PersistentVolumeClaim' | 'DestinationRule' | 'Secret';

export interface Manifest {
  kind: ResourceKind;
  name: string;
  namespace: string;
  body: Record<string, unknown>;
}

interface TemplateSpec {
  resource: string;
  kind: ResourceKind;
  /** The record field that must name the same object (the record was written at job creation). */
  expectedName: (job: WorkerJob) => string;
}

/** The original's creation order; the DestinationRule comes last and only with Istio. */
const TEMPLATES: TemplateSpec[] = [
  { resource: 'configmap', kind: 'ConfigMap', expectedName: (j) => j.job.kubernetes_configmap },
  { resource: 'service', kind: 'Service', expectedName: (j) => j.job.kubernetes_service },
  { resource: 'job', kind: 'Job', expectedName: (j) => j.job.kubernetes_job },
  { resource: 'pvc', kind: 'PersistentVolumeClaim', expectedName: (j) => j.job.kubernetes_pvc },
  { resource: 'destinationrule', kind: 'DestinationRule', expectedName: (j) => j.job.kubernetes_service },
];

export function templateFile(templatePath: string, job: WorkerJob, resource: string): string {
  if (job.job.job_type === 'create') {
    return path.join(templatePath, 'create', job.recipeType ?? 'kiwi-ng', `image_${resource}_create.yaml.template`);
  }
  return path.join(templatePath, 'customize', `image_${resource}_customize.yaml.template`);
}

/** An empty value in an unquoted position reads as null: the field is left out. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => [k, withoutNulls(v)]),
    );
  }
  return value;
}

function loadManifest(file: string, text: string, spec: TemplateSpec, job: WorkerJob, namespace: string): Manifest {
  const fail = (problem: string): never => {
    throw new Error(`job template ${file}: ${problem}`);
  };
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    return fail(`not valid YAML after substitution: ${(error as Error).message}`);
  }
  const body = withoutNulls(parsed) as Record<string, unknown> | null;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail('is not a single YAML mapping');
  const metadata = (body.metadata ?? {}) as { name?: unknown; namespace?: unknown };
  if (body.kind !== spec.kind) fail(`makes a ${String(body.kind)}, expected a ${spec.kind}`);
  const expected = spec.expectedName(job);
  if (metadata.name !== expected) fail(`names the ${spec.kind} '${String(metadata.name)}' but the job record says '${expected}'`);
  if (metadata.namespace !== namespace) fail(`puts the ${spec.kind} in namespace '${String(metadata.namespace)}', not the job's '${namespace}'`);
  return { kind: spec.kind, name: expected, namespace, body };
}

/** One or more templates reference variables without a value (or stray `$` signs); lists every one. */
export class JobTemplateError extends Error {
  constructor(readonly problems: TemplateError[]) {
    super(problems.map((p) => p.message).join('; '));
    this.name = 'JobTemplateError';
  }
}

export async function renderJobManifests(job: WorkerJob, settings: KubernetesWorkerSettings): Promise<Manifest[]> {
  const params = templateParameters(job, settings);
  const namespace = jobNamespace(job, settings);
  const specs = TEMPLATES.filter((t) => settings.istio || t.kind !== 'DestinationRule');
  const rendered: Array<{ file: string; text: string; spec: TemplateSpec }> = [];
  const problems: TemplateError[] = [];
  for (const spec of specs) {
    const file = templateFile(settings.templatePath, job, spec.resource);
    let source: string;
    try {
      source = await readFile(file, 'utf8');
    } catch (error) {
      throw new Error(`job template ${file} cannot be read: ${(error as Error).message}`);
    }
    try {
      rendered.push({ file, text: substitute(file, source, params), spec });
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      problems.push(error);
    }
  }
  if (problems.length > 0) throw new JobTemplateError(problems);
  return rendered.map(({ file, text, spec }) => loadManifest(file, text, spec, job, namespace));
}
