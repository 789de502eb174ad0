/**
 * The one DynamoDB table, built from the key design the store code uses
 * (shared/store/table-design.ts), so the deployed keys and indexes cannot drift from it.
 */
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { acknowledgeControl, UNENCRYPTED_BY_CHOICE } from './nag.js';
import type { Construct } from 'constructs';
import { tableKeySchema } from '#shared/store/table-design.js';

interface KeyElement {
  AttributeName: string;
  KeyType: string;
}

const ATTRIBUTE_TYPES: Record<string, dynamodb.AttributeType> = {
  S: dynamodb.AttributeType.STRING,
  N: dynamodb.AttributeType.NUMBER,
  B: dynamodb.AttributeType.BINARY,
};

const PROJECTION_TYPES: Record<string, dynamodb.ProjectionType> = {
  ALL: dynamodb.ProjectionType.ALL,
  KEYS_ONLY: dynamodb.ProjectionType.KEYS_ONLY,
  INCLUDE: dynamodb.ProjectionType.INCLUDE,
};

function attribute(name: string): dynamodb.Attribute {
  const definition = tableKeySchema.AttributeDefinitions.find((a) => a.AttributeName === name);
  const type = definition && ATTRIBUTE_TYPES[definition.AttributeType];
  if (!type) throw new Error(`table-design.ts defines no usable attribute '${name}'`);
  return { name, type };
}

function keyOf(schema: readonly KeyElement[]): { partitionKey: dynamodb.Attribute; sortKey?: dynamodb.Attribute } {
  const hash = schema.find((k) => k.KeyType === 'HASH');
  const range = schema.find((k) => k.KeyType === 'RANGE');
  if (!hash) throw new Error('a key schema in table-design.ts has no HASH key');
  return { partitionKey: attribute(hash.AttributeName), ...(range ? { sortKey: attribute(range.AttributeName) } : {}) };
}

/** With `key`, the table is encrypted with it; else with an AWS-owned key. */
export function createRecordsTable(scope: Construct, id: string, key?: kms.IKey): dynamodb.Table {
  const table = new dynamodb.Table(scope, id, {
    ...(key ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: key } : {}),
    ...keyOf(tableKeySchema.KeySchema),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    // The records are the service's state; deleting the stack must not take them along.
    deletionProtection: true,
  });
  for (const index of tableKeySchema.GlobalSecondaryIndexes) {
    const projection: { ProjectionType: string; NonKeyAttributes?: readonly string[] } = index.Projection;
    const projectionType = PROJECTION_TYPES[projection.ProjectionType];
    if (!projectionType) throw new Error(`index ${index.IndexName}: projection ${projection.ProjectionType} is not supported here`);
    const nonKeyAttributes = projection.NonKeyAttributes ? [...projection.NonKeyAttributes] : undefined;
    table.addGlobalSecondaryIndex({ indexName: index.IndexName, ...keyOf(index.KeySchema), projectionType, ...(nonKeyAttributes ? { nonKeyAttributes } : {}) });
  }
  if (!key) acknowledgeControl(table, 'CT.DYNAMODB.PR.2', 'dynamodb_table_encrypted_kms_check', UNENCRYPTED_BY_CHOICE);
  return table;
}
