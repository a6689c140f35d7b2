/**
 * The CryptoPort primitives of the link (src/platform/node-crypto.ts): X25519 against RFC 7748 § 5.2
 * (scalar multiplication, including the iterated vector) and § 6.1 (Diffie-Hellman), and AES-256-GCM
 * against the GCM specification's test cases 13-16 (McGrew & Viega, as used by NIST SP 800-38D
 * validation). Malformed inputs give null or LK_INVALID_INPUT, never another exception.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/core/crypto.ts";
import { nodeCrypto as c } from "../../src/platform/node-crypto.ts";

/** RFC 7748 § 5.2: the scalar multiplication of u by k equals the X25519 of private key k with peer key u. */
const RFC7748_5_2 = [
  {
    k: "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
    u: "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
    out: "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
  },
  {
    // u has its top bit set: implementations must mask it (§ 5).
    k: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
    u: "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
    out: "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
  },
];

/** RFC 7748 § 6.1. */
const RFC7748_6_1 = {
  alicePrivate: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
  alicePublic: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
  bobPrivate: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
  bobPublic: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
  shared: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
};

const GCM_KEY = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const GCM_IV = "cafebabefacedbaddecaf888";
const GCM_P =
  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const GCM_C =
  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
/** GCM spec test cases 13-16 (AES-256). sealed = C ‖ T. */
const GCM_CASES = [
  {
    name: "13",
    key: "00".repeat(32),
    iv: "00".repeat(12),
    p: "",
    aad: "",
    sealed: "530f8afbc74536b9a963b4f1c4cb738b",
  },
  {
    name: "14",
    key: "00".repeat(32),
    iv: "00".repeat(12),
    p: "00".repeat(16),
    aad: "",
    sealed: "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
  },
  {
    name: "15",
    key: GCM_KEY,
    iv: GCM_IV,
    p: GCM_P,
    aad: "",
    sealed: `${GCM_C}b094dac5d93471bdec1a502270e3cc6c`,
  },
  {
    name: "16",
    key: GCM_KEY,
    iv: GCM_IV,
    p: GCM_P.slice(0, 120),
    aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    sealed: `${GCM_C.slice(0, 120)}76fc6ece0f4e1768cddf8853bb2d551b`,
  },
];

describe("X25519 (RFC 7748)", () => {
  it.each(RFC7748_5_2)("§ 5.2 scalar multiplication %#", (v) => {
    expect(toHex(c.x25519SharedSecret(fromHex(v.k), fromHex(v.u))!)).toBe(v.out);
  });

  it("§ 5.2 iterated: 1 and 1,000 iterations from the base point", () => {
    let k = fromHex(`09${"00".repeat(31)}`);
    let u = k;
    for (let i = 1; i <= 1000; i++) {
      const r = c.x25519SharedSecret(k, u)!;
      u = k;
      k = r;
      if (i === 1) expect(toHex(k)).toBe("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
    expect(toHex(k)).toBe("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
  });

  it("§ 6.1 Diffie-Hellman: public keys and the shared secret", () => {
    const v = RFC7748_6_1;
    expect(toHex(c.x25519PublicKey(fromHex(v.alicePrivate)))).toBe(v.alicePublic);
    expect(toHex(c.x25519PublicKey(fromHex(v.bobPrivate)))).toBe(v.bobPublic);
    expect(toHex(c.x25519SharedSecret(fromHex(v.alicePrivate), fromHex(v.bobPublic))!)).toBe(v.shared);
    expect(toHex(c.x25519SharedSecret(fromHex(v.bobPrivate), fromHex(v.alicePublic))!)).toBe(v.shared);
  });

  it("refuses small-order peer keys (all-zero result) and malformed keys with null", () => {
    const priv = fromHex(RFC7748_6_1.alicePrivate);
    const smallOrder = [
      "00".repeat(32),
      `01${"00".repeat(31)}`,
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      `ec${"ff".repeat(30)}7f`,
    ];
    for (const hex of smallOrder) expect(c.x25519SharedSecret(priv, fromHex(hex))).toBeNull();
    expect(c.x25519SharedSecret(priv, new Uint8Array(31))).toBeNull();
    expect(c.x25519SharedSecret(priv, new Uint8Array(33))).toBeNull();
    expect(() => c.x25519PublicKey(new Uint8Array(31))).toThrow(
      expect.objectContaining({ code: "LK_INVALID_INPUT" }),
    );
  });

  it("agrees both ways for random key pairs", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (a, b) => {
          const ab = c.x25519SharedSecret(a, c.x25519PublicKey(b));
          const ba = c.x25519SharedSecret(b, c.x25519PublicKey(a));
          expect(ab).not.toBeNull();
          expect(ab).toEqual(ba);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("AES-256-GCM (GCM spec test cases 13-16)", () => {
  it.each(GCM_CASES)("test case $name seals and opens", (v) => {
    const sealed = c.aeadSeal(fromHex(v.key), fromHex(v.iv), fromHex(v.p), fromHex(v.aad));
    expect(toHex(sealed)).toBe(v.sealed);
    expect(toHex(c.aeadOpen(fromHex(v.key), fromHex(v.iv), sealed, fromHex(v.aad))!)).toBe(v.p);
  });

  it("refuses any flipped bit, a wrong AAD, nonce or key, and bad lengths with null", () => {
    const v = GCM_CASES[3]!;
    const key = fromHex(v.key);
    const iv = fromHex(v.iv);
    const aad = fromHex(v.aad);
    const sealed = fromHex(v.sealed);
    let refused = 0;
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const t = sealed.slice();
      t[bit >> 3]! ^= 1 << (bit & 7);
      if (c.aeadOpen(key, iv, t, aad) === null) refused++;
    }
    expect(refused).toBe(sealed.length * 8);
    expect(c.aeadOpen(key, iv, sealed, new Uint8Array(0))).toBeNull();
    expect(c.aeadOpen(key, new Uint8Array(12), sealed, aad)).toBeNull();
    expect(c.aeadOpen(new Uint8Array(32), iv, sealed, aad)).toBeNull();
    expect(c.aeadOpen(key, iv, sealed.subarray(0, 15), aad)).toBeNull();
    expect(c.aeadOpen(key.subarray(0, 16), iv, sealed, aad)).toBeNull();
    expect(c.aeadOpen(key, iv.subarray(0, 8), sealed, aad)).toBeNull();
    expect(() => c.aeadSeal(key.subarray(0, 16), iv, sealed, aad)).toThrow(
      expect.objectContaining({ code: "LK_INVALID_INPUT" }),
    );
    expect(() => c.aeadSeal(key, new Uint8Array(16), sealed, aad)).toThrow(
      expect.objectContaining({ code: "LK_INVALID_INPUT" }),
    );
  });

  it("round-trips random messages and returns plain Uint8Arrays", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 40 }), (p, aad) => {
        const key = c.randomBytes(32);
        const iv = c.randomBytes(12);
        const sealed = c.aeadSeal(key, iv, p, aad);
        expect(sealed.constructor).toBe(Uint8Array);
        expect(sealed.length).toBe(p.length + 16);
        expect(c.aeadOpen(key, iv, sealed, aad)).toEqual(p);
      }),
      { numRuns: 200 },
    );
  });
});
