/**
 * Authenticator codes (docs/protocol/totp.md): base32, HOTP, TOTP, the accept-once verifier and the
 * otpauth:// URI. Checked against the RFC 4226 Appendix D and RFC 6238 Appendix B vectors
 * (test/vectors/rfc4226-hotp.json, test/vectors/rfc6238-totp.json) and against otplib, a well-known TOTP
 * library used here only as an independent client.
 */
import fc from "fast-check";
import { generateSync, generateURI, verifySync } from "otplib";
import { describe, expect, it } from "vitest";
import { base32Decode, base32Encode } from "../../src/core/credentials/base32.ts";
import {
  hotp,
  newTotpSecret,
  type OtpauthParams,
  otpauthUri,
  parseOtpauthUri,
  type TotpAlgorithm,
  totpAt,
  totpCounter,
  verifyTotp,
} from "../../src/core/credentials/totp.ts";
import { type CryptoPort, fromHex, toHex, utf8 } from "../../src/core/crypto.ts";
import { type ErrorCode, isLatchkeyError, type LatchkeyError } from "../../src/core/errors.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import hotpVectors from "../vectors/rfc4226-hotp.json" with { type: "json" };
import hmacVectors from "../vectors/rfc4231-hmac-sha256.json" with { type: "json" };
import totpVectors from "../vectors/rfc6238-totp.json" with { type: "json" };

/** otplib's name for a hash. */
const OTPLIB_ALG = { "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512" } as const;
const ALGS: TotpAlgorithm[] = ["SHA-1", "SHA-256", "SHA-512"];

/** otplib's TOTP code (an independent client) at an instant in ms. */
function otplibCode(
  secret: Uint8Array,
  nowMs: number,
  p: { alg: TotpAlgorithm; digits: 6 | 7 | 8; step: number; t0?: number },
): string {
  return generateSync({
    secret,
    epoch: nowMs / 1000,
    algorithm: OTPLIB_ALG[p.alg],
    digits: p.digits,
    period: p.step,
    t0: p.t0 ?? 0,
  });
}

/** The error f throws, which must be a LatchkeyError. */
function thrown(f: () => unknown): LatchkeyError {
  try {
    f();
  } catch (e) {
    if (isLatchkeyError(e)) return e;
    throw e;
  }
  throw new Error("expected a LatchkeyError, nothing was thrown");
}

function expectCode(f: () => unknown, code: ErrorCode): LatchkeyError {
  const e = thrown(f);
  expect(e.code).toBe(code);
  return e;
}

// --- arbitraries ---
const secretArb = fc.uint8Array({ minLength: 16, maxLength: 64 });
const algArb = fc.constantFrom<TotpAlgorithm>(...ALGS);
const digitsArb = fc.constantFrom<6 | 7 | 8>(6, 7, 8);
const stepArb = fc.oneof(fc.constantFrom(30, 60), fc.integer({ min: 1, max: 3600 }));
/** Instants from the epoch to the year 2603 (the last RFC 6238 vector), in whole ms. */
const nowArb = fc.integer({ min: 0, max: 20_000_000_000_000 });
/** A name allowed in an otpauth URI: no ':', no control characters, no white space at either end. */
const nameArb = fc
  .string({ unit: "grapheme", minLength: 1, maxLength: 20 })
  .map((s) =>
    [...s]
      .filter((ch) => ch !== ":" && ch.charCodeAt(0) >= 0x20 && ch !== "\u007f")
      .join("")
      .trim(),
  )
  .filter((s) => s.length > 0 && s.length <= 256 && s.trim() === s);

describe("RFC 6238 Appendix B vectors", () => {
  const seeds = totpVectors.seeds as Record<TotpAlgorithm, { ascii: string; hex: string }>;

  it("has all 18 vectors: 6 times x SHA-1, SHA-256, SHA-512, with the 20/32/64-byte seeds", () => {
    expect(totpVectors.cases).toHaveLength(18);
    expect(new Set(totpVectors.cases.map((c) => c.unixSeconds)).size).toBe(6);
    for (const alg of ALGS) expect(totpVectors.cases.filter((c) => c.alg === alg)).toHaveLength(6);
    expect(fromHex(seeds["SHA-1"].hex)).toEqual(utf8("12345678901234567890"));
    expect(seeds["SHA-1"].ascii).toHaveLength(20);
    expect(seeds["SHA-256"].ascii).toHaveLength(32);
    expect(seeds["SHA-512"].ascii).toHaveLength(64);
    for (const alg of ALGS) expect(toHex(utf8(seeds[alg].ascii))).toBe(seeds[alg].hex);
  });

  it.each(totpVectors.cases)("$unixSeconds s, $alg -> $totp", (c) => {
    const alg = c.alg as TotpAlgorithm;
    const secret = fromHex(seeds[alg].hex);
    const now = EpochMs(c.unixSeconds * 1000);
    expect(new Date(now).toISOString().replace(".000", "")).toBe(c.utc);
    expect(totpCounter(now).toString(16).toUpperCase().padStart(16, "0")).toBe(c.counterHex);
    expect(totpAt(nodeCrypto, secret, now, { digits: 8, alg })).toBe(c.totp);
    expect(
      verifyTotp(nodeCrypto, secret, c.totp, now, { digits: 8, alg, lastAcceptedCounter: null }),
    ).toEqual({
      ok: true,
      counter: Number.parseInt(c.counterHex, 16),
    });
    // otplib agrees with the RFC too.
    expect(otplibCode(secret, now, { alg, digits: 8, step: 30 })).toBe(c.totp);
  });
});

