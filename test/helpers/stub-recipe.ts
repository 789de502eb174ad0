/**
 * Create jobs on the local worker without a real build: the tests' stub kiwi-ng (STUB_KIWI, a
 * tiny root in a second, here with a dpkg database of one package) put first on PATH, and a
 * recipe for it registered.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STUB_KIWI } from './podman-node.js';

/**
 * Writes the stub as `dir`/bin/kiwi-ng and puts that directory first on PATH; returns a function
 * that restores PATH. The local worker reads PATH when it loads: call this before anything
 * imports it (tiny-image.ts does), i.e. import those dynamically afterwards.
 */
export function stubKiwiOnPath(dir: string): () => void {
  const saved = process.env.PATH;
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  // With a dpkg database of one package, so the build has a package list to register.
  const dpkg = `mkdir -p "$root/var/lib/dpkg" && printf 'Package: busybox\\nStatus: install ok installed\\nVersion: 1.36\\nArchitecture: amd64\\n\\n' > "$root/var/lib/dpkg/status"\n`;
  writeFileSync(join(bin, 'kiwi-ng'), `${STUB_KIWI}${dpkg}`);
  chmodSync(join(bin, 'kiwi-ng'), 0o755);
  process.env.PATH = `${bin}:${saved}`;
  return () => {
    process.env.PATH = saved;
  };
}

interface RecipeApi {
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  putObject(bucket: string, key: string, body: Buffer, metadata?: Record<string, string>): Promise<void>;
}

/** Uploads a recipe the stub builds (at `ims/<name>/recipe.tgz`) and registers it; returns its id. */
export async function registerStubRecipe(api: RecipeApi, dir: string, name: string): Promise<string> {
  const recipe = join(dir, `recipe-${name}`);
  mkdirSync(recipe);
  writeFileSync(join(recipe, 'config.xml'), '<?xml version="1.0"?>\n<image schemaversion="7.5" name="stub"/>\n');
  const archive = join(dir, `recipe-${name}.tgz`);
  execFileSync('tar', ['-czf', archive, '-C', recipe, '.']);
  const bytes = readFileSync(archive);
  await api.putObject('ims', `${name}/recipe.tgz`, bytes, { md5sum: createHash('md5').update(bytes).digest('hex') });
  const created = await api.request('POST', '/v3/recipes', { name, recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: `s3://ims/${name}/recipe.tgz`, type: 's3' } });
  if (created.status !== 201) throw new Error(`registering the stub recipe answered ${created.status}`);
  return created.body.id as string;
}
