/**
 * PIN rules: the length a lock asks for, which PINs are too easy to guess, and the one form a PIN is
 * stored in. Error details say which rule failed and never echo the PIN.
 */
import { type CryptoPort, toHex, utf8 } from "../crypto.ts";
import { LatchkeyError } from "../errors.ts";

export interface PinPolicy {
  /** The shortest PIN the lock accepts: 4..12, default 6. */
  readonly minLength: number;
}

/** Shortest and longest PIN any lock accepts (the `LK_PIN_FORMAT` bounds). */
export const PIN_MIN_DIGITS = 4;
export const PIN_MAX_DIGITS = 12;

export const DEFAULT_PIN_POLICY: PinPolicy = Object.freeze({ minLength: 6 });

function assertMinLength(minLength: number): void {
  if (!Number.isInteger(minLength) || minLength < PIN_MIN_DIGITS || minLength > PIN_MAX_DIGITS) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `PIN minimum length must be an integer from ${PIN_MIN_DIGITS} to ${PIN_MAX_DIGITS}`,
    );
  }
}

/**
 * IEC 60839-11-1 asks the code space to be >= 1000x the number of allocated codes: returns
 * max(policy.minLength, smallest L with 10^L >= 1000 * (allocatedCodes + 1)), capped at 12.
 *
 * The `+ 1` counts the code about to be allocated. So with the default minimum 6: 0..999 allocated
 * codes give 6, 1000..9999 give 7, 10000..99999 give 8, and so on. Throws `LK_INVALID_INPUT` on a
 * policy outside 4..12 or a negative or non-integer count.
 */
export function effectiveMinLength(policy: PinPolicy, allocatedCodes: number): number {
  assertMinLength(policy.minLength);
  if (!Number.isSafeInteger(allocatedCodes) || allocatedCodes < 0) {
    throw new LatchkeyError("LK_INVALID_INPUT", "allocated code count must be a non-negative integer");
  }
  const needed = 1000 * (allocatedCodes + 1);
  let length = 1;
  let space = 10; // 10^length, exact in a double up to 10^12
  while (space < needed && length < PIN_MAX_DIGITS) {
    length++;
    space *= 10;
  }
  return Math.max(policy.minLength, length);
}

/** Every digit the same: 0000, 777777. */
function isSameDigit(pin: string): boolean {
  for (let i = 1; i < pin.length; i++) if (pin[i] !== pin[0]) return false;
  return true;
}

/** Each digit one up (or each one down) from the last, wrapping 9 -> 0: 1234, 7890, 3210, 901234. */
function isSequence(pin: string): boolean {
  const step = (i: number): number => (pin.charCodeAt(i) - pin.charCodeAt(i - 1) + 10) % 10;
  const first = step(1);
  if (first !== 1 && first !== 9) return false;
  for (let i = 2; i < pin.length; i++) if (step(i) !== first) return false;
  return true;
}

/**
 * The same 2- or 3-digit group over and over: 1212, 121212, 123123, 12121. That is, the PIN repeats
 * with period 2 or 3 and is at least two whole groups long.
 */
function isRepeatedGroup(pin: string): boolean {
  for (const period of [2, 3]) {
    if (pin.length < 2 * period) continue;
    let repeats = true;
    for (let i = period; i < pin.length && repeats; i++) repeats = pin[i] === pin[i - period];
    if (repeats) return true;
  }
  return false;
}

/**
 * Throws LK_PIN_FORMAT (not 4..12 ASCII digits), LK_PIN_TOO_SHORT (shorter than minLength), LK_PIN_WEAK
 * (all same digit; ascending or descending sequence with wraparound like 7890 / 3210 / 901234; the same
 * 2- or 3-digit group repeated like 121212 or 123123; a PIN in the common-PIN list; a date-like PIN is
 * NOT weak by itself). The error detail says WHICH rule failed (e.g. "PIN is a sequence") but never
 * echoes the digits. `data.rule` names the failed rule: `format`, `tooShort`, `sameDigit`, `sequence`,
 * `repeatedGroup` or `common`. A `minLength` outside 4..12 throws LK_INVALID_INPUT.
 */
