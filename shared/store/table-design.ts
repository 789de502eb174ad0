/**
 * The one table's key design (docs/architecture.md explains it):
 *
 *   pk = "<kind>#<id>"                          one item per record, live or soft-deleted
 *   listPk = "<kind>#<state>", listSk = "<order>#<id>"   GSI `by-state`: a kind's live or
 *                                              deleted records in creation order
 *   pk = "claim#<scope>#<value>"                uniqueness claims (e.g. an image's link path)
 *
 * Items carry `rec` (the record exactly as served), `state`, `version` (optimistic locking),
 * `order` and, when soft-deleted, the `deleted` time inside `rec`.
 */
export const BY_STATE_INDEX = 'by-state';

export const tableKeySchema = {
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' },
    { AttributeName: 'listPk', AttributeType: 'S' },
    { AttributeName: 'listSk', AttributeType: 'S' },
  ],
  KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  GlobalSecondaryIndexes: [
    {
      IndexName: BY_STATE_INDEX,
      KeySchema: [
        { AttributeName: 'listPk', KeyType: 'HASH' },
        { AttributeName: 'listSk', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    },
  ],
} as const;
