/**
 * Recipe templating as the original's fetch-recipe does it (ims-python-helper, §1.3 step 1):
 * the files listed under `template_files` in the recipe's `.ims_recipe_template.yaml` are
 * rendered with the recipe's template_dictionary, files outside the recipe directory refused,
 * permissions kept. Only Jinja2 variables (`{{ KEY }}`) are supported, which is what recipes
 * use. Lenient where the original is silent: a recipe without the YAML file gets its
 * config.xml rendered; a variable without a value fails the job by name (Jinja2 would render
 * it empty and kiwi would fail later, obscurely).
 */
import { readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import { parse } from 'yaml';

export const TEMPLATE_LIST = '.ims_recipe_template.yaml';
const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export class RecipeTemplateError extends Error {}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function templateFiles(recipeDir: string): Promise<{ files: string[]; listed: boolean }> {
  const listPath = join(recipeDir, TEMPLATE_LIST);
  if (!(await exists(listPath))) return { files: (await exists(join(recipeDir, 'config.xml'))) ? ['config.xml'] : [], listed: false };
  let parsed: unknown;
  try {
    parsed = parse(await readFile(listPath, 'utf8'));
  } catch (error) {
    throw new RecipeTemplateError(`${TEMPLATE_LIST} is not valid YAML: ${(error as Error).message}`);
  }
  const files = (parsed as { template_files?: unknown } | null)?.template_files;
  if (files === undefined || files === null) return { files: [], listed: true };
  if (!Array.isArray(files) || files.some((f) => typeof f !== 'string')) {
    throw new RecipeTemplateError(`${TEMPLATE_LIST}: template_files must be a list of file names`);
  }
  return { files: files as string[], listed: true };
}

/** Renders the recipe's template files in place; returns the files it rendered. */
export async function renderRecipe(recipeDir: string, dictionary: Record<string, string>): Promise<string[]> {
  const { files, listed } = await templateFiles(recipeDir);
  if (listed && files.length > 0 && Object.keys(dictionary).length === 0) {
    throw new RecipeTemplateError(`the recipe lists template files in ${TEMPLATE_LIST}, but its template_dictionary is empty`);
  }
  const root = await realpath(recipeDir);
  const rendered: string[] = [];
  for (const name of files) {
    let path: string;
    try {
      path = await realpath(join(recipeDir, name));
    } catch {
      throw new RecipeTemplateError(`template file ${name} listed in ${TEMPLATE_LIST} does not exist in the recipe`);
    }
    const inside = relative(root, path);
    if (inside.startsWith('..') || isAbsolute(inside)) throw new RecipeTemplateError(`template file ${name} is outside the recipe directory`);
    const text = await readFile(path, 'utf8');
    const unknown = new Set<string>();
    const output = text.replace(VARIABLE, (whole, key: string) => {
      if (Object.hasOwn(dictionary, key)) return dictionary[key];
      unknown.add(key);
      return whole;
    });
    if (unknown.size > 0) {
      throw new RecipeTemplateError(`${name} uses ${[...unknown].join(', ')}, which the recipe's template_dictionary does not define`);
    }
    if (output !== text) {
      // writeFile on an existing file keeps its mode.
      await writeFile(path, output);
      rendered.push(name);
    }
  }
  return rendered;
}
