/**
 * JSON text as the original's Flask serialises it (`sort_keys=True`): the keys of every object,
 * at every depth, in the order of their code points, so clients that print records in the order
 * they read them (the `cray` CLI's text and table output) print them line for line alike.
 * Otherwise JSON.stringify's rules: undefined and function members left out, `toJSON` honoured.
 */
export function toJsonText(value: unknown): string {
  return write(value) ?? 'null';
}

/**
 * JSON text already written by toJsonText (a record as a store keeps it): written out as it is,
 * so a list of stored records is a concatenation of their texts.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

function write(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (value instanceof JsonText) return value.text;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return write((value as { toJSON(): unknown }).toJSON());
  if (Array.isArray(value)) return `[${value.map((item) => write(item) ?? 'null').join(',')}]`;
  const members: string[] = [];
  for (const key of Object.keys(value).sort(byCodePoint)) {
    const text = write((value as Record<string, unknown>)[key]);
    if (text !== undefined) members.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${members.join(',')}}`;
}

/** Python orders str by code point; JavaScript's default sort by UTF-16 unit differs above U+FFFF. */
function byCodePoint(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}
