/**
 * Makes sure this host has the tools that jobs, tests or CI use (shared/host-tools.mjs), before
 * they fail half-way with a "not found". npm test, npm run test:build and npm start run it first;
 * .ci/run runs it for everything.
 *
 *   node scripts/host-setup.mjs [--warn] [--check] <use>...
 *     use       customize, create (the local worker's job kinds), test, test:build, ci
 *     --warn    report what is missing but exit 0 (npm start: records work without any tool)
 *     --check   never install, only report
 *   IMS_HOST_SETUP=skip: does nothing (a host that runs only the tests that need no tools)
 *
 * Everything present: says nothing and exits 0 at once, without touching apt. Something missing,
 * as root on Debian: installs the packages with apt-get (one line per package saying what and
 * why; `apt-get update` first only when the package lists are missing or the install fails).
 * Elsewhere: exits 1 at once, printing the apt-get line to run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { missingHostTools, searchPath, setupPlan, USES } from '../shared/host-tools.mjs';

const args = process.argv.slice(2);
const warnOnly = args.includes('--warn');
const checkOnly = args.includes('--check');
const uses = args.filter((a) => !a.startsWith('--'));
const unknownFlag = args.find((a) => a.startsWith('--') && a !== '--warn' && a !== '--check');
if (uses.length === 0 || unknownFlag || uses.some((u) => !(u in USES))) {
  process.stderr.write(`usage: node scripts/host-setup.mjs [--warn] [--check] <use>...  (use: ${Object.keys(USES).join(', ')})\n`);
  process.exit(2);
}

const say = (line) => process.stderr.write(`host-setup: ${line}\n`);
// An escape for hosts that cannot have the tools and run only the tests that need none.
if (process.env.IMS_HOST_SETUP === 'skip') process.exit(0);
const PATH = searchPath();
const forWhat = uses.map((u) => USES[u]).join(', ');

const plan = setupPlan(uses, {
  isRoot: process.getuid?.() === 0,
  isDebian: existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get'),
  check: checkOnly,
  path: PATH,
});
if (plan.action === 'nothing') process.exit(0);

if (plan.action === 'report') {
  say(`this host lacks what ${forWhat} need${uses.length === 1 ? 's' : ''}:`);
  for (const line of plan.lines) say(`  ${line}`);
  say(`${plan.why}:\n  ${plan.command}`);
  if (!warnOnly) say('(IMS_HOST_SETUP=skip skips this check, e.g. for npm test -- test/unit, which needs none of them)');
  process.exit(warnOnly ? 0 : 1);
}

function apt(aptArgs) {
  // The lock timeout lets two setups (two npm test at once) wait for each other instead of failing.
  const result = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...aptArgs], {
    env: { ...process.env, PATH, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

function listsPresent() {
  try {
    return readdirSync('/var/lib/apt/lists').some((f) => /_Packages(\.\w+)?$/.test(f));
  } catch {
    return false;
  }
}

function update() {
  say('apt-get update');
  const result = apt(['update', '-q']);
  if (!result.ok) say(`apt-get update failed:\n${result.output.trim()}`);
  return result.ok;
}

for (const line of plan.lines) say(`installing ${line}`);
const install = ['install', '-y', '-q', '--no-install-recommends', ...plan.packages];
let updated = false;
if (!listsPresent()) updated = update();
let result = apt(install);
// Lists that are there may be stale (packages moved on the mirror): update once and retry.
if (!result.ok && !updated && update()) result = apt(install);

const still = missingHostTools(uses, PATH);
if (!result.ok || still.length > 0) {
  if (!result.ok) say(`apt-get install failed:\n${result.output.trim().split('\n').slice(-15).join('\n')}`);
  if (still.length > 0) say(`still missing after the install: ${still.map((t) => `${t.path} (${t.package})`).join(', ')}`);
  say(`install by hand, as root:\n  ${plan.command}`);
  process.exit(warnOnly ? 0 : 1);
}
say(`installed ${plan.packages.join(' ')}: every host tool of ${forWhat} is present`);
