/**
 * The Node adapter for the core's {@link CryptoPort}, on node:crypto (OpenSSL). Ed25519 keys arrive as
 * raw 32-byte seeds and public keys; they are wrapped in a fixed DER prefix to build KeyObjects, and the
 * KeyObjects are cached because the same device key signs and verifies over and over.
 * P-256 (ES256) private keys arrive as PKCS#8 DER and public keys as 65-byte uncompressed SEC1 points
 * (wrapped in a fixed SPKI prefix); their KeyObjects are cached the same way.
 * X25519 keys (ephemeral, used once) are imported as JWKs (RFC 8037) and not cached. AES-256-GCM is node's
 * `aes-256-gcm` cipher with a 12-byte nonce and a 16-byte tag.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import type { CryptoPort, HmacAlgorithm } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";

/** PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410 § 7) up to the 32-byte seed. */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** SubjectPublicKeyInfo for Ed25519 (RFC 8410 § 4) up to the 32-byte public key. */
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** SubjectPublicKeyInfo for an id-ecPublicKey on prime256v1 (RFC 5480 § 2) up to the 65-byte SEC1 point. */
const SPKI_P256_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");

/** PKCS#8 PrivateKeyInfo for X25519 (RFC 8410 § 7) up to the 32-byte private key. */
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const X25519_KEY_BYTES = 32;
const AES256_KEY_BYTES = 32;
const GCM_NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;

/** node:crypto's names for the {@link CryptoPort.hmac} hashes. */
const HMAC_HASHES: Readonly<Record<HmacAlgorithm, string>> = Object.freeze({
  "SHA-1": "sha1",
  "SHA-256": "sha256",
  "SHA-512": "sha512",
});

const ED25519_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
/** Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes). */
const P256_POINT_BYTES = 65;
/** IEEE P1363 signature: r || s, 32 bytes each. */
const P256_SIGNATURE_BYTES = 64;
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
const p256PrivateKeys = new KeyCache();
const p256PublicKeys = new KeyCache();

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

/** The KeyObject for a P-256 PKCS#8 DER private key; throws `LK_INVALID_INPUT` if it is not one. */
function p256PrivateKey(der: Uint8Array): KeyObject {
  if (!(der instanceof Uint8Array)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "a P-256 private key must be PKCS#8 DER bytes");
  }
  // Cache by a hash of the key, so no copy of the secret sits in a (unwipeable) JS string.
  const id = createHash("sha256").update(der).digest("base64");
  let key = p256PrivateKeys.get(id);
  if (key === undefined) {
    let parsed: KeyObject;
    try {
      parsed = createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", "a P-256 private key must be PKCS#8 DER bytes");
    }
    if (parsed.asymmetricKeyType !== "ec" || parsed.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      throw new LatchkeyError("LK_INVALID_INPUT", "the PKCS#8 private key is not a P-256 key");
    }
    key = parsed;
    p256PrivateKeys.set(id, key);
  }
  return key;
}

/** The KeyObject for an uncompressed SEC1 P-256 point; throws on a malformed point or one off the curve (callers catch). */
function p256PublicKey(point: Uint8Array): KeyObject {
  const id = Buffer.from(point.buffer, point.byteOffset, point.byteLength).toString("hex");
  let key = p256PublicKeys.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_P256_PREFIX, point]), format: "der", type: "spki" });
    p256PublicKeys.set(id, key);
  }
  return key;
}

/** A JWK `x` placeholder: Node requires the member but derives the public key from `d` (RFC 8037 § 2). */
const JWK_X_PLACEHOLDER = Buffer.alloc(X25519_KEY_BYTES).toString("base64url");

/**
 * The KeyObject of a raw X25519 private key. Imported as a JWK (RFC 8037), which takes ~0.1 ms where
 * PKCS#8 DER takes ~1 ms on OpenSSL 3; the DER path remains as a fallback. The base64url text of an
 * ephemeral key lives as a JS string until garbage-collected: acceptable for keys used once and never
 * stored, and the reason long-lived keys here go through DER and a cache instead.
 */
function x25519PrivateKey(raw: Uint8Array): KeyObject {
  if (!(raw instanceof Uint8Array) || raw.length !== X25519_KEY_BYTES) {
    throw new LatchkeyError("LK_INVALID_INPUT", "an X25519 private key must be 32 bytes");
  }
  const d = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64url");
  try {
    return createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: JWK_X_PLACEHOLDER }, format: "jwk" });
  } catch {
    const der = Buffer.concat([PKCS8_X25519_PREFIX, raw]);
    try {
      return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    } finally {
      der.fill(0);
    }
  }
}

