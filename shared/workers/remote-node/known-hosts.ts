/**
 * The host keys IMS accepts from its remote build nodes: the text of an OpenSSH known_hosts file
 * (REMOTE_NODE_KNOWN_HOSTS; host public keys are not secret). Lines are
 * `[@revoked] hosts keytype base64-key [comment]`, where hosts is a comma-separated list of names
 * or patterns (`*`, `?`, `!negated`; `[host]:port` for a port other than 22), or one hashed name
 * `|1|base64-salt|base64-hmac-sha1` as `ssh-keygen -H` writes it. Names match case-insensitively,
 * as in OpenSSH. Pure: parsing and matching only, no I/O.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface KnownHostEntry {
  /** 1-based line in the text, for messages. */
  line: number;
  /** `@revoked`: this key is refused for these hosts, whatever other lines say. */
  revoked: boolean;
  /** Plain host patterns, lowercased (absent for a hashed entry). */
  patterns?: string[];
  /** A hashed host name: HMAC-SHA1 of the name, keyed with the salt. */
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  /** The key blob (what the server sends in the key exchange). */
  key: Buffer;
}

export interface KnownHosts {
  entries: KnownHostEntry[];
  /** Where the text came from, for messages (absent: REMOTE_NODE_KNOWN_HOSTS). */
  source?: string;
}

export type HostKeyVerdict = 'trusted' | 'revoked' | 'unknown';

const SETTING = 'REMOTE_NODE_KNOWN_HOSTS';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const SHA1_BYTES = 20;

function fail(line: number, why: string, source = SETTING): never {
  throw new Error(`${source} line ${line}: ${why}`);
}

/** Where a set of known hosts came from, as messages name it. */
export function sourceOf(known: KnownHosts): string {
  return known.source ?? SETTING;
}

/** The key type a key blob names in its first field (an SSH string), or undefined when it has none. */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return undefined;
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** As `ssh-keygen -l` prints it: `SHA256:` and the unpadded base64 of the blob's SHA-256. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The name a host is listed under: `host` on port 22, `[host]:port` on any other. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function decodeBase64(text: string): Buffer | undefined {
  return BASE64.test(text) && text.length % 4 === 0 ? Buffer.from(text, 'base64') : undefined;
}

function parseHosts(field: string, line: number, fail: (line: number, why: string) => never): Pick<KnownHostEntry, 'patterns' | 'hashed'> {
  if (field.startsWith('|')) {
    const parts = field.split('|');
    if (parts.length !== 4 || parts[1] !== '1') fail(line, `the hashed host name '${field}' is not |1|salt|hash`);
    const salt = decodeBase64(parts[2]);
    const hash = decodeBase64(parts[3]);
    if (salt?.length !== SHA1_BYTES || hash?.length !== SHA1_BYTES) fail(line, `the hashed host name '${field}' does not hold a base64 salt and HMAC-SHA1`);
    return { hashed: { salt, hash } };
  }
  const patterns = field.split(',');
  if (patterns.some((p) => p === '' || p === '!')) fail(line, `the host list '${field}' has an empty name`);
  return { patterns: patterns.map((p) => p.toLowerCase()) };
}

/**
 * Parses known_hosts text. Comments (`#`) and blank lines are skipped. `@cert-authority` lines
 * are checked for syntax and then ignored: nodes present plain host keys, and a CA line must not
 * make a key trusted by itself. Any malformed line throws, naming its line number.
 */
export function parseKnownHosts(text: string, source?: string): KnownHosts {
  const entries: KnownHostEntry[] = [];
  const failAt: (line: number, why: string) => never = (line, why) => fail(line, why, source);
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const content = raw.trim();
    if (content === '' || content.startsWith('#')) return;
    const fields = content.split(/\s+/);
    let marker: string | undefined;
    if (fields[0].startsWith('@')) marker = fields.shift();
    if (marker !== undefined && marker !== '@revoked' && marker !== '@cert-authority') failAt(line, `unknown marker '${marker}' (only @revoked and @cert-authority exist)`);
    if (fields.length < 3) failAt(line, 'expected [marker] hosts keytype base64-key [comment]');
    const [hostsField, keyType, keyText] = fields;
    const hosts = parseHosts(hostsField, line, failAt);
    const key = decodeBase64(keyText);
    if (!key) failAt(line, `the key of type ${keyType} is not base64`);
    const named = keyTypeOf(key);
    if (named !== keyType) failAt(line, `the key is ${named === undefined ? 'not an SSH public key' : `of type ${named}, not ${keyType}`}`);
    if (marker === '@cert-authority') return;
    entries.push({ line, revoked: marker === '@revoked', ...hosts, keyType, key });
  });
  return { entries, ...(source ? { source } : {}) };
}

/** Undefined (no verification) when the setting is unset or empty. */
export function knownHostsFromSetting(text: string | undefined): KnownHosts | undefined {
  return text ? parseKnownHosts(text) : undefined;
}

/** OpenSSH's wildcard match: `*` any run of characters, `?` any one, all else literal. */
function wildcard(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(name);
}

/** A pattern list matches when one pattern matches and no negated one does. */
function listMatches(patterns: string[], name: string): boolean {
  let matched = false;
  for (const pattern of patterns) {
    if (pattern.startsWith('!')) {
      if (wildcard(pattern.slice(1), name)) return false;
    } else if (wildcard(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

function entryNames(entry: KnownHostEntry, name: string): boolean {
  if (entry.patterns) return listMatches(entry.patterns, name);
  const { salt, hash } = entry.hashed!;
  return timingSafeEqual(createHmac('sha1', salt).update(name).digest(), hash);
}

/**
 * Whether `key` (a key blob) may be accepted from a host known under any of `names`: trusted
 * when a line for one of the names lists it, revoked when an `@revoked` line for one of them does.
 */
export function checkHostKey(known: KnownHosts, names: string[], key: Buffer): HostKeyVerdict {
  const lowered = [...new Set(names.map((n) => n.toLowerCase()))];
  let verdict: HostKeyVerdict = 'unknown';
  for (const entry of known.entries) {
    if (!entry.key.equals(key) || !lowered.some((name) => entryNames(entry, name))) continue;
    if (entry.revoked) return 'revoked';
    verdict = 'trusted';
  }
  return verdict;
}
