/**
 * Where the known hosts of remote build nodes come from, first found wins:
 * REMOTE_NODE_KNOWN_HOSTS (the text), REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN (Secrets Manager),
 * REMOTE_NODE_KNOWN_HOSTS_PARAMETER (SSM Parameter Store, no 4 KB ceiling of a function's
 * environment). The secret and the parameter are read again once older than
 * SECRETS_MAX_AGE_SECONDS, so a node added to them is trusted within minutes.
 *
 * Without any of them the answer depends on where IMS runs. Deployed (a Lambda function), it
 * fails closed: every connection to a node is refused, saying why, unless
 * REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS=true opts out. Under `npm start` and in tests any host key is
 * accepted, as before, with a warning logged once.
 */
import { logger } from '../../logger.js';
import { loadParameter } from '../../parameters.js';
import { loadSecret, type SecretLoader } from '../../secrets.js';
import { parseKnownHosts, type KnownHosts } from './known-hosts.js';
import type { RemoteNodeSettings } from './settings.js';

/** The known hosts to check a node's host key against; undefined accepts any host key. */
export type KnownHostsSource = () => Promise<KnownHosts | undefined>;

/** No connection to a node may be made: the configuration does not say which host keys to trust. */
export class HostKeysRefusedError extends Error {
  override name = 'HostKeysRefusedError';
}

export const NO_KNOWN_HOSTS =
  'no known hosts are configured for remote build nodes (REMOTE_NODE_KNOWN_HOSTS, REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN or REMOTE_NODE_KNOWN_HOSTS_PARAMETER), so no host key can be trusted; set REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS=true to accept any';

export interface KnownHostsDeps {
  secrets?: SecretLoader;
  parameters?: (name: string) => Promise<string>;
}

/** Parses the text of a secret or parameter once per value; a malformed text refuses every node. */
function parsedFrom(load: () => Promise<string>, source: string): KnownHostsSource {
  let last: { text: string; known: KnownHosts } | undefined;
  return async () => {
    const text = await load();
    if (last?.text !== text) {
      try {
        last = { text, known: parseKnownHosts(text, source) };
      } catch (error) {
        throw new HostKeysRefusedError((error as Error).message);
      }
    }
    return last.known;
  };
}

let warned = false;

export function knownHostsSourceFor(settings: RemoteNodeSettings, deps: KnownHostsDeps = {}): KnownHostsSource {
  if (settings.knownHosts) {
    const known = settings.knownHosts;
    return async () => known;
  }
  if (settings.knownHostsSecretArn) {
    const arn = settings.knownHostsSecretArn;
    const secrets = deps.secrets ?? loadSecret;
    return parsedFrom(() => secrets(arn), `the secret ${arn}`);
  }
  if (settings.knownHostsParameter) {
    const name = settings.knownHostsParameter;
    const parameters = deps.parameters ?? loadParameter;
    return parsedFrom(() => parameters(name), `the parameter ${name}`);
  }
  if (settings.acceptUnknownHosts) return async () => undefined;
  if (settings.deployed) {
    return async () => {
      throw new HostKeysRefusedError(NO_KNOWN_HOSTS);
    };
  }
  return async () => {
    if (!warned) logger.warn('remote build nodes: no known hosts are configured; any host key is accepted (deployed, nodes would be refused)');
    warned = true;
    return undefined;
  };
}
