import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  concatBytes,
  fromHex,
  timingSafeEqual,
  timingSafeEqualHex,
  toHex,
  utf8,
} from "../../src/core/crypto.ts";
import { isLatchkeyError } from "../../src/core/errors.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import hmacVectors from "../vectors/rfc4231-hmac-sha256.json" with { type: "json" };
import edVectors from "../vectors/rfc8032-ed25519.json" with { type: "json" };

interface HmacCase {
  id: number;
  key: string;
  data: string;
  expected: string;
  truncateBits?: number;
}

interface EdCase {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}

const hmacCases: HmacCase[] = hmacVectors.cases;
const edCases: EdCase[] = edVectors.cases;

/** Flip one bit of a copy. */
function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const c = b.slice();
  c[bit >> 3]! ^= 1 << (bit & 7);
  return c;
}

describe("RFC 4231 HMAC-SHA-256", () => {
  it("has all seven test cases", () => {
    expect(hmacCases.map((c) => c.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it.each(hmacCases)("test case $id", (c) => {
    const mac = nodeCrypto.hmacSha256(fromHex(c.key), fromHex(c.data));
    expect(mac).toBeInstanceOf(Uint8Array);
    expect(mac.length).toBe(32);
    const got = c.truncateBits === undefined ? mac : mac.subarray(0, c.truncateBits / 8);
    expect(toHex(got)).toBe(c.expected);
  });
});

describe("RFC 8032 Ed25519", () => {
  it.each(edCases)("$name: public key, signature and verification", (c) => {
    const seed = fromHex(c.secretKey);
    const pub = fromHex(c.publicKey);
    const msg = fromHex(c.message);
    expect(toHex(nodeCrypto.ed25519PublicKey(seed))).toBe(c.publicKey);
    expect(toHex(nodeCrypto.ed25519Sign(seed, msg))).toBe(c.signature);
    // Signing again (cached KeyObject) gives the same deterministic signature.
    expect(toHex(nodeCrypto.ed25519Sign(seed, msg))).toBe(c.signature);
    expect(nodeCrypto.ed25519Verify(pub, msg, fromHex(c.signature))).toBe(true);
  });

  const [t1, t2] = edCases as [EdCase, EdCase];

  it("rejects a tampered signature, a tampered message and the wrong key", () => {
    const pub = fromHex(t2.publicKey);
    const msg = fromHex(t2.message);
    const sig = fromHex(t2.signature);
    for (let bit = 0; bit < sig.length * 8; bit += 37) {
      expect(nodeCrypto.ed25519Verify(pub, msg, flipBit(sig, bit))).toBe(false);
    }
    expect(nodeCrypto.ed25519Verify(pub, flipBit(msg, 0), sig)).toBe(false);
    expect(nodeCrypto.ed25519Verify(pub, new Uint8Array(0), sig)).toBe(false);
    expect(nodeCrypto.ed25519Verify(fromHex(t1.publicKey), msg, sig)).toBe(false);
  });

  it("returns false, never throws, on garbage lengths and bytes", () => {
    const pub = fromHex(t1.publicKey);
    const sig = fromHex(t1.signature);
    const msg = new Uint8Array(0);
    expect(nodeCrypto.ed25519Verify(new Uint8Array(0), msg, sig)).toBe(false);
    expect(nodeCrypto.ed25519Verify(pub.subarray(0, 31), msg, sig)).toBe(false);
    expect(nodeCrypto.ed25519Verify(concatBytes(pub, new Uint8Array(1)), msg, sig)).toBe(false);
    expect(nodeCrypto.ed25519Verify(pub, msg, sig.subarray(0, 63))).toBe(false);
    expect(nodeCrypto.ed25519Verify(pub, msg, new Uint8Array(0))).toBe(false);
    expect(nodeCrypto.ed25519Verify(pub, msg, concatBytes(sig, new Uint8Array(1)))).toBe(false);
    // Not Uint8Arrays at all (a JS caller could pass anything).
    const bad = nodeCrypto.ed25519Verify as (a: unknown, b: unknown, c: unknown) => boolean;
    expect(bad(null, msg, sig)).toBe(false);
    expect(bad(pub, "hello", sig)).toBe(false);
    expect(bad(pub, msg, undefined)).toBe(false);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 40 }),
        fc.uint8Array({ minLength: 0, maxLength: 16 }),
        fc.uint8Array({ minLength: 0, maxLength: 70 }),
        (k, m, s) => {
          expect(nodeCrypto.ed25519Verify(k, m, s)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
    // Random 32-byte keys (many not valid curve points) with random 64-byte signatures.
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        (k, s) => {
          expect(nodeCrypto.ed25519Verify(k, msg, s)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
    // An all-0xff key is not a canonical point encoding.
    expect(nodeCrypto.ed25519Verify(new Uint8Array(32).fill(0xff), msg, sig)).toBe(false);
  });

  it("round-trips sign and verify for random seeds and messages", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        (seed, msg) => {
          const pub = nodeCrypto.ed25519PublicKey(seed);
          const sig = nodeCrypto.ed25519Sign(seed, msg);
          expect(pub.length).toBe(32);
          expect(sig.length).toBe(64);
          expect(nodeCrypto.ed25519Verify(pub, msg, sig)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("rejects a seed that is not 32 bytes with LK_INVALID_INPUT", () => {
    for (const n of [0, 31, 33, 64]) {
      expect(() => nodeCrypto.ed25519Sign(new Uint8Array(n), new Uint8Array(0))).toThrow(
        expect.objectContaining({ code: "LK_INVALID_INPUT" }),
      );
      expect(() => nodeCrypto.ed25519PublicKey(new Uint8Array(n))).toThrow(
        expect.objectContaining({ code: "LK_INVALID_INPUT" }),
      );
    }
  });
});

describe("sha256 and randomBytes", () => {
  it('sha256("abc") is the FIPS 180-2 Appendix B.1 value', () => {
    expect(toHex(nodeCrypto.sha256(utf8("abc")))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  it("sha256 of the empty string", () => {
    expect(toHex(nodeCrypto.sha256(new Uint8Array(0)))).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
  });

  it("returns plain Uint8Arrays of the right length", () => {
    for (const n of [0, 1, 16, 32, 1000]) {
      const r = nodeCrypto.randomBytes(n);
      expect(r.constructor).toBe(Uint8Array);
      expect(r.length).toBe(n);
    }
    expect(nodeCrypto.sha256(new Uint8Array(1)).constructor).toBe(Uint8Array);
    expect(nodeCrypto.hmacSha256(new Uint8Array(1), new Uint8Array(1)).constructor).toBe(Uint8Array);
    // Two 32-byte draws are (overwhelmingly) different.
    expect(toHex(nodeCrypto.randomBytes(32))).not.toBe(toHex(nodeCrypto.randomBytes(32)));
  });

  it("rejects a bad random byte count with LK_INVALID_INPUT", () => {
    for (const n of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => nodeCrypto.randomBytes(n)).toThrow(expect.objectContaining({ code: "LK_INVALID_INPUT" }));
    }
  });
});

describe("utf8", () => {
  it("matches Buffer.from(s, 'utf8') for fixed cases", () => {
    const cases = [
      "",
      "abc",
      "é",
      "€",
      "😀",
      "a\u0000b",
      "\ud800",
      "\udc00",
      "x\ud83dy",
      "\ud83d\ude00\ud83d",
    ];
    for (const s of cases) expect(toHex(utf8(s))).toBe(Buffer.from(s, "utf8").toString("hex"));
    expect(toHex(utf8("\ud800"))).toBe("efbfbd");
  });

  it("matches Buffer.from(s, 'utf8') for random strings, lone surrogates included", () => {
    const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const strings = fc.oneof(
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.string({ unit: "grapheme", maxLength: 20 }),
      fc.string({ unit: anyCodeUnit, maxLength: 40 }),
      fc.string({
        unit: fc.constantFrom("\ud83d", "\ude00", "a", "\u07ff", "\u0800", "\uffff"),
        maxLength: 20,
      }),
    );
    fc.assert(
      fc.property(strings, (s) => {
        expect(toHex(utf8(s))).toBe(Buffer.from(s, "utf8").toString("hex"));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("hex", () => {
  it("round-trips bytes to lowercase hex and back", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const h = toHex(b);
        expect(h).toBe(Buffer.from(b).toString("hex"));
        expect(h).toMatch(/^[0-9a-f]*$/);
        expect(fromHex(h)).toEqual(b);
        expect(fromHex(h.toUpperCase())).toEqual(b);
      }),
    );
  });

  it("throws LK_INVALID_INPUT on odd length or a non-hex character", () => {
    for (const s of ["a", "abc", "zz", "0g", "0x00", " 00", "00 ", "é0"]) {
      let err: unknown;
      try {
        fromHex(s);
      } catch (e) {
        err = e;
      }
      expect(isLatchkeyError(err, "LK_INVALID_INPUT")).toBe(true);
    }
    expect(fromHex("")).toEqual(new Uint8Array(0));
  });
});

describe("concatBytes", () => {
  it("joins the parts in order", () => {
    expect(concatBytes()).toEqual(new Uint8Array(0));
    expect(concatBytes(new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3]))).toEqual(
      new Uint8Array([1, 2, 3]),
    );
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 10 }), { maxLength: 5 }), (parts) => {
        expect(toHex(concatBytes(...parts))).toBe(parts.map(toHex).join(""));
      }),
    );
  });
});

describe("timingSafeEqual", () => {
  it("agrees with plain equality", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (a, b) => {
        expect(timingSafeEqual(a, b)).toBe(toHex(a) === toHex(b));
        expect(timingSafeEqual(a, a.slice())).toBe(true);
        expect(timingSafeEqualHex(toHex(a), toHex(b))).toBe(toHex(a) === toHex(b));
      }),
    );
  });

  it("spots a single flipped bit anywhere, and a length mismatch", () => {
    const a = nodeCrypto.randomBytes(32);
    for (let bit = 0; bit < 256; bit++) expect(timingSafeEqual(a, flipBit(a, bit))).toBe(false);
    expect(timingSafeEqual(a, a.subarray(0, 31))).toBe(false);
    expect(timingSafeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    expect(timingSafeEqualHex("", "")).toBe(true);
    expect(timingSafeEqualHex("ab", "abc")).toBe(false);
    expect(timingSafeEqualHex("ab", "aB")).toBe(false);
  });
});
