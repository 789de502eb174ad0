import { listResult } from '#shared/http/list-response.js';
import { createApiHandler } from '#shared/http/api-handler.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { created, noContent, ok } from '#shared/http/results.js';
import {
  allRemoteBuildNodeStatus,
  createRemoteBuildNode,
  deleteAllRemoteBuildNodes,
  deleteRemoteBuildNode,
  getRemoteBuildNode,
  remoteBuildNodeStatus,
} from '#shared/domain/remote-build-nodes.js';
import type { RemoteBuildNodeRecord } from '#shared/domain/records.js';
import type { ApiHandler, Operations } from '#shared/http/types.js';

const operations: Operations = {
  'remote-build-nodes.collection GET': { run: (r) => listResult(r, r.path, { kind: 'remote-build-node' }) },
  'remote-build-nodes.collection POST': {
    body: { schema: 'RemoteBuildNodeCreate' },
    run: async (r) => created(await createRemoteBuildNode(r.app, r.body as RemoteBuildNodeRecord)),
  },
  'remote-build-nodes.collection DELETE': { run: async (r) => (await deleteAllRemoteBuildNodes(r.app), noContent()) },
  'remote-build-nodes.item GET': { run: async (r) => ok(await getRemoteBuildNode(r.app, r.params.xname)) },
  'remote-build-nodes.item DELETE': { run: async (r) => (await deleteRemoteBuildNode(r.app, r.params.xname), noContent()) },
  'remote-build-nodes.status.collection GET': { run: async (r) => ok(await allRemoteBuildNodeStatus(r.app, r.app.nodes)) },
  'remote-build-nodes.status.item GET': { run: async (r) => ok(await remoteBuildNodeStatus(r.app, r.app.nodes, r.params.xname)) },
};

export const handlerWith = (context: () => AppContext): ApiHandler => createApiHandler('remote-build-nodes', operations, context);

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = handlerWith(contextFrom(process.env));