describe("RFC 4226 Appendix D vectors", () => {
  const secret = fromHex(hotpVectors.secret.hex);

  it("has counters 0 to 9 with the ASCII secret 12345678901234567890", () => {
    expect(hotpVectors.cases.map((c) => c.counter)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(secret).toEqual(utf8("12345678901234567890"));
  });

  it.each(hotpVectors.cases)("counter $counter -> $hotp", (c) => {
    const counter8 = fromHex(c.counter.toString(16).padStart(16, "0"));
    expect(toHex(nodeCrypto.hmac("SHA-1", secret, counter8))).toBe(c.hmacSha1); // Table 1
    expect(Number.parseInt(c.truncatedHex, 16)).toBe(c.truncatedDecimal); // Table 2
    expect(hotp(nodeCrypto, secret, c.counter)).toBe(c.hotp);
    expect(hotp(nodeCrypto, secret, c.counter, 6, "SHA-1")).toBe(c.hotp);
    // 7 and 8 digits keep more of the same truncated value.
    expect(hotp(nodeCrypto, secret, c.counter, 7)).toBe(String(c.truncatedDecimal % 1e7).padStart(7, "0"));
    expect(hotp(nodeCrypto, secret, c.counter, 8)).toBe(String(c.truncatedDecimal % 1e8).padStart(8, "0"));
  });
});

describe("CryptoPort.hmac (node adapter)", () => {
  it("is HMAC-SHA-256 for SHA-256: the RFC 4231 vectors, same as hmacSha256", () => {
    for (const c of hmacVectors.cases) {
      const mac = nodeCrypto.hmac("SHA-256", fromHex(c.key), fromHex(c.data));
      const got = c.truncateBits === undefined ? mac : mac.subarray(0, c.truncateBits / 8);
      expect(toHex(got)).toBe(c.expected);
      expect(mac).toEqual(nodeCrypto.hmacSha256(fromHex(c.key), fromHex(c.data)));
    }
  });

  it("returns plain Uint8Arrays of 20, 32 and 64 bytes", () => {
    const lengths = ALGS.map((alg) => nodeCrypto.hmac(alg, utf8("key"), utf8("data")));
    expect(lengths.map((m) => m.length)).toEqual([20, 32, 64]);
    for (const m of lengths) expect(m.constructor).toBe(Uint8Array);
  });

  it("matches RFC 4231 test case 2 for SHA-512", () => {
    expect(toHex(nodeCrypto.hmac("SHA-512", utf8("Jefe"), utf8("what do ya want for nothing?")))).toBe(
      "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    );
  });

  it("refuses an unknown hash", () => {
    expectCode(() => nodeCrypto.hmac("MD5" as TotpAlgorithm, utf8("k"), utf8("d")), "LK_INVALID_INPUT");
    expectCode(() => nodeCrypto.hmac("toString" as TotpAlgorithm, utf8("k"), utf8("d")), "LK_INVALID_INPUT");
  });
});

describe("hotp", () => {
  it("equals otplib's HOTP for random secrets, counters up to 2^53 - 1, hashes and lengths", () => {
    const counterArb = fc.oneof(
      fc.integer({ min: 0, max: 1000 }),
      fc.integer({ min: 2 ** 32 - 2, max: 2 ** 32 + 2 }),
      fc.constant(Number.MAX_SAFE_INTEGER),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    );
    fc.assert(
      fc.property(secretArb, counterArb, digitsArb, algArb, (secret, counter, digits, alg) => {
        const theirs = generateSync({
          strategy: "hotp",
          secret,
          counter,
          digits,
          algorithm: OTPLIB_ALG[alg],
        });
        expect(hotp(nodeCrypto, secret, counter, digits, alg)).toBe(theirs);
      }),
      { numRuns: 300 },
    );
  });

  it("feeds the counter to the HMAC as 8 bytes big-endian", () => {
    const seen: string[] = [];
    const port: CryptoPort = {
      ...nodeCrypto,
      hmac(alg, key, data) {
        seen.push(toHex(data));
        return nodeCrypto.hmac(alg, key, data);
      },
    };
    const secret = new Uint8Array(20);
    for (const c of [0, 1, 0x1234_5678, 2 ** 32, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) hotp(port, secret, c);
    expect(seen).toEqual([
      "0000000000000000",
      "0000000000000001",
      "0000000012345678",
      "0000000100000000",
      "0000000100000005",
      "001fffffffffffff",
    ]);
  });

  it("uses dynamic truncation on the last byte's offset (RFC 4226 section 5.4 example)", () => {
    // The RFC's worked example MAC: offset 0xa, DBC 0x50ef7f19, 6 digits -> 872921.
    const mac = fromHex("1f8698690e02ca16618550ef7f19da8e945b555a");
    const port: CryptoPort = { ...nodeCrypto, hmac: () => mac };
    expect(hotp(port, new Uint8Array(20), 0)).toBe("872921");
  });

  it("refuses bad secrets, counters, digits and hashes with LK_TOTP_INVALID", () => {
    const s = new Uint8Array(20);
    const bad: (() => unknown)[] = [
      () => hotp(nodeCrypto, new Uint8Array(15), 0),
      () => hotp(nodeCrypto, new Uint8Array(65), 0),
      () => hotp(nodeCrypto, "secret" as unknown as Uint8Array, 0),
      () => hotp(nodeCrypto, s, -1),
      () => hotp(nodeCrypto, s, 1.5),
      () => hotp(nodeCrypto, s, 2 ** 53),
      () => hotp(nodeCrypto, s, Number.NaN),
      () => hotp(nodeCrypto, s, 0, 5),
      () => hotp(nodeCrypto, s, 0, 9),
      () => hotp(nodeCrypto, s, 0, 6.5),
      () => hotp(nodeCrypto, s, 0, 6, "MD5" as TotpAlgorithm),
      () => hotp(nodeCrypto, s, 0, 6, "SHA1" as TotpAlgorithm),
    ];
    for (const f of bad) expectCode(f, "LK_TOTP_INVALID");
  });

  it("refuses a crypto port that returns a MAC of the wrong length", () => {
    const port: CryptoPort = { ...nodeCrypto, hmac: () => new Uint8Array(10) };
    expectCode(() => hotp(port, new Uint8Array(20), 0), "LK_INTERNAL");
  });
});

describe("totpCounter and totpAt", () => {
  it("floors (now - T0) / step at the step boundaries", () => {
    expect(totpCounter(EpochMs(0))).toBe(0);
    expect(totpCounter(EpochMs(29_999))).toBe(0);
    expect(totpCounter(EpochMs(30_000))).toBe(1);
    expect(totpCounter(EpochMs(59_999))).toBe(1);
    expect(totpCounter(EpochMs(60_000), 60)).toBe(1);
    expect(totpCounter(EpochMs(119_999), 60)).toBe(1);
    expect(totpCounter(EpochMs(100_000), 30, 100)).toBe(0);
    expect(totpCounter(EpochMs(130_000), 30, 100)).toBe(1);
    expect(totpCounter(EpochMs(1_111_111_109_000))).toBe(0x023523ec);
  });

  it("is exact: equals the BigInt quotient for any whole-ms instant, step and T0", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        stepArb,
        fc.integer({ min: 0, max: 2_000_000_000 }),
        (ms, step, t0) => {
          fc.pre(ms >= t0 * 1000);
          const expected = (BigInt(ms) - BigInt(t0) * 1000n) / (BigInt(step) * 1000n);
          expect(totpCounter(EpochMs(ms), step, t0)).toBe(Number(expected));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("refuses a time before T0 or not finite, and bad steps or T0", () => {
    const bad: (() => unknown)[] = [
      () => totpCounter(EpochMs(99_999), 30, 100),
      () => totpCounter(EpochMs(-1)),
      () => totpCounter(EpochMs(Number.NaN)),
      () => totpCounter(EpochMs(Number.POSITIVE_INFINITY)),
      () => totpCounter(EpochMs(0), 0),
      () => totpCounter(EpochMs(0), 3601),
      () => totpCounter(EpochMs(0), 1.5),
      () => totpCounter(EpochMs(0), 30, -1),
      () => totpCounter(EpochMs(0), 30, 0.5),
    ];
    for (const f of bad) expectCode(f, "LK_TOTP_INVALID");
  });

  it("totpAt equals otplib's code for random secrets, times, hashes, lengths and steps", () => {
    fc.assert(
      fc.property(secretArb, nowArb, algArb, digitsArb, stepArb, (secret, now, alg, digits, step) => {
        expect(totpAt(nodeCrypto, secret, EpochMs(now), { alg, digits, step })).toBe(
          otplibCode(secret, now, { alg, digits, step }),
        );
      }),
      { numRuns: 500 },
    );
  });

  it("totpAt equals otplib's code with a non-zero T0", () => {
    fc.assert(
      fc.property(secretArb, nowArb, fc.integer({ min: 0, max: 1_000_000_000 }), (secret, now, t0) => {
        fc.pre(now >= t0 * 1000);
        expect(totpAt(nodeCrypto, secret, EpochMs(now), { t0 })).toBe(
          otplibCode(secret, now, { alg: "SHA-1", digits: 6, step: 30, t0 }),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("defaults to SHA-1, 6 digits, 30 s, T0 = 0", () => {
    const secret = fromHex(hotpVectors.secret.hex);
    // 59 s is counter 1: RFC 4226 counter 1 is 287082 (and RFC 6238's 94287082 ends the same way).
    expect(totpAt(nodeCrypto, secret, EpochMs(59_000))).toBe("287082");
  });
});

describe("verifyTotp", () => {
  const params = fc.record({ alg: algArb, digits: digitsArb, step: stepArb });
  /** Instants at least 3 steps of the longest step after the epoch, so every ±2 counter exists. */
  const laterArb = fc.integer({ min: 3 * 3600 * 1000, max: 20_000_000_000_000 });

  it("accepts otplib's code for now and one step either side, once, and refuses two steps away", () => {
    fc.assert(
      fc.property(secretArb, laterArb, params, (secret, now, p) => {
        const current = totpCounter(EpochMs(now), p.step);
        const codeAt = (d: number) => otplibCode(secret, now + d * p.step * 1000, p);
        const opts = { ...p, lastAcceptedCounter: null };
        const nearby = [-1, 0, 1].map(codeAt);
        for (const d of [-1, 0, 1]) {
          const code = codeAt(d);
          // A code equal to a newer one in the window is accepted as that newer one.
          const newest = current + [-1, 0, 1].filter((e) => nearby[e + 1] === code).at(-1)!;
          expect(verifyTotp(nodeCrypto, secret, code, EpochMs(now), opts)).toEqual({
            ok: true,
            counter: newest,
          });
          // otplib, as a verifier with the same one-step window, agrees.
          const theirs = verifySync({
            secret,
            token: code,
            epoch: now / 1000,
            epochTolerance: p.step,
            algorithm: OTPLIB_ALG[p.alg],
            digits: p.digits,
            period: p.step,
          });
          expect(theirs.valid).toBe(true);
          // Accepted once: the same code again is a replay.
          expect(
            verifyTotp(nodeCrypto, secret, code, EpochMs(now), { ...p, lastAcceptedCounter: newest }),
          ).toEqual({ ok: false, reason: "replayed" });
        }
        for (const d of [-2, 2]) {
          const code = codeAt(d);
          fc.pre(!nearby.includes(code)); // a 10^-6 coincidence would make it a valid code
          expect(verifyTotp(nodeCrypto, secret, code, EpochMs(now), opts)).toEqual({
            ok: false,
            reason: "mismatch",
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it("refuses a code older than the last accepted one, and accepts a newer one", () => {
    fc.assert(
      fc.property(secretArb, laterArb, (secret, now) => {
        const current = totpCounter(EpochMs(now));
        const p = { alg: "SHA-1" as const, digits: 6 as const, step: 30 };
        const previous = otplibCode(secret, now - 30_000, p);
        const present = otplibCode(secret, now, p);
        const next = otplibCode(secret, now + 30_000, p);
        fc.pre(new Set([previous, present, next]).size === 3);
        const at = EpochMs(now);
        expect(verifyTotp(nodeCrypto, secret, present, at, { lastAcceptedCounter: null })).toEqual({
          ok: true,
          counter: current,
        });
        expect(verifyTotp(nodeCrypto, secret, previous, at, { lastAcceptedCounter: current })).toEqual({
          ok: false,
          reason: "replayed",
        });
        expect(verifyTotp(nodeCrypto, secret, present, at, { lastAcceptedCounter: current })).toEqual({
          ok: false,
          reason: "replayed",
        });
        expect(verifyTotp(nodeCrypto, secret, next, at, { lastAcceptedCounter: current })).toEqual({
          ok: true,
          counter: current + 1,
        });
        // Still refused long after: the window moved on, so it no longer even matches.
        expect(
          verifyTotp(nodeCrypto, secret, present, EpochMs(now + 120_000), { lastAcceptedCounter: current }),
        ).toEqual({ ok: false, reason: "mismatch" });
      }),
      { numRuns: 200 },
    );
  });

  it("walks a login sequence: each step's code works once, in order", () => {
    const secret = fromHex(hotpVectors.secret.hex);
    let last: number | null = null;
    for (let t = 1_000_000_000_000; t < 1_000_000_000_000 + 10 * 30_000; t += 30_000) {
      const code = totpAt(nodeCrypto, secret, EpochMs(t));
      const first = verifyTotp(nodeCrypto, secret, code, EpochMs(t + 5_000), { lastAcceptedCounter: last });
      expect(first.ok).toBe(true);
      if (first.ok) last = first.counter;
      const again = verifyTotp(nodeCrypto, secret, code, EpochMs(t + 10_000), { lastAcceptedCounter: last });
      expect(again).toEqual({ ok: false, reason: "replayed" });
    }
  });

  it("refuses codes of the wrong length or with anything but ASCII digits as format, without an HMAC", () => {
    let calls = 0;
    const port: CryptoPort = {
      ...nodeCrypto,
      hmac(alg, key, data) {
        calls++;
        return nodeCrypto.hmac(alg, key, data);
      },
    };
    const secret = new Uint8Array(20).fill(7);
    const now = EpochMs(1_700_000_000_000);
    const good = totpAt(nodeCrypto, secret, now);
    const bad = [
      "",
      good.slice(0, 5),
      `${good}0`,
      "12a456",
      " 12345",
      "12345 ",
      "-12345",
      "+12345",
      "12.345",
      "1e5000",
      "１２３４５６",
      "٤٨١٦٢٧",
      "12345\n",
      undefined as unknown as string,
      123456 as unknown as string,
    ];
    for (const code of bad) {
      expect(verifyTotp(port, secret, code, now, { lastAcceptedCounter: null })).toEqual({
        ok: false,
        reason: "format",
      });
    }
    expect(calls).toBe(0);
    // 8 digits: a 6-digit code is the wrong format.
    expect(verifyTotp(port, secret, good, now, { digits: 8, lastAcceptedCounter: null })).toEqual({
      ok: false,
      reason: "format",
    });
    expect(verifyTotp(port, secret, good, now, { lastAcceptedCounter: null }).ok).toBe(true);
  });

  it("computes every counter in the window whichever matches (no early exit)", () => {
    const counters: number[] = [];
    const port: CryptoPort = {
      ...nodeCrypto,
      hmac(alg, key, data) {
        counters.push(Number.parseInt(toHex(data), 16));
        return nodeCrypto.hmac(alg, key, data);
      },
    };
    const secret = utf8("a shared secret of 20b");
    const now = 1_700_000_000_000;
    const current = totpCounter(EpochMs(now));
    for (const window of [0, 1, 2, 3]) {
      for (let d = -window; d <= window; d++) {
        counters.length = 0;
        const code = totpAt(nodeCrypto, secret, EpochMs(now + d * 30_000));
        const r = verifyTotp(port, secret, code, EpochMs(now), { window, lastAcceptedCounter: null });
        expect(r.ok).toBe(true);
        const all = Array.from({ length: 2 * window + 1 }, (_, i) => current - window + i);
        expect(counters).toEqual(all);
      }
      counters.length = 0;
      verifyTotp(port, secret, "000000", EpochMs(now), { window, lastAcceptedCounter: null });
      expect(counters).toHaveLength(2 * window + 1);
    }
  });

  it("returns the newest matching counter when a code matches several", () => {
    // A port whose MAC never changes makes every counter's code the same.
    const mac = fromHex("1f8698690e02ca16618550ef7f19da8e945b555a");
    const port: CryptoPort = { ...nodeCrypto, hmac: () => mac };
    const secret = new Uint8Array(20);
    const now = EpochMs(1_700_000_000_000);
    const current = totpCounter(now);
    expect(verifyTotp(port, secret, "872921", now, { lastAcceptedCounter: null })).toEqual({
      ok: true,
      counter: current + 1,
    });
    expect(verifyTotp(port, secret, "872921", now, { lastAcceptedCounter: current })).toEqual({
      ok: true,
      counter: current + 1,
    });
    expect(verifyTotp(port, secret, "872921", now, { lastAcceptedCounter: current + 1 })).toEqual({
      ok: false,
      reason: "replayed",
    });
    expect(verifyTotp(port, secret, "872921", now, { window: 0, lastAcceptedCounter: null })).toEqual({
      ok: true,
      counter: current,
    });
  });

  it("skips counters below 0 near the epoch", () => {
    const secret = fromHex(hotpVectors.secret.hex);
    const code0 = hotp(nodeCrypto, secret, 0);
    expect(verifyTotp(nodeCrypto, secret, code0, EpochMs(10_000), { lastAcceptedCounter: null })).toEqual({
      ok: true,
      counter: 0,
    });
    expect(
      verifyTotp(nodeCrypto, secret, code0, EpochMs(10_000), { window: 3, lastAcceptedCounter: null }),
    ).toEqual({ ok: true, counter: 0 });
  });

  it("refuses bad windows, lastAcceptedCounter values, secrets and parameters with LK_TOTP_INVALID", () => {
    const s = new Uint8Array(20);
    const now = EpochMs(1_700_000_000_000);
    const v = (o: object, secret = s) =>
      verifyTotp(nodeCrypto, secret, "123456", now, { lastAcceptedCounter: null, ...o });
    const bad: (() => unknown)[] = [
      () => v({ window: -1 }),
      () => v({ window: 11 }),
      () => v({ window: 0.5 }),
      () => v({ lastAcceptedCounter: -1 }),
      () => v({ lastAcceptedCounter: 1.5 }),
      () => v({ lastAcceptedCounter: Number.NaN }),
      () => v({ lastAcceptedCounter: undefined }),
      () => v({ digits: 9 }),
      () => v({ step: 0 }),
      () => v({ alg: "SHA-384" }),
      () => v({}, new Uint8Array(10)),
    ];
    for (const f of bad) expectCode(f, "LK_TOTP_INVALID");
  });
});

describe("newTotpSecret", () => {
  it("draws 20 bytes by default, or the length asked for, from the port", () => {
    expect(newTotpSecret(nodeCrypto)).toHaveLength(20);
    expect(newTotpSecret(nodeCrypto, 32)).toHaveLength(32);
    expect(newTotpSecret(nodeCrypto, 16)).toHaveLength(16);
    expect(newTotpSecret(nodeCrypto, 64)).toHaveLength(64);
    expect(toHex(newTotpSecret(nodeCrypto))).not.toBe(toHex(newTotpSecret(nodeCrypto)));
    const port: CryptoPort = { ...nodeCrypto, randomBytes: (n) => new Uint8Array(n).fill(0xab) };
    expect(toHex(newTotpSecret(port, 16))).toBe("ab".repeat(16));
  });

  it("refuses lengths outside 16..64, and a port that returns the wrong length", () => {
    for (const n of [0, 15, 65, 20.5, Number.NaN])
      expectCode(() => newTotpSecret(nodeCrypto, n), "LK_TOTP_INVALID");
    const port: CryptoPort = { ...nodeCrypto, randomBytes: () => new Uint8Array(3) };
    expectCode(() => newTotpSecret(port), "LK_INTERNAL");
  });
});

describe("base32 (RFC 4648 section 6)", () => {
  // RFC 4648 section 10 test vectors.
  const rfc: [string, string][] = [
    ["", ""],
    ["f", "MY======"],
    ["fo", "MZXQ===="],
    ["foo", "MZXW6==="],
    ["foob", "MZXW6YQ="],
    ["fooba", "MZXW6YTB"],
    ["foobar", "MZXW6YTBOI======"],
  ];

  it.each(rfc)("%j <-> %s", (plain, encoded) => {
    expect(base32Encode(utf8(plain), true)).toBe(encoded);
    expect(base32Encode(utf8(plain))).toBe(encoded.replace(/=+$/, ""));
    expect(base32Decode(encoded)).toEqual(utf8(plain));
    expect(base32Decode(encoded.replace(/=+$/, ""))).toEqual(utf8(plain));
    expect(base32Decode(encoded.toLowerCase())).toEqual(utf8(plain));
  });

  it("encodes the RFC 4226 secret as the well-known GEZDGNBVGY3TQOJQ... string", () => {
    expect(base32Encode(utf8("12345678901234567890"))).toBe("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  });

  it("round-trips any bytes, padded or not, in either case, with spaces anywhere", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 80 }),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 6 }),
        (bytes, pad, lower, spaceAt) => {
          const encoded = base32Encode(bytes, pad);
          expect(encoded).toMatch(/^[A-Z2-7]*=*$/);
          expect(encoded.length % 8 === 0 || !pad).toBe(true);
          let text = lower ? encoded.toLowerCase() : encoded;
          for (const i of spaceAt) {
            const at = text.length === 0 ? 0 : i % (text.length + 1);
            text = `${text.slice(0, at)} ${text.slice(at)}`;
          }
          expect(base32Decode(text)).toEqual(bytes);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("decodes what otplib's client accepts as the same secret", () => {
    fc.assert(
      fc.property(secretArb, nowArb, (secret, now) => {
        const b32 = base32Encode(secret);
        const theirs = generateSync({ secret: b32, epoch: now / 1000 });
        expect(totpAt(nodeCrypto, base32Decode(b32), EpochMs(now))).toBe(theirs);
      }),
      { numRuns: 100 },
    );
  });

  it("refuses other characters, impossible lengths, bad padding and non-zero spare bits", () => {
    const bad = [
      "MZXW6YT0", // '0' is not in the alphabet
      "MZXW6YT1",
      "MZXW6YT8",
      "MZXW6YT9",
      "MZXW6YT!",
      "MZXW6YTé",
      "MZXW\t6YTB",
      "MZXW-6YTB",
      "MZXW6YTB\n",
      "Q", // 1, 3 and 6 characters in the last quantum are no encoding's length
      "MZX",
      "MZXW6Y",
      "MZXW6YTBA",
      "MY=", // padding that does not fit
      "MY=======",
      "MZXW6YQ==",
      "MZXW6YTB========",
      "MY======MY", // padding in the middle
      "=MY",
      "MZ", // 'f' is MY; MZ leaves a non-zero spare bit
      "MZXR",
      "MZXW7",
    ];
    for (const s of bad) {
      const e = expectCode(() => base32Decode(s), "LK_INVALID_INPUT");
      expect(e.message).not.toContain(s);
    }
    expectCode(() => base32Decode(42 as unknown as string), "LK_INVALID_INPUT");
  });
});

describe("otpauth URI", () => {
  const secret = utf8("12345678901234567890");

  it("writes the Key Uri Format with every parameter, percent-encoding the names", () => {
    expect(otpauthUri({ issuer: "Latchkey", account: "alice@example.com", secret })).toBe(
      "otpauth://totp/Latchkey:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" +
        "&issuer=Latchkey&algorithm=SHA1&digits=6&period=30",
    );
    expect(
      otpauthUri({
        issuer: "Front Door & Co",
        account: "Zoë Müller/1?",
        secret,
        alg: "SHA-512",
        digits: 8,
        period: 60,
      }),
    ).toBe(
      "otpauth://totp/Front%20Door%20%26%20Co:Zo%C3%AB%20M%C3%BCller%2F1%3F" +
        "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Front%20Door%20%26%20Co&algorithm=SHA512&digits=8&period=60",
    );
  });

  it("round-trips through parseOtpauthUri", () => {
    fc.assert(
      fc.property(
        nameArb,
        nameArb,
        secretArb,
        algArb,
        digitsArb,
        fc.integer({ min: 1, max: 3600 }),
        (issuer, account, s, alg, digits, period) => {
          const p: OtpauthParams = { issuer, account, secret: s, alg, digits, period };
          const uri = otpauthUri(p);
          expect(parseOtpauthUri(uri)).toEqual(p);
          expect(otpauthUri(parseOtpauthUri(uri))).toBe(uri);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("fills in the defaults", () => {
    expect(parseOtpauthUri(otpauthUri({ issuer: "I", account: "a", secret }))).toEqual({
      issuer: "I",
      account: "a",
      secret,
      alg: "SHA-1",
      digits: 6,
      period: 30,
    });
    expect(parseOtpauthUri("otpauth://totp/I:a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=I")).toEqual({
      issuer: "I",
      account: "a",
      secret,
      alg: "SHA-1",
      digits: 6,
      period: 30,
    });
  });

  it("parses otplib's keyuri output to the same enrolment", () => {
    fc.assert(
      fc.property(
        nameArb,
        nameArb,
        secretArb,
        algArb,
        digitsArb,
        fc.integer({ min: 1, max: 3600 }),
        (issuer, account, s, alg, digits, period) => {
          const uri = generateURI({
            issuer,
            label: account,
            secret: base32Encode(s),
            algorithm: OTPLIB_ALG[alg],
            digits,
            period,
          });
          expect(parseOtpauthUri(uri)).toEqual({ issuer, account, secret: s, alg, digits, period });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("accepts the other spellings the Key Uri Format allows", () => {
    const base = { issuer: "ACME Co", account: "john", secret, alg: "SHA-1", digits: 6, period: 30 };
    const b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    // %3A as the separator, spaces after it, issuer only in the label or only in the parameter.
    expect(parseOtpauthUri(`otpauth://totp/ACME%20Co%3A%20%20john?secret=${b32}&issuer=ACME%20Co`)).toEqual(
      base,
    );
    expect(parseOtpauthUri(`otpauth://totp/ACME%20Co:john?secret=${b32}`)).toEqual(base);
    expect(parseOtpauthUri(`otpauth://totp/john?secret=${b32}&issuer=ACME%20Co`)).toEqual(base);
    // Lowercase, padded, any-case algorithm, parameters in any order.
    expect(
      parseOtpauthUri(
        `otpauth://totp/ACME%20Co:john?period=30&algorithm=sha1&secret=${b32.toLowerCase()}&issuer=ACME%20Co`,
      ),
    ).toEqual(base);
    // '=' padding, percent-encoded or not (16 bytes take 26 characters and 6 '=').
    const s16 = utf8("1234567890123456");
    const padded = base32Encode(s16, true);
    expect(padded).toMatch(/^[A-Z2-7]{26}======$/);
    for (const text of [padded, encodeURIComponent(padded), padded.replace(/=+$/, "")]) {
      expect(parseOtpauthUri(`otpauth://totp/ACME%20Co:john?secret=${text}`)).toEqual({
        ...base,
        secret: s16,
      });
    }
  });

  it("refuses malformed URIs with LK_TOTP_INVALID, never echoing the secret", () => {
    const b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const ok = `otpauth://totp/I:a?secret=${b32}&issuer=I`;
    expect(parseOtpauthUri(ok).account).toBe("a");
    const bad = [
      "",
      `https://totp/I:a?secret=${b32}&issuer=I`,
      `OTPAUTH://totp/I:a?secret=${b32}&issuer=I`,
      `otpauth://hotp/I:a?secret=${b32}&issuer=I&counter=0`,
      `otpauth://totp/I:a`,
      `otpauth://totp/I:a?`,
      `${ok}#frag`,
      `otpauth://totp/I:a b?secret=${b32}&issuer=I`, // a raw space
      `otpauth://totp/I:ä?secret=${b32}&issuer=I`, // raw non-ASCII
      `otpauth://totp/I:a:b?secret=${b32}&issuer=I`,
      `otpauth://totp/I%3Aa%3Ab?secret=${b32}&issuer=I`,
      `otpauth://totp/I:?secret=${b32}&issuer=I`, // empty account
      `otpauth://totp/:a?secret=${b32}`, // empty issuer
      `otpauth://totp/a?secret=${b32}`, // no issuer at all
      `otpauth://totp/I:a?secret=${b32}&issuer=J`, // label and parameter disagree
      `otpauth://totp/I:a?secret=${b32}&issuer=`,
      `otpauth://totp/I:a?issuer=I`,
      `otpauth://totp/I:a?secret=&issuer=I`,
      `otpauth://totp/I:a?secret=${b32}1&issuer=I`, // '1' is not base32
      `otpauth://totp/I:a?secret=GEZDGNBVGY3TQOJQ&issuer=I`, // 10 bytes: too short
      `otpauth://totp/I:a?secret=${b32}&secret=${b32}&issuer=I`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&image=x`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&counter=1`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&digits`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&&digits=6`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&algorithm=MD5`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&algorithm=SHA-1`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&algorithm=`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&digits=5`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&digits=9`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&digits=06`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&period=0`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&period=-30`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&period=030`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&period=30.0`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&period=3601`,
      `otpauth://totp/I:a?secret=${b32}&issuer=I&period=abc`,
      `otpauth://totp/I:a%E0%A4%A?secret=${b32}&issuer=I`, // broken percent-encoding
      `otpauth://totp/I:a?secret=${b32}&issuer=%ZZ`,
      `otpauth://totp/I:%00a?secret=${b32}&issuer=I`, // control character
      `otpauth://totp/I:a%20?secret=${b32}&issuer=I`, // trailing space
      `otpauth://totp/I:a?secret=${b32}&issuer=I&${"x".repeat(2100)}`,
      42 as unknown as string,
    ];
    for (const uri of bad) {
      const e = expectCode(() => parseOtpauthUri(uri), "LK_TOTP_INVALID");
      expect(e.message).not.toContain(b32);
      expect(JSON.stringify(e.data ?? {})).not.toContain(b32);
    }
  });

  it("otpauthUri refuses names the format cannot carry, and bad secrets or parameters", () => {
    const p = { issuer: "I", account: "a", secret };
    const bad: OtpauthParams[] = [
      { ...p, issuer: "" },
      { ...p, account: "" },
      { ...p, issuer: "A:B" },
      { ...p, account: "a:b" },
      { ...p, account: " a" },
      { ...p, issuer: "I " },
      { ...p, account: "a\nb" },
      { ...p, account: "a\u007fb" },
      { ...p, account: "\ud800" }, // a lone surrogate
      { ...p, account: "x".repeat(257) },
      { ...p, secret: new Uint8Array(10) },
      { ...p, secret: new Uint8Array(65) },
      { ...p, digits: 5 },
      { ...p, period: 0 },
      { ...p, period: 3601 },
      { ...p, alg: "SHA-384" as TotpAlgorithm },
    ];
    for (const b of bad) expectCode(() => otpauthUri(b), "LK_TOTP_INVALID");
  });
});
