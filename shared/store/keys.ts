/** Key values both record stores derive from a record, so that they order and find records alike. */
import { createHash } from 'node:crypto';

/** Index key parts longer than this are cut (the whole value is still compared, so results stay exact). */
const MAX_KEY_PART = 400;

/** Keeps key values within DynamoDB's limits: long ones are cut and tagged with a hash of the whole. */
export function keyPart(value: string): string {
  if (value.length <= MAX_KEY_PART) return value;
  return `${value.slice(0, MAX_KEY_PART)}~${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
}

/** Creation order of a record: the sort key of every index but the name-prefix one. */
export const listSortKey = (order: string, id: string) => `${order}#${id}`;

/** The sort key of the name-prefix index: by name, then id. */
export const nameSortKey = (name: string, id: string) => `${keyPart(name)}#${id}`;

/** The order DynamoDB sorts string keys in: by UTF-8 bytes, that is by code point. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 puts surrogates (code points above U+FFFF) below U+E000–U+FFFF; code point order does not.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Cursors name the index they were issued for; any other cursor is refused. */
export function encodeCursor(index: string, key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify({ index, key })).toString('base64url');
}

/** The key of a cursor issued for `index`, or undefined without a cursor; throws on any other. */
export function decodeCursor(cursor: string | undefined, index: string, invalid: () => Error): Record<string, string> | undefined {
  if (!cursor) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { index?: unknown; key?: unknown };
    if (value?.index !== index || typeof value.key !== 'object' || value.key === null) throw new Error('other index');
    if (!Object.values(value.key).every((v) => typeof v === 'string')) throw new Error('bad key');
    return value.key as Record<string, string>;
  } catch {
    throw invalid();
  }
}
