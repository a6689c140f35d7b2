import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeUid, parseCardId, wiegandCardId } from "../../src/core/credentials/card-id.ts";
import {
  decodeWiegand,
  encodeWiegand,
  type WiegandCard,
  WiegandFormat,
  wiegandLimits,
} from "../../src/core/credentials/wiegand.ts";
import { isLatchkeyError, LatchkeyError } from "../../src/core/errors.ts";

function expectCardFormat(fn: () => unknown): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(LatchkeyError);
  expect((err as LatchkeyError).code).toBe("LK_CARD_FORMAT");
}

const FORMATS = Object.values(WiegandFormat);
const hexBytes = (n: number) =>
  fc
    .uint8Array({ minLength: n, maxLength: n })
    .map((b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")));

describe("normalizeUid", () => {
  it.each([
    ["04A1B2C3", "uid:04a1b2c3"],
    ["04:a1:b2:c3", "uid:04a1b2c3"],
    ["04-A1-B2-C3", "uid:04a1b2c3"],
    ["04 a1 b2 c3", "uid:04a1b2c3"],
    ["  04a1b2c3\n", "uid:04a1b2c3"],
    ["04A1B2C3D4E5F6", "uid:04a1b2c3d4e5f6"],
    ["04:A1:B2:C3:D4:E5:F6", "uid:04a1b2c3d4e5f6"],
    ["04-a1-b2-c3-d4-e5-f6", "uid:04a1b2c3d4e5f6"],
    ["00112233445566778899", "uid:00112233445566778899"],
    ["00 11 22 33 44 55 66 77 88 99", "uid:00112233445566778899"],
    ["AA:bb:CC:dd:EE:ff:00:11:22:33", "uid:aabbccddeeff00112233"],
  ])("accepts %j", (input, expected) => {
    expect(normalizeUid(input)).toBe(expected);
    expect(parseCardId(expected)).toBe(expected);
  });

  it.each([
    ["empty", ""],
    ["3 bytes", "04a1b2"],
    ["5 bytes", "04a1b2c3d4"],
    ["6 bytes", "04:a1:b2:c3:d4:e5"],
    ["8 bytes", "0011223344556677"],
    ["11 bytes", "00112233445566778899aa"],
    ["odd digit count", "04a1b2c3d"],
    ["non-hex", "04a1b2cg"],
    ["0x prefix", "0x04a1b2c3"],
    ["mixed separators", "04:a1-b2:c3"],
    ["double separator", "04::a1:b2:c3"],
    ["leading separator", ":04:a1:b2:c3"],
    ["trailing separator", "04:a1:b2:c3:"],
    ["separator inside a byte", "0:4a:1b:2c:3"],
    ["nibble groups", "04a1 b2c3"],
    ["other separator", "04.a1.b2.c3"],
    ["very long", "ab".repeat(10_000)],
  ])("refuses %s", (_, input) => {
    expectCardFormat(() => normalizeUid(input));
  });

  it("accepts any 4, 7 or 10 bytes written with any one separator, and refuses other lengths", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }).chain(hexBytes),
        fc.constantFrom("", ":", "-", " "),
        fc.boolean(),
        (bytes, sep, upper) => {
          const text = bytes.join(sep);
          const input = upper ? text.toUpperCase() : text;
          if ([4, 7, 10].includes(bytes.length)) {
            expect(normalizeUid(input)).toBe(`uid:${bytes.join("")}`);
          } else {
            expectCardFormat(() => normalizeUid(input));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("never throws anything but LK_CARD_FORMAT on random input", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 40 }), fc.stringMatching(/^[0-9a-fA-F:\- ]{0,32}$/)),
        (s) => {
          try {
            expect(normalizeUid(s)).toMatch(/^uid:(?:[0-9a-f]{8}|[0-9a-f]{14}|[0-9a-f]{20})$/);
          } catch (e) {
            expect(isLatchkeyError(e, "LK_CARD_FORMAT")).toBe(true);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("wiegandCardId", () => {
  it("formats a decoded card as format:fc:cn", () => {
    expect(wiegandCardId(decodeWiegand(encodeWiegand("h10301", 123, 45678)))).toBe("h10301:123:45678");
    expect(wiegandCardId({ format: "corp1000", bits: 35, facilityCode: 4090, cardNumber: 7473 })).toBe(
      "corp1000:4090:7473",
    );
  });

  it.each<[string, WiegandCard]>([
    ["unknown format", { format: "h10302" as WiegandFormat, bits: 37, facilityCode: 0, cardNumber: 1 }],
    ["wrong bit length", { format: "h10301", bits: 37, facilityCode: 1, cardNumber: 1 }],
    ["facility code too large", { format: "h10301", bits: 26, facilityCode: 256, cardNumber: 1 }],
    ["card number too large", { format: "h10304", bits: 37, facilityCode: 1, cardNumber: 524288 }],
    ["negative", { format: "h10306", bits: 34, facilityCode: -1, cardNumber: 1 }],
    ["fraction", { format: "h10306", bits: 34, facilityCode: 1, cardNumber: 1.5 }],
  ])("refuses %s", (_, card) => {
    expectCardFormat(() => wiegandCardId(card));
  });

  it("round-trips through parseCardId for every in-range card", () => {
    const card = fc.constantFrom(...FORMATS).chain((format) => {
      const l = wiegandLimits(format);
      return fc.record({
        format: fc.constant(format),
        bits: fc.constant(l.bits),
        facilityCode: fc.integer({ min: 0, max: l.maxFacilityCode }),
        cardNumber: fc.integer({ min: 0, max: l.maxCardNumber }),
      });
    });
    fc.assert(
      fc.property(card, (c) => {
        const id = wiegandCardId(c);
        expect(parseCardId(id)).toBe(id);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("parseCardId", () => {
  it.each([
    "uid:04a1b2c3",
    "uid:04a1b2c3d4e5f6",
    "uid:00112233445566778899",
    "h10301:0:0",
    "h10301:255:65535",
    "h10306:65535:65535",
    "corp1000:4095:1048575",
    "h10304:65535:524287",
  ])("accepts %j", (id) => {
    expect(parseCardId(id)).toBe(id);
  });

  it.each([
    "",
    "uid:",
    "uid:04A1B2C3",
    "uid:04:a1:b2:c3",
    "uid:04a1b2",
    "uid:04a1b2c3d4",
    "UID:04a1b2c3",
    " uid:04a1b2c3",
    "04a1b2c3",
    "h10301:256:0",
    "h10301:0:65536",
    "h10306:65536:0",
    "corp1000:4096:0",
    "corp1000:0:1048576",
    "h10304:0:524288",
    "h10301:01:2",
    "h10301:1:02",
    "h10301:-1:2",
    "h10301:+1:2",
    "h10301:1.0:2",
    "h10301:1:2:3",
    "h10301:1",
    "H10301:1:2",
    "h10302:1:2",
    "wiegand:1:2",
    "h10301:99999999:1",
    "h10301: 1:2",
  ])("refuses %j", (id) => {
    expectCardFormat(() => parseCardId(id));
  });

  it("never throws anything but LK_CARD_FORMAT on random input", () => {
    const near = fc
      .tuple(
        fc.constantFrom("uid", "h10301", "h10306", "corp1000", "h10304", "x"),
        fc.stringMatching(/^[0-9a-f]{0,24}$/),
        fc.stringMatching(/^[0-9]{0,9}$/),
      )
      .map(([p, a, b]) => (p === "uid" ? `uid:${a}` : `${p}:${b}:${a.replace(/[a-f]/g, "1")}`));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), near), (s) => {
        try {
          expect(parseCardId(s)).toBe(s);
        } catch (e) {
          expect(isLatchkeyError(e, "LK_CARD_FORMAT")).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
