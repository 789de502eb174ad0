import { getInState, removeInState } from './lifecycle.js';
import { formatTimestamp, sortableTimestamp } from './time.js';
import { forEachRecord, markDeleted, markLive, purge, type DeleteMode } from './soft-delete.js';
import type { DomainContext } from './context.js';
import type { Deleted, PublicKeyRecord, RecordState } from './records.js';

const KIND = 'public-key';

export interface PublicKeyInput {
  name: string;
  public_key: string;
}

export async function createPublicKey(ctx: DomainContext, input: PublicKeyInput): Promise<PublicKeyRecord> {
  const micros = ctx.clock.nowMicros();
  const record: PublicKeyRecord = { id: ctx.ids.newId(), created: formatTimestamp(micros), name: input.name, public_key: input.public_key };
  await ctx.store.create(KIND, record.id, record, sortableTimestamp(micros));
  return record;
}

export async function getPublicKey(ctx: DomainContext, id: string, state: RecordState = 'live') {
  return (await getInState<PublicKeyRecord>(ctx.store, KIND, id, state)).record;
}

export async function deletePublicKey(ctx: DomainContext, id: string, mode: DeleteMode): Promise<void> {
  if (mode === 'hard') await removeInState(ctx.store, KIND, id, 'live');
  else await markDeleted<PublicKeyRecord>(ctx, KIND, id);
}

export async function deleteAllPublicKeys(ctx: DomainContext, mode: DeleteMode): Promise<void> {
  await forEachRecord<PublicKeyRecord>(ctx, KIND, 'live', (id) => deletePublicKey(ctx, id, mode));
}

export async function undeletePublicKey(ctx: DomainContext, id: string): Promise<void> {
  await markLive<PublicKeyRecord>(ctx, KIND, id);
}

export async function undeleteAllPublicKeys(ctx: DomainContext): Promise<void> {
  await forEachRecord(ctx, KIND, 'deleted', (id) => undeletePublicKey(ctx, id));
}

export async function purgePublicKey(ctx: DomainContext, id: string): Promise<void> {
  await purge(ctx, KIND, id);
}

export async function purgeAllPublicKeys(ctx: DomainContext): Promise<void> {
  await forEachRecord(ctx, KIND, 'deleted', (id) => purgePublicKey(ctx, id));
}
