/**
 * A small import-graph check over the source files: which file imports which (relative and
 * `#shared/…`, `#functions/…`, `#infra/…` specifiers, static, re-exported or dynamic), grouped
 * into units (a folder; a file directly under shared/ is a unit of its own, as wiring.ts,
 * config.ts and logger.ts are different layers; see unitOf), then the layering rules of
 * docs/architecture.md and the cycles between units.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';

/** file → the files it imports, every path relative to the repository root with `/` separators. */
export type ImportGraph = Map<string, string[]>;

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;
const ALIASES: Record<string, string> = { '#shared/': 'shared/', '#functions/': 'functions/', '#infra/': 'infra/' };

function toPosix(path: string): string {
  return path.split(sep).join('/');
}

/** Every specifier a source text imports from (comments are not read as code). */
export function specifiersOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  return [...code.matchAll(SPECIFIER)].map((m) => m[1]);
}

/** The repository file a specifier names, or undefined for packages and node: modules. */
export function resolveSpecifier(from: string, specifier: string): string | undefined {
  let target: string | undefined;
  if (specifier.startsWith('.')) target = toPosix(normalize(join(dirname(from), specifier)));
  for (const [alias, folder] of Object.entries(ALIASES)) if (specifier.startsWith(alias)) target = folder + specifier.slice(alias.length);
  return target?.replace(/\.js$/, '.ts');
}

function walk(root: string, dir: string, out: string[]): void {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') walk(root, path, out);
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
}

/** The import graph of every .ts file under the given top-level folders. */
export function readImportGraph(root: string, folders: string[]): ImportGraph {
  const files: string[] = [];
  for (const folder of folders) walk(root, folder, files);
  const graph: ImportGraph = new Map();
  for (const file of files) {
    const targets = specifiersOf(readFileSync(join(root, file), 'utf8'))
      .map((s) => resolveSpecifier(file, s))
      .filter((t): t is string => t !== undefined && t.endsWith('.ts'));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Folders that are one unit with everything under them: the HTTP layer and its middleware chain. */
const WHOLE_UNITS = ['shared/http'];

/**
 * The unit a file belongs to: its folder, except that each file directly in shared/ is its own,
 * and a folder of WHOLE_UNITS holds its subfolders.
 */
export function unitOf(file: string): string {
  const whole = WHOLE_UNITS.find((unit) => file.startsWith(`${unit}/`));
  if (whole) return whole;
  const folder = file.slice(0, file.lastIndexOf('/'));
  return folder === 'shared' ? file : folder;
}

export interface LayerRule {
  /** Files whose path starts with this prefix… */
  from: string;
  /** …may import only files starting with one of these prefixes (and anything not in the repository). */
  allow?: string[];
  /** …must not import files starting with any of these prefixes. */
  deny?: string[];
}

/** Imports that break a rule, as `importer -> imported (rule)`. */
export function layerViolations(graph: ImportGraph, rules: LayerRule[]): string[] {
  const found: string[] = [];
  for (const [file, targets] of graph) {
    for (const rule of rules) {
      if (!file.startsWith(rule.from)) continue;
      for (const target of targets) {
        const allowed = !rule.allow || rule.allow.some((p) => target.startsWith(p));
        const denied = rule.deny?.some((p) => target.startsWith(p)) ?? false;
        if (!allowed || denied) found.push(`${file} -> ${target} (${rule.from} ${allowed ? 'must not import' : 'may import only'} ${(allowed ? rule.deny! : rule.allow!).join(', ')})`);
      }
    }
  }
  return found;
}

/** The cycles between units (strongly connected components of more than one unit), each as its sorted units. */
export function unitCycles(graph: ImportGraph): string[][] {
  const edges = new Map<string, Set<string>>();
  for (const [file, targets] of graph) {
    const from = unitOf(file);
    if (!edges.has(from)) edges.set(from, new Set());
    for (const target of targets) {
      const to = unitOf(target);
      if (to !== from) edges.get(from)!.add(to);
    }
  }
  // Tarjan's algorithm.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (unit: string): void => {
    index.set(unit, counter);
    low.set(unit, counter++);
    stack.push(unit);
    onStack.add(unit);
    for (const next of edges.get(unit) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(unit, Math.min(low.get(unit)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(unit, Math.min(low.get(unit)!, index.get(next)!));
    }
    if (low.get(unit) === index.get(unit)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== unit);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const unit of edges.keys()) if (!index.has(unit)) visit(unit);
  return cycles;
}
