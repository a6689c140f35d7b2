/**
 * The Node adapter for the core's {@link CryptoPort}, on node:crypto (OpenSSL). Ed25519 keys arrive as
 * raw 32-byte seeds and public keys; they are wrapped in a fixed DER prefix to build KeyObjects, and the
 * KeyObjects are cached because the same device key signs and verifies over and over.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import type { CryptoPort } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";

/** PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410 § 7) up to the 32-byte seed. */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** SubjectPublicKeyInfo for Ed25519 (RFC 8410 § 4) up to the 32-byte public key. */
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

const ED25519_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
/** How many KeyObjects of each kind to keep; a hub holds a handful of device keys. */
const KEY_CACHE_SIZE = 64;

/** A small least-recently-used map. */
class KeyCache {
  readonly #map = new Map<string, KeyObject>();

  get(id: string): KeyObject | undefined {
    const key = this.#map.get(id);
    if (key !== undefined) {
      // Move to the end: most recently used.
      this.#map.delete(id);
      this.#map.set(id, key);
    }
    return key;
  }

  set(id: string, key: KeyObject): void {
    this.#map.delete(id);
    this.#map.set(id, key);
    if (this.#map.size > KEY_CACHE_SIZE) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined) this.#map.delete(oldest);
    }
  }
}

const privateKeys = new KeyCache();
const publicKeys = new KeyCache();

/** A plain Uint8Array copy (not a Buffer, not a view on Node's shared pool). */
function bytes(b: Buffer): Uint8Array {
  return new Uint8Array(b);
}

function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_KEY_BYTES) {
    throw new LatchkeyError("LK_INVALID_INPUT", "an Ed25519 private seed must be 32 bytes");
  }
  // Cache by a hash of the seed, so no copy of the secret sits in a (unwipeable) JS string.
  const id = createHash("sha256").update(seed).digest("base64");
  let key = privateKeys.get(id);
  if (key === undefined) {
    key = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
      format: "der",
      type: "pkcs8",
    });
    privateKeys.set(id, key);
  }
  return key;
}

/** The KeyObject for a raw public key; throws on a malformed key (callers catch). */
function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("hex");
  let key = publicKeys.get(id);
  if (key === undefined) {
    key = createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, raw]),
      format: "der",
      type: "spki",
    });
    publicKeys.set(id, key);
  }
  return key;
}

export const nodeCrypto: CryptoPort = {
  sha256(data) {
    return bytes(createHash("sha256").update(data).digest());
  },

  hmacSha256(key, data) {
    return bytes(createHmac("sha256", key).update(data).digest());
  },

  randomBytes(n) {
    if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 31 - 1) {
      throw new LatchkeyError("LK_INVALID_INPUT", "random byte count must be a non-negative integer");
    }
    return bytes(randomBytes(n));
  },

  ed25519Sign(privateSeed, data) {
    return bytes(sign(null, data, privateKeyFromSeed(privateSeed)));
  },

  ed25519Verify(publicKey, data, signature) {
    if (
      !(publicKey instanceof Uint8Array) ||
      !(data instanceof Uint8Array) ||
      !(signature instanceof Uint8Array) ||
      publicKey.length !== ED25519_KEY_BYTES ||
      signature.length !== ED25519_SIGNATURE_BYTES
    ) {
      return false;
    }
    try {
      return verify(null, data, publicKeyFromRaw(publicKey), signature);
    } catch {
      return false;
    }
  },

  ed25519PublicKey(privateSeed) {
    const spki = createPublicKey(privateKeyFromSeed(privateSeed)).export({ format: "der", type: "spki" });
    return bytes(spki.subarray(SPKI_ED25519_PREFIX.length));
  },
};
