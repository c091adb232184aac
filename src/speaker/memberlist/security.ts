// memberlist's encryption (security.go, keyring.go) and MetalLB's key derivation.
import { createCipheriv, createDecipheriv, createHash, randomFillSync } from 'node:crypto';

/** security.go: version 0 = AES-GCM over PKCS#7-padded plaintext (protocol 1 only), 1 = no padding. */
export type EncryptionVersion = 0 | 1;
const VERSION_SIZE = 1;
const NONCE_SIZE = 12;
const TAG_SIZE = 16;
const BLOCK_SIZE = 16;

/** Bytes that encryption adds to a message (memberlist's `encryptOverhead`). */
export const encryptOverhead = (vsn: EncryptionVersion): number =>
  VERSION_SIZE + NONCE_SIZE + TAG_SIZE + (vsn === 0 ? BLOCK_SIZE : 0);

export function encryptedLength(vsn: EncryptionVersion, plainLen: number): number {
  if (vsn === 1) return VERSION_SIZE + NONCE_SIZE + plainLen + TAG_SIZE;
  const padded = plainLen + (BLOCK_SIZE - (plainLen % BLOCK_SIZE));
  return VERSION_SIZE + NONCE_SIZE + padded + TAG_SIZE;
}

export class KeyError extends Error {
  override name = 'KeyError';
}

/**
 * MetalLB's speaker: `sha256.New().Sum([]byte(secret))[:32]`. Go's `Sum(b)` APPENDS the digest of what
 * was written (nothing) to b, so the key is the first 32 bytes of `secret || sha256("")`, not a hash
 * of the secret. A 22-character secret (MetalLB's controller makes those) keeps all of itself.
 */
export function metallbKey(secret: string | Uint8Array): Buffer {
  const s = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  return Buffer.concat([s, createHash('sha256').digest()]).subarray(0, 32);
}

const cipherName = (key: Uint8Array): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' => {
  switch (key.length) {
    case 16: return 'aes-128-gcm';
    case 24: return 'aes-192-gcm';
    case 32: return 'aes-256-gcm';
    default: throw new KeyError(`key size must be 16, 24 or 32 bytes, not ${key.length}`);
  }
};

/** The installed keys: the first one encrypts, every one is tried to decrypt (keyring.go). */
export class Keyring {
  private keys: Buffer[];
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new KeyError('a keyring needs at least one key');
    for (const k of keys) cipherName(k);
    this.keys = keys.map((k) => Buffer.from(k));
  }
  get primary(): Buffer {
    return this.keys[0] as Buffer;
  }
  all(): readonly Buffer[] {
    return this.keys;
  }
  /** Installs a key (if new) and optionally makes it the primary, for key rotation. */
  add(key: Uint8Array, primary = false): void {
    cipherName(key);
    const k = Buffer.from(key);
    this.keys = this.keys.filter((x) => !x.equals(k));
    if (primary) this.keys.unshift(k);
    else this.keys.push(k);
  }
  remove(key: Uint8Array): void {
    const k = Buffer.from(key);
    if (this.primary.equals(k)) throw new KeyError('cannot remove the primary key');
    this.keys = this.keys.filter((x) => !x.equals(k));
  }
}

/**
 * Random nonces, as memberlist's (crypto/rand, 96 bits each), drawn from the kernel in batches: one call per packet
 * was the largest single cost of sealing one (a gossip thread seals a few hundred packets a second).
 */
const NONCES_PER_DRAW = 1024;
const noncePool = Buffer.alloc(NONCE_SIZE * NONCES_PER_DRAW);
let nonceOffset = noncePool.length;
function nextNonce(out: Buffer, at: number): void {
  if (nonceOffset >= noncePool.length) {
    randomFillSync(noncePool);
    nonceOffset = 0;
  }
  // Copied, and each pool byte used once: a nonce never repeats more often than random ones do.
  noncePool.copy(out, at, nonceOffset, nonceOffset + NONCE_SIZE);
  nonceOffset += NONCE_SIZE;
}

/** security.go encryptPayload: [vsn][nonce][ciphertext+tag], `aad` authenticated but not sent. */
export function seal(vsn: EncryptionVersion, key: Uint8Array, msg: Uint8Array, aad: Uint8Array): Buffer {
  const pad = vsn === 0 ? BLOCK_SIZE - (msg.length % BLOCK_SIZE) : 0;
  const out = Buffer.allocUnsafe(VERSION_SIZE + NONCE_SIZE + msg.length + pad + TAG_SIZE);
  out[0] = vsn;
  nextNonce(out, VERSION_SIZE);
  const c = createCipheriv(cipherName(key), key, out.subarray(VERSION_SIZE, VERSION_SIZE + NONCE_SIZE));
  // GCM with empty additional data is GCM without: skip the call (memberlist's AAD is the label, usually none).
  if (aad.length > 0) c.setAAD(aad);
  let at = VERSION_SIZE + NONCE_SIZE;
  at += c.update(msg).copy(out, at);
  if (pad > 0) at += c.update(Buffer.alloc(pad, pad)).copy(out, at);
  at += c.final().copy(out, at);
  c.getAuthTag().copy(out, at);
  return out;
}

export class DecryptError extends Error {
  override name = 'DecryptError';
}

/** security.go decryptPayload: tries every key; throws DecryptError when none authenticates. */
export function open(keys: readonly Uint8Array[], msg: Uint8Array, aad: Uint8Array): Buffer {
  if (msg.length === 0) throw new DecryptError('cannot decrypt empty payload');
  const vsn = msg[0] as number;
  if (vsn > 1) throw new DecryptError(`unsupported encryption version ${vsn}`);
  if (msg.length < encryptedLength(vsn as EncryptionVersion, 0)) throw new DecryptError('payload is too small to decrypt');
  const nonce = msg.subarray(VERSION_SIZE, VERSION_SIZE + NONCE_SIZE);
  const body = msg.subarray(VERSION_SIZE + NONCE_SIZE, msg.length - TAG_SIZE);
  const tag = msg.subarray(msg.length - TAG_SIZE);
  for (const key of keys) {
    try {
      const d = createDecipheriv(cipherName(key), key, nonce);
      if (aad.length > 0) d.setAAD(aad);
      d.setAuthTag(tag);
      const plain = d.update(body);
      // GCM is a stream mode: final() only checks the tag and yields nothing more.
      d.final();
      if (vsn === 1) return plain;
      const pad = plain.length > 0 ? (plain[plain.length - 1] as number) : 0;
      if (pad === 0 || pad > BLOCK_SIZE || pad > plain.length) throw new DecryptError('bad padding');
      return plain.subarray(0, plain.length - pad);
    } catch (err) {
      if (err instanceof DecryptError) throw err;
    }
  }
  throw new DecryptError('no installed keys could decrypt the message');
}
