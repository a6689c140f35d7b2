import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeWiegand,
  encodeWiegand,
  isWiegandFormat,
  WiegandFormat,
  wiegandLimits,
} from "../../src/core/credentials/wiegand.ts";
import { isLatchkeyError, LatchkeyError } from "../../src/core/errors.ts";
import vectorFile from "../vectors/wiegand.json" with { type: "json" };

interface Vector {
  format: string;
  bits: number;
  frame: string;
  facilityCode: number;
  cardNumber: number;
  source: string;
}
interface BadParity {
  format: string;
  bits: number;
  frame: string;
  flippedBit: number;
  validFrame: string;
}

const vectors: Vector[] = vectorFile.vectors;
const badParity: BadParity[] = vectorFile.badParity;
const FORMATS = Object.values(WiegandFormat);

/** The error `fn` throws (fails the test when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  expect.fail("expected a throw");
}

function expectCode(fn: () => unknown, code: LatchkeyError["code"]): void {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(LatchkeyError);
  expect((e as LatchkeyError).code).toBe(code);
}

function flip(frame: string, bit: number): string {
  return frame.slice(0, bit - 1) + (frame[bit - 1] === "1" ? "0" : "1") + frame.slice(bit);
}

/** A random in-range card of `format`. */
const cardOf = (format: WiegandFormat) => {
  const l = wiegandLimits(format);
  return fc.record({
    format: fc.constant(format),
    facilityCode: fc.integer({ min: 0, max: l.maxFacilityCode }),
    cardNumber: fc.integer({ min: 0, max: l.maxCardNumber }),
  });
};
const anyCard = fc.oneof(...FORMATS.map(cardOf));

/**
 * Bits covered by no parity rule, per format. A single flipped bit is caught iff it lies in the
 * union of the parity groups (parity bits included). In all four layouts that union is the whole
 * frame: H10301 splits 2-13 / 14-25, H10306 2-17 / 18-33, H10304 2-19 / 19-36 (bit 19 in both), and
 * Corporate 1000's bit 1 covers all 35 bits. So no single-bit error can ever decode to another card.
 */
const UNCOVERED_BITS: Record<WiegandFormat, readonly number[]> = {
  h10301: [],
  h10306: [],
  corp1000: [],
  h10304: [],
};

describe("wiegand vectors", () => {
  it("has at least 3 vectors per format, including 0 and max values", () => {
    for (const f of FORMATS) {
      const vs = vectors.filter((v) => v.format === f);
      const l = wiegandLimits(f);
      expect(vs.length).toBeGreaterThanOrEqual(3);
      expect(vs.some((v) => v.facilityCode === 0 && v.cardNumber === 0)).toBe(true);
      expect(vs.some((v) => v.facilityCode === l.maxFacilityCode && v.cardNumber === l.maxCardNumber)).toBe(
        true,
      );
    }
  });

  it.each(vectors)("decodes and encodes $format $facilityCode/$cardNumber exactly", (v) => {
    expect(isWiegandFormat(v.format)).toBe(true);
    const format = v.format as WiegandFormat;
    expect(v.frame).toHaveLength(v.bits);
    expect(decodeWiegand(v.frame)).toEqual({
      format,
      bits: v.bits,
      facilityCode: v.facilityCode,
      cardNumber: v.cardNumber,
    });
    expect(encodeWiegand(format, v.facilityCode, v.cardNumber)).toBe(v.frame);
  });

  it.each(badParity)("refuses $format with bit $flippedBit flipped", (b) => {
    expect(flip(b.frame, b.flippedBit)).toBe(b.validFrame);
    expect(() => decodeWiegand(b.validFrame)).not.toThrow();
    expectCode(() => decodeWiegand(b.frame), "LK_WIEGAND_PARITY");
  });

  it("refuses every single-bit flip of every vector", () => {
    for (const v of vectors) {
      for (let bit = 1; bit <= v.bits; bit++)
        expectCode(() => decodeWiegand(flip(v.frame, bit)), "LK_WIEGAND_PARITY");
    }
  });
});

describe("decodeWiegand input checks", () => {
  it.each([
    ["empty", ""],
    ["unsupported length 25", "0".repeat(25)],
    ["unsupported length 36", "0".repeat(36)],
    ["non-binary character", `${"0".repeat(25)}2`],
    ["spaces", `${"0".repeat(13)} ${"0".repeat(12)}`],
    ["longer than 64", "0".repeat(65)],
    ["very long", "1".repeat(100_000)],
  ])("refuses %s with LK_WIEGAND_FORMAT", (_, frame) => {
    expectCode(() => decodeWiegand(frame), "LK_WIEGAND_FORMAT");
  });

  it("refuses a non-string with LK_WIEGAND_FORMAT", () => {
    expectCode(() => decodeWiegand(26 as unknown as string), "LK_WIEGAND_FORMAT");
  });
});

