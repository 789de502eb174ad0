/**
 * RecordStore on DynamoDB (lib-dynamodb). Every write is conditional; no transactions are used.
 * Lists are Queries on the indexes of table-design.ts; remaining conditions of a combined filter
 * are FilterExpressions on the same Query.
 */
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { InvalidCursorError } from '../domain/errors.js';
import type { ClaimHolder, ListQuery, RecordIndexer, RecordPage, RecordStore, StoredRecord } from '../domain/ports.js';
import type { RecordKind, RecordState } from '../domain/records.js';
import { decodeCursor, encodeCursor, keyPart, listSortKey, nameSortKey } from './keys.js';
import { BY_META_INDEX, BY_NAME_INDEX, BY_NAME_PREFIX_INDEX, BY_STATE_INDEX, FACET_ATTRIBUTES, FACET_INDEXES } from './table-design.js';

interface Item {
  pk: string;
  kind: RecordKind;
  id: string;
  state: RecordState;
  version: number;
  order: string;
  listPk: string;
  listSk: string;
  /** The record as JSON text: any key a client sends (even `__proto__`) round-trips unchanged. */
  recJson: string;
  [index: string]: unknown;
}

const recordPk = (kind: RecordKind, id: string) => `${kind}#${id}`;

/** DynamoDB's limit on a partition key value: no item can have a longer one. */
const MAX_PARTITION_KEY_BYTES = 2048;
const MAX_PAGE = 1000;
/** Attributes a record may or may not carry, depending on its content. */
const INDEX_ATTRIBUTES = ['nameFull', 'namePk', 'nameSk', 'metaKv', 's0', 's1', 's2', ...FACET_ATTRIBUTES];

const claimPk = (scope: string, value: string) => `claim#${scope}#${keyPart(value)}`;
const metaItemPk = (kind: RecordKind, id: string, key: string) => `meta#${kind}#${id}#${keyPart(key)}`;

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

function toStored<T>(item: Item): StoredRecord<T> {
  // Items written before records were kept as JSON text carry them as a map in `rec`.
  const record = item.recJson !== undefined ? JSON.parse(item.recJson) : (item as unknown as { rec: unknown }).rec;
  return { record: record as T, state: item.state, version: item.version, order: item.order };
}

