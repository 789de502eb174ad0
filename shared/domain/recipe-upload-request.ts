/**
 * What an uploaded recipe archive asks for: the recipe's fields and, optionally, a build. They
 * come from the object's user metadata (`ims-*`) and from a sidecar JSON object stored next to
 * it at `<key>.json`; metadata wins field by field. The fields are those of POST /recipes and are
 * checked with the same compiled schema, so an upload obeys exactly the rules of the API.
 *
 * Metadata names are the JSON names, dashed and prefixed: `ims-recipe-type` is `recipe_type`.
 * Metadata values are strings: booleans are read leniently as POST does ("true", "yes", "1"),
 * and `ims-template-dictionary` holds the JSON of the list.
 */
import { requestSchemas } from './contract/request-schemas.js';
import type { ErrorMap } from './errors.js';
import type { RecipeInput } from './recipes.js';
import { compileValidator, isPlainObject, parseLenientBoolean, type FieldSchema } from './validation.js';

export const METADATA_PREFIX = 'ims-';
export const SIDECAR_SUFFIX = '.json';

/** The build an upload asks for: a create job from the recipe. */
export interface UploadBuild {
  public_key_id: string;
  image_root_archive_name: string;
  enable_debug: boolean;
}

export interface UploadRequest {
  recipe: Omit<RecipeInput, 'link'>;
  build?: UploadBuild;
}

export type ParsedUpload =
  | { kind: 'undescribed' }
  | { kind: 'invalid'; errors: ErrorMap }
  | { kind: 'valid'; request: UploadRequest };

/** Fields that describe the build, not the recipe; the rest go to the RecipeCreate schema. */
const BUILD_FIELDS = ['build', 'public_key_id', 'image_name', 'enable_debug'] as const;
/** The job's artifact is the recipe, whose id is not known yet when the upload is checked. */
const PLACEHOLDER_ID = '00000000-0000-0000-0000-000000000000';

const recipeValidator = compileValidator<Omit<RecipeInput, 'link'>>(requestSchemas.RecipeCreate as FieldSchema);
const jobValidator = compileValidator<UploadBuild>(requestSchemas.JobCreate as FieldSchema);

function metadataFields(metadata: Record<string, string>, errors: ErrorMap): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(metadata)) {
    // S3 lower-cases metadata names; other metadata (md5sum, ...) is not ours.
    if (!name.toLowerCase().startsWith(METADATA_PREFIX)) continue;
    const field = name.slice(METADATA_PREFIX.length).toLowerCase().replaceAll('-', '_');
    if (field !== 'template_dictionary') fields[field] = value;
    else {
      try {
        fields[field] = JSON.parse(value);
      } catch {
        errors[field] = ['Not valid JSON.'];
      }
    }
  }
  return fields;
}

function sidecarFields(text: string | undefined, errors: ErrorMap): Record<string, unknown> {
  if (text === undefined) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (isPlainObject(value)) return value;
  } catch {
    // reported below
  }
  errors._sidecar = ['Not a JSON object.'];
  return {};
}

function checkBuild(fields: Record<string, unknown>, name: unknown, errors: ErrorMap): UploadBuild | undefined {
  const wanted = parseLenientBoolean(fields.build ?? false);
  if (wanted === undefined) errors.build = ['Not a valid boolean.'];
  if (!wanted) return undefined;
  const job = jobValidator({
    job_type: 'create',
    artifact_id: PLACEHOLDER_ID,
    image_root_archive_name: fields.image_name ?? name,
    // Absent fields stay absent, so that the schema reports them as missing.
    ...(fields.public_key_id !== undefined ? { public_key_id: fields.public_key_id } : {}),
    ...(fields.enable_debug !== undefined ? { enable_debug: fields.enable_debug } : {}),
  });
  if (job.ok) return { public_key_id: job.value.public_key_id, image_root_archive_name: job.value.image_root_archive_name, enable_debug: job.value.enable_debug };
  const renamed: Record<string, string> = { image_root_archive_name: 'image_name' };
  for (const [field, messages] of Object.entries(job.errors)) errors[renamed[field] ?? field] = messages;
  return undefined;
}

/**
 * Reads the request of an upload from its metadata and sidecar text. `undescribed` when neither
 * says anything: a plain archive, left for POST /recipes to register.
 */
export function parseUploadRequest(metadata: Record<string, string>, sidecar: string | undefined): ParsedUpload {
  const errors: ErrorMap = {};
  const fromMetadata = metadataFields(metadata, errors);
  if (sidecar === undefined && Object.keys(fromMetadata).length === 0 && Object.keys(errors).length === 0) return { kind: 'undescribed' };
  const fields = { ...sidecarFields(sidecar, errors), ...fromMetadata };

  const recipeFields = Object.fromEntries(Object.entries(fields).filter(([k]) => !(BUILD_FIELDS as readonly string[]).includes(k)));
  // The link is the uploaded object itself; one given as well would be ignored or contradict it.
  if ('link' in recipeFields) errors.link = ['The link is the uploaded object; leave it out.'];
  delete recipeFields.link;
  const recipe = recipeValidator(recipeFields);
  if (!recipe.ok) Object.assign(errors, recipe.errors);
  const build = checkBuild(fields, recipeFields.name, errors);

  if (Object.keys(errors).length > 0 || !recipe.ok) return { kind: 'invalid', errors };
  return { kind: 'valid', request: { recipe: recipe.value, ...(build ? { build } : {}) } };
}
