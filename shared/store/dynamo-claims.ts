/** Claims on DynamoDB: one item per claimed value, written only when free or already ours. */
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ClaimHolder } from '../domain/ports.js';
import { isConditionFailure, type Table } from './dynamo-items.js';
import { keyPart } from './keys.js';

const claimPk = (scope: string, value: string) => `claim#${scope}#${keyPart(value)}`;

export class DynamoClaims {
  constructor(private readonly table: Table) {}

  async claim(scope: string, value: string, owner: string): Promise<ClaimHolder | undefined> {
    const now = Date.now();
    try {
      await this.table.doc.send(
        new PutCommand({
          TableName: this.table.name,
          Item: { pk: claimPk(scope, value), owner, claimedAt: now },
          ConditionExpression: 'attribute_not_exists(pk) OR #o = :o',
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':o': owner },
        }),
      );
      return undefined;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const { Item } = await this.table.doc.send(new GetCommand({ TableName: this.table.name, Key: { pk: claimPk(scope, value) }, ConsistentRead: true }));
      // Released between our put and our read: try again from the top.
      if (!Item) return this.claim(scope, value, owner);
      return { owner: Item.owner as string, ageMs: Math.max(0, now - Number(Item.claimedAt ?? 0)) };
    }
  }

  async claimHolder(scope: string, value: string): Promise<ClaimHolder | undefined> {
    const { Item } = await this.table.doc.send(new GetCommand({ TableName: this.table.name, Key: { pk: claimPk(scope, value) }, ConsistentRead: true }));
    return Item ? { owner: Item.owner as string, ageMs: Math.max(0, Date.now() - Number(Item.claimedAt ?? 0)) } : undefined;
  }

  async release(scope: string, value: string, owner: string): Promise<void> {
    try {
      await this.table.doc.send(
        new DeleteCommand({
          TableName: this.table.name,
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
