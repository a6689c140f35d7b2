import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  assertPinAcceptable,
  COMMON_PINS,
  DEFAULT_PIN_POLICY,
  effectiveMinLength,
  pinDigest,
} from "../../src/core/credentials/pin-policy.ts";
import { type CryptoPort, toHex, utf8 } from "../../src/core/crypto.ts";
import { type ErrorCode, isLatchkeyError, type LatchkeyError } from "../../src/core/errors.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";

/** The error assertPinAcceptable throws, or undefined. */
function pinError(pin: string, minLength: number): LatchkeyError | undefined {
  try {
    assertPinAcceptable(pin, minLength);
    return undefined;
  } catch (e) {
    if (!isLatchkeyError(e)) throw e;
    return e;
  }
}

describe("assertPinAcceptable", () => {
  // [pin, minLength, expected code or "ok", failed rule]
  const table: [string, number, ErrorCode | "ok", string?][] = [
    // format
    ["", 4, "LK_PIN_FORMAT", "format"],
    ["123", 4, "LK_PIN_FORMAT", "format"],
    ["1234567890123", 4, "LK_PIN_FORMAT", "format"],
    ["12a4", 4, "LK_PIN_FORMAT", "format"],
    [" 4816", 4, "LK_PIN_FORMAT", "format"],
    ["4816\n", 4, "LK_PIN_FORMAT", "format"],
    ["+4816", 4, "LK_PIN_FORMAT", "format"],
    ["４８１６", 4, "LK_PIN_FORMAT", "format"], // full-width digits
    ["٤٨١٦", 4, "LK_PIN_FORMAT", "format"], // Arabic-Indic digits
    ["48.16", 4, "LK_PIN_FORMAT", "format"],
    // too short (format is checked first, weakness after length)
    ["4816", 6, "LK_PIN_TOO_SHORT", "tooShort"],
    ["48162", 6, "LK_PIN_TOO_SHORT", "tooShort"],
    ["1111", 6, "LK_PIN_TOO_SHORT", "tooShort"],
    ["48162739", 12, "LK_PIN_TOO_SHORT", "tooShort"],
    // same digit
    ["0000", 4, "LK_PIN_WEAK", "sameDigit"],
    ["777777", 6, "LK_PIN_WEAK", "sameDigit"],
    ["999999999999", 4, "LK_PIN_WEAK", "sameDigit"],
    // sequences, with wraparound
    ["1234", 4, "LK_PIN_WEAK", "sequence"],
    ["4321", 4, "LK_PIN_WEAK", "sequence"],
    ["7890", 4, "LK_PIN_WEAK", "sequence"],
    ["3210", 4, "LK_PIN_WEAK", "sequence"],
    ["0987", 4, "LK_PIN_WEAK", "sequence"],
    ["901234", 6, "LK_PIN_WEAK", "sequence"],
    ["210987", 6, "LK_PIN_WEAK", "sequence"],
    ["567890123456", 4, "LK_PIN_WEAK", "sequence"],
    // repeated 2- or 3-digit groups
    ["1212", 4, "LK_PIN_WEAK", "repeatedGroup"],
    ["121212", 6, "LK_PIN_WEAK", "repeatedGroup"],
    ["123123", 6, "LK_PIN_WEAK", "repeatedGroup"],
    ["907907907", 6, "LK_PIN_WEAK", "repeatedGroup"],
    ["383838383838", 6, "LK_PIN_WEAK", "repeatedGroup"],
    ["48484", 4, "LK_PIN_WEAK", "repeatedGroup"],
    // common PINs that no pattern rule catches
    ["2580", 4, "LK_PIN_WEAK", "common"],
    ["1004", 4, "LK_PIN_WEAK", "common"],
    ["6969", 4, "LK_PIN_WEAK", "repeatedGroup"],
    ["2000", 4, "LK_PIN_WEAK", "common"],
    ["1122", 4, "LK_PIN_WEAK", "common"],
    ["112233", 6, "LK_PIN_WEAK", "common"],
    ["159753", 6, "LK_PIN_WEAK", "common"],
    ["147258", 6, "LK_PIN_WEAK", "common"],
    ["789456", 6, "LK_PIN_WEAK", "common"],
    ["520520", 6, "LK_PIN_WEAK", "repeatedGroup"],
    ["654321", 6, "LK_PIN_WEAK", "sequence"],
    // acceptable: random-looking, and date-like PINs are not weak by themselves
    ["4816", 4, "ok"],
    ["4816", 6 - 2, "ok"],
    ["481627", 6, "ok"],
    ["739214", 6, "ok"],
    ["1985", 4, "ok"], // a year
    ["0517", 4, "ok"], // MMDD
    ["250389", 6, "ok"], // DDMMYY
    ["19850517", 6, "ok"], // YYYYMMDD
    ["123412", 6, "ok"], // a sequence followed by more digits is not a sequence
    ["12341234", 6, "ok"], // a 4-digit group repeated is outside the 2- or 3-digit rule
    ["1231", 4, "ok"], // one digit back is not a repeated 3-digit group
    ["902468135791", 12, "ok"],
  ];

  it.each(table)("%s with minimum %i -> %s", (pin, minLength, expected, rule) => {
    const err = pinError(pin, minLength);
    if (expected === "ok") {
      expect(err).toBeUndefined();
    } else {
      expect(err?.code).toBe(expected);
      expect(err?.data?.rule).toBe(rule);
    }
  });

  it("names the failed rule in the detail", () => {
    expect(pinError("7890", 4)?.detail).toMatch(/sequence/);
    expect(pinError("0000", 4)?.detail).toMatch(/same digit/);
    expect(pinError("123123", 4)?.detail).toMatch(/repeats a group/);
    expect(pinError("2580", 4)?.detail).toMatch(/common/);
    expect(pinError("4816", 6)?.detail).toBe("PIN must have at least 6 digits");
    expect(pinError("48a6", 4)?.detail).toMatch(/4 to 12 decimal digits/);
  });

  it("throws LK_INVALID_INPUT for a minimum length outside 4..12", () => {
    for (const m of [0, 3, 13, 5.5, Number.NaN]) {
      expect(isLatchkeyError(pinError("481627", m), "LK_INVALID_INPUT")).toBe(true);
    }
  });

  it("a PIN that passes is 4 to 12 ASCII digits, at least minLength long, and not a common PIN", () => {
    const digitString = fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 0, maxLength: 14 });
    fc.assert(
      fc.property(
        fc.oneof(digitString, fc.string({ maxLength: 14 })),
        fc.integer({ min: 4, max: 12 }),
        (pin, m) => {
          const err = pinError(pin, m);
          if (err === undefined) {
            expect(pin).toMatch(/^[0-9]{4,12}$/);
            expect(pin.length).toBeGreaterThanOrEqual(m);
            expect(COMMON_PINS.has(pin)).toBe(false);
          } else {
            expect(["LK_PIN_FORMAT", "LK_PIN_TOO_SHORT", "LK_PIN_WEAK"]).toContain(err.code);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("every common PIN is rejected as weak", () => {
    for (const pin of COMMON_PINS) {
      expect(pinError(pin, 4)?.code).toBe("LK_PIN_WEAK");
    }
  });

  it("error messages and data never contain the PIN", () => {
    const digitString = fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 3, maxLength: 14 });
    const weakish = fc.oneof(
      fc.constantFrom(...COMMON_PINS),
      fc
        .tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 4, max: 12 }))
        .map(([d, n]) => String(d).repeat(n)),
      fc
        .tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 2, max: 4 }))
        .map(([g, n]) => String(g).repeat(n)),
    );
    fc.assert(
      fc.property(fc.oneof(digitString, weakish), fc.integer({ min: 4, max: 12 }), (pin, m) => {
        const err = pinError(pin, m);
        if (err !== undefined && pin.length >= 3) {
          expect(err.message).not.toContain(pin);
          expect(err.detail).not.toContain(pin);
          expect(JSON.stringify(err.data ?? {})).not.toContain(pin);
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe("COMMON_PINS", () => {
  it("holds about 100 PINs of 4 or 6 digits, including the DataGenetics top 20", () => {
    expect(COMMON_PINS.size).toBeGreaterThanOrEqual(90);
    expect(COMMON_PINS.size).toBeLessThanOrEqual(130);
    for (const pin of COMMON_PINS) expect(pin).toMatch(/^(?:[0-9]{4}|[0-9]{6})$/);
    const top20 =
      "1234 1111 0000 1212 7777 1004 2000 4444 2222 6969 9999 3333 5555 6666 1122 1313 8888 4321 2001 1010";
    for (const pin of top20.split(" ")) expect(COMMON_PINS.has(pin)).toBe(true);
    for (const pin of ["123456", "654321", "111111", "000000", "123123", "666666", "121212", "112233"]) {
      expect(COMMON_PINS.has(pin)).toBe(true);
    }
    for (const pin of ["159753", "147258", "789456", "696969", "520520"])
      expect(COMMON_PINS.has(pin)).toBe(true);
  });
});

describe("effectiveMinLength", () => {
  // 10^L >= 1000 * (allocated + 1), then max with the policy minimum, capped at 12.
  const table: [policyMin: number, allocated: number, expected: number][] = [
    [6, 0, 6], // needs 10^3
    [6, 999, 6], // 1000 * 1000 = 10^6
    [6, 1000, 7], // 1000 * 1001 > 10^6
    [6, 9999, 7], // 10^7
    [6, 10000, 8],
    [6, 99999, 8], // 10^8
    [6, 100000, 9],
    [4, 0, 4],
    [4, 9, 4], // 1000 * 10 = 10^4
    [4, 10, 5], // 11000 > 10^4
    [4, 99, 5], // 10^5
    [4, 100, 6],
    [8, 0, 8],
    [8, 99999, 8],
    [8, 100000, 9],
    [12, 0, 12],
    [6, 999_999_999, 12], // 10^12
    [6, 1_000_000_000, 12], // would need 13: capped
    [6, Number.MAX_SAFE_INTEGER, 12],
  ];

  it.each(table)("policy %i with %i codes -> %i", (policyMin, allocated, expected) => {
    expect(effectiveMinLength({ minLength: policyMin }, allocated)).toBe(expected);
  });

  it("the default policy is 6", () => {
    expect(DEFAULT_PIN_POLICY.minLength).toBe(6);
    expect(effectiveMinLength(DEFAULT_PIN_POLICY, 0)).toBe(6);
  });

  it("gives a code space of at least 1000x the codes (until the cap), and never less than the policy", () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 12 }), fc.integer({ min: 0, max: 2_000_000_000 }), (m, n) => {
        const len = effectiveMinLength({ minLength: m }, n);
        expect(len).toBeGreaterThanOrEqual(m);
        expect(len).toBeLessThanOrEqual(12);
        if (len < 12) expect(10 ** len).toBeGreaterThanOrEqual(1000 * (n + 1));
        if (len > m) expect(10 ** (len - 1)).toBeLessThan(1000 * (n + 1));
      }),
    );
  });

  it("throws LK_INVALID_INPUT on a bad policy or count", () => {
    const bad: [number, number][] = [
      [3, 0],
      [13, 0],
      [6.5, 0],
      [6, -1],
      [6, 1.5],
      [6, Number.NaN],
      [6, Number.POSITIVE_INFINITY],
    ];
    for (const [m, n] of bad) {
      expect(() => effectiveMinLength({ minLength: m }, n)).toThrow(
        expect.objectContaining({ code: "LK_INVALID_INPUT" }),
      );
    }
  });
});

