/** Types of host-tools.mjs (plain JavaScript so that scripts/host-setup.mjs runs without a build). */

export type HostToolUse = 'customize' | 'create' | 'test' | 'test:build' | 'ci';

export interface HostTool {
  /** The name the local worker and the tests use. */
  tool: string;
  /** Where Debian installs it. */
  path: string;
  /** The Debian package that provides it. */
  package: string;
  /** Only `path` counts, not the same name elsewhere on the search path. */
  exact?: boolean;
  /** Data that must be readable, not a program. */
  file?: boolean;
  for: readonly HostToolUse[];
  why: string;
}

export const USES: Record<HostToolUse, string>;
export const HOST_TOOLS: readonly HostTool[];
export function searchPath(env?: NodeJS.ProcessEnv): string;
export function hostTool(nameOrPath: string): HostTool;
export function findHostTool(entry: HostTool, path?: string, isThere?: (path: string, file?: boolean) => boolean): string | undefined;
export function toolsFor(uses: readonly HostToolUse[]): HostTool[];
export function missingHostTools(uses: readonly HostToolUse[], path?: string, isThere?: (path: string, file?: boolean) => boolean): HostTool[];
export function packagesOf(entries: readonly HostTool[]): string[];
export function aptGetInstallLine(packages: readonly string[]): string;

export interface SetupPlan {
  /** nothing: all present; install: root on Debian; report: say what to install and stop. */
  action: 'nothing' | 'install' | 'report';
  /** Why the plan only reports. */
  why?: string;
  missing: HostTool[];
  packages: string[];
  /** One per package: what it provides, why, and for whom. */
  lines: string[];
  /** The apt-get line that installs every missing package. */
  command: string;
}

export function setupPlan(
  uses: readonly HostToolUse[],
  host: { isRoot: boolean; isDebian: boolean; check?: boolean; path?: string; isThere?: (path: string, file?: boolean) => boolean },
): SetupPlan;
