/**
 * The layering of docs/architecture.md, checked on the import graph of the source files: the
 * domain imports nothing outside itself (its request contract included), nothing in shared/ reaches
 * the entry points or the infrastructure, and no two units import each other, however indirectly.
 */
import { describe, expect, test } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { layerViolations, readImportGraph, resolveSpecifier, specifiersOf, unitCycles, type ImportGraph, type LayerRule } from '../helpers/import-graph.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const RULES: LayerRule[] = [
  { from: 'shared/domain/', allow: ['shared/domain/'] },
  { from: 'shared/domain/contract/', allow: ['shared/domain/contract/'] },
  { from: 'shared/', deny: ['functions/', 'infra/'] },
  { from: 'functions/', deny: ['infra/'] },
];

describe('the import graph of shared/, functions/ and infra/', () => {
  const graph = readImportGraph(ROOT, ['shared', 'functions', 'infra']);

  test('is read: every layer is there and its imports are resolved', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('shared/domain/images.ts')).toContain('shared/domain/errors.ts');
    expect(graph.get('shared/wiring.ts')).toContain('shared/store/dynamo-record-store.ts');
    expect(graph.get('functions/api/jobs.ts')).toContain('shared/domain/job-create.ts');
  });

  test('follows the layering rules', () => {
    expect(layerViolations(graph, RULES)).toEqual([]);
  });

  test('has no cycle between units', () => {
    expect(unitCycles(graph)).toEqual([]);
  });
});

describe('the check itself', () => {
  test('reads static, re-exported, side-effect and dynamic imports, not comments', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from '#shared/c.js';",
      "import './d.js';",
      "const e = await import('./e.js');",
      "// import { f } from './f.js';",
      "/* import { g } from './g.js'; */",
      "import { h } from 'node:fs';",
    ].join('\n');
    expect(specifiersOf(text)).toEqual(['./a.js', '../b.js', '#shared/c.js', './d.js', './e.js', 'node:fs']);
    expect(resolveSpecifier('shared/domain/x.ts', '../http/y.js')).toBe('shared/http/y.ts');
    expect(resolveSpecifier('functions/api/x.ts', '#shared/wiring.js')).toBe('shared/wiring.ts');
    expect(resolveSpecifier('shared/x.ts', 'node:fs')).toBeUndefined();
  });

  test('fails on a domain file importing outward, and on shared/ importing an entry point', () => {
    const graph: ImportGraph = new Map([
      ['shared/domain/jobs.ts', ['shared/domain/records.ts', 'shared/workers/worker.ts']],
      ['shared/domain/records.ts', []],
      ['shared/workers/worker.ts', ['shared/domain/records.ts']],
      ['shared/http/routes.ts', ['functions/api/jobs.ts']],
    ]);
    expect(layerViolations(graph, RULES)).toEqual([
      'shared/domain/jobs.ts -> shared/workers/worker.ts (shared/domain/ may import only shared/domain/)',
      'shared/http/routes.ts -> functions/api/jobs.ts (shared/ must not import functions/, infra/)',
    ]);
  });

  test('fails on a cycle between folders, also through a third one', () => {
    const graph: ImportGraph = new Map([
      ['shared/domain/a.ts', ['shared/workflow/b.ts']],
      ['shared/workflow/b.ts', ['shared/workers/c.ts']],
      ['shared/workers/c.ts', ['shared/domain/d.ts']],
      ['shared/domain/d.ts', []],
      ['shared/store/e.ts', ['shared/domain/d.ts']],
    ]);
    expect(unitCycles(graph)).toEqual([['shared/domain', 'shared/workers', 'shared/workflow']]);
    // Files directly in shared/ are units of their own; a file importing its own folder is no cycle.
    const rootFiles: ImportGraph = new Map([
      ['shared/wiring.ts', ['shared/store/e.ts', 'shared/config.ts']],
      ['shared/store/e.ts', ['shared/config.ts', 'shared/store/f.ts']],
      ['shared/config.ts', []],
    ]);
    expect(unitCycles(rootFiles)).toEqual([]);
  });
});
