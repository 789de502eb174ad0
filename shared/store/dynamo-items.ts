/** What the DynamoDB store's modules share: the table, record items and how a conditional write fails. */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { StoredRecord } from '../domain/ports.js';
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

/** The record of a table item (a get): the whole, kept in `stateJson` when lists serve a part of it. */
export function toStored<T>(item: Item): StoredRecord<T> {
  const whole = item.stateJson as string | undefined;
  return { record: (whole !== undefined ? JSON.parse(whole) : listedRecord(item)) as T, state: item.state, version: item.version, order: item.order };
}

/** The record as a list serves it, from an index item (which holds no `stateJson`, no `version`). */
export function toListed<T>(item: Item): StoredRecord<T> {
  return { record: listedRecord(item) as T, state: item.state, version: Number(item.listVersion ?? 0), order: item.order };
}

function listedRecord(item: Item): unknown {
  // Items written before records were kept as JSON text carry them as a map in `rec`.
  return item.recJson !== undefined ? JSON.parse(item.recJson) : (item as unknown as { rec: unknown }).rec;
}
