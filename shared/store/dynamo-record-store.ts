/** RecordStore on DynamoDB (lib-dynamodb). Every write is conditional; no transactions are used. */
import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { RecordPage, RecordStore, StoredRecord } from '../domain/ports.js';
import type { RecordKind, RecordState } from '../domain/records.js';
import { BY_STATE_INDEX } from './table-design.js';

interface Item {
  pk: string;
  kind: RecordKind;
  id: string;
  state: RecordState;
  version: number;
  order: string;
  listPk: string;
  listSk: string;
  rec: unknown;
}

const recordPk = (kind: RecordKind, id: string) => `${kind}#${id}`;

/** DynamoDB's limit on a partition key value: no item can have a longer one. */
const MAX_PARTITION_KEY_BYTES = 2048;
const claimPk = (scope: string, value: string) => `claim#${scope}#${value}`;

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

function toStored<T>(item: Item): StoredRecord<T> {
  return { record: item.rec as T, state: item.state, version: item.version, order: item.order };
}

export function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;
}

export function decodeCursor(cursor: string | undefined): Record<string, unknown> | undefined {
  if (!cursor) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export class DynamoRecordStore implements RecordStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(client: DynamoDBClient, private readonly tableName: string) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  private item<T>(kind: RecordKind, id: string, record: T, state: RecordState, version: number, order: string): Item {
    return { pk: recordPk(kind, id), kind, id, state, version, order, listPk: `${kind}#${state}`, listSk: `${order}#${id}`, rec: record };
  }

  async create<T>(kind: RecordKind, id: string, record: T, order: string): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(kind, id, record, 'live', 1, order),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async get<T>(kind: RecordKind, id: string): Promise<StoredRecord<T> | undefined> {
    // Ids come from request paths; one too long for a key names no record (DynamoDB would refuse the read).
    if (Buffer.byteLength(recordPk(kind, id), 'utf8') > MAX_PARTITION_KEY_BYTES) return undefined;
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: recordPk(kind, id) }, ConsistentRead: true }));
    return Item ? toStored<T>(Item as Item) : undefined;
  }

  async list<T>(kind: RecordKind, state: RecordState, options: { limit?: number; cursor?: string } = {}): Promise<RecordPage<T>> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: BY_STATE_INDEX,
        KeyConditionExpression: 'listPk = :p',
        ExpressionAttributeValues: { ':p': `${kind}#${state}` },
        Limit: options.limit,
        ExclusiveStartKey: decodeCursor(options.cursor),
      }),
    );
    return { items: (result.Items ?? []).map((i) => toStored<T>(i as Item)), cursor: encodeCursor(result.LastEvaluatedKey) };
  }

  async update<T>(kind: RecordKind, id: string, expectedVersion: number, record: T, state: RecordState): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: recordPk(kind, id) },
          UpdateExpression: 'SET rec = :r, #s = :s, version = :next, listPk = :lp',
          ConditionExpression: 'version = :v',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: { ':r': record, ':s': state, ':next': expectedVersion + 1, ':lp': `${kind}#${state}`, ':v': expectedVersion },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async remove(kind: RecordKind, id: string, expectedVersion: number): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { pk: recordPk(kind, id) },
          ConditionExpression: 'version = :v',
          ExpressionAttributeValues: { ':v': expectedVersion },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async claim(scope: string, value: string, owner: string): Promise<string | undefined> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: claimPk(scope, value), owner },
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
      return Item ? (Item.owner as string) : this.claim(scope, value, owner);
    }
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