function checkAeadKeyNonce(key: Uint8Array, nonce: Uint8Array): boolean {
  return (
    key instanceof Uint8Array &&
    nonce instanceof Uint8Array &&
    key.length === AES256_KEY_BYTES &&
    nonce.length === GCM_NONCE_BYTES
  );
}

/**
 * A fresh P-256 key pair, for tests and tools: the private key as PKCS#8 DER (what
 * {@link CryptoPort.p256Sign} takes) and the public key as a 65-byte uncompressed SEC1 point.
 */
export function generateP256(): { privateKeyPkcs8Der: Uint8Array; publicKeySec1: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = publicKey.export({ format: "der", type: "spki" });
  return {
    privateKeyPkcs8Der: bytes(privateKey.export({ format: "der", type: "pkcs8" })),
    publicKeySec1: bytes(spki.subarray(SPKI_P256_PREFIX.length)),
  };
}

export const nodeCrypto: CryptoPort = {
  sha256(data) {
    return bytes(createHash("sha256").update(data).digest());
  },

  hmacSha256(key, data) {
    return bytes(createHmac("sha256", key).update(data).digest());
  },

  hmac(alg, key, data) {
    const hash = Object.hasOwn(HMAC_HASHES, alg) ? HMAC_HASHES[alg] : undefined;
    if (hash === undefined) {
      throw new LatchkeyError("LK_INVALID_INPUT", "HMAC hash must be SHA-1, SHA-256 or SHA-512");
    }
    return bytes(createHmac(hash, key).update(data).digest());
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

  p256Sign(privateKeyPkcs8Der, data) {
    return bytes(
      sign("sha256", data, { key: p256PrivateKey(privateKeyPkcs8Der), dsaEncoding: "ieee-p1363" }),
    );
  },

  p256Verify(publicKeySec1, data, signature) {
    if (
      !(publicKeySec1 instanceof Uint8Array) ||
      !(data instanceof Uint8Array) ||
      !(signature instanceof Uint8Array) ||
      publicKeySec1.length !== P256_POINT_BYTES ||
      publicKeySec1[0] !== 0x04 ||
      signature.length !== P256_SIGNATURE_BYTES
    ) {
      return false;
    }
    try {
      return verify(
        "sha256",
        data,
        { key: p256PublicKey(publicKeySec1), dsaEncoding: "ieee-p1363" },
        signature,
      );
    } catch {
      return false;
    }
  },

  x25519PublicKey(privateKey) {
    const jwk = createPublicKey(x25519PrivateKey(privateKey)).export({ format: "jwk" });
    return bytes(Buffer.from(jwk.x ?? "", "base64url"));
  },

  x25519SharedSecret(privateKey, peerPublicKey) {
    if (!(peerPublicKey instanceof Uint8Array) || peerPublicKey.length !== X25519_KEY_BYTES) return null;
    const ours = x25519PrivateKey(privateKey);
    let secret: Buffer;
    try {
      const x = Buffer.from(peerPublicKey.buffer, peerPublicKey.byteOffset, 32).toString("base64url");
      const theirs = createPublicKey({ key: { kty: "OKP", crv: "X25519", x }, format: "jwk" });
      secret = diffieHellman({ privateKey: ours, publicKey: theirs });
    } catch {
      return null; // OpenSSL refuses an all-zero result itself
    }
    let any = 0;
    for (const b of secret) any |= b;
    return any === 0 ? null : bytes(secret);
  },

  aeadSeal(key, nonce, plaintext, aad) {
    if (!checkAeadKeyNonce(key, nonce)) {
      throw new LatchkeyError("LK_INVALID_INPUT", "AES-256-GCM needs a 32-byte key and a 12-byte nonce");
    }
    const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: GCM_TAG_BYTES });
    cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return bytes(Buffer.concat([body, cipher.getAuthTag()]));
  },

  aeadOpen(key, nonce, sealed, aad) {
    if (
      !checkAeadKeyNonce(key, nonce) ||
      !(sealed instanceof Uint8Array) ||
      !(aad instanceof Uint8Array) ||
      sealed.length < GCM_TAG_BYTES
    ) {
      return null;
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: GCM_TAG_BYTES });
      decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
      decipher.setAAD(aad);
      const body = decipher.update(sealed.subarray(0, sealed.length - GCM_TAG_BYTES));
      return bytes(Buffer.concat([body, decipher.final()]));
    } catch {
      return null;
    }
  },
};
