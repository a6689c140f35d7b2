/**
 * The crypto port of the pure core, and the few byte helpers the core needs. Nothing here touches a
 * platform API: the primitives come in through {@link CryptoPort}, the helpers are plain ES2022.
 */
import { LatchkeyError } from "./errors.ts";

/** A hash for {@link CryptoPort.hmac}: the three RFC 6238 § 1.2 allows for TOTP (FIPS 180-4). */
export type HmacAlgorithm = "SHA-1" | "SHA-256" | "SHA-512";

/** Crypto primitives the pure core needs, passed in by the platform (Node adapter: src/platform/node-crypto.ts). All synchronous. */
export interface CryptoPort {
  /** SHA-256 (FIPS 180-4) */
  sha256(data: Uint8Array): Uint8Array;
  /** HMAC-SHA-256 (RFC 2104; vectors RFC 4231) */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * HMAC (RFC 2104) with the named hash: 20 bytes for SHA-1, 32 for SHA-256, 64 for SHA-512. For HOTP/TOTP
   * (RFC 4226, RFC 6238), where SHA-1 is the authenticator-app default; use {@link hmacSha256} elsewhere.
   */
  hmac(alg: HmacAlgorithm, key: Uint8Array, data: Uint8Array): Uint8Array;
  /** n cryptographically secure random bytes */
  randomBytes(n: number): Uint8Array;
  /** Ed25519 (RFC 8032) signature with a 32-byte private seed */
  ed25519Sign(privateSeed: Uint8Array, data: Uint8Array): Uint8Array;
  /** Ed25519 verification with a 32-byte raw public key; false (never throw) on any malformed input */
  ed25519Verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean;
  /** Derive the 32-byte raw public key from a 32-byte private seed */
  ed25519PublicKey(privateSeed: Uint8Array): Uint8Array;
  /**
   * ECDSA P-256 with SHA-256 (FIPS 186-5; COSE "ES256", RFC 9053 § 2.1) over `data`, with the private key
   * as PKCS#8 DER (RFC 5958). Returns the 64-byte IEEE P1363 form r || s (each 32 bytes, big-endian).
   * Signatures are randomized: signing the same data twice gives different bytes.
   */
  p256Sign(privateKeyPkcs8Der: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * ECDSA P-256/SHA-256 verification with the public key as a 65-byte uncompressed SEC1 point
   * (0x04 || x || y) and a 64-byte r || s signature; false (never throw) on any malformed input,
   * including a point not on the curve.
   */
  p256Verify(publicKeySec1: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean;
  /**
   * X25519 (RFC 7748 § 5): the 32-byte public key (u-coordinate) of a 32-byte private key. Any 32 random
   * bytes are a private key (clamping, § 5, happens inside), so a key pair is `randomBytes(32)` and this.
   * Throws `LK_INVALID_INPUT` if the private key is not 32 bytes.
   */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /**
   * X25519 Diffie-Hellman (RFC 7748 § 6.1): the 32-byte shared secret of our private key and the peer's
   * public key. Null (never throw) when the peer key is not 32 bytes or the result is all zeros (a
   * small-order peer key, which § 6.1 says to refuse).
   */
  x25519SharedSecret(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array | null;
  /**
   * AES-256-GCM seal (NIST SP 800-38D): 32-byte key, 12-byte nonce, additional authenticated data.
   * Returns ciphertext ‖ 16-byte tag. A nonce must never repeat under one key. Throws `LK_INVALID_INPUT`
   * on a bad key or nonce length.
   */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /**
   * AES-256-GCM open: the plaintext of `sealed` (ciphertext ‖ 16-byte tag), or null (never throw) when the
   * tag does not verify or any input has the wrong length.
   */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null;
}

/**
 * Encode a string as UTF-8 (RFC 3629). A surrogate pair becomes one 4-byte sequence; a lone surrogate
 * becomes U+FFFD (EF BF BD), as the WHATWG TextEncoder and Node's Buffer do.
 */
export function utf8(s: string): Uint8Array {
  // At most 3 bytes per UTF-16 code unit (a pair of 2 units makes 4 bytes).
  const out = new Uint8Array(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    }
    if (c < 0x80) {
      out[n++] = c;
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 0x3f);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return out.slice(0, n);
}

const HEX_DIGITS = "0123456789abcdef";

/** Lowercase hex of the bytes. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) {
    const v = b[i]!;
    s += HEX_DIGITS[v >> 4]! + HEX_DIGITS[v & 0x0f]!;
  }
  return s;
}

/** The value of one hex digit (either case), or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10; // a-f
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10; // A-F
  return -1;
}

/**
 * Decode hex (either case; no prefix, no separators). Throws `LK_INVALID_INPUT` on an odd length or a
 * non-hex character; the detail never echoes the input, which may be a secret.
 */
export function fromHex(s: string): Uint8Array {
  if (typeof s !== "string" || s.length % 2 !== 0) {
    throw new LatchkeyError("LK_INVALID_INPUT", "hex string has an odd length");
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(s.charCodeAt(2 * i));
    const lo = hexValue(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) {
      throw new LatchkeyError("LK_INVALID_INPUT", "hex string has a non-hex character");
    }
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** The parts one after another, in a new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Constant-time equality for equal-length inputs (returns false at once on length mismatch — lengths are not secret). */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Constant-time equality of two strings, such as hex digests, compared code unit by code unit (no
 * case folding: store and compare lowercase hex). False at once on length mismatch.
 */
export function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
