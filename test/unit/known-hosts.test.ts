/**
 * REMOTE_NODE_KNOWN_HOSTS: the known_hosts parser and lookup (plain, `[host]:port`, hashed,
 * patterns, @revoked, @cert-authority, comments, malformed lines) and the refusal message, with
 * OpenSSH's own ssh-keygen as the reference for hashed names and fingerprints.
 */
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHostKey, fingerprintOf, keyTypeOf, knownHostName, parseKnownHosts } from '#shared/workers/remote-node/known-hosts.js';
import { remoteNodeSettingsFromEnv } from '#shared/workers/remote-node/settings.js';
import { hostKeyRefusal } from '#shared/workers/remote-node/ssh-session.js';
import { ed25519Blob } from '../helpers/host-key-blobs.js';

/** `ssh-ed25519 base64` as in a known_hosts line or a .pub file. */
const keyText = (blob: Buffer) => `ssh-ed25519 ${blob.toString('base64')}`;

/** A hashed host name as OpenSSH writes it. */
function hashedName(name: string, salt = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

const keyA = ed25519Blob();
const keyB = ed25519Blob();

describe('parseKnownHosts and checkHostKey', () => {
  test('plain entries: every listed name, case-insensitively; any other name or key is unknown', () => {
    const known = parseKnownHosts(`node1,10.0.0.5 ${keyText(keyA)} root@node1\n`);
    expect(known.entries).toHaveLength(1);
    for (const name of ['node1', '10.0.0.5', 'NODE1']) expect(checkHostKey(known, [name], keyA)).toBe('trusted');
    expect(checkHostKey(known, ['node2'], keyA)).toBe('unknown');
    expect(checkHostKey(known, ['node1'], keyB)).toBe('unknown');
    // The same host on another port is another entry.
    expect(checkHostKey(known, [knownHostName('node1', 2222)], keyA)).toBe('unknown');
  });

  test('[host]:port entries are looked up for ports other than 22 only', () => {
    const known = parseKnownHosts(`[10.0.0.5]:2222 ${keyText(keyA)}\n`);
    expect(knownHostName('10.0.0.5', 2222)).toBe('[10.0.0.5]:2222');
    expect(knownHostName('10.0.0.5', 22)).toBe('10.0.0.5');
    expect(checkHostKey(known, [knownHostName('10.0.0.5', 2222)], keyA)).toBe('trusted');
    expect(checkHostKey(known, [knownHostName('10.0.0.5', 22)], keyA)).toBe('unknown');
    expect(checkHostKey(known, [knownHostName('10.0.0.5', 2223)], keyA)).toBe('unknown');
  });

  test('hashed entries (HMAC-SHA1 of the name with the salt), by node:crypto and by ssh-keygen -H', () => {
    const known = parseKnownHosts(`${hashedName('[x1000c0s0b0n0]:2222')} ${keyText(keyA)}\n`);
    expect(known.entries[0]).toMatchObject({ hashed: { salt: expect.any(Buffer), hash: expect.any(Buffer) } });
    expect(known.entries[0].patterns).toBeUndefined();
    expect(checkHostKey(known, ['[x1000c0s0b0n0]:2222'], keyA)).toBe('trusted');
    expect(checkHostKey(known, ['x1000c0s0b0n0'], keyA)).toBe('unknown');

    const dir = mkdtempSync(join(tmpdir(), 'ims-known-hosts-'));
    try {
      const file = join(dir, 'known_hosts');
      writeFileSync(file, `node7.example,[192.0.2.7]:2200 ${keyText(keyB)}\n`);
      execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      const hashed = readFileSync(file, 'utf8');
      // ssh-keygen writes one hashed line per name.
      expect(hashed.trim().split('\n').map((l) => l.slice(0, 3))).toEqual(['|1|', '|1|']);
      const fromOpenSsh = parseKnownHosts(hashed);
      expect(checkHostKey(fromOpenSsh, ['node7.example'], keyB)).toBe('trusted');
      expect(checkHostKey(fromOpenSsh, [knownHostName('192.0.2.7', 2200)], keyB)).toBe('trusted');
      expect(checkHostKey(fromOpenSsh, ['192.0.2.7'], keyB)).toBe('unknown');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('wildcards and negation, as in OpenSSH host patterns', () => {
    const known = parseKnownHosts(`*.nodes.example,!bad.nodes.example,[10.1.?.1]:2222 ${keyText(keyA)}\n`);
    expect(checkHostKey(known, ['n1.nodes.example'], keyA)).toBe('trusted');
    expect(checkHostKey(known, ['bad.nodes.example'], keyA)).toBe('unknown');
    expect(checkHostKey(known, ['[10.1.7.1]:2222'], keyA)).toBe('trusted');
    expect(checkHostKey(known, ['nodes.example'], keyA)).toBe('unknown');
  });

  test('@revoked refuses the key for its hosts, whatever other lines say; elsewhere the key stays trusted', () => {
    const known = parseKnownHosts([`node1,node2 ${keyText(keyA)}`, `@revoked node1 ${keyText(keyA)}`].join('\n'));
    expect(checkHostKey(known, ['node1'], keyA)).toBe('revoked');
    expect(checkHostKey(known, ['10.0.0.1', 'node1'], keyA)).toBe('revoked');
    expect(checkHostKey(known, ['node2'], keyA)).toBe('trusted');
  });

  test('@cert-authority lines are ignored: a CA key trusts no host by itself', () => {
    const known = parseKnownHosts(`@cert-authority * ${keyText(keyA)}\n`);
    expect(known.entries).toEqual([]);
    expect(checkHostKey(known, ['node1'], keyA)).toBe('unknown');
  });

  test('comments, blank lines, indentation and CRLF line ends are skipped', () => {
    const text = ['# nodes of rack 1', '', '   ', `  node1 ${keyText(keyA)} comment with spaces\r`, '\t# node2 is gone', `node3 ${keyText(keyB)}\r`, ''].join('\n');
    const known = parseKnownHosts(text);
    expect(known.entries.map((e) => [e.line, e.patterns, e.keyType])).toEqual([
      [4, ['node1'], 'ssh-ed25519'],
      [6, ['node3'], 'ssh-ed25519'],
    ]);
    expect(checkHostKey(known, ['node3'], keyB)).toBe('trusted');
  });

  test.each([
    ['a host and no key', `node2`, /line 2: expected \[marker\] hosts keytype base64-key/],
    ['a key type without a key', `node2 ssh-ed25519`, /line 2: expected/],
    ['a key that is not base64', `node2 ssh-ed25519 not*base64`, /line 2: the key of type ssh-ed25519 is not base64/],
    ['a key of another type than named', `node2 ssh-rsa ${keyA.toString('base64')}`, /line 2: the key is of type ssh-ed25519, not ssh-rsa/],
    ['base64 that is no SSH key', `node2 ssh-ed25519 ${Buffer.from('hello world!').toString('base64')}`, /line 2: the key is not an SSH public key/],
    ['an unknown marker', `@trusted node2 ${keyText(keyA)}`, /line 2: unknown marker '@trusted'/],
    ['a hashed name that is not |1|salt|hash', `|2|abc|def ${keyText(keyA)}`, /line 2: the hashed host name/],
    ['an empty host name', `node2,,node3 ${keyText(keyA)}`, /line 2: the host list 'node2,,node3' has an empty name/],
  ])('a malformed line (%s) is a configuration error naming its line when settings are read', (_, line, message) => {
    const text = `node1 ${keyText(keyA)}\n${line}\n`;
    expect(() => remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS: text })).toThrow(message);
    expect(() => remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS: text })).toThrow(/^REMOTE_NODE_KNOWN_HOSTS line 2: /);
  });

  test('settings: unset or empty means no verification; set, the parsed entries', () => {
    expect(remoteNodeSettingsFromEnv({}).knownHosts).toBeUndefined();
    expect(remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS: '' }).knownHosts).toBeUndefined();
    expect(remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS: `node1 ${keyText(keyA)}` }).knownHosts?.entries).toHaveLength(1);
    // Set but listing nothing: no node is trusted.
    expect(remoteNodeSettingsFromEnv({ REMOTE_NODE_KNOWN_HOSTS: '# none yet\n' }).knownHosts).toEqual({ entries: [] });
  });
});

