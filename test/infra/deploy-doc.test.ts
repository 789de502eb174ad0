/**
 * docs/deploy.md against the code: its settings table is the one infra/stacks/settings.ts defines, and
 * its permission table is what the synthesized template grants each function (per function:
 * which actions on which kind of resource), with the recipe-upload trigger on and the known
 * hosts in a secret.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '#infra/constructs/ims-function.js';
import { renderSettingsTable } from '#infra/stacks/settings.js';
import { KNOWN_HOSTS_SECRET, synthStack, UPLOADER } from './synth.js';

const doc = readFileSync(join(REPO_ROOT, 'docs/deploy.md'), 'utf8');

function between(start: string, end: string): string {
  const from = doc.indexOf(start);
  const to = doc.indexOf(end, from);
  if (from < 0 || to < 0) throw new Error(`docs/deploy.md has no '${start}' ... '${end}'`);
  return doc.slice(doc.indexOf('\n', from) + 1, to).trim();
}

type Statement = { Action: string | string[]; Resource: unknown };
const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
const COLUMNS = ['records table', 'ims bucket', 'boot-images bucket', 'workflow', 'secrets', 'other'] as const;

/** The permission table the template implies: function id → its cells. */
function permissionsOfTemplate(): Map<string, string[]> {
  const { stack, ofType, logicalId } = synthStack('ImsDoc', {
    recipeUploadTrigger: 'true',
    recipeUploadPrincipals: UPLOADER,
    remoteNodeKnownHostsSecretArn: KNOWN_HOSTS_SECRET,
  });
  const secrets: [string, string][] = [
    [logicalId(stack.kubeconfigSecret), 'kubeconfig'],
    [logicalId(stack.remoteNodeKeySecret), 'node key'],
    [logicalId(stack.s3SigningKeySecret), 'signing key'],
    [logicalId(stack.jobReportKeySecret), 'report key'],
    [KNOWN_HOSTS_SECRET, 'known hosts'],
  ];
  const table = new Map<string, string[]>();
  for (const f of stack.allFunctions()) {
    const role = logicalId(f.fn.role!);
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles ?? []).includes(`"${role}"`))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Statement[]);
    const on = (needle: string) => statements.filter((s) => JSON.stringify(s.Resource).includes(needle)).flatMap((s) => asList(s.Action));
    const access = (actions: string[], write: RegExp) => (actions.length === 0 ? '-' : actions.some((a) => write.test(a)) ? 'read/write' : 'read');
    const actions = statements.flatMap((s) => asList(s.Action));
    const has = (action: string | RegExp) => actions.some((a) => (typeof action === 'string' ? a === action : action.test(a)));
    const workflow = [
      has('states:StartExecution') && 'start',
      has('states:StopExecution') && 'stop',
      has(/^states:SendTask/) && 'callbacks',
      has('states:DescribeExecution') && 'describe',
    ].filter(Boolean);
    const readSecrets = secrets.filter(([id]) => on(`"${id}`).concat(on(id)).includes('secretsmanager:GetSecretValue')).map(([, name]) => name);
    const other = [has('sqs:SendMessage') && 'dead-letter queue', has('ssm:GetParameter') && 'known-hosts parameter'].filter(Boolean);
    const known = new RegExp(`^(dynamodb|s3|states|secretsmanager|sqs|ssm|logs|xray):`);
    expect({ fn: f.node.id, unexplained: actions.filter((a) => !known.test(a)) }).toEqual({ fn: f.node.id, unexplained: [] });
    table.set(f.node.id, [
      access(on(`"${logicalId(stack.table)}"`), /^dynamodb:(Put|Update|Delete|BatchWrite)/),
      access(on(`"${logicalId(stack.imsBucket)}"`), /^s3:(Put|Delete)/),
      access(on(`"${logicalId(stack.bootImagesBucket)}"`), /^s3:(Put|Delete)/),
      workflow.join(', ') || '-',
      readSecrets.join(', ') || '-',
      other.join(', ') || '-',
    ]);
  }
  return table;
}

/** The permission table of the doc: function id → its cells (a row may name several functions). */
function permissionsOfDoc(): Map<string, string[]> {
  const rows = between('<!-- permission table', '<!-- end of permission table').split('\n').slice(2);
  const table = new Map<string, string[]>();
  for (const row of rows) {
    const [names, ...cells] = row.split('|').slice(1, -1).map((c) => c.trim());
    expect(cells).toHaveLength(COLUMNS.length);
    // The function ids are the backquoted names; a parenthesis may follow them.
    for (const [, name] of names.matchAll(/`([^`]+)`/g)) table.set(name, cells);
  }
  return table;
}

describe('docs/deploy.md', () => {
  let template: Map<string, string[]>;
  beforeAll(() => {
    template = permissionsOfTemplate();
  }, 120_000);

  test('lists every context setting, as infra/stacks/settings.ts defines it', () => {
    expect(between('<!-- settings table', '<!-- end of settings table')).toBe(renderSettingsTable());
  });

  test("its permission table is the template's, function by function", () => {
    const documented = permissionsOfDoc();
    expect([...documented.keys()].sort()).toEqual([...template.keys()].sort());
    for (const [fn, cells] of template) {
      const row = (c: string[] | undefined) => Object.fromEntries(COLUMNS.map((col, i) => [col, c?.[i]]));
      expect({ fn, ...row(documented.get(fn)) }).toEqual({ fn, ...row(cells) });
    }
  });
});