export function assertPinAcceptable(pin: string, minLength: number): void {
  assertMinLength(minLength);
  if (typeof pin !== "string" || !/^[0-9]{4,12}$/.test(pin)) {
    throw new LatchkeyError(
      "LK_PIN_FORMAT",
      `PIN must be ${PIN_MIN_DIGITS} to ${PIN_MAX_DIGITS} decimal digits (0-9) and nothing else`,
      { rule: "format" },
    );
  }
  if (pin.length < minLength) {
    throw new LatchkeyError("LK_PIN_TOO_SHORT", `PIN must have at least ${minLength} digits`, {
      rule: "tooShort",
      minLength,
    });
  }
  if (isSameDigit(pin)) {
    throw new LatchkeyError("LK_PIN_WEAK", "PIN is the same digit repeated", { rule: "sameDigit" });
  }
  if (isSequence(pin)) {
    throw new LatchkeyError("LK_PIN_WEAK", "PIN is an ascending or descending sequence", {
      rule: "sequence",
    });
  }
  if (isRepeatedGroup(pin)) {
    throw new LatchkeyError("LK_PIN_WEAK", "PIN repeats a group of 2 or 3 digits", {
      rule: "repeatedGroup",
    });
  }
  if (COMMON_PINS.has(pin)) {
    throw new LatchkeyError("LK_PIN_WEAK", "PIN is among the most common PINs", { rule: "common" });
  }
}

/** HMAC-SHA-256(pinSecret, utf8(pin)) as lowercase hex: the only form a PIN is ever stored in. */
export function pinDigest(crypto: CryptoPort, pinSecret: Uint8Array, pin: string): string {
  if (pinSecret.length === 0) {
    throw new LatchkeyError("LK_INTERNAL", "the PIN-hash secret is empty");
  }
  return toHex(crypto.hmacSha256(pinSecret, utf8(pin)));
}

/**
 * A small built-in list (~100 entries) of the most common PINs of 4 and 6 digits.
 *
 * Written for Latchkey from the published findings, not copied from any data set:
 * - 4 digits: Nick Berry, "PIN analysis", DataGenetics (2012), an analysis of 3.4 million leaked 4-digit
 *   codes. Its top 20, in rank order, come first; the rest are the kinds of pick it and later work single
 *   out (keypad shapes such as 2580 down the middle column or 1470 / 3690 / 7410, 5683 = "LOVE", short
 *   runs and near-repeats).
 * - 6 digits: D. Wang, Q. Gu, X. Huang, P. Wang, "Understanding Human-Chosen PINs: Characteristics,
 *   Distribution and Security", ACM AsiaCCS 2017, and P. Markert et al., "This PIN Can Be Easily Guessed:
 *   Analyzing the Security of Smartphone Unlock PINs", IEEE S&P 2020. Entries follow the patterns those
 *   studies report as most frequent: repeats, runs, keypad walks (147258, 159753, 789456) and
 *   "love numbers" (520 ~ "I love you": 520520, 131420).
 *
 * Many entries are also caught by the repeat and sequence rules; they stay here so the list reads as
 * the published top lists do. A date (e.g. a birth year) is not in the list unless it is itself in a
 * published top list (2000, 2001).
 */
export const COMMON_PINS: ReadonlySet<string> = new Set([
  // --- 4 digits: DataGenetics top 20, in rank order ---
  "1234",
  "1111",
  "0000",
  "1212",
  "7777",
  "1004",
  "2000",
  "4444",
  "2222",
  "6969",
  "9999",
  "3333",
  "5555",
  "6666",
  "1122",
  "1313",
  "8888",
  "4321",
  "2001",
  "1010",
  // --- 4 digits: keypad shapes, words and other well-known picks ---
  "2580",
  "0852",
  "1470",
  "0741",
  "3690",
  "0963",
  "1590",
  "7410",
  "1357",
  "2468",
  "1379",
  "1397",
  "1236",
  "1478",
  "1369",
  "1593",
  "7531",
  "8520",
  "9630",
  "0258",
  "5683",
  "0007",
  "1001",
  "1011",
  "1101",
  "1112",
  "1211",
  "1230",
  "1123",
  "1225",
  "1066",
  "1000",
  "1024",
  "5678",
  "6789",
  "9876",
  "0123",
  "2323",
  "4545",
  "0101",
  "7878",
  // --- 6 digits ---
  "123456",
  "654321",
  "111111",
  "000000",
  "123123",
  "666666",
  "121212",
  "112233",
  "159753",
  "147258",
  "789456",
  "696969",
  "520520",
  "131420",
  "520131",
  "521521",
  "888888",
  "999999",
  "555555",
  "222222",
  "333333",
  "444444",
  "777777",
  "123321",
  "123654",
  "147852",
  "159357",
  "258456",
  "456123",
  "741852",
  "963852",
  "852456",
  "147369",
  "321654",
  "102030",
  "101010",
  "100200",
  "110110",
  "123789",
  "456789",
  "987654",
  "012345",
  "112211",
  "201314",
  "314159",
  "142536",
  "000001",
  "100000",
]);
