/** Random identifiers and one-time codes, from a caller-supplied random source (the crypto port). */

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
