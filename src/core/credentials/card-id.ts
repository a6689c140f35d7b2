/**
 * Normalised card ids: the one string under which an RFID credential is stored and matched
 * (`RfidCredential.cardId`). Two kinds:
 *
 * - `uid:<hex>`: an ISO/IEC 14443-3 UID of 4, 7 or 10 bytes (single, double, triple size) as lowercase
 *   hex without separators, e.g. `uid:04a1b2c3d4e5f6`.
 * - `<format>:<facilityCode>:<cardNumber>`: a Wiegand card, format id from {@link WiegandFormat} and
 *   both numbers in canonical decimal, e.g. `h10301:123:45678`.
 *
 * Every function here throws only LK_CARD_FORMAT. See docs/protocol/wiegand.md.
 */
import { LatchkeyError } from "../errors.ts";
import { isWiegandFormat, type WiegandCard, wiegandLimits } from "./wiegand.ts";

/** ISO/IEC 14443-3 UID sizes, in bytes. */
const UID_BYTES: readonly number[] = [4, 7, 10];
/** Longer inputs are refused before any parsing (10 bytes with separators and padding fit easily). */
const MAX_INPUT_CHARS = 64;

const PLAIN_HEX = /^[0-9a-fA-F]+$/;
/** Byte pairs joined by one separator (':' '-' or ' '), the same one throughout. */
const SEPARATED_HEX = /^[0-9a-fA-F]{2}([:\- ])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2})*$/;
const UID_ID = /^uid:(?:[0-9a-f]{8}|[0-9a-f]{14}|[0-9a-f]{20})$/;
/** `<format>:<fc>:<cn>` with canonical decimals (no sign, no leading zeros, at most 7 digits). */
const WIEGAND_ID = /^([a-z0-9]{1,16}):(0|[1-9][0-9]{0,6}):(0|[1-9][0-9]{0,6})$/;

function cardFormatError(detail: string): LatchkeyError {
  return new LatchkeyError("LK_CARD_FORMAT", detail);
}

/** The bare hex digits of a UID written plain or as separated byte pairs, or null. */
function uidHexDigits(s: string): string | null {
  if (PLAIN_HEX.test(s)) return s;
  const m = SEPARATED_HEX.exec(s);
  return m === null ? null : s.split(m[1]!).join("");
}

/**
 * Normalise a UID as read or typed: hex, any case, plain (`04A1B2C3`) or byte pairs joined by one
 * of ':' '-' ' ' used throughout (`04:a1:b2:c3`); surrounding whitespace is ignored. Returns
 * `uid:` + lowercase hex. Throws LK_CARD_FORMAT for non-hex input, mixed or misplaced separators, or a
 * length other than 4, 7 or 10 bytes (ISO/IEC 14443-3 UID sizes).
 */
export function normalizeUid(input: string): string {
  if (typeof input !== "string" || input.length > MAX_INPUT_CHARS) {
    throw cardFormatError("a card UID is 4, 7 or 10 bytes of hex");
  }
  const hex = uidHexDigits(input.trim());
  if (hex === null) throw cardFormatError("a card UID is hex, optionally with ':', '-' or ' ' between bytes");
  if (hex.length % 2 !== 0 || !UID_BYTES.includes(hex.length / 2)) {
    throw cardFormatError(`a card UID is 4, 7 or 10 bytes, not ${hex.length / 2}`);
  }
  return `uid:${hex.toLowerCase()}`;
}

/** Throw LK_CARD_FORMAT unless fc/cn are integers in the format's range. */
function checkWiegandRange(format: WiegandCard["format"], facilityCode: number, cardNumber: number): void {
  const { maxFacilityCode, maxCardNumber } = wiegandLimits(format);
  const ok = (v: number, max: number) => Number.isSafeInteger(v) && v >= 0 && v <= max;
  if (!ok(facilityCode, maxFacilityCode) || !ok(cardNumber, maxCardNumber)) {
    throw cardFormatError(
      `${format} takes a facility code 0..${maxFacilityCode} and a card number 0..${maxCardNumber}`,
    );
  }
}

/**
 * The card id of a decoded Wiegand card: `${format}:${facilityCode}:${cardNumber}` in decimal, e.g.
 * `h10301:123:45678`. Throws LK_CARD_FORMAT when the card is inconsistent (unknown format, bit length
 * not the format's, values out of range).
 */
export function wiegandCardId(card: WiegandCard): string {
  if (!isWiegandFormat(card.format) || card.bits !== wiegandLimits(card.format).bits) {
    throw cardFormatError("not a supported Wiegand card");
  }
  checkWiegandRange(card.format, card.facilityCode, card.cardNumber);
  return `${card.format}:${card.facilityCode}:${card.cardNumber}`;
}

/**
 * Validate an already-normalised card id and return it unchanged: `uid:` + 8, 14 or 20 lowercase hex
 * digits, or `<format>:<fc>:<cn>` with a known format, canonical decimals and values in the format's
 * range. Anything else (including upper case, separators, leading zeros) throws LK_CARD_FORMAT.
 */
export function parseCardId(s: string): string {
  if (typeof s !== "string" || s.length > MAX_INPUT_CHARS) throw cardFormatError("not a card id");
  if (UID_ID.test(s)) return s;
  const m = WIEGAND_ID.exec(s);
  if (m === null || !isWiegandFormat(m[1])) {
    throw cardFormatError("a card id is uid:<hex> or <format>:<facility code>:<card number>");
  }
  checkWiegandRange(m[1], Number(m[2]), Number(m[3]));
  return s;
}
