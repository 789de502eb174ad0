/**
 * The one table's key design (docs/architecture.md explains it). Record items:
 *
 *   pk      "<kind>#<id>"                                 the record, live or soft-deleted
 *   listPk  "<kind>#<state>",  listSk "<order>#<id>"      GSI by-state: creation order
 *   namePk  "<kind>#<state>#<name>" (+ listSk)            GSI by-name: exact name
 *   nameSk  "<name>#<id>"   (hash listPk)                 GSI by-name-prefix: name prefix, by name
 *   s0Pk/s1Pk/s2Pk "<kind>#<state>#<facet>=<value>"       GSI by-facet-0/1/2: arch, status, job_type…
 *
 * Metadata items (images): pk "meta#<kind>#<id>#<key>", metaPk "<kind>#<state>#<key>=<value>"
 * (+ listSk, ref) in GSI by-meta. Claim items: pk "claim#<scope>#<value>", owner.
 *
 * Each index holds only what its queries read: a record index the listed record's text (`recText`,
 * or `recJson`/`rec` of items not yet rewritten; a job keeps its whole state in `stateJson`, which
 * no index holds), its state, order and list version, and the attributes list filters test;
 * by-meta the record's id.
 */
export const BY_STATE_INDEX = 'by-state';
export const BY_NAME_INDEX = 'by-name';
export const BY_NAME_PREFIX_INDEX = 'by-name-prefix';
export const BY_META_INDEX = 'by-meta';
export const FACET_INDEXES = ['by-facet-0', 'by-facet-1', 'by-facet-2'] as const;
export const FACET_ATTRIBUTES = ['s0Pk', 's1Pk', 's2Pk'] as const;

/** What lists read of a record item (dynamo-lists.ts), besides the keys. */
export const LISTED_ATTRIBUTES = ['recText', 'recJson', 'rec', 'state', 'order', 'listVersion', 'nameFull', 's0', 's1', 's2', 'metaKv'] as const;

const gsi = (name: string, hash: string, range: string, projected: readonly string[] = LISTED_ATTRIBUTES) => ({
  IndexName: name,
  KeySchema: [
    { AttributeName: hash, KeyType: 'HASH' },
    { AttributeName: range, KeyType: 'RANGE' },
  ],
  Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: projected },
});

export const tableKeySchema = {
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' },
    { AttributeName: 'listPk', AttributeType: 'S' },
    { AttributeName: 'listSk', AttributeType: 'S' },
    { AttributeName: 'namePk', AttributeType: 'S' },
    { AttributeName: 'nameSk', AttributeType: 'S' },
    { AttributeName: 'metaPk', AttributeType: 'S' },
    ...FACET_ATTRIBUTES.map((a) => ({ AttributeName: a, AttributeType: 'S' })),
  ],
  KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  GlobalSecondaryIndexes: [
    gsi(BY_STATE_INDEX, 'listPk', 'listSk'),
    gsi(BY_NAME_INDEX, 'namePk', 'listSk'),
    gsi(BY_NAME_PREFIX_INDEX, 'listPk', 'nameSk'),
    gsi(BY_META_INDEX, 'metaPk', 'listSk', ['ref']),
    ...FACET_INDEXES.map((name, i) => gsi(name, FACET_ATTRIBUTES[i], 'listSk')),
  ],
} as const;
