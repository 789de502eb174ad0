import { describe, expect, test } from '@jest/globals';
import type { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
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

  test('with maxAgeMs, reads the secret again once the cached value is older (a rotated key is picked up)', async () => {
    let version = 1;
    let clock = 0;
    const { client, asked } = fakeClient({ signing: async () => ({ SecretString: `key-${version}` }) });
    const load = createSecretLoader(client, () => clock);
    expect(await load('signing', { maxAgeMs: 1000 })).toBe('key-1');
    version = 2;
    clock = 1000;
    expect(await load('signing', { maxAgeMs: 1000 })).toBe('key-1');
    clock = 1001;
    expect(await load('signing', { maxAgeMs: 1000 })).toBe('key-2');
    // Without maxAgeMs the cached value stays.
    version = 3;
    clock = 99_999;
    expect(await load('signing')).toBe('key-2');
    expect(asked).toEqual(['signing', 'signing']);
  });

  test('refuses a secret without a value', async () => {
    const { client } = fakeClient({ empty: async () => ({}) });
    await expect(createSecretLoader(client)('empty')).rejects.toThrow('secret empty has no value');
  });
});
