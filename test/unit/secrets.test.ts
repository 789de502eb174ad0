import { describe, expect, test } from '@jest/globals';
import type { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { GetParameterCommand } from '@aws-sdk/client-ssm';
import { createParameterLoader } from '#shared/parameters.js';
import { createSecretLoader, type SecretsClient } from '#shared/secrets.js';

function fakeClient(answers: Record<string, () => Promise<{ SecretString?: string; SecretBinary?: Uint8Array }>>) {
  const asked: string[] = [];
  const client: SecretsClient = {
    send: async (command: GetSecretValueCommand) => {
      const id = command.input.SecretId!;
      asked.push(id);
      return answers[id]();
    },
  };
  return { client, asked };
}

describe('createSecretLoader', () => {
  test('reads a secret once and serves it from the cache afterwards', async () => {
    const { client, asked } = fakeClient({ kube: async () => ({ SecretString: 'apiVersion: v1' }) });
    const load = createSecretLoader(client);
    expect(await load('kube')).toBe('apiVersion: v1');
    expect(await load('kube')).toBe('apiVersion: v1');
    expect(asked).toEqual(['kube']);
  });

  test('decodes a binary secret as UTF-8', async () => {
    const { client } = fakeClient({ key: async () => ({ SecretBinary: new TextEncoder().encode('-----BEGIN OPENSSH PRIVATE KEY-----') }) });
    expect(await createSecretLoader(client)('key')).toBe('-----BEGIN OPENSSH PRIVATE KEY-----');
  });

  test('does not cache a failed read, so the next call asks again', async () => {
    let calls = 0;
    const { client, asked } = fakeClient({
      kube: async () => {
        calls += 1;
        if (calls === 1) throw new Error('throttled');
        return { SecretString: 'ok' };
      },
    });
    const load = createSecretLoader(client);
    await expect(load('kube')).rejects.toThrow('throttled');
    expect(await load('kube')).toBe('ok');
    expect(asked).toEqual(['kube', 'kube']);
  });

  test('a caller may ask for a shorter age than the loader\'s, never a longer one', async () => {
    let version = 1;
    let clock = 0;
    const { client, asked } = fakeClient({ signing: async () => ({ SecretString: `key-${version}` }) });
    const load = createSecretLoader(client, { maxAgeMs: 5000, now: () => clock });
    expect(await load('signing', { maxAgeMs: 1000 })).toBe('key-1');
    version = 2;
    clock = 1000;
    expect(await load('signing', { maxAgeMs: 1000 })).toBe('key-1');
    clock = 1001;
    expect(await load('signing', { maxAgeMs: 1000 })).toBe('key-2');
    // A longer age than the loader's is cut to it.
    version = 3;
    clock = 6002;
    expect(await load('signing', { maxAgeMs: 60_000 })).toBe('key-3');
    expect(asked).toEqual(['signing', 'signing', 'signing']);
  });

  test('a rotated value is seen once the cached one is older than the maximum age (SECRETS_MAX_AGE_SECONDS)', async () => {
    let version = 1;
    let clock = 0;
    const { client, asked } = fakeClient({ key: async () => ({ SecretString: `v${version}` }) });
    const load = createSecretLoader(client, { maxAgeMs: 300_000, now: () => clock });
    expect(await load('key')).toBe('v1');
    version = 2;
    clock = 299_000;
    expect(await load('key')).toBe('v1');
    clock = 300_001;
    expect(await load('key')).toBe('v2');
    expect(asked).toEqual(['key', 'key']);
  });

  test('the default maximum age is 300 s', async () => {
    let clock = 0;
    const { client, asked } = fakeClient({ key: async () => ({ SecretString: 'v' }) });
    const load = createSecretLoader(client, { now: () => clock });
    await load('key');
    clock = 300_000;
    await load('key');
    expect(asked).toHaveLength(1);
    clock = 300_001;
    await load('key');
    expect(asked).toHaveLength(2);
  });

  test('concurrent reads share one fetch', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { client, asked } = fakeClient({ key: async () => (await gate, { SecretString: 'v' }) });
    const load = createSecretLoader(client);
    const reads = [load('key'), load('key'), load('key')];
    release();
    expect(await Promise.all(reads)).toEqual(['v', 'v', 'v']);
    expect(asked).toEqual(['key']);
  });

  test('a failed re-read serves the last good value for one more maximum age, pausing between attempts, then fails', async () => {
    let clock = 0;
    let failing = false;
    const { client, asked } = fakeClient({
      key: async () => {
        if (failing) throw new Error('AccessDenied');
        return { SecretString: 'good' };
      },
    });
    const load = createSecretLoader(client, { maxAgeMs: 1000, now: () => clock });
    expect(await load('key')).toBe('good');
    failing = true;
    clock = 1500;
    expect(await load('key')).toBe('good');
    expect(asked).toHaveLength(2);
    // Within the pause no new attempt is made.
    clock = 1600;
    expect(await load('key')).toBe('good');
    expect(asked).toHaveLength(2);
    // Past twice the maximum age the failure is the caller's.
    clock = 2001;
    await expect(load('key')).rejects.toThrow('AccessDenied');
    failing = false;
    expect(await load('key')).toBe('good');
  });

  test('refuses a secret without a value', async () => {
    const { client } = fakeClient({ empty: async () => ({}) });
    await expect(createSecretLoader(client)('empty')).rejects.toThrow('secret empty has no value');
  });
});

describe('createParameterLoader', () => {
  test('reads a parameter decrypted, caches it for the maximum age, and sees a new value after', async () => {
    let value = 'node1 ssh-ed25519 AAAA';
    let clock = 0;
    const asked: { name?: string; decrypt?: boolean }[] = [];
    const client = {
      send: async (command: GetParameterCommand) => {
        asked.push({ name: command.input.Name, decrypt: command.input.WithDecryption });
        return { Parameter: { Value: value } };
      },
    };
    const load = createParameterLoader(client, { maxAgeMs: 60_000, now: () => clock });
    expect(await load('/ims/known-hosts')).toBe('node1 ssh-ed25519 AAAA');
    value = 'node2 ssh-ed25519 BBBB';
    clock = 60_000;
    expect(await load('/ims/known-hosts')).toBe('node1 ssh-ed25519 AAAA');
    clock = 60_001;
    expect(await load('/ims/known-hosts')).toBe('node2 ssh-ed25519 BBBB');
    expect(asked).toEqual([
      { name: '/ims/known-hosts', decrypt: true },
      { name: '/ims/known-hosts', decrypt: true },
    ]);
  });

  test('refuses a parameter without a value', async () => {
    const load = createParameterLoader({ send: async () => ({}) });
    await expect(load('/missing')).rejects.toThrow('parameter /missing has no value');
  });
});
