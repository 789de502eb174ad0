/**
 * `npm start` runs plain JavaScript: this transpiles every .ts file under shared/, functions/ and
 * infra/ (esbuild, one file in, one file out, no bundling and no type check) into an output
 * directory inside the repository, with the same layout, and copies the other files of those trees
 * (workflow ASL, Kubernetes templates, local worker scripts) next to them, modes kept.
 *
 *   node scripts/build-local.mjs [outdir]    default dist/local
 *
 * The output gets its own package.json with the repository's `imports` map, so `#shared/x.js`
 * resolves inside it; packages resolve from the repository's node_modules by walking up, which is
 * why the output directory has to live inside the repository.
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TREES = ['shared', 'functions', 'infra'];
const outdir = resolve(root, process.argv[2] ?? 'dist/local');

const inside = relative(root, outdir);
if (!inside || inside.startsWith('..') || inside.startsWith(sep) || TREES.includes(inside.split(sep)[0]) || inside.split(sep)[0] === 'node_modules') {
  process.stderr.write(`build-local: the output directory must be a new directory inside the repository, outside ${TREES.join('/, ')}/ and node_modules/ (got ${outdir})\n`);
  process.exit(2);
}

/** Every file under dir, as paths relative to the repository. */
function walk(dir) {
  const files = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...walk(path));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

const started = Date.now();
const files = TREES.flatMap(walk);
const sources = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
const assets = files.filter((f) => !f.endsWith('.ts'));

// A fresh output: no file of a deleted or renamed source stays behind.
rmSync(outdir, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: sources,
  outdir,
  outbase: root,
  bundle: false,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.js' },
  tsconfig: join(root, 'tsconfig.json'),
  logLevel: 'warning',
});

for (const file of assets) {
  const to = join(outdir, file);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(join(root, file), to);
  chmodSync(to, statSync(join(root, file)).mode & 0o7777);
}

const { imports } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(outdir, 'package.json'), `${JSON.stringify({ private: true, type: 'module', imports }, null, 2)}\n`);

process.stderr.write(`build-local: ${sources.length} sources, ${assets.length} other files → ${relative(root, outdir)} in ${Date.now() - started} ms\n`);
