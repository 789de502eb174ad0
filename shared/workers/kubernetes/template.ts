/**
 * `${name}` substitution with the rules of Python's string.Template (which the original used):
 * `$name` and `${name}` are placeholders, `$$` is a literal `$`, any other `$` is an error.
 *
 * Unlike the original, every value is escaped for a YAML double-quoted scalar, so a value with
 * quotes, colons or newlines (a public key, a template dictionary) cannot change the structure of
 * the manifest. Templates therefore quote every free-text placeholder; values used unquoted
 * (booleans, names) contain nothing to escape. A value of "" in an unquoted position reads as
 * YAML null, which the manifest loader takes as "field not set".
 */

/** Placeholders referenced without a value, or `$` signs that are no placeholder. */
export class TemplateError extends Error {
  constructor(
    readonly template: string,
    readonly missing: string[],
    readonly invalid: string[] = [],
  ) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`variables without a value: ${missing.join(', ')}`);
    if (invalid.length > 0) parts.push(`invalid placeholders: ${invalid.join(', ')}`);
    super(`job template ${template}: ${parts.join('; ')}`);
    this.name = 'TemplateError';
  }
}

const PLACEHOLDER = /\$(?:(\$)|([_a-z][_a-z0-9]*)|\{([_a-z][_a-z0-9]*)\}|())/gi;

/** JSON string escapes are valid YAML double-quoted escapes. */
export function escapeForYamlDoubleQuotes(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

/** Substitutes every placeholder; collects all problems and throws them as one TemplateError. */
export function substitute(template: string, text: string, values: Readonly<Record<string, string>>): string {
  const missing = new Set<string>();
  const invalid: string[] = [];
  const out = text.replace(PLACEHOLDER, (match: string, escaped?: string, named?: string, braced?: string, _bad?: string, offset = 0) => {
    if (escaped !== undefined) return '$';
    const name = named ?? braced;
    if (name === undefined) {
      invalid.push(`'$' at line ${lineOf(text, offset)}`);
      return match;
    }
    const value = Object.hasOwn(values, name) ? values[name] : undefined;
    if (value === undefined) {
      missing.add(name);
      return match;
    }
    return escapeForYamlDoubleQuotes(value);
  });
  if (missing.size > 0 || invalid.length > 0) throw new TemplateError(template, [...missing], invalid);
  return out;
}