describe('host key descriptions', () => {
  test('key type and fingerprint as ssh-keygen -l prints them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ims-known-hosts-'));
    try {
      writeFileSync(join(dir, 'key.pub'), `${keyText(keyA)} test\n`);
      const printed = execFileSync('ssh-keygen', ['-l', '-f', join(dir, 'key.pub')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(printed.split(' ')[1]).toBe(fingerprintOf(keyA));
      expect(fingerprintOf(keyA)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
      expect(keyTypeOf(keyA)).toBe('ssh-ed25519');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the refusal names the node, the address connected to, the key and the setting; a listed key is not refused', () => {
    const target = { xname: 'x1000c0s0b0n0', host: '10.0.0.5', port: 2222, user: 'root' };
    const known = parseKnownHosts([`[10.0.0.5]:2222 ${keyText(keyA)}`, `@revoked [x1000c0s0b0n0]:2222 ${keyText(keyB)}`].join('\n'));
    expect(hostKeyRefusal(known, target, keyA)).toBeUndefined();
    expect(hostKeyRefusal(known, target, ed25519Blob())).toMatch(
      /^the host key of x1000c0s0b0n0 \(10\.0\.0\.5:2222, ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\) is not in REMOTE_NODE_KNOWN_HOSTS$/,
    );
    expect(hostKeyRefusal(known, target, keyB)).toBe(`the host key of x1000c0s0b0n0 (10.0.0.5:2222, ssh-ed25519 ${fingerprintOf(keyB)}) is marked @revoked in REMOTE_NODE_KNOWN_HOSTS`);
    // Listed under the xname only: found too.
    expect(hostKeyRefusal(parseKnownHosts(`[x1000c0s0b0n0]:2222 ${keyText(keyA)}`), target, keyA)).toBeUndefined();
    expect(hostKeyRefusal(parseKnownHosts(`x1000c0s0b0n0 ${keyText(keyA)}`), { ...target, port: 22 }, keyA)).toBeUndefined();
  });
});
