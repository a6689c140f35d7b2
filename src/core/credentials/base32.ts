/**
 * Base32 with the RFC 4648 § 6 alphabet (A–Z, 2–7), the form authenticator apps take TOTP secrets in
 * (the `secret` parameter of an otpauth:// URI). Error details never echo the input: it is a secret.
 */
import { LatchkeyError } from "../errors.ts";

/** RFC 4648 § 6, Table 3: value 0..31 -> character. */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Characters -> value, for both cases; -1 elsewhere. Index by char code (ASCII only). */
const DECODE: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) {
    t[ALPHABET.charCodeAt(i)] = i;
    t[ALPHABET.toLowerCase().charCodeAt(i)] = i;
  }
  return t;
})();

/**
 * How many '=' end a padded final quantum, by the number of data characters in it (RFC 4648 § 6: a
 * quantum of 8 characters carries 5 bytes; 1, 3 and 6 characters cannot end an encoding).
 */
const PAD_FOR_REMAINDER: readonly (number | undefined)[] = [0, undefined, 6, undefined, 4, 3, undefined, 1];

const SPACE = 0x20;
const EQUALS = 0x3d;

function invalid(detail: string): LatchkeyError {
  return new LatchkeyError("LK_INVALID_INPUT", `base32: ${detail}`);
}

/**
 * Encode bytes as base32 (RFC 4648 § 6): uppercase, and with '=' padding to a multiple of 8 characters
 * only when `pad` is true. The otpauth:// Key Uri Format wants it unpadded (the default).
 */
export function base32Encode(bytes: Uint8Array, pad = false): string {
  let out = "";
  let buffer = 0; // up to 12 pending bits, right-aligned
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) {
    buffer = ((buffer << 8) | bytes[i]!) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 0x1f]!;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 0x1f]!; // zero-filled final character
  if (pad) out += "=".repeat(PAD_FOR_REMAINDER[out.length % 8]!);
  return out;
}

/**
 * Decode base32 (RFC 4648 § 6). Accepts either case and ignores ASCII spaces anywhere (apps show
 * secrets in groups of four). '=' padding is optional, but if present it must be the exact padding
 * for the data (the whole input a multiple of 8 characters) and only at the end.
 *
 * Throws `LK_INVALID_INPUT` on any other character, on a data length no encoding can have (1, 3 or 6
 * characters in the last quantum), and on non-zero unused bits in the last character (RFC 4648 § 3.5),
 * so every accepted string is the canonical encoding of its bytes (case, spaces and padding aside).
 */
export function base32Decode(text: string): Uint8Array {
  if (typeof text !== "string") throw invalid("input must be a string");
  // Pass 1: count data characters and padding, and validate characters and the padding's position.
  let data = 0;
  let padding = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === SPACE) continue;
    if (c === EQUALS) {
      padding++;
      continue;
    }
    if (padding > 0) throw invalid("'=' padding may only end the text");
    if (c >= 128 || DECODE[c]! < 0) throw invalid("only A-Z, a-z, 2-7, spaces and '=' padding are allowed");
    data++;
  }
  const expectedPad = PAD_FOR_REMAINDER[data % 8];
  if (expectedPad === undefined) throw invalid("the length is not that of any encoding");
  if (padding !== 0 && padding !== expectedPad) throw invalid("the '=' padding does not fit the length");

  // Pass 2: decode.
  const out = new Uint8Array(Math.floor((data * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === SPACE || c === EQUALS) continue;
    buffer = ((buffer << 5) | DECODE[c]!) & 0xfff; // at most 7 + 5 pending bits
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (buffer >> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) throw invalid("the unused bits of the last character are not zero");
  return out;
}
