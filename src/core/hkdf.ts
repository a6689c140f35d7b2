/** HKDF (RFC 5869) with HMAC-SHA-256 on the core's {@link CryptoPort}. Pure. */
import { type CryptoPort, concatBytes } from "./crypto.ts";
import { LatchkeyError } from "./errors.ts";

/**
 * HKDF-SHA-256 (RFC 5869 § 2.2 extract, § 2.3 expand) on the port's HMAC-SHA-256.
 * @param length output bytes, 1..8160 (255 × 32)
 * @throws LatchkeyError `LK_INVALID_INPUT` on a bad length
 */
export function hkdfSha256(
  crypto: CryptoPort,
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32)
    throw new LatchkeyError("LK_INVALID_INPUT", "HKDF length out of range", { length });
  const prk = crypto.hmacSha256(salt.length > 0 ? salt : new Uint8Array(32), ikm);
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, off = 0; off < length; i++) {
    t = crypto.hmacSha256(prk, concatBytes(t, info, Uint8Array.of(i)));
    out.set(t.subarray(0, Math.min(32, length - off)), off);
    off += 32;
  }
  return out;
}
