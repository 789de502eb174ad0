/**
 * The adapters a handler uses, built once per process (per Lambda container) from the
 * environment. The embedded runtime and the tests set the same environment variables, so the
 * code path is the same everywhere.
 */
import { randomUUID } from 'node:crypto';
import { S3ArtifactStore } from './artifacts/s3-artifact-store.js';
import { makeDynamoClient, makeS3Client } from './clients.js';
import { readSettings, type Settings } from './config.js';
import type { DomainContext } from './domain/context.js';
import { unprobedNodes, type NodeProber } from './domain/remote-build-nodes.js';
import { nowMicros } from './domain/time.js';
import { DynamoRecordStore } from './store/dynamo-record-store.js';

export interface AppContext extends DomainContext {
  config: Settings;
  nodes: NodeProber;
}

let current: AppContext | undefined;

export function buildContext(settings: Settings = readSettings()): AppContext {
  return {
    config: settings,
    store: new DynamoRecordStore(makeDynamoClient(settings), settings.tableName),
    artifacts: new S3ArtifactStore(makeS3Client(settings)),
    clock: { nowMicros },
    ids: { newId: randomUUID },
    settings: { bootImagesBucket: settings.bootImagesBucket, maxManifestBytes: settings.maxManifestBytes },
    nodes: unprobedNodes,
  };
}

export function appContext(): AppContext {
  current ??= buildContext();
  return current;
}

/** Drops the cached context so the next call reads the environment again (embedded runtime, tests). */
export function resetAppContext(next?: AppContext): void {
  current = next;
}
