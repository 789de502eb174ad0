/**
 * The metadata items of image records: one item per key, in the by-meta index, so a metadata
 * filter is a Query. Lists check each record they find through them (dynamo-lists.ts).
 */
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { RecordKind, RecordState } from '../domain/records.js';
import { isConditionFailure, type Table } from './dynamo-items.js';
import { keyPart, listSortKey } from './keys.js';

const metaItemPk = (kind: RecordKind, id: string, key: string) => `meta#${kind}#${id}#${keyPart(key)}`;

export class DynamoMetaItems {
  constructor(private readonly table: Table) {}

  /**
   * Writes the metadata items that changed: a removed key's item goes, a new or changed key's
   * is written, and all of them when the record changed state (their index key names it). A
   * record with many keys thus costs one item write per changed key, not one per key.
   *
   * Each item carries the record version that wrote it (`ver`), and a write only lands over an
   * older one: when two processes change one key, their item writes may arrive in either order,
   * and the later record version's must be the one that stays (a stale item left behind is
   * harmless, since metadata lists check each record; a missing one would hide a record).
   */
  async sync(
    kind: RecordKind,
    id: string,
    state: RecordState,
    order: string,
    before: Record<string, string> | undefined,
    after: Record<string, string> | undefined,
    version: number,
    stateBefore: RecordState = state,
  ): Promise<void> {
    // A new record's items replace whatever a removed record of the same id may have left.
    const newer = version > 1 ? { ConditionExpression: 'attribute_not_exists(ver) OR ver < :ver', ExpressionAttributeValues: { ':ver': version } } : {};
    const ignoreOlder = (error: unknown) => {
      if (!isConditionFailure(error)) throw error;
    };
    const writes: Promise<unknown>[] = [];
    for (const key of Object.keys(before ?? {})) {
      if (!after || !Object.hasOwn(after, key)) {
        writes.push(this.table.doc.send(new DeleteCommand({ TableName: this.table.name, Key: { pk: metaItemPk(kind, id, key) }, ...newer })).catch(ignoreOlder));
      }
    }
    for (const [key, value] of Object.entries(after ?? {})) {
      if (stateBefore === state && before && Object.hasOwn(before, key) && before[key] === value) continue;
      writes.push(
        this.table.doc
          .send(
            new PutCommand({
              TableName: this.table.name,
              Item: { pk: metaItemPk(kind, id, key), ref: id, metaPk: `${kind}#${state}#${keyPart(`${key}=${value}`)}`, listSk: listSortKey(order, id), ver: version },
              ...newer,
            }),
          )
          .catch(ignoreOlder),
      );
    }
    await Promise.all(writes);
  }
}

/** One metadata entry as an indexable string: JSON keeps `=` and any other character unambiguous. */
export function metaPair([key, value]: [string, string]): string {
  return JSON.stringify([key, value]);
}

export function metaOf(item: Record<string, unknown>): Record<string, string> | undefined {
  const pairs = item.metaKv as string[] | undefined;
  return pairs ? Object.fromEntries(pairs.map((p) => JSON.parse(p) as [string, string])) : undefined;
}
