/**
 * Secrets sealed to a lock (spec: docs/protocol/operations.md § "Sealed secrets"): how a PIN or an
 * authenticator secret set in the cloud reaches the lock without the cloud, the broker or any relay being
 * able to read it. An ECIES-style box (X25519 + HKDF-SHA-256 + AES-256-GCM, the same primitives as the
 * link):
 *
 *   eph        = a fresh X25519 key pair                                     RFC 7748 § 6.1
 *   shared     = X25519(eph.private, lock seal public key)
 *   key        = HKDF-SHA-256(ikm = shared, salt = eph.public ‖ lock public, info = "LK-SEAL-v1", 32)  RFC 5869
 *   box        = 0x01 ‖ eph.public (32) ‖ AES-256-GCM(key, nonce = 12 zero bytes, plaintext, aad)     SP 800-38D
 *   plaintext  = kind (1 byte) ‖ length (1 byte) ‖ value ‖ zero padding to 64 bytes
 *
 * The key is used once (the ephemeral key is fresh), so the fixed nonce never repeats under a key. The
 * AAD binds the box to where it belongs (`"<site>/<credential id>"`): a box cut out of one operation and
 * pasted into another does not open. Padding hides a PIN's length.
 *
 * `held` is a box with no secret inside: it says "the value stays as the lock already holds it". The hub
 * uses it to describe, as operations, credentials enrolled before sync was enabled (it keeps only their
 * digest, never the PIN).
 */
import { type CryptoPort, concatBytes, utf8 } from "../crypto.ts";
import { LatchkeyError } from "../errors.ts";
import { hkdfSha256 } from "../hkdf.ts";

/** What a box holds. */
export const SealedKind = { Pin: 1, TotpSecret: 2, Held: 3 } as const;
export type SealedKind = (typeof SealedKind)[keyof typeof SealedKind];

/** An opened box. */
export type SealedSecret =
  | { readonly kind: typeof SealedKind.Pin; readonly pin: string }
  | { readonly kind: typeof SealedKind.TotpSecret; readonly secret: Uint8Array }
  | { readonly kind: typeof SealedKind.Held };

const VERSION = 1;
const INFO = utf8("LK-SEAL-v1");
const PLAINTEXT_BYTES = 64;
const NONCE = new Uint8Array(12);
/** Size of every box: version + ephemeral key + padded plaintext + tag (113 bytes). */
export const SEALED_BOX_BYTES = 1 + 32 + PLAINTEXT_BYTES + 16;

/** The AAD of a credential's box: binds it to one site and one credential id. */
export function sealContext(siteId: string, credentialId: string): Uint8Array {
  return utf8(`${siteId}/${credentialId}`);
}

function encodePlain(s: SealedSecret): Uint8Array {
  const out = new Uint8Array(PLAINTEXT_BYTES);
  out[0] = s.kind;
  let value: Uint8Array;
  if (s.kind === SealedKind.Pin) {
    if (!/^[0-9]{4,12}$/.test(s.pin))
      throw new LatchkeyError("LK_PIN_FORMAT", "a PIN must be 4 to 12 decimal digits");
    value = utf8(s.pin);
  } else if (s.kind === SealedKind.TotpSecret) {
    if (s.secret.length < 16 || s.secret.length > 62)
      throw new LatchkeyError("LK_INVALID_INPUT", "a TOTP secret must be 16 to 62 bytes");
    value = s.secret;
  } else value = new Uint8Array(0);
  out[1] = value.length;
  out.set(value, 2);
  return out;
}

function decodePlain(p: Uint8Array): SealedSecret {
  const bad = () => new LatchkeyError("LK_SEAL_INVALID", "sealed secret has a malformed body");
  if (p.length !== PLAINTEXT_BYTES) throw bad();
  const kind = p[0];
  const len = p[1]!;
  if (2 + len > PLAINTEXT_BYTES) throw bad();
  for (let i = 2 + len; i < PLAINTEXT_BYTES; i++) if (p[i] !== 0) throw bad();
  const value = p.subarray(2, 2 + len);
  if (kind === SealedKind.Pin) {
    const pin = String.fromCharCode(...value);
    if (!/^[0-9]{4,12}$/.test(pin)) throw bad();
    return { kind, pin };
  }
  if (kind === SealedKind.TotpSecret) {
    if (len < 16) throw bad();
    return { kind, secret: new Uint8Array(value) };
  }
  if (kind === SealedKind.Held && len === 0) return { kind };
  throw bad();
}

function boxKey(crypto: CryptoPort, shared: Uint8Array, ephPub: Uint8Array, lockPub: Uint8Array): Uint8Array {
  return hkdfSha256(crypto, shared, concatBytes(ephPub, lockPub), INFO, 32);
}

/**
 * Seal `secret` to a lock's X25519 public key (32 bytes). Returns a {@link SEALED_BOX_BYTES}-byte box.
 * Throws LK_PIN_FORMAT / LK_INVALID_INPUT for a secret out of range, LK_SEAL_INVALID for an unusable
 * public key (wrong length or small order).
 */
export function sealToLock(
  crypto: CryptoPort,
  lockPublicKey: Uint8Array,
  secret: SealedSecret,
  aad: Uint8Array,
): Uint8Array {
  const plain = encodePlain(secret);
  const ephPriv = crypto.randomBytes(32);
  const ephPub = crypto.x25519PublicKey(ephPriv);
  const shared = crypto.x25519SharedSecret(ephPriv, lockPublicKey);
  if (!shared)
    throw new LatchkeyError("LK_SEAL_INVALID", "the lock's seal public key is not a usable X25519 key");
  const ct = crypto.aeadSeal(boxKey(crypto, shared, ephPub, lockPublicKey), NONCE, plain, aad);
  return concatBytes(new Uint8Array([VERSION]), ephPub, ct);
}

/**
 * Open a box with the lock's X25519 private key (32 bytes). Throws LK_SEAL_INVALID for a box of the wrong
 * size or version, one sealed to another key or for another context (`aad`), or a malformed body.
 */
export function openSealed(
  crypto: CryptoPort,
  lockPrivateKey: Uint8Array,
  box: Uint8Array,
  aad: Uint8Array,
): SealedSecret {
  if (box.length !== SEALED_BOX_BYTES || box[0] !== VERSION) {
    throw new LatchkeyError("LK_SEAL_INVALID", "sealed secret has the wrong size or version");
  }
  const ephPub = box.subarray(1, 33);
  const shared = crypto.x25519SharedSecret(lockPrivateKey, ephPub);
  if (!shared) throw new LatchkeyError("LK_SEAL_INVALID", "sealed secret has an unusable ephemeral key");
  const lockPub = crypto.x25519PublicKey(lockPrivateKey);
  const plain = crypto.aeadOpen(boxKey(crypto, shared, ephPub, lockPub), NONCE, box.subarray(33), aad);
  if (!plain) throw new LatchkeyError("LK_SEAL_INVALID", "sealed secret does not open with this lock's key");
  return decodePlain(plain);
}
