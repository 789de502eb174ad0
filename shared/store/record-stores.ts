/**
 * The embedded runtime's memory store for its records: opened once in the process that serves
 * them and handed to the context it builds (shared/wiring.ts). Everywhere else (deployed, and
 * handlers in processes of their own) records are in DynamoDB.
 */
import type { RecordIndexer } from '../domain/ports.js';
import { MemoryRecordStore } from './memory-record-store.js';
import { RecordJournal } from './record-journal.js';

/** A memory store kept in `dir` (read back from it) when given, otherwise for the life of the process. */
export function openMemoryStore(indexer: RecordIndexer, dir?: string): MemoryRecordStore {
  return new MemoryRecordStore(indexer, dir ? new RecordJournal(dir) : undefined);
}
