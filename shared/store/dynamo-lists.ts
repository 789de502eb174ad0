/**
 * Lists on DynamoDB: Queries on the indexes of table-design.ts; remaining conditions of a
 * combined filter are FilterExpressions on the same Query. Metadata matches come from the
 * metadata items (dynamo-meta-items.ts), each record read and checked.
 */
import { BatchGetCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { InvalidCursorError } from '../domain/errors.js';
import type { ListedBatch, ListQuery, RecordPage, StoredRecord } from '../domain/ports.js';
import type { RecordKind, RecordState } from '../domain/records.js';
import { listed, RECORD_TEXT_ATTRIBUTES, recordPk, toListed, type Item, type Table } from './dynamo-items.js';
import { metaPair } from './dynamo-meta-items.js';
import { decodeCursor, encodeCursor, keyPart } from './keys.js';
import { BY_META_INDEX, BY_NAME_INDEX, BY_NAME_PREFIX_INDEX, BY_STATE_INDEX, FACET_ATTRIBUTES, FACET_INDEXES } from './table-design.js';

const MAX_PAGE = 1000;

export class DynamoLists {
  constructor(private readonly table: Table) {}

  async list<T>(kind: RecordKind, state: RecordState, query: ListQuery = {}): Promise<RecordPage<T>> {
    const limit = Math.min(query.limit ?? MAX_PAGE, MAX_PAGE);
    const planned = this.queryFor(kind, state, query);
    if (!planned) return this.listByMeta<T>(kind, state, query, limit);
    const { input, index } = planned;
    return this.collect<T>(input, index, query.cursor, limit, (items) => items.map((raw) => ({ stored: toListed<T>(raw as Item), raw })));
  }

  /**
   * The whole list: Queries without a Limit (DynamoDB's own 1 MB a page), each asking only for the
   * record's text (written as it is), the next one sent while the caller handles this one. Metadata matches page
   * through their items as `list` does.
   */
  async *stream<T>(kind: RecordKind, state: RecordState, query: ListQuery = {}): AsyncGenerator<ListedBatch<T>> {
    const planned = this.queryFor(kind, state, query);
    if (!planned) {
      let cursor: string | undefined;
      do {
        const page = await this.listByMeta<T>(kind, state, { ...query, cursor }, MAX_PAGE);
        yield { records: page.items };
        cursor = page.cursor;
      } while (cursor);
      return;
    }
    const { input } = planned;
    const texts = Object.fromEntries(RECORD_TEXT_ATTRIBUTES.map((name, i) => [`#t${i}`, name]));
    const projected: QueryCommandInput = { ...input, ProjectionExpression: Object.keys(texts).join(', '), ExpressionAttributeNames: { ...input.ExpressionAttributeNames, ...texts } };
    const send = (start?: Record<string, unknown>) => {
      const sent = this.table.doc.send(new QueryCommand({ ...projected, ExclusiveStartKey: start }));
      sent.catch(() => undefined); // awaited below; a caller that stops early leaves it unread
      return sent;
    };
    let page = send();
    for (;;) {
      const out = await page;
      if (out.LastEvaluatedKey) page = send(out.LastEvaluatedKey);
      yield { records: (out.Items ?? []).map((item) => listed<T>(item as Item)) };
      if (!out.LastEvaluatedKey) return;
    }
  }

  /** The Query of a list: its index, key condition and filters; undefined when it goes by metadata items. */
  private queryFor(kind: RecordKind, state: RecordState, query: ListQuery): { input: QueryCommandInput; index: string } | undefined {
    const prefix = `${kind}#${state}`;
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const filters: string[] = [];
    let index: string;
    let key: string;
    const slotIndex = query.slots?.findIndex((s) => s !== undefined) ?? -1;

    if (query.name !== undefined) {
      index = BY_NAME_INDEX;
      key = 'namePk = :k';
      values[':k'] = `${prefix}#${keyPart(query.name)}`;
    } else if (slotIndex >= 0) {
      index = FACET_INDEXES[slotIndex];
      key = `${FACET_ATTRIBUTES[slotIndex]} = :k`;
      values[':k'] = `${prefix}#${keyPart(query.slots![slotIndex]!)}`;
    } else if (query.meta) {
      return undefined;
    } else if (query.namePrefix !== undefined) {
      index = BY_NAME_PREFIX_INDEX;
      values[':k'] = prefix;
      // DynamoDB refuses an empty string in a key condition: an empty prefix is every named record.
      if (query.namePrefix === '') key = 'listPk = :k';
      else {
        key = 'listPk = :k AND begins_with(nameSk, :np)';
        values[':np'] = keyPart(query.namePrefix);
      }
    } else {
      index = BY_STATE_INDEX;
      key = 'listPk = :k';
      values[':k'] = prefix;
    }
    if (query.name !== undefined) {
      filters.push('nameFull = :name');
      values[':name'] = query.name;
    }
    if (query.namePrefix) {
      filters.push('begins_with(nameFull, :prefix)');
      values[':prefix'] = query.namePrefix;
    }
    query.slots?.forEach((slot, i) => {
      if (slot === undefined) return;
      filters.push(`s${i} = :s${i}`);
      values[`:s${i}`] = slot;
    });
    if (query.meta) {
      filters.push('contains(metaKv, :kv)');
      values[':kv'] = metaPair([query.meta.key, query.meta.value]);
    }
    const input: QueryCommandInput = {
      TableName: this.table.name,
      IndexName: index,
      KeyConditionExpression: key,
      ExpressionAttributeValues: values,
      ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
      ...(filters.length ? { FilterExpression: filters.join(' AND ') } : {}),
    };
    return { input, index };
  }

  /** Reads pages until `limit` matches; the cursor then points just after the last one returned. */
  private async collect<T>(
    input: QueryCommandInput,
    index: string,
    cursor: string | undefined,
    limit: number,
    resolve: (items: Record<string, unknown>[]) => Promise<Match<T>[]> | Match<T>[],
  ): Promise<RecordPage<T>> {
    const hash = (input.KeyConditionExpression ?? '').split(' ')[0];
    const range = index === BY_NAME_PREFIX_INDEX ? 'nameSk' : 'listSk';
    const keyOf = (item: Record<string, unknown>) => ({ pk: item.pk, [hash]: item[hash], [range]: item[range] });
    let start: Record<string, unknown> | undefined = decodeCursor(cursor, index, () => new InvalidCursorError());
    const out: StoredRecord<T>[] = [];
    let lastKey: Record<string, unknown> | undefined;
    for (;;) {
      const page = await this.table.doc.send(new QueryCommand({ ...input, Limit: Math.min(limit - out.length + 1, MAX_PAGE), ExclusiveStartKey: start }));
      const matches = await resolve(page.Items ?? []);
      for (const [i, match] of matches.entries()) {
        out.push(match.stored);
        lastKey = keyOf(match.raw);
        if (out.length === limit) {
          const more = i < matches.length - 1 || page.LastEvaluatedKey !== undefined;
          return { items: out, cursor: more ? encodeCursor(index, lastKey) : undefined };
        }
      }
      if (!page.LastEvaluatedKey) return { items: out };
      start = page.LastEvaluatedKey;
    }
  }

  /** Metadata matches come from metadata items; each record is read and checked, so stale entries never show. */
  private async listByMeta<T>(kind: RecordKind, state: RecordState, query: ListQuery, limit: number): Promise<RecordPage<T>> {
    const { key, value } = query.meta!;
    const input: QueryCommandInput = {
      TableName: this.table.name,
      IndexName: BY_META_INDEX,
      KeyConditionExpression: 'metaPk = :k',
      ExpressionAttributeValues: { ':k': `${kind}#${state}#${keyPart(`${key}=${value}`)}` },
    };
    return this.collect<T>(input, BY_META_INDEX, query.cursor, limit, async (metaItems) => {
      const records = await this.batchGet(metaItems.map((m) => recordPk(kind, m.ref as string)));
      const out: Match<T>[] = [];
      for (const m of metaItems) {
        const item = records.get(recordPk(kind, m.ref as string));
        if (!item || item.state !== state) continue;
        if (!(item.metaKv as string[] | undefined)?.includes(metaPair([key, value]))) continue;
        if (query.name !== undefined && item.nameFull !== query.name) continue;
        if (query.namePrefix !== undefined && !String(item.nameFull ?? '').startsWith(query.namePrefix)) continue;
        out.push({ stored: toListed<T>(item), raw: m });
      }
      return out;
    });
  }

  private async batchGet(pks: string[]): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    for (let i = 0; i < pks.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = [...new Set(pks.slice(i, i + 100))].map((pk) => ({ pk }));
      while (keys && keys.length > 0) {
        const out = await this.table.doc.send(new BatchGetCommand({ RequestItems: { [this.table.name]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of out.Responses?.[this.table.name] ?? []) found.set(item.pk as string, item as Item);
        keys = out.UnprocessedKeys?.[this.table.name]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return found;
  }
}

interface Match<T> {
  stored: StoredRecord<T>;
  /** The index item the match was read from (its key becomes the cursor). */
  raw: Record<string, unknown>;
}
