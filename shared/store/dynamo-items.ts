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
  /**
   * The listed record as JSON text, keys in code point order (domain/json-text.ts): as responses
   * write it, so lists write it as it is; and any key a client sends (even `__proto__`) round-trips.
   * It is the record, or the part of it lists serve (RecordIndexValues.listed: a job's wire record),
   * the whole then being in `stateJson`.
   */
  recText?: string;
  /** Older items: the listed record as JSON.stringify wrote it (keys in their order), or as a map in `rec`. */
  recJson?: string;
  /** The whole record as JSON text, when lists serve a part of it (no index holds it). */
  stateJson?: string;
  /** The version lists report (`version`, for kinds listed whole). */
  listVersion?: number;
  [index: string]: unknown;
}

export const recordPk = (kind: RecordKind, id: string) => `${kind}#${id}`;

export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/** The attributes a record's (or its listed part's) text may be in (the older forms are removed when it is written). */
export const RECORD_TEXT_ATTRIBUTES = ['recText', 'recJson', 'rec'] as const;

/**
 * The record of a table item (a get): the whole, kept in `stateJson` when lists serve a part of
 * it; its text only when the whole is what `recText` holds.
 */
export function toStored<T>(item: Item): StoredRecord<T> {
  const whole = item.stateJson as string | undefined;
  if (whole !== undefined) return { record: JSON.parse(whole) as T, state: item.state, version: item.version, order: item.order };
  return { record: recordOf<T>(item), json: item.recText, state: item.state, version: item.version, order: item.order };
}

/** The record as a list serves it, from an index item (which holds no `stateJson`, no `version`). */
export function toListed<T>(item: Item): StoredRecord<T> {
  return { record: recordOf<T>(item), json: item.recText, state: item.state, version: Number(item.listVersion ?? 0), order: item.order };
}

/** A record as a whole list reads it: its (listed) text, parsed only when someone reads the record. */
export function listed<T>(item: Pick<Item, 'recText' | 'recJson'>): ListedRecord<T> {
  return new ListedItem<T>(item);
}

class ListedItem<T> implements ListedRecord<T> {
  private parsed?: T;
  readonly json?: string;
  constructor(private readonly item: Pick<Item, 'recText' | 'recJson'>) {
    this.json = item.recText;
  }
  get record(): T {
    return (this.parsed ??= recordOf<T>(this.item));
  }
}

/** The listed record: the whole, or the part lists serve of it (`stateJson` then has the whole). */
function recordOf<T>(item: Pick<Item, 'recText' | 'recJson'>): T {
  const text = item.recText ?? item.recJson;
  // Items written before records were kept as JSON text carry them as a map in `rec`.
  return (text !== undefined ? JSON.parse(text) : (item as unknown as { rec: unknown }).rec) as T;
}
