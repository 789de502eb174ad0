/**
 * Which RecordStore a context uses. The embedded runtime may open a memory store for a table in
 * its own process (`openMemoryStore`); every context built in that process for that table then
 * shares it. Everywhere else (deployed, and handlers in processes of their own) records are in
 * DynamoDB.
 */
import type { Settings } from '../config.js';
import { makeDynamoClient } from '../clients.js';
import type { RecordIndexer, RecordStore } from '../domain/ports.js';
import { DynamoRecordStore } from './dynamo-record-store.js';
import { MemoryRecordStore } from './memory-record-store.js';
import { RecordJournal } from './record-journal.js';

const memoryStores = new Map<string, MemoryRecordStore>();

export function recordStoreFor(settings: Settings, indexer: RecordIndexer): RecordStore {
  return memoryStores.get(settings.tableName) ?? new DynamoRecordStore(makeDynamoClient(settings), settings.tableName, indexer);
}

/**
 * Opens the memory store of a table in this process: kept in `dir` (read back from it) when
 * given, otherwise for the life of the process. Returns how to close it.
 */
export function openMemoryStore(tableName: string, indexer: RecordIndexer, dir?: string): () => void {
  if (memoryStores.has(tableName)) throw new Error(`the records of ${tableName} are open already`);
  const store = new MemoryRecordStore(indexer, dir ? new RecordJournal(dir) : undefined);
  memoryStores.set(tableName, store);
  return () => {
    memoryStores.delete(tableName);
    store.close();
  };
}
