/** What the DynamoDB store's modules share: the table, record items and how a conditional write fails. */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ListedRecord, StoredRecord } from '../domain/ports.js';
import type { RecordKind, RecordState } from '../domain/records.js';

export interface Table {
  doc: DynamoDBDocumentClient;
  name: string;
}

export interface Item {
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

export const recordPk = (kind: RecordKind, id: string) => `${kind}#${id}`;

export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

export function toStored<T>(item: Item): StoredRecord<T> {
  return { record: recordOf<T>(item), state: item.state, version: item.version, order: item.order };
}

/** A record as a whole list reads it (only its text, or the map of an older item). */
export function listed<T>(item: Pick<Item, 'recJson'>): ListedRecord<T> {
  return { record: recordOf<T>(item) };
}

function recordOf<T>(item: Pick<Item, 'recJson'>): T {
  // Items written before records were kept as JSON text carry them as a map in `rec`.
  return (item.recJson !== undefined ? JSON.parse(item.recJson) : (item as unknown as { rec: unknown }).rec) as T;
}
