/**
 * Wiegand frames: decode and encode the four HID layouts Latchkey supports. A frame is a string of
 * `'0'`/`'1'` characters; bit 1 is the first bit transmitted and the leftmost character. Fields are
 * unsigned binary, most significant bit first.
 *
 * Layouts and parity masks follow Proxmark3 `client/src/wiegand_formats.c` (H10301, H10306, C1k35s,
 * H10304) and agree with liblogicalaccess (`corporate1000format.cpp`, `wiegand3{4,7}withfacilityformat.cpp`).
 * See docs/protocol/wiegand.md for the bit tables and sources.
 */
import { LatchkeyError } from "../errors.ts";

/** The supported formats, as stable string ids (they also prefix normalised card ids). */
export const WiegandFormat = {
  /** HID H10301, 26 bits: 8-bit facility code, 16-bit card number. */
  H10301: "h10301",
  /** HID H10306, 34 bits: 16-bit facility code, 16-bit card number. */
  H10306: "h10306",
  /** HID Corporate 1000, 35 bits: 12-bit company id (in `facilityCode`), 20-bit card number. */
  Corporate1000: "corp1000",
  /** HID H10304, 37 bits: 16-bit facility code, 19-bit card number. */
  H10304: "h10304",
} as const;
export type WiegandFormat = (typeof WiegandFormat)[keyof typeof WiegandFormat];

/** A decoded card. For Corporate 1000, `facilityCode` holds the company id. */
export interface WiegandCard {
  readonly format: WiegandFormat;
  readonly bits: number;
  readonly facilityCode: number;
  readonly cardNumber: number;
}

/** The largest values a format can carry, and its frame length. */
export interface WiegandLimits {
  readonly bits: number;
  readonly maxFacilityCode: number;
  readonly maxCardNumber: number;
}

/** Frames longer than this are refused before any other check (no supported format is near it). */
const MAX_FRAME_CHARS = 64;

/** `length` bits starting at 1-based bit `start`, most significant first. */
interface Field {
  readonly start: number;
  readonly length: number;
}

/** Parity bit `bit` makes the count of ones over itself and `covers` even or odd (1-based positions). */
interface ParityRule {
  readonly bit: number;
  readonly kind: "even" | "odd";
  readonly covers: readonly number[];
}

/** A frame layout; `parity` is in encoding order (a rule may cover parity bits set by earlier rules). */
interface Layout {
  readonly format: WiegandFormat;
  readonly bits: number;
  readonly facilityCode: Field;
  readonly cardNumber: Field;
  readonly parity: readonly ParityRule[];
}