describe("encodeWiegand input checks", () => {
  it.each(FORMATS)("refuses out-of-range and non-integer values for %s", (f) => {
    const l = wiegandLimits(f);
    for (const [fcode, cn] of [
      [l.maxFacilityCode + 1, 0],
      [0, l.maxCardNumber + 1],
      [-1, 0],
      [0, -1],
      [1.5, 0],
      [0, Number.NaN],
      [Number.POSITIVE_INFINITY, 0],
    ] as const) {
      expectCode(() => encodeWiegand(f, fcode, cn), "LK_WIEGAND_FORMAT");
    }
  });

  it("refuses an unknown format", () => {
    expectCode(() => encodeWiegand("h10302" as WiegandFormat, 0, 0), "LK_WIEGAND_FORMAT");
  });

  it("publishes the documented limits", () => {
    expect(FORMATS.map((f) => [f, wiegandLimits(f)])).toEqual([
      ["h10301", { bits: 26, maxFacilityCode: 255, maxCardNumber: 65535 }],
      ["h10306", { bits: 34, maxFacilityCode: 65535, maxCardNumber: 65535 }],
      ["corp1000", { bits: 35, maxFacilityCode: 4095, maxCardNumber: 1048575 }],
      ["h10304", { bits: 37, maxFacilityCode: 65535, maxCardNumber: 524287 }],
    ]);
  });
});

describe("wiegand properties", () => {
  it("encode then decode is the identity for in-range values of every format", () => {
    fc.assert(
      fc.property(anyCard, (c) => {
        const frame = encodeWiegand(c.format, c.facilityCode, c.cardNumber);
        expect(frame).toMatch(/^[01]+$/);
        expect(frame).toHaveLength(wiegandLimits(c.format).bits);
        expect(decodeWiegand(frame)).toEqual({ ...c, bits: frame.length });
      }),
      { numRuns: 2000 },
    );
  });

  it("a single flipped bit is rejected, or (only for a bit no parity covers) decodes to another card", () => {
    fc.assert(
      fc.property(
        anyCard.chain((c) =>
          fc.tuple(fc.constant(c), fc.integer({ min: 1, max: wiegandLimits(c.format).bits })),
        ),
        ([c, bit]) => {
          const frame = flip(encodeWiegand(c.format, c.facilityCode, c.cardNumber), bit);
          if (UNCOVERED_BITS[c.format].includes(bit)) {
            const d = decodeWiegand(frame);
            expect([d.facilityCode, d.cardNumber]).not.toEqual([c.facilityCode, c.cardNumber]);
          } else {
            expectCode(() => decodeWiegand(frame), "LK_WIEGAND_PARITY");
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("two flipped bits in the same parity group pass parity undetected (the limit of parity)", () => {
    // H10301 bits 10 and 11 (the top card-number bits) both lie in the even group 2-13; flipping
    // both keeps every group's parity, so the corrupted frame decodes as a different card.
    const frame = encodeWiegand("h10301", 1, 0);
    const twice = flip(flip(frame, 10), 11);
    expect(decodeWiegand(twice)).toEqual({ format: "h10301", bits: 26, facilityCode: 1, cardNumber: 0xc000 });
  });

  it("random strings never throw anything but a LatchkeyError (10,000 inputs)", () => {
    const binary = (min: number, max: number) =>
      fc.array(fc.constantFrom("0", "1"), { minLength: min, maxLength: max }).map((a) => a.join(""));
    const input = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: "binary", maxLength: 80 }),
      binary(0, 70),
      fc.constantFrom(26, 34, 35, 37).chain((n) => binary(n, n)),
      fc
        .constantFrom(26, 34, 35, 37)
        .chain((n) =>
          fc
            .tuple(binary(n, n), fc.nat(n - 1), fc.string({ minLength: 1, maxLength: 1 }))
            .map(([s, i, ch]) => s.slice(0, i) + ch + s.slice(i + 1)),
        ),
    );
    let decoded = 0;
    fc.assert(
      fc.property(input, (s) => {
        try {
          const c = decodeWiegand(s);
          decoded++;
          expect(encodeWiegand(c.format, c.facilityCode, c.cardNumber)).toBe(s);
        } catch (e) {
          expect(isLatchkeyError(e)).toBe(true);
          expect(["LK_WIEGAND_FORMAT", "LK_WIEGAND_PARITY"]).toContain((e as LatchkeyError).code);
        }
      }),
      { numRuns: 10_000 },
    );
    expect(decoded).toBeGreaterThan(0);
  });
});