export class DynamoRecordStore implements RecordStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly indexer: RecordIndexer,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  /** The index attributes a record's content and state decide (listSk, fixed at creation, is not one). */
  private indexAttributes(kind: RecordKind, id: string, record: unknown, state: RecordState): Record<string, unknown> {
    const index = this.indexer(kind, record);
    const attrs: Record<string, unknown> = { listPk: `${kind}#${state}` };
    if (index.name !== undefined) {
      attrs.nameFull = index.name;
      attrs.namePk = `${kind}#${state}#${keyPart(index.name)}`;
      attrs.nameSk = nameSortKey(index.name, id);
    }
    FACET_ATTRIBUTES.forEach((attr, i) => {
      const slot = index.slots?.[i];
      if (slot !== undefined) {
        attrs[attr] = `${kind}#${state}#${keyPart(slot)}`;
        attrs[`s${i}`] = slot;
      }
    });
    const pairs = Object.entries(index.meta ?? {}).map(metaPair);
    if (pairs.length > 0) attrs.metaKv = pairs;
    return attrs;
  }

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
  private async syncMeta(
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
        writes.push(this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: metaItemPk(kind, id, key) }, ...newer })).catch(ignoreOlder));
      }
    }
    for (const [key, value] of Object.entries(after ?? {})) {
      if (stateBefore === state && before && Object.hasOwn(before, key) && before[key] === value) continue;
      writes.push(
        this.doc
          .send(
            new PutCommand({
              TableName: this.tableName,
              Item: { pk: metaItemPk(kind, id, key), ref: id, metaPk: `${kind}#${state}#${keyPart(`${key}=${value}`)}`, listSk: listSortKey(order, id), ver: version },
              ...newer,
            }),
          )
          .catch(ignoreOlder),
      );
    }
    await Promise.all(writes);
  }

  async create<T>(kind: RecordKind, id: string, record: T, order: string): Promise<boolean> {
    const item: Record<string, unknown> = { pk: recordPk(kind, id), kind, id, state: 'live', version: 1, order, recJson: JSON.stringify(record), listSk: listSortKey(order, id), ...this.indexAttributes(kind, id, record, 'live') };
    try {
      await this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
    await this.syncMeta(kind, id, 'live', order, undefined, metaOf(item), 1);
    return true;
  }

  async get<T>(kind: RecordKind, id: string): Promise<StoredRecord<T> | undefined> {
    // Ids come from request paths; one too long for a key names no record (DynamoDB would refuse the read).
    if (Buffer.byteLength(recordPk(kind, id), 'utf8') > MAX_PARTITION_KEY_BYTES) return undefined;
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: recordPk(kind, id) }, ConsistentRead: true }));
    return Item ? toStored<T>(Item as Item) : undefined;
  }

  /** One conditional write: index attributes are set from the new record, stale ones removed. */
  async update<T>(kind: RecordKind, id: string, expectedVersion: number, record: T, state: RecordState): Promise<boolean> {
    const attrs: Record<string, unknown> = { recJson: JSON.stringify(record), state, version: expectedVersion + 1, ...this.indexAttributes(kind, id, record, state) };
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':expected': expectedVersion };
    const set = Object.entries(attrs).map(([name, value], i) => {
      names[`#a${i}`] = name;
      values[`:a${i}`] = value;
      return `#a${i} = :a${i}`;
    });
    const stale = INDEX_ATTRIBUTES.filter((name) => !(name in attrs));
    const remove = stale.map((name, i) => {
      names[`#r${i}`] = name;
      return `#r${i}`;
    });
    let old: Item | undefined;
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: recordPk(kind, id) },
          UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
          ConditionExpression: 'version = :expected',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_OLD',
        }),
      );
      old = out.Attributes as Item | undefined;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
    if (old && (old.metaKv || attrs.metaKv)) {
      await this.syncMeta(kind, id, state, old.order, metaOf(old), metaOf(attrs), expectedVersion + 1, old.state);
    }
    return true;
  }

  async remove(kind: RecordKind, id: string, expectedVersion: number): Promise<boolean> {
    let old: Item | undefined;
    try {
      const out = await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: recordPk(kind, id) },
          ConditionExpression: 'version = :v',
          ExpressionAttributeValues: { ':v': expectedVersion },
          ReturnValues: 'ALL_OLD',
        }),
      );
      old = out.Attributes as Item | undefined;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
    if (old?.metaKv) await this.syncMeta(kind, id, old.state, old.order, metaOf(old), undefined, expectedVersion + 1);
    return true;
  }

  async list<T>(kind: RecordKind, state: RecordState, query: ListQuery = {}): Promise<RecordPage<T>> {
    const limit = Math.min(query.limit ?? MAX_PAGE, MAX_PAGE);
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
      return this.listByMeta<T>(kind, state, query, limit);
    } else if (query.namePrefix !== undefined) {
      index = BY_NAME_PREFIX_INDEX;
      key = 'listPk = :k AND begins_with(nameSk, :np)';
      values[':k'] = prefix;
      values[':np'] = keyPart(query.namePrefix);
    } else {
      index = BY_STATE_INDEX;
      key = 'listPk = :k';
      values[':k'] = prefix;
    }
    if (query.name !== undefined) {
      filters.push('nameFull = :name');
      values[':name'] = query.name;
    }
    if (query.namePrefix !== undefined) {
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
      TableName: this.tableName,
      IndexName: index,
      KeyConditionExpression: key,
      ExpressionAttributeValues: values,
      ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
      ...(filters.length ? { FilterExpression: filters.join(' AND ') } : {}),
    };
    return this.collect<T>(input, index, query.cursor, limit, (items) => items.map((raw) => ({ stored: toStored<T>(raw as Item), raw })));
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
      const page = await this.doc.send(new QueryCommand({ ...input, Limit: Math.min(limit - out.length + 1, MAX_PAGE), ExclusiveStartKey: start }));
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
      TableName: this.tableName,
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
        out.push({ stored: toStored<T>(item), raw: m });
      }
      return out;
    });
  }

  private async batchGet(pks: string[]): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    for (let i = 0; i < pks.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = [...new Set(pks.slice(i, i + 100))].map((pk) => ({ pk }));
      while (keys && keys.length > 0) {
        const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of out.Responses?.[this.tableName] ?? []) found.set(item.pk as string, item as Item);
        keys = out.UnprocessedKeys?.[this.tableName]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return found;
  }

  async claim(scope: string, value: string, owner: string): Promise<ClaimHolder | undefined> {
    const now = Date.now();
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: claimPk(scope, value), owner, claimedAt: now },
          ConditionExpression: 'attribute_not_exists(pk) OR #o = :o',
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':o': owner },
        }),
      );
      return undefined;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: claimPk(scope, value) }, ConsistentRead: true }));
      // Released between our put and our read: try again from the top.
      if (!Item) return this.claim(scope, value, owner);
      return { owner: Item.owner as string, ageMs: Math.max(0, now - Number(Item.claimedAt ?? 0)) };
    }
  }

  async claimHolder(scope: string, value: string): Promise<ClaimHolder | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: claimPk(scope, value) }, ConsistentRead: true }));
    return Item ? { owner: Item.owner as string, ageMs: Math.max(0, Date.now() - Number(Item.claimedAt ?? 0)) } : undefined;
  }

  async release(scope: string, value: string, owner: string): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: claimPk(scope, value) },
          ConditionExpression: '#o = :o',
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':o': owner },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}

/** One metadata entry as an indexable string: JSON keeps `=` and any other character unambiguous. */
function metaPair([key, value]: [string, string]): string {
  return JSON.stringify([key, value]);
}

function metaOf(item: Record<string, unknown>): Record<string, string> | undefined {
  const pairs = item.metaKv as string[] | undefined;
  return pairs ? Object.fromEntries(pairs.map((p) => JSON.parse(p) as [string, string])) : undefined;
}

interface Match<T> {
  stored: StoredRecord<T>;
  /** The index item the match was read from (its key becomes the cursor). */
  raw: Record<string, unknown>;
}
