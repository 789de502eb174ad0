/**
 * Where known hosts come from (REMOTE_NODE_KNOWN_HOSTS, then the secret, then the parameter) and
 * what happens without any: deployed, every node is refused unless the operator opts out; under
 * `npm start`, any host key is accepted. The secret and parameter clients are fakes behind the
 * real cache (shared/secrets.ts), with a fake clock.
 */
import { describe, expect, test } from '@jest/globals';
import type { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { GetParameterCommand } from '@aws-sdk/client-ssm';
import { createParameterLoader } from '#shared/parameters.js';
import { createSecretLoader } from '#shared/secrets.js';
import { checkHostKey } from '#shared/workers/remote-node/known-hosts.js';
import { HostKeysRefusedError, knownHostsSourceFor, NO_KNOWN_HOSTS } from '#shared/workers/remote-node/known-hosts-source.js';
import { remoteNodeSettingsFromEnv } from '#shared/workers/remote-node/settings.js';
import { ed25519Blob } from '../helpers/host-key-blobs.js';

const keyA = ed25519Blob();
const keyB = ed25519Blob();
const line = (host: string, key: Buffer) => `${host} ssh-ed25519 ${key.toString('base64')}\n`;
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ims-known-hosts';
const PARAMETER = '/ims/remote-node-known-hosts';

describe('knownHostsSourceFor', () => {
  test('deployed without any source, every connection is refused, saying how to configure it', async () => {
    const source = knownHostsSourceFor(remoteNodeSettingsFromEnv({ AWS_LAMBDA_FUNCTION_NAME: 'ims-build' }));
    await expect(source()).rejects.toThrow(HostKeysRefusedError);
    await expect(source()).rejects.toThrow(NO_KNOWN_HOSTS);
    expect(NO_KNOWN_HOSTS).toMatch(/REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS=true/);
  });

  test('deployed, REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS=true opts out: any host key is accepted', async () => {
    const source = knownHostsSourceFor(remoteNodeSettingsFromEnv({ AWS_LAMBDA_FUNCTION_NAME: 'ims-build', REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS: 'true' }));
    expect(await source()).toBeUndefined();
    // Only the exact opt-out counts.
    const other = knownHostsSourceFor(remoteNodeSettingsFromEnv({ AWS_LAMBDA_FUNCTION_NAME: 'ims-build', REMOTE_NODE_ACCEPT_UNKNOWN_HOSTS: 'yes please' }));
    await expect(other()).rejects.toThrow(HostKeysRefusedError);
  });

  test('under npm start (no Lambda) without any source, any host key is accepted as before', async () => {
    expect(await knownHostsSourceFor(remoteNodeSettingsFromEnv({}))()).toBeUndefined();
  });

  test('the text comes first, then the secret, then the parameter', async () => {
    const asked: string[] = [];
    const deps = {
      secrets: async (id: string) => (asked.push(id), line('node-secret', keyA)),
      parameters: async (name: string) => (asked.push(name), line('node-parameter', keyA)),
    };
    const all = { REMOTE_NODE_KNOWN_HOSTS: line('node-text', keyA), REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN: ARN, REMOTE_NODE_KNOWN_HOSTS_PARAMETER: PARAMETER };
    const fromText = await knownHostsSourceFor(remoteNodeSettingsFromEnv(all), deps)();
    expect(checkHostKey(fromText!, ['node-text'], keyA)).toBe('trusted');
    const fromSecret = await knownHostsSourceFor(remoteNodeSettingsFromEnv({ ...all, REMOTE_NODE_KNOWN_HOSTS: '' }), deps)();
    expect(checkHostKey(fromSecret!, ['node-secret'], keyA)).toBe('trusted');
    expect(fromSecret!.source).toBe(`the secret ${ARN}`);
    const fromParameter = await knownHostsSourceFor(remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS_PARAMETER: PARAMETER }), deps)();
    expect(checkHostKey(fromParameter!, ['node-parameter'], keyA)).toBe('trusted');
    expect(fromParameter!.source).toBe(`the parameter ${PARAMETER}`);
    expect(asked).toEqual([ARN, PARAMETER]);
  });

  test('a secret is read again once older than the maximum age: a host added to it is trusted, one removed is not', async () => {
    let clock = 0;
    let text = line('node1', keyA);
    const asked: string[] = [];
    const client = {
      send: async (command: GetSecretValueCommand) => (asked.push(command.input.SecretId!), { SecretString: text }),
    };
    const secrets = createSecretLoader(client, { maxAgeMs: 300_000, now: () => clock });
    const source = knownHostsSourceFor(remoteNodeSettingsFromEnv({ AWS_LAMBDA_FUNCTION_NAME: 'f', REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN: ARN }), { secrets });
    expect(checkHostKey((await source())!, ['node1'], keyA)).toBe('trusted');
    text = line('node2', keyB);
    clock = 200_000;
    expect(checkHostKey((await source())!, ['node2'], keyB)).toBe('unknown');
    clock = 300_001;
    const rotated = (await source())!;
    expect(checkHostKey(rotated, ['node2'], keyB)).toBe('trusted');
    expect(checkHostKey(rotated, ['node1'], keyA)).toBe('unknown');
    expect(asked).toEqual([ARN, ARN]);
  });

  test('a parameter is read with decryption through the SSM client', async () => {
    const asked: { name?: string; decrypt?: boolean }[] = [];
    const client = {
      send: async (command: GetParameterCommand) => (asked.push({ name: command.input.Name, decrypt: command.input.WithDecryption }), { Parameter: { Value: line('node1', keyA) } }),
    };
    const parameters = createParameterLoader(client);
    const source = knownHostsSourceFor(remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS_PARAMETER: PARAMETER }), { parameters });
    expect(checkHostKey((await source())!, ['node1'], keyA)).toBe('trusted');
    expect(asked).toEqual([{ name: PARAMETER, decrypt: true }]);
  });

  test('a malformed secret refuses every node, naming the secret and the line', async () => {
    const source = knownHostsSourceFor(remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN: ARN }), {
      secrets: async () => `${line('node1', keyA)}node2 ssh-ed25519 not*base64\n`,
    });
    await expect(source()).rejects.toThrow(HostKeysRefusedError);
    await expect(source()).rejects.toThrow(`the secret ${ARN} line 2: the key of type ssh-ed25519 is not base64`);
  });

  test('a secret that cannot be read is an error, not an acceptance', async () => {
    const source = knownHostsSourceFor(remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN: ARN }), {
      secrets: async () => {
        throw new Error('AccessDeniedException');
      },
    });
    await expect(source()).rejects.toThrow('AccessDeniedException');
  });
});