/** The 1-based positions `from..to`, inclusive. */
function span(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

const LAYOUTS: Readonly<Record<WiegandFormat, Layout>> = {
  h10301: {
    format: "h10301",
    bits: 26,
    facilityCode: { start: 2, length: 8 },
    cardNumber: { start: 10, length: 16 },
    parity: [
      { bit: 1, kind: "even", covers: span(2, 13) },
      { bit: 26, kind: "odd", covers: span(14, 25) },
    ],
  },
  h10306: {
    format: "h10306",
    bits: 34,
    facilityCode: { start: 2, length: 16 },
    cardNumber: { start: 18, length: 16 },
    parity: [
      { bit: 1, kind: "even", covers: span(2, 17) },
      { bit: 34, kind: "odd", covers: span(18, 33) },
    ],
  },
  corp1000: {
    format: "corp1000",
    bits: 35,
    facilityCode: { start: 3, length: 12 },
    cardNumber: { start: 15, length: 20 },
    parity: [
      // bits 3-4, 6-7, ... 33-34 (two of every three from bit 3)
      { bit: 2, kind: "even", covers: span(3, 34).filter((b) => b % 3 !== 2) },
      // bits 2-3, 5-6, ... 32-33 (two of every three from bit 2); includes parity bit 2
      { bit: 35, kind: "odd", covers: span(2, 33).filter((b) => b % 3 !== 1) },
      // every other bit, so the whole frame has an odd number of ones; set last
      { bit: 1, kind: "odd", covers: span(2, 35) },
    ],
  },
  h10304: {
    format: "h10304",
    bits: 37,
    facilityCode: { start: 2, length: 16 },
    cardNumber: { start: 18, length: 19 },
    parity: [
      { bit: 1, kind: "even", covers: span(2, 19) },
      { bit: 37, kind: "odd", covers: span(19, 36) },
    ],
  },
};

const LAYOUT_BY_BITS: ReadonlyMap<number, Layout> = new Map(Object.values(LAYOUTS).map((l) => [l.bits, l]));

/** Is `x` one of the {@link WiegandFormat} ids? */
export function isWiegandFormat(x: unknown): x is WiegandFormat {
  return typeof x === "string" && Object.hasOwn(LAYOUTS, x);
}

/** Frame length and largest facility code / card number of `format` (e.g. h10301: 26, 255, 65535). */
export function wiegandLimits(format: WiegandFormat): WiegandLimits {
  const l = LAYOUTS[format];
  return {
    bits: l.bits,
    maxFacilityCode: 2 ** l.facilityCode.length - 1,
    maxCardNumber: 2 ** l.cardNumber.length - 1,
  };
}

/** The unsigned value of `field` in a frame of '0'/'1' characters. */
function readField(frame: string, field: Field): number {
  let v = 0;
  for (let i = 0; i < field.length; i++) v = v * 2 + (frame.charCodeAt(field.start - 1 + i) - 48);
  return v;
}

/** Write `value` into `field` of a bit array (index 0 = bit 1). */
function writeField(bits: number[], field: Field, value: number): void {
  let v = value;
  for (let i = field.length - 1; i >= 0; i--) {
    bits[field.start - 1 + i] = v % 2;
    v = Math.floor(v / 2);
  }
}

/** The number of ones at the 1-based `positions` of a frame (string) or bit array. */
function onesAt(bits: string | readonly number[], positions: readonly number[]): number {
  let n = 0;
  for (const p of positions) n += typeof bits === "string" ? bits.charCodeAt(p - 1) - 48 : (bits[p - 1] ?? 0);
  return n;
}

/** The first parity rule the frame violates, or undefined. */
function failedParity(frame: string, layout: Layout): ParityRule | undefined {
  return layout.parity.find(
    (r) => (onesAt(frame, r.covers) + onesAt(frame, [r.bit])) % 2 !== (r.kind === "odd" ? 1 : 0),
  );
}

/**
 * Decode a frame of '0'/'1' characters into a card; the format is chosen by length (26 → h10301,
 * 34 → h10306, 35 → corp1000, 37 → h10304). Throws LK_WIEGAND_FORMAT when the frame is longer than
 * 64 characters, has a character other than 0/1, or has an unsupported length; LK_WIEGAND_PARITY
 * when any parity bit of the layout does not hold.
 */
export function decodeWiegand(frame: string): WiegandCard {
  if (typeof frame !== "string" || frame.length > MAX_FRAME_CHARS) {
    throw new LatchkeyError("LK_WIEGAND_FORMAT", `a Wiegand frame is at most ${MAX_FRAME_CHARS} bits`);
  }
  if (!/^[01]*$/.test(frame)) {
    throw new LatchkeyError("LK_WIEGAND_FORMAT", "a Wiegand frame is a string of 0 and 1 characters");
  }
  const layout = LAYOUT_BY_BITS.get(frame.length);
  if (layout === undefined) {
    throw new LatchkeyError(
      "LK_WIEGAND_FORMAT",
      `unsupported Wiegand length ${frame.length} (26, 34, 35 or 37)`,
      {
        bits: frame.length,
      },
    );
  }
  const bad = failedParity(frame, layout);
  if (bad !== undefined) {
    throw new LatchkeyError(
      "LK_WIEGAND_PARITY",
      `${layout.format} frame fails its ${bad.kind} parity bit ${bad.bit}`,
      {
        format: layout.format,
        bit: bad.bit,
      },
    );
  }
  return {
    format: layout.format,
    bits: layout.bits,
    facilityCode: readField(frame, layout.facilityCode),
    cardNumber: readField(frame, layout.cardNumber),
  };
}

/** Is `v` an integer in 0..max? */
function inRange(v: number, max: number): boolean {
  return Number.isSafeInteger(v) && v >= 0 && v <= max;
}

/**
 * Encode a card as a frame of '0'/'1' characters with its parity bits set (see {@link wiegandLimits}
 * for the ranges). Throws LK_WIEGAND_FORMAT for an unknown format, or a facility code / card number
 * that is not an integer in the format's range.
 */
export function encodeWiegand(format: WiegandFormat, facilityCode: number, cardNumber: number): string {
  if (!isWiegandFormat(format)) throw new LatchkeyError("LK_WIEGAND_FORMAT", "unknown Wiegand format");
  const layout = LAYOUTS[format];
  const limits = wiegandLimits(format);
  if (!inRange(facilityCode, limits.maxFacilityCode) || !inRange(cardNumber, limits.maxCardNumber)) {
    throw new LatchkeyError(
      "LK_WIEGAND_FORMAT",
      `${format} takes a facility code 0..${limits.maxFacilityCode} and a card number 0..${limits.maxCardNumber}`,
      { format },
    );
  }
  const bits = new Array<number>(layout.bits).fill(0);
  writeField(bits, layout.facilityCode, facilityCode);
  writeField(bits, layout.cardNumber, cardNumber);
  for (const r of layout.parity) {
    const ones = onesAt(bits, r.covers) % 2;
    bits[r.bit - 1] = r.kind === "even" ? ones : 1 - ones;
  }
  return bits.join("");
}