describe("pinDigest", () => {
  const secret = utf8("a PIN-hash secret of the device");

  it("is HMAC-SHA-256(pinSecret, utf8(pin)) as lowercase hex", () => {
    const d = pinDigest(nodeCrypto, secret, "481627");
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(d).toBe(toHex(nodeCrypto.hmacSha256(secret, utf8("481627"))));
  });

  it("matches RFC 4231 test case 2 when used with its key and data", () => {
    expect(pinDigest(nodeCrypto, utf8("Jefe"), "what do ya want for nothing?")).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
  });

  it("depends on the secret and the PIN", () => {
    const a = pinDigest(nodeCrypto, secret, "481627");
    expect(pinDigest(nodeCrypto, utf8("another secret"), "481627")).not.toBe(a);
    expect(pinDigest(nodeCrypto, secret, "481628")).not.toBe(a);
    expect(pinDigest(nodeCrypto, secret, "0481627")).not.toBe(a);
  });

  it("goes through the port it is given", () => {
    const calls: [string, string][] = [];
    const port: CryptoPort = {
      ...nodeCrypto,
      hmacSha256(key, data) {
        calls.push([toHex(key), toHex(data)]);
        return new Uint8Array([0xab, 0x01]);
      },
    };
    expect(pinDigest(port, new Uint8Array([1, 2]), "12")).toBe("ab01");
    expect(calls).toEqual([["0102", "3132"]]);
  });

  it("refuses an empty secret", () => {
    expect(() => pinDigest(nodeCrypto, new Uint8Array(0), "481627")).toThrow(
      expect.objectContaining({ code: "LK_INTERNAL" }),
    );
  });
});
