/**
 * RecordStore on DynamoDB (lib-dynamodb). Every write is conditional; no transactions are used.
 * Record items here; lists in dynamo-lists.ts, metadata items in dynamo-meta-items.ts, claims
 * in dynamo-claims.ts.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ClaimHolder, ListedBatch, ListQuery, RecordIndexer, RecordPage, RecordStore, StoredRecord } from '../domain/ports.js';
import { toJsonText } from '../domain/json-text.js';
import type { RecordKind, RecordState } from '../domain/records.js';
import { DynamoClaims } from './dynamo-claims.js';
import { isConditionFailure, RECORD_TEXT_ATTRIBUTES, recordPk, toStored, type Item } from './dynamo-items.js';
import { DynamoLists } from './dynamo-lists.js';
import { DynamoMetaItems, metaOf, metaPair } from './dynamo-meta-items.js';
import { keyPart, listSortKey, nameSortKey } from './keys.js';
import { FACET_ATTRIBUTES } from './table-design.js';

/** DynamoDB's limit on a partition key value: no item can have a longer one. */
const MAX_PARTITION_KEY_BYTES = 2048;
/** Attributes a record may or may not carry, depending on its content. */
const INDEX_ATTRIBUTES = ['nameFull', 'namePk', 'nameSk', 'metaKv', 's0', 's1', 's2', 'stateJson', 'listVersion', ...FACET_ATTRIBUTES];

export class DynamoRecordStore implements RecordStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly lists: DynamoLists;
  private readonly claims: DynamoClaims;
  private readonly metaItems: DynamoMetaItems;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly indexer: RecordIndexer,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    const table = { doc: this.doc, name: tableName };
    this.lists = new DynamoLists(table);
    this.claims = new DynamoClaims(table);
    this.metaItems = new DynamoMetaItems(table);
  }

  /**
   * The record's text and the index attributes its content and state decide (listSk, fixed at
   * creation, is not one). The listed text `recText` is written as responses write it (toJsonText),
   * so whole lists send it as it is. A kind listed by a part of its record keeps the part in
   * `recText` and the whole in `stateJson`, and no list version: the indexes change only when the
   * part does. Others keep the record in `recText`, with `listVersion` = `version` for their lists.
   */
  private recordAttributes(kind: RecordKind, id: string, record: unknown, state: RecordState, version: number): Record<string, unknown> {
    const index = this.indexer(kind, record);
    const attrs: Record<string, unknown> =
      index.listed !== undefined
        ? { recText: toJsonText(index.listed), stateJson: JSON.stringify(record), listPk: `${kind}#${state}` }
        : { recText: toJsonText(record), listVersion: version, listPk: `${kind}#${state}` };
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

  async create<T>(kind: RecordKind, id: string, record: T, order: string): Promise<boolean> {
    const item: Record<string, unknown> = { pk: recordPk(kind, id), kind, id, state: 'live', version: 1, order, listSk: listSortKey(order, id), ...this.recordAttributes(kind, id, record, 'live', 1) };
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
    const attrs: Record<string, unknown> = { state, version: expectedVersion + 1, ...this.recordAttributes(kind, id, record, state, expectedVersion + 1) };
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':expected': expectedVersion };
    const set = Object.entries(attrs).map(([name, value], i) => {
      names[`#a${i}`] = name;
      values[`:a${i}`] = value;
      return `#a${i} = :a${i}`;
    });
    // Index attributes the record no longer has, and the older forms of its text.
    const stale = [...INDEX_ATTRIBUTES, ...RECORD_TEXT_ATTRIBUTES].filter((name) => !(name in attrs));
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
    return this.lists.list<T>(kind, state, query);
  }

  stream<T>(kind: RecordKind, state: RecordState, query: ListQuery = {}): AsyncIterable<ListedBatch<T>> {
    return this.lists.stream<T>(kind, state, query);
  }

  async claim(scope: string, value: string, owner: string): Promise<ClaimHolder | undefined> {
    return this.claims.claim(scope, value, owner);
  }

  async claimHolder(scope: string, value: string): Promise<ClaimHolder | undefined> {
    return this.claims.claimHolder(scope, value);
  }

  async release(scope: string, value: string, owner: string): Promise<void> {
    return this.claims.release(scope, value, owner);
  }

  /** The metadata item writes of one record change (kept here: tests deliver them late, as a slow process would). */
  private async syncMeta(...args: Parameters<DynamoMetaItems['sync']>): Promise<void> {
    return this.metaItems.sync(...args);
  }
}
