/** SSH host key blobs as a server sends them, made with node:crypto. */
import { generateKeyPairSync } from 'node:crypto';

/** An SSH string: uint32 length, then the bytes. */
export function sshString(data: Buffer | string): Buffer {
  const bytes = Buffer.from(data);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** A fresh ed25519 host key blob. */
export function ed25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return Buffer.concat([sshString('ssh-ed25519'), sshString(raw)]);
}
