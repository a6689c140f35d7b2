/** Random identifiers, one-time codes and display names. Randomness comes from the caller (the crypto port). */
import { LatchkeyError } from "./errors.ts";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** `n` random Crockford base32 characters (5 bits each), from `random(n)` bytes. */
export function randomBase32(random: (n: number) => Uint8Array, n: number): string {
  const bytes = random(n);
  let s = "";
  for (let i = 0; i < n; i++) s += CROCKFORD[(bytes[i] ?? 0) & 31];
  return s;
}

/** A new id such as `usr_4F7K2M9Q1X8Z` (60 random bits). */
export function newId(random: (n: number) => Uint8Array, prefix: string): string {
  return `${prefix}_${randomBase32(random, 12).toLowerCase()}`;
}

/** Normalise a human-typed code: upper case, strip spaces and dashes, map the easily confused I/L/O. */
export function normalizeCode(s: string): string {
  return s.toUpperCase().replace(/[\s-]/g, "").replace(/[IL]/g, "1").replace(/O/g, "0");
}

/**
 * A person's or a door's display name: 1–100 characters after trimming, no control characters (they
 * could forge log lines or terminal escapes wherever the name is printed). Throws LK_INVALID_INPUT.
 */
export function assertDisplayName(name: string, what = "name"): void {
  const n = name.trim();
  if (n.length < 1 || n.length > 100)
    throw new LatchkeyError("LK_INVALID_INPUT", `${what} must be 1–100 characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(n)) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `${what} must not contain control characters, line breaks or text-direction overrides`,
    );
  }
}
