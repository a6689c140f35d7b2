/**
 * The signed envelope (docs/protocol/envelope.md): deterministic CBOR, COSE_Sign1 and CWT claims, the
 * vectors in test/vectors/cose-sign1.json, and a cross-check against the COSE working group's published
 * examples (cose-wg/Examples, carried in the same file under `external`).
 */
import { createPrivateKey } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concatBytes, fromHex, toHex, utf8 } from "../../src/core/crypto.ts";
import {
  type CborValue,
  DEFAULT_MAX_BYTES,
  decodeStrict,
  encodeDeterministic,
  MAX_DEPTH,
  Tagged,
} from "../../src/core/envelope/cbor.ts";
import {
  CoseAlg,
  decodeProtectedHeader,
  encodeProtectedHeader,
  type KeyResolver,
  type Sign1Signer,
  signSign1,
  sigStructure1,
  verifySign1,
} from "../../src/core/envelope/cose-sign1.ts";
import {
  ClaimLabel,
  type CwtClaims,
  checkValidity,
  decodeClaims,
  EnvelopeKind,
  encodeClaims,
  LatchkeyClaimLabel,
  NumericDate,
  numericDateOf,
  signCwt,
  verifyCwt,
} from "../../src/core/envelope/cwt.ts";
import { type ErrorCode, isLatchkeyError, LatchkeyError } from "../../src/core/errors.ts";
import { EpochMs, Seconds } from "../../src/core/units.ts";
import { generateP256, nodeCrypto } from "../../src/platform/node-crypto.ts";
import vectorFile from "../vectors/cose-sign1.json" with { type: "json" };

// --- the vector file ---------------------------------------------------------------------------------

interface VectorKey {
  readonly name: string;
  readonly alg: number;
  readonly kid: string;
  readonly privateKey: string;
  readonly publicKey: string;
}
interface VectorCase {
  readonly name: string;
  readonly key: string;
  readonly alg: number;
  readonly deterministic: boolean;
  readonly payload: string;
  readonly externalAad: string;
  readonly protectedHeader: string;
  readonly sigStructure: string;
  readonly signature: string;
  readonly coseSign1: string;
}
interface InvalidCase {
  readonly name: string;
  readonly coseSign1: string;
  readonly externalAad: string;
  readonly expected: ErrorCode | "ok";
}
interface ExternalExample {
  readonly source: string;
  readonly title: string;
  readonly alg: number;
  readonly privateScalarOrSeed: string;
  readonly publicKey: string;
  readonly payload: string;
  readonly protectedHeader: string;
  readonly unprotectedKid: string;
  readonly sigStructure: string;
  readonly signature: string;
  readonly coseSign1: string;
}
const vectors = vectorFile as unknown as {
  keys: VectorKey[];
  cases: VectorCase[];
  invalid: InvalidCase[];
  external: ExternalExample[];
};

const asAlg = (n: number): CoseAlg => {
  if (n !== CoseAlg.EdDSA && n !== CoseAlg.ES256) throw new Error(`unexpected alg ${n}`);
  return n;
};

/** A resolver over a fixed list of keys, looked up by kid. */
function resolverOf(keys: readonly { kid: Uint8Array; alg: CoseAlg; publicKey: Uint8Array }[]): KeyResolver {
  const byKid = new Map(keys.map((k) => [toHex(k.kid), { alg: k.alg, publicKey: k.publicKey }]));
  return (kid) => byKid.get(toHex(kid)) ?? null;
}

const vectorResolver = resolverOf(
  vectors.keys.map((k) => ({ kid: fromHex(k.kid), alg: asAlg(k.alg), publicKey: fromHex(k.publicKey) })),
);

// --- helpers -----------------------------------------------------------------------------------------

/** The error code `f` throws, or "ok"; fails the test on anything that is not a LatchkeyError. */
function outcome(f: () => unknown): ErrorCode | "ok" {
  try {
    f();
    return "ok";
  } catch (e) {
    if (!(e instanceof LatchkeyError)) throw e;
    return e.code;
  }
}

function expectCode(f: () => unknown, code: ErrorCode, detail?: string | RegExp): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(isLatchkeyError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
  if (detail !== undefined) expect((caught as LatchkeyError).detail).toMatch(detail);
}

const ed = {
  seed: fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
  kid: utf8("ed-key"),
};
const edPublic = nodeCrypto.ed25519PublicKey(ed.seed);
const p256 = generateP256();
const p256Kid = utf8("p256-key");

const edSigner: Sign1Signer = { alg: CoseAlg.EdDSA, kid: ed.kid, privateKey: ed.seed };
const p256Signer: Sign1Signer = { alg: CoseAlg.ES256, kid: p256Kid, privateKey: p256.privateKeyPkcs8Der };
const resolver = resolverOf([
  { kid: ed.kid, alg: CoseAlg.EdDSA, publicKey: edPublic },
  { kid: p256Kid, alg: CoseAlg.ES256, publicKey: p256.publicKeySec1 },
]);
const signers = [
  ["EdDSA", edSigner],
  ["ES256", p256Signer],
] as const;

/** Build a tagged COSE_Sign1 from parts, signing whatever protected bytes are given with `signer`'s key. */
function assemble(
  signer: Sign1Signer,
  bodyProtected: Uint8Array,
  unprotected: Map<unknown, unknown>,
  payload: Uint8Array,
  aad: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const tbs = sigStructure1(bodyProtected, aad, payload);
  const sig =
    signer.alg === CoseAlg.EdDSA
      ? nodeCrypto.ed25519Sign(signer.privateKey, tbs)
      : nodeCrypto.p256Sign(signer.privateKey, tbs);
  return encodeDeterministic(new Tagged(18, [bodyProtected, unprotected, payload, sig]));
}

/** An arbitrary value of the envelope's CBOR data model. */
const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.integer({ min: -1000, max: 1000 }),
    fc.string({ unit: "grapheme", maxLength: 12 }),
    fc.string({ unit: "binary", maxLength: 12 }).map((s) => s.replace(/[\ud800-\udfff]/g, "x")),
    fc.uint8Array({ maxLength: 24 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc
      .array(
        fc.tuple(fc.oneof(fc.integer({ min: -300, max: 300 }), fc.string({ maxLength: 4 })), tie("value")),
        {
          maxLength: 4,
        },
      )
      .map((entries) => new Map<number | string, CborValue>(entries)),
  ),
})).value;

// --- deterministic CBOR ------------------------------------------------------------------------------

describe("deterministic CBOR (RFC 8949 § 4.2.1)", () => {
  it.each<[unknown, string]>([
    [0, "00"],
    [23, "17"],
    [24, "1818"],
    [255, "18ff"],
    [256, "190100"],
    [65535, "19ffff"],
    [65536, "1a00010000"],
    [2 ** 32 - 1, "1affffffff"],
    [2 ** 32, "1b0000000100000000"],
    [Number.MAX_SAFE_INTEGER, "1b001fffffffffffff"],
    [-1, "20"],
    [-24, "37"],
    [-25, "3818"],
    [-65537, "3a00010000"],
    [Number.MIN_SAFE_INTEGER, "3b001ffffffffffffe"],
    ["", "60"],
    ["a", "6161"],
    ["\u00fc", "62c3bc"],
    ["\ufeff", "63efbbbf"],
    ["\u{1f600}", "64f09f9880"],
    [new Uint8Array([1, 2]), "420102"],
    [[], "80"],
    [[1, [2, 3]], "8201820203"],
    [new Map(), "a0"],
    [false, "f4"],
    [true, "f5"],
    [null, "f6"],
    [new Tagged(18, 1), "d201"],
  ])("%o ⇄ %s", (value, hex) => {
    expect(toHex(encodeDeterministic(value))).toBe(hex);
    expect(decodeStrict(fromHex(hex), { tags: [18] })).toEqual(value);
  });

  it("sorts map keys bytewise by their encoding (the RFC 8949 § 4.2.1 example order)", () => {
    const m = new Map<string | number, number>([
      ["aa", 5],
      ["z", 4],
      [-1, 3],
      [100, 2],
      [10, 1],
    ]);
    // 10 (0a) < 100 (1864) < -1 (20) < "z" (617a) < "aa" (626161): not length-first as in RFC 7049.
    expect(toHex(encodeDeterministic(m))).toBe("a50a011864022003617a0462616105");
  });

  it("accepts nesting to depth 16 and refuses depth 17", () => {
    let v: unknown = 1;
    for (let i = 0; i < MAX_DEPTH; i++) v = [v];
    const ok = encodeDeterministic(v);
    expect(toHex(ok)).toBe(`${"81".repeat(16)}01`);
    expect(decodeStrict(ok)).toEqual(v);
    expectCode(() => encodeDeterministic([v]), "LK_ENVELOPE_MALFORMED", /nesting/);
    expectCode(() => decodeStrict(fromHex(`${"81".repeat(17)}01`)), "LK_ENVELOPE_MALFORMED", /nesting/);
    expectCode(() => decodeStrict(fromHex(`${"a101".repeat(17)}01`)), "LK_ENVELOPE_MALFORMED", /nesting/);
    // Thousands of levels are refused at level 17, long before the decoder's recursion gets deep.
    expectCode(() => decodeStrict(fromHex("81".repeat(4000))), "LK_ENVELOPE_MALFORMED", /nesting/);
  });

  it.each<[string, string, RegExp]>([
    ["non-shortest integer", "1801", /more bytes than necessary/],
    ["non-shortest integer (16-bit)", "190017", /more bytes than necessary/],
    ["non-shortest length", "5801aa", /more bytes than necessary/],
    ["non-shortest tag", "d81201", /more bytes than necessary|tag/],
    ["indefinite array", "9f01ff", /indefinite/],
    ["indefinite byte string", "5f4101ff", /indefinite/],
    ["stray break", "ff", /indefinite|break/],
    ["duplicate map key", "a201020103", /repeat map key/],
    ["map keys out of order", "a202010102", /deterministic/],
    ["map keys in length-first (RFC 7049) order: -1 before 100", "a22001186402", /deterministic/],
    ["byte-string map key", "a1410101", /map key/],
    ["array map key", "a1800101", /map key/],
    ["undefined", "f7", /undefined/],
    ["simple value 0", "e0", /simple/],
    ["simple value 255", "f8ff", /simple/],
    ["float16", "f93c00", /floating-point/],
    ["float64", "fb3ff8000000000000", /floating-point/],
    ["tag 1", "c11a5bd0a800", /tag 1 is not allowed/],
    ["tag 18 when not allowed", "d201", /tag 18 is not allowed/],
    ["integer 2^53", "1b0020000000000000", /safe integer/],
    ["integer -2^53 - 1", "3b0020000000000000", /safe integer/],
    ["overlong UTF-8", "62c0af", /UTF-8/],
    ["UTF-8 surrogate", "63eda080", /UTF-8/],
    ["truncated UTF-8", "62c3", /not enough data|UTF-8/],
    ["truncated UTF-8 sequence", "61c3", /UTF-8/],
    ["UTF-8 above U+10FFFF", "64f4908080", /UTF-8/],
    ["trailing byte", "0100", /too many terminals/],
    ["truncated", "8201", /not enough entries|not enough data/],
    ["truncated argument", "19ff", /not enough data/],
    ["reserved minor 28", "1c", /invalid minor/],
  ])("refuses %s (%s)", (_name, hex, detail) => {
    expectCode(() => decodeStrict(fromHex(hex)), "LK_ENVELOPE_MALFORMED", detail);
  });

  it("refuses empty input and non-byte input", () => {
    expectCode(() => decodeStrict(new Uint8Array(0)), "LK_ENVELOPE_MALFORMED");
    expectCode(() => decodeStrict("00" as unknown as Uint8Array), "LK_ENVELOPE_MALFORMED");
  });

  it("refuses inputs over maxBytes before decoding them", () => {
    const big = encodeDeterministic(new Uint8Array(DEFAULT_MAX_BYTES));
    expectCode(() => decodeStrict(big), "LK_ENVELOPE_TOO_LARGE");
    expect(decodeStrict(big, { maxBytes: big.length })).toEqual(new Uint8Array(DEFAULT_MAX_BYTES));
    expectCode(() => decodeStrict(fromHex("0101"), { maxBytes: 1 }), "LK_ENVELOPE_TOO_LARGE");
  });

  it("accepts floats only when asked, in shortest form, never NaN, infinities or integral values", () => {
    expect(decodeStrict(fromHex("f93e00"), { allowFloats: true })).toBe(1.5);
    expect(toHex(encodeDeterministic(1.5, { allowFloats: true }))).toBe("f93e00");
    expect(toHex(encodeDeterministic(0.1, { allowFloats: true }))).toBe("fb3fb999999999999a");
    expectCode(() => decodeStrict(fromHex("fa3fc00000"), { allowFloats: true }), "LK_ENVELOPE_MALFORMED"); // 1.5 as float32
    expectCode(() => decodeStrict(fromHex("f93c00"), { allowFloats: true }), "LK_ENVELOPE_MALFORMED"); // 1.0
    expectCode(() => decodeStrict(fromHex("f97e00"), { allowFloats: true }), "LK_ENVELOPE_MALFORMED"); // NaN
    expectCode(() => decodeStrict(fromHex("f97c00"), { allowFloats: true }), "LK_ENVELOPE_MALFORMED"); // Infinity
    expectCode(() => encodeDeterministic(Number.NaN, { allowFloats: true }), "LK_ENVELOPE_MALFORMED");
  });

  it.each<[string, unknown]>([
    ["undefined", undefined],
    ["a non-integer", 1.5],
    ["NaN", Number.NaN],
    ["2^53", 2 ** 53],
    ["a bigint", 5n],
    ["a plain object", { a: 1 }],
    ["a Date", new Date(0)],
    ["a map with a byte-string key", new Map([[new Uint8Array(1), 1]])],
    ["a map with a fractional key", new Map([[1.5, 1]])],
    ["undefined inside an array", [1, undefined]],
  ])("encodeDeterministic refuses %s", (_name, value) => {
    expectCode(() => encodeDeterministic(value), "LK_ENVELOPE_MALFORMED");
  });

  it("round-trips every value of the data model, and re-encodes to the same bytes", () => {
    fc.assert(
      fc.property(cborValue, (v) => {
        const bytes = encodeDeterministic(v);
        const back = decodeStrict(bytes, { maxBytes: 1 << 20 });
        expect(back).toEqual(v);
        expect(toHex(encodeDeterministic(back))).toBe(toHex(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it("encodes a map the same whatever order its entries were inserted in", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.oneof(fc.integer(), fc.string({ maxLength: 6 })), cborValue), {
          selector: ([k]) => k,
          maxLength: 12,
        }),
        fc.infiniteStream(fc.nat()),
        (entries, randoms) => {
          const shuffled = entries
            .map((e) => [randoms.next().value, e] as const)
            .sort((a, b) => a[0] - b[0])
            .map(([, e]) => e);
          expect(toHex(encodeDeterministic(new Map(shuffled)))).toBe(
            toHex(encodeDeterministic(new Map(entries))),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses a map written in any order but the sorted one", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.oneof(fc.integer({ min: -5000, max: 5000 }), fc.string({ maxLength: 5 })), {
          minLength: 2,
          maxLength: 6,
        }),
        (keys) => {
          const encodedKeys = keys.map((k) => encodeDeterministic(k));
          const inOrder = encodedKeys.map(toHex);
          const sorted = [...inOrder].sort();
          const body = concatBytes(...encodedKeys.flatMap((k) => [k, fromHex("f6")]));
          const bytes = concatBytes(
            encodeDeterministic(new Map(keys.map((k) => [k, null]))).subarray(0, 1),
            body,
          );
          // Only the sorted order is accepted (hex strings of the same bytes sort like the bytes).
          const accepted = outcome(() => decodeStrict(bytes)) === "ok";
          expect(accepted).toBe(inOrder.join() === sorted.join());
        },
      ),
      { numRuns: 300 },
    );
  });

  it("every accepted random input re-encodes to itself", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 12 }), (bytes) => {
        let v: unknown;
        try {
          v = decodeStrict(bytes);
        } catch (e) {
          expect(isLatchkeyError(e, "LK_ENVELOPE_MALFORMED")).toBe(true);
          return;
        }
        expect(toHex(encodeDeterministic(v))).toBe(toHex(bytes));
      }),
      { numRuns: 5000 },
    );
  });

  it("returns byte strings as fresh copies, not views on the input", () => {
    const input = fromHex("43010203");
    const out = decodeStrict(input) as Uint8Array;
    input[1] = 0xff;
    expect(toHex(out)).toBe("010203");
  });
});

// --- COSE_Sign1 --------------------------------------------------------------------------------------

describe("COSE_Sign1 (RFC 9052 § 4.2)", () => {
  const payload = utf8("This is the content.");

  it.each(signers)("%s: signs and verifies, with and without external AAD", (_name, signer) => {
    const env = signSign1(nodeCrypto, signer, payload);
    expect(env[0]).toBe(0xd2); // tag 18
    const v = verifySign1(nodeCrypto, env, resolver);
    expect(v.payload).toEqual(payload);
    expect(v.kid).toEqual(signer.kid);
    expect(v.alg).toBe(signer.alg);

    const aad = utf8("lock:front-door");
    const withAad = signSign1(nodeCrypto, signer, payload, aad);
    expect(verifySign1(nodeCrypto, withAad, resolver, aad).payload).toEqual(payload);
    expectCode(() => verifySign1(nodeCrypto, withAad, resolver), "LK_ENVELOPE_SIGNATURE");
    expectCode(
      () => verifySign1(nodeCrypto, withAad, resolver, utf8("lock:back-door")),
      "LK_ENVELOPE_SIGNATURE",
    );
    expectCode(() => verifySign1(nodeCrypto, env, resolver, aad), "LK_ENVELOPE_SIGNATURE");
  });

  it.each(signers)("%s: round-trips any payload", (_name, signer) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 40 }), (pl, aad) => {
        const env = signSign1(nodeCrypto, signer, pl, aad);
        expect(verifySign1(nodeCrypto, env, resolver, aad).payload).toEqual(pl);
      }),
      { numRuns: 100 },
    );
  });

  it("EdDSA envelopes are deterministic; ES256 ones are randomized but all verify", () => {
    expect(toHex(signSign1(nodeCrypto, edSigner, payload))).toBe(
      toHex(signSign1(nodeCrypto, edSigner, payload)),
    );
    const a = signSign1(nodeCrypto, p256Signer, payload);
    const b = signSign1(nodeCrypto, p256Signer, payload);
    expect(toHex(a)).not.toBe(toHex(b));
    expect(toHex(a.subarray(0, a.length - 64))).toBe(toHex(b.subarray(0, b.length - 64)));
    verifySign1(nodeCrypto, a, resolver);
    verifySign1(nodeCrypto, b, resolver);
  });

  it.each(signers)("%s: every single-byte change of a signed envelope is refused", (_name, signer) => {
    const claims: CwtClaims = {
      kind: EnvelopeKind.Key,
      iss: "site:home",
      sub: "user:alice",
      exp: NumericDate(2_000_000_000),
      cti: fromHex("0102030405060708"),
    };
    const aad = utf8("lock:front-door");
    const env = signCwt(nodeCrypto, signer, claims, aad);
    expect(verifySign1(nodeCrypto, env, resolver, aad).payload).toEqual(encodeClaims(claims));
    let tried = 0;
    let accepted = 0;
    const codes = new Map<string, number>();
    for (let i = 0; i < env.length; i++) {
      // all eight single-bit flips and the whole-byte inversion
      for (const mask of [1, 2, 4, 8, 16, 32, 64, 128, 0xff]) {
        const bad = env.slice();
        bad[i]! ^= mask;
        tried++;
        const code = outcome(() => verifySign1(nodeCrypto, bad, resolver, aad));
        if (code === "ok") accepted++;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
    expect(tried).toBe(env.length * 9);
    expect(accepted).toBe(0);
    for (const code of codes.keys()) expect(code).toMatch(/^LK_ENVELOPE_/);
    // Every shorter prefix is refused too.
    for (let n = 0; n < env.length; n++) {
      expect(outcome(() => verifySign1(nodeCrypto, env.subarray(0, n), resolver, aad))).not.toBe("ok");
    }
  });

  it("refuses a key whose algorithm differs from the header's, both ways", () => {
    const swapped = resolverOf([
      { kid: ed.kid, alg: CoseAlg.ES256, publicKey: p256.publicKeySec1 },
      { kid: p256Kid, alg: CoseAlg.EdDSA, publicKey: edPublic },
    ]);
    for (const [, signer] of signers) {
      const env = signSign1(nodeCrypto, signer, payload);
      expectCode(() => verifySign1(nodeCrypto, env, swapped), "LK_ENVELOPE_ALG", /algorithm differs/);
    }
    // The right alg but a key of the wrong shape (an Ed25519 key labelled ES256, and the reverse).
    const misshapen = resolverOf([
      { kid: ed.kid, alg: CoseAlg.EdDSA, publicKey: p256.publicKeySec1 },
      { kid: p256Kid, alg: CoseAlg.ES256, publicKey: edPublic },
    ]);
    for (const [, signer] of signers) {
      const env = signSign1(nodeCrypto, signer, payload);
      expectCode(() => verifySign1(nodeCrypto, env, misshapen), "LK_ENVELOPE_ALG", /does not fit/);
    }
  });

  it("refuses an unknown kid with the same error as a bad signature", () => {
    const env = signSign1(nodeCrypto, { ...edSigner, kid: utf8("someone-else") }, payload);
    expectCode(
      () => verifySign1(nodeCrypto, env, resolver),
      "LK_ENVELOPE_SIGNATURE",
      /^signature does not verify$/,
    );
    const other = nodeCrypto.ed25519PublicKey(fromHex("11".repeat(32)));
    const wrongKey = resolverOf([{ kid: ed.kid, alg: CoseAlg.EdDSA, publicKey: other }]);
    expectCode(
      () => verifySign1(nodeCrypto, signSign1(nodeCrypto, edSigner, payload), wrongKey),
      "LK_ENVELOPE_SIGNATURE",
      /^signature does not verify$/,
    );
  });

  it("passes the kid and the header's alg to the resolver", () => {
    const seen: [string, number][] = [];
    const env = signSign1(nodeCrypto, p256Signer, payload);
    verifySign1(nodeCrypto, env, (kid, alg) => {
      seen.push([toHex(kid), alg]);
      return resolver(kid, alg);
    });
    expect(seen).toEqual([[toHex(p256Kid), CoseAlg.ES256]]);
  });

  it.each(signers)(
    "%s: refuses anything in the unprotected header, even with a valid signature",
    (_name, signer) => {
      const prot = encodeProtectedHeader(signer.alg, signer.kid);
      for (const unprotected of [
        new Map<unknown, unknown>([[4, signer.kid]]),
        new Map<unknown, unknown>([[1, signer.alg]]),
        new Map<unknown, unknown>([[33, new Uint8Array(3)]]), // x5chain
        new Map<unknown, unknown>([["note", "hello"]]),
      ]) {
        const env = assemble(signer, prot, unprotected, payload);
        expectCode(() => verifySign1(nodeCrypto, env, resolver), "LK_ENVELOPE_MALFORMED", /unprotected/);
      }
      // The same parts with an empty unprotected header verify.
      verifySign1(nodeCrypto, assemble(signer, prot, new Map(), payload), resolver);
    },
  );

  it("refuses crit and any protected parameter other than alg and kid, even with a valid signature", () => {
    const h = (entries: [number, unknown][]) => encodeDeterministic(new Map(entries));
    const crit = h([
      [1, -8],
      [2, [-70000]],
      [4, ed.kid],
      [-70000, 1],
    ]);
    expectCode(
      () => verifySign1(nodeCrypto, assemble(edSigner, crit, new Map(), payload), resolver),
      "LK_ENVELOPE_MALFORMED",
      /crit/,
    );
    for (const extra of [3, 5, 6, 16, 33, -1, -70000]) {
      const prot = h([
        [1, -8],
        [4, ed.kid],
        [extra, 0],
      ]);
      expectCode(
        () => verifySign1(nodeCrypto, assemble(edSigner, prot, new Map(), payload), resolver),
        "LK_ENVELOPE_MALFORMED",
        /other than alg and kid/,
      );
    }
    const textLabel = encodeDeterministic(
      new Map<number | string, unknown>([
        [1, -8],
        [4, ed.kid],
        ["alg", -8],
      ]),
    );
    expectCode(() => decodeProtectedHeader(textLabel), "LK_ENVELOPE_MALFORMED");
  });

  it("refuses a protected header without alg or kid, or with a bad kid", () => {
    const h = (entries: [number, unknown][]) => encodeDeterministic(new Map(entries));
    expectCode(() => decodeProtectedHeader(h([[4, ed.kid]])), "LK_ENVELOPE_MALFORMED", /no alg/);
    expectCode(() => decodeProtectedHeader(h([[1, -8]])), "LK_ENVELOPE_MALFORMED", /no kid/);
    for (const kid of [new Uint8Array(0), new Uint8Array(65), "ed-key", 7]) {
      expectCode(
        () =>
          decodeProtectedHeader(
            h([
              [1, -8],
              [4, kid],
            ]),
          ),
        "LK_ENVELOPE_MALFORMED",
        /kid/,
      );
    }
    expectCode(() => decodeProtectedHeader(fromHex("a0")), "LK_ENVELOPE_MALFORMED");
    expectCode(() => decodeProtectedHeader(fromHex("80")), "LK_ENVELOPE_MALFORMED", /not a map/);
    // An empty protected bstr (RFC 9052 allows it for an empty map) has no alg, so it is refused.
    expectCode(() => decodeProtectedHeader(new Uint8Array(0)), "LK_ENVELOPE_MALFORMED");
  });

  it("refuses algorithms outside the allow-list", () => {
    const h = (alg: unknown) =>
      encodeDeterministic(
        new Map<number, unknown>([
          [1, alg],
          [4, ed.kid],
        ]),
      );
    for (const alg of [-35, -36, -37, -257, -19, 0, 5, "EdDSA", "ES256", null]) {
      expectCode(
        () => verifySign1(nodeCrypto, assemble(edSigner, h(alg), new Map(), payload), resolver),
        "LK_ENVELOPE_ALG",
      );
    }
    expectCode(() => signSign1(nodeCrypto, { ...edSigner, alg: -35 as CoseAlg }, payload), "LK_ENVELOPE_ALG");
  });

  it("requires tag 18 and exactly the four-element structure", () => {
    const env = signSign1(nodeCrypto, edSigner, payload);
    const body = decodeStrict(env, { tags: [18] }) as Tagged;
    const [prot, , pl, sig] = body.value as [Uint8Array, Map<never, never>, Uint8Array, Uint8Array];
    const cases: [string, unknown][] = [
      ["untagged", body.value],
      ["tag 98", new Tagged(98, body.value)],
      ["tag 17", new Tagged(17, body.value)],
      ["three elements", new Tagged(18, [prot, new Map(), pl])],
      ["five elements", new Tagged(18, [prot, new Map(), pl, sig, 0])],
      ["nil payload", new Tagged(18, [prot, new Map(), null, sig])],
      ["text payload", new Tagged(18, [prot, new Map(), "x", sig])],
      ["protected as a map", new Tagged(18, [decodeStrict(prot), new Map(), pl, sig])],
      ["unprotected as an array", new Tagged(18, [prot, [], pl, sig])],
      ["63-byte signature", new Tagged(18, [prot, new Map(), pl, sig.subarray(1)])],
      ["65-byte signature", new Tagged(18, [prot, new Map(), pl, concatBytes(sig, new Uint8Array(1))])],
      ["a map", new Map([[1, 2]])],
      ["tag 18 of tag 18", new Tagged(18, new Tagged(18, body.value))],
    ];
    for (const [name, value] of cases) {
      const code = outcome(() => verifySign1(nodeCrypto, encodeDeterministic(value), resolver));
      expect(code, name).toBe("LK_ENVELOPE_MALFORMED");
    }
    expectCode(
      () => verifySign1(nodeCrypto, concatBytes(env, fromHex("00")), resolver),
      "LK_ENVELOPE_MALFORMED",
      /too many terminals/,
    );
  });

  it("refuses non-deterministic encodings of an otherwise valid envelope", () => {
    const env = signSign1(nodeCrypto, edSigner, utf8("x".repeat(30)));
    const hex = toHex(env);
    // The payload bstr header is 58 1e; write it as 59 00 1e (a valid but non-shortest length).
    const at = hex.indexOf("581e");
    expect(at).toBeGreaterThan(0);
    const longer = fromHex(`${hex.slice(0, at)}59001e${hex.slice(at + 4)}`);
    expectCode(() => verifySign1(nodeCrypto, longer, resolver), "LK_ENVELOPE_MALFORMED", /more bytes/);
    // The tag as d8 12 instead of d2.
    expectCode(
      () => verifySign1(nodeCrypto, fromHex(`d812${hex.slice(2)}`), resolver),
      "LK_ENVELOPE_MALFORMED",
    );
    // The protected header with its two entries swapped, signed as is.
    const swapped = concatBytes(fromHex("a204"), encodeDeterministic(ed.kid), fromHex("0127"));
    expectCode(
      () => verifySign1(nodeCrypto, assemble(edSigner, swapped, new Map(), payload), resolver),
      "LK_ENVELOPE_MALFORMED",
      /deterministic/,
    );
  });

  it("enforces the size limit on both sides", () => {
    const big = new Uint8Array(DEFAULT_MAX_BYTES);
    expectCode(() => signSign1(nodeCrypto, edSigner, big), "LK_ENVELOPE_TOO_LARGE");
    const env = signSign1(nodeCrypto, edSigner, big, undefined, { maxBytes: 16 * 1024 });
    expectCode(() => verifySign1(nodeCrypto, env, resolver), "LK_ENVELOPE_TOO_LARGE");
    expect(verifySign1(nodeCrypto, env, resolver, undefined, { maxBytes: 16 * 1024 }).payload).toEqual(big);
  });

  it("refuses bad signer input", () => {
    expectCode(
      () => signSign1(nodeCrypto, { ...edSigner, kid: new Uint8Array(0) }, payload),
      "LK_ENVELOPE_MALFORMED",
    );
    expectCode(
      () => signSign1(nodeCrypto, { ...edSigner, kid: new Uint8Array(65) }, payload),
      "LK_ENVELOPE_MALFORMED",
    );
    expectCode(
      () => signSign1(nodeCrypto, { ...edSigner, privateKey: new Uint8Array(31) }, payload),
      "LK_ENVELOPE_ALG",
    );
    expectCode(
      () => signSign1(nodeCrypto, { ...p256Signer, privateKey: ed.seed }, payload),
      "LK_INVALID_INPUT",
    );
    expectCode(() => signSign1(nodeCrypto, edSigner, "x" as unknown as Uint8Array), "LK_ENVELOPE_MALFORMED");
  });
});

describe("test/vectors/cose-sign1.json", () => {
  it("has at least two vectors per algorithm", () => {
    expect(vectors.cases.filter((c) => c.alg === CoseAlg.EdDSA).length).toBeGreaterThanOrEqual(2);
    expect(vectors.cases.filter((c) => c.alg === CoseAlg.ES256).length).toBeGreaterThanOrEqual(2);
  });

  it.each(vectors.cases)("$name: every intermediate value", (c) => {
    const key = vectors.keys.find((k) => k.kid === c.key)!;
    const alg = asAlg(c.alg);
    const kid = fromHex(key.kid);
    const payload = fromHex(c.payload);
    const aad = fromHex(c.externalAad);
    expect(toHex(encodeProtectedHeader(alg, kid))).toBe(c.protectedHeader);
    expect(toHex(sigStructure1(fromHex(c.protectedHeader), aad, payload))).toBe(c.sigStructure);
    const env = fromHex(c.coseSign1);
    expect(toHex(env.subarray(env.length - 64))).toBe(c.signature);
    // The payload decodes as claims and encodes back to the same bytes.
    expect(toHex(encodeClaims(decodeClaims(payload)))).toBe(c.payload);

    const signer: Sign1Signer = { alg, kid, privateKey: fromHex(key.privateKey) };
    const mine = signSign1(nodeCrypto, signer, payload, aad);
    if (c.deterministic) {
      expect(toHex(mine)).toBe(c.coseSign1);
      expect(toHex(nodeCrypto.ed25519Sign(fromHex(key.privateKey), fromHex(c.sigStructure)))).toBe(
        c.signature,
      );
    } else {
      // Randomized: everything but the signature is fixed.
      expect(toHex(mine.subarray(0, mine.length - 64))).toBe(c.coseSign1.slice(0, -128));
      expect(
        nodeCrypto.p256Verify(fromHex(key.publicKey), fromHex(c.sigStructure), fromHex(c.signature)),
      ).toBe(true);
    }
    const v = verifySign1(nodeCrypto, env, vectorResolver, aad);
    expect(toHex(v.payload)).toBe(c.payload);
    expect(toHex(v.kid)).toBe(key.kid);
    expect(v.alg).toBe(alg);
  });

  it.each(vectors.invalid)("$name → $expected", (c) => {
    expect(
      outcome(() => verifySign1(nodeCrypto, fromHex(c.coseSign1), vectorResolver, fromHex(c.externalAad))),
    ).toBe(c.expected);
  });
});

describe("external examples: cose-wg/Examples (RFC 8152 / RFC 9052 COSE_Sign1)", () => {
  // Source: https://github.com/cose-wg/Examples at 53c9d634333bb4f529d78f5980fffa2667ee2c12,
  // eddsa-examples/eddsa-sig-01.json, ecdsa-examples/ecdsa-sig-01.json, RFC8152/Appendix_C_2_1.json.
  it("carries the three published examples", () => {
    expect(vectors.external.map((e) => e.source.split("/").slice(-2).join("/"))).toEqual([
      "eddsa-examples/eddsa-sig-01.json",
      "ecdsa-examples/ecdsa-sig-01.json",
      "RFC8152/Appendix_C_2_1.json",
    ]);
  });

  it.each(vectors.external)("$title: same Sig_structure (ToBeSign) and a verifying signature", (e) => {
    const tbs = sigStructure1(fromHex(e.protectedHeader), new Uint8Array(0), fromHex(e.payload));
    expect(toHex(tbs)).toBe(e.sigStructure);
    const sig = fromHex(e.signature);
    if (e.alg === CoseAlg.EdDSA) {
      const seed = fromHex(e.privateScalarOrSeed);
      expect(toHex(nodeCrypto.ed25519PublicKey(seed))).toBe(e.publicKey);
      // Ed25519 is deterministic: our signer reproduces the published signature exactly.
      expect(toHex(nodeCrypto.ed25519Sign(seed, tbs))).toBe(e.signature);
      expect(nodeCrypto.ed25519Verify(fromHex(e.publicKey), tbs, sig)).toBe(true);
    } else {
      expect(nodeCrypto.p256Verify(fromHex(e.publicKey), tbs, sig)).toBe(true);
      const flipped = sig.slice();
      flipped[10]! ^= 1;
      expect(nodeCrypto.p256Verify(fromHex(e.publicKey), tbs, flipped)).toBe(false);
      // Our signer with the published private key makes signatures the published public key accepts.
      const pub = fromHex(e.publicKey);
      const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
      const der = createPrivateKey({
        key: {
          kty: "EC",
          crv: "P-256",
          d: b64(fromHex(e.privateScalarOrSeed)),
          x: b64(pub.subarray(1, 33)),
          y: b64(pub.subarray(33)),
        },
        format: "jwk",
      }).export({ format: "der", type: "pkcs8" });
      expect(nodeCrypto.p256Verify(pub, tbs, nodeCrypto.p256Sign(new Uint8Array(der), tbs))).toBe(true);
    }
  });

  it.each(vectors.external)(
    "$title: deterministic CBOR, but refused as a Latchkey envelope (kid unprotected)",
    (e) => {
      const bytes = fromHex(e.coseSign1);
      expect(toHex(encodeDeterministic(decodeStrict(bytes, { tags: [18] })))).toBe(e.coseSign1);
      const keyed = resolverOf([
        { kid: fromHex(e.unprotectedKid), alg: asAlg(e.alg), publicKey: fromHex(e.publicKey) },
      ]);
      expectCode(() => verifySign1(nodeCrypto, bytes, keyed), "LK_ENVELOPE_MALFORMED", /kid|alg and kid/);
    },
  );
});

// --- CWT ---------------------------------------------------------------------------------------------

describe("CWT claims (RFC 8392)", () => {
  const full: CwtClaims = {
    kind: EnvelopeKind.Key,
    iss: "site:home",
    sub: "user:alice",
    aud: "lock:front-door",
    exp: NumericDate(1_798_761_600),
    nbf: NumericDate(1_767_225_600),
    iat: NumericDate(1_767_225_600),
    cti: fromHex("0102030405060708"),
    extra: new Map<number, unknown>([
      [-65538, 7],
      [-70000, new Map([[1, "x"]])],
    ]),
  };

  it("round-trips every claim, with integer labels in deterministic order", () => {
    const bytes = encodeClaims(full);
    expect(decodeClaims(bytes)).toEqual(full);
    const map = decodeStrict(bytes) as Map<number, unknown>;
    expect([...map.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, -65537, -65538, -70000]);
    expect(map.get(LatchkeyClaimLabel.kind)).toBe("key");
    expect(map.get(ClaimLabel.exp)).toBe(1_798_761_600);
  });

  it("encodes the smallest envelope payload as documented", () => {
    // {-65537: "op"} = a1 3a 00010000 62 6f70
    expect(toHex(encodeClaims({ kind: EnvelopeKind.Op }))).toBe("a13a00010000626f70");
    expect(decodeClaims(fromHex("a13a00010000626f70"))).toEqual({ kind: "op" });
  });

  it("round-trips arbitrary claims", () => {
    const text = fc.string({ maxLength: 20 }).map((s) => s.replace(/[\ud800-\udfff]/g, "?"));
    const date = fc.integer({ min: 0, max: 2 ** 40 }).map(NumericDate);
    fc.assert(
      fc.property(
        fc.record(
          {
            kind: fc.constantFrom(...Object.values(EnvelopeKind)),
            iss: text,
            sub: text,
            aud: text,
            exp: date,
            nbf: date,
            iat: date,
            cti: fc.uint8Array({ minLength: 1, maxLength: 64 }),
          },
          { requiredKeys: ["kind"] },
        ),
        (claims) => {
          const bytes = encodeClaims(claims);
          expect(decodeClaims(bytes)).toEqual(claims);
          expect(toHex(encodeClaims(decodeClaims(bytes)))).toBe(toHex(bytes));
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each<[string, [number | string, unknown][]]>([
    ["an unknown registered claim (cnf, 8)", [[8, new Map()]]],
    ["claim label 0", [[0, 1]]],
    ["a negative label above the private range (-1)", [[-1, 1]]],
    ["label -65536", [[-65536, 1]]],
    ["a text label", [["iss", "x"]]],
    ["iss as an integer", [[1, 5]]],
    ["aud as an array", [[3, ["a", "b"]]]],
    ["exp negative", [[4, -1]]],
    ["exp as text", [[4, "2030-01-01"]]],
    ["nbf as a byte string", [[5, new Uint8Array(4)]]],
    ["cti empty", [[7, new Uint8Array(0)]]],
    ["cti as text", [[7, "abc"]]],
    ["cti of 65 bytes", [[7, new Uint8Array(65)]]],
  ])("refuses %s", (_name, entries) => {
    const map = new Map<number | string, unknown>([[LatchkeyClaimLabel.kind, "key"], ...entries]);
    expectCode(() => decodeClaims(encodeDeterministic(map)), "LK_ENVELOPE_MALFORMED");
  });

  it("refuses a missing or unknown kind, and a payload that is not a map", () => {
    expectCode(
      () => decodeClaims(encodeDeterministic(new Map([[1, "x"]]))),
      "LK_ENVELOPE_MALFORMED",
      /missing/,
    );
    expectCode(
      () => decodeClaims(encodeDeterministic(new Map([[LatchkeyClaimLabel.kind, "door"]]))),
      "LK_ENVELOPE_MALFORMED",
      /kind/,
    );
    expectCode(() => decodeClaims(encodeDeterministic([1])), "LK_ENVELOPE_MALFORMED", /not a map/);
    expectCode(() => decodeClaims(encodeDeterministic(new Uint8Array(1))), "LK_ENVELOPE_MALFORMED");
  });

  it("refuses bad claims at encode time", () => {
    const bad: unknown[] = [
      { kind: "door" },
      { kind: "key", iss: 5 },
      { kind: "key", exp: 1.5 },
      { kind: "key", exp: -1 },
      { kind: "key", cti: new Uint8Array(0) },
      { kind: "key", extra: new Map([[-65536, 1]]) },
      { kind: "key", extra: new Map([[5, 1]]) },
      { kind: "key", extra: new Map([[LatchkeyClaimLabel.kind, "op"]]) },
      { kind: "key", extra: new Map([[-70000, undefined]]) },
    ];
    for (const claims of bad) expectCode(() => encodeClaims(claims as CwtClaims), "LK_ENVELOPE_MALFORMED");
  });

  describe("validity window", () => {
    const at = (ms: number) => EpochMs(ms);
    const nbfOnly: CwtClaims = { kind: "ticket", nbf: NumericDate(1000) };
    const expOnly: CwtClaims = { kind: "ticket", exp: NumericDate(2000) };

    it("nbf: valid from the first millisecond of second nbf − skew", () => {
      expectCode(
        () => checkValidity(nbfOnly, at(999_999), Seconds(0)),
        "LK_ENVELOPE_EXPIRED",
        /^not yet valid$/,
      );
      checkValidity(nbfOnly, at(1_000_000), Seconds(0));
      expectCode(
        () => checkValidity(nbfOnly, at(969_999), Seconds(30)),
        "LK_ENVELOPE_EXPIRED",
        /^not yet valid$/,
      );
      checkValidity(nbfOnly, at(970_000), Seconds(30));
    });

    it("exp: expired from the first millisecond of second exp + skew", () => {
      checkValidity(expOnly, at(1_999_999), Seconds(0));
      expectCode(() => checkValidity(expOnly, at(2_000_000), Seconds(0)), "LK_ENVELOPE_EXPIRED", /^expired$/);
      checkValidity(expOnly, at(2_029_999), Seconds(30));
      expectCode(
        () => checkValidity(expOnly, at(2_030_000), Seconds(30)),
        "LK_ENVELOPE_EXPIRED",
        /^expired$/,
      );
    });

    it("no nbf or exp: always valid; a bad skew is refused", () => {
      checkValidity({ kind: "op" }, at(0), Seconds(0));
      checkValidity({ kind: "op" }, at(1e15), Seconds(0));
      expectCode(() => checkValidity(expOnly, at(0), Seconds(-1)), "LK_INVALID_INPUT");
      expectCode(() => checkValidity(expOnly, at(Number.NaN), Seconds(0)), "LK_INVALID_INPUT");
    });

    it("agrees with the rule for any window, time and skew", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 4e9 }),
          fc.integer({ min: 0, max: 1e6 }),
          fc.integer({ min: 0, max: 4e12 }),
          fc.integer({ min: 0, max: 600 }),
          (nbf, len, now, skew) => {
            const claims: CwtClaims = { kind: "key", nbf: NumericDate(nbf), exp: NumericDate(nbf + len) };
            const code = outcome(() => checkValidity(claims, at(now), Seconds(skew)));
            const notYet = now + skew * 1000 < nbf * 1000;
            const expired = now - skew * 1000 >= (nbf + len) * 1000;
            expect(code).toBe(notYet || expired ? "LK_ENVELOPE_EXPIRED" : "ok");
          },
        ),
        { numRuns: 1000 },
      );
    });

    it("numericDateOf rounds an instant down to its second", () => {
      expect(numericDateOf(at(1_999))).toBe(1);
      expect(numericDateOf(at(2_000))).toBe(2);
    });
  });

  describe("signCwt / verifyCwt", () => {
    const now = EpochMs(1_767_225_600_000);
    const claims: CwtClaims = {
      kind: EnvelopeKind.Key,
      iss: "site:home",
      nbf: NumericDate(1_767_225_600),
      exp: NumericDate(1_767_229_200),
    };
    const opts = { resolveKey: resolver, kind: EnvelopeKind.Key, now, skew: Seconds(60) };

    it.each(signers)("%s: signs and verifies claims", (_name, signer) => {
      const env = signCwt(nodeCrypto, signer, claims);
      const v = verifyCwt(nodeCrypto, env, opts);
      expect(v.claims).toEqual(claims);
      expect(v.kid).toEqual(signer.kid);
      expect(v.alg).toBe(signer.alg);
    });

    it("refuses another kind, outside the window, and the wrong external AAD", () => {
      const env = signCwt(nodeCrypto, edSigner, claims, utf8("aad"));
      const withAad = { ...opts, externalAad: utf8("aad") };
      verifyCwt(nodeCrypto, env, withAad);
      expectCode(
        () => verifyCwt(nodeCrypto, env, { ...withAad, kind: EnvelopeKind.Revocations }),
        "LK_ENVELOPE_MALFORMED",
        /kind/,
      );
      expectCode(
        () => verifyCwt(nodeCrypto, env, { ...withAad, now: EpochMs(now - 61_000) }),
        "LK_ENVELOPE_EXPIRED",
        /not yet valid/,
      );
      expectCode(
        () => verifyCwt(nodeCrypto, env, { ...withAad, now: EpochMs(1_767_229_260_000) }),
        "LK_ENVELOPE_EXPIRED",
        /expired/,
      );
      expectCode(() => verifyCwt(nodeCrypto, env, opts), "LK_ENVELOPE_SIGNATURE");
    });

    it("checks the signature before the claims: a forged expired envelope is a signature failure", () => {
      const env = signCwt(nodeCrypto, edSigner, claims);
      const forged = env.slice();
      forged[forged.length - 1]! ^= 1;
      expectCode(
        () => verifyCwt(nodeCrypto, forged, { ...opts, now: EpochMs(9e12) }),
        "LK_ENVELOPE_SIGNATURE",
      );
    });

    it("refuses a signed payload that is not valid claims", () => {
      const env = signSign1(nodeCrypto, edSigner, encodeDeterministic(new Map([[8, 1]])));
      expectCode(() => verifyCwt(nodeCrypto, env, opts), "LK_ENVELOPE_MALFORMED");
      const notCbor = signSign1(nodeCrypto, edSigner, utf8("hello"));
      expectCode(() => verifyCwt(nodeCrypto, notCbor, opts), "LK_ENVELOPE_MALFORMED");
    });
  });
});

// --- the P-256 part of the Node crypto adapter --------------------------------------------------------

describe("CryptoPort P-256 (node adapter)", () => {
  const msg = utf8("message");

  it("generateP256 gives a PKCS#8 key and a 65-byte uncompressed point", () => {
    const k = generateP256();
    expect(k.publicKeySec1.length).toBe(65);
    expect(k.publicKeySec1[0]).toBe(0x04);
    expect(k.privateKeyPkcs8Der[0]).toBe(0x30);
  });

  it("signs 64-byte r || s signatures that verify, randomized each time", () => {
    const a = nodeCrypto.p256Sign(p256.privateKeyPkcs8Der, msg);
    const b = nodeCrypto.p256Sign(p256.privateKeyPkcs8Der, msg);
    expect(a.length).toBe(64);
    expect(toHex(a)).not.toBe(toHex(b));
    expect(nodeCrypto.p256Verify(p256.publicKeySec1, msg, a)).toBe(true);
    expect(nodeCrypto.p256Verify(p256.publicKeySec1, msg, b)).toBe(true);
    expect(nodeCrypto.p256Verify(p256.publicKeySec1, utf8("messagf"), a)).toBe(false);
    expect(nodeCrypto.p256Verify(generateP256().publicKeySec1, msg, a)).toBe(false);
  });

  it("returns false, never throws, on malformed input", () => {
    const sig = nodeCrypto.p256Sign(p256.privateKeyPkcs8Der, msg);
    const pub = p256.publicKeySec1;
    const offCurve = pub.slice();
    offCurve[64]! ^= 1;
    const compressed = concatBytes(new Uint8Array([0x02 | (pub[64]! & 1)]), pub.subarray(1, 33));
    const cases: [unknown, unknown, unknown][] = [
      [offCurve, msg, sig],
      [compressed, msg, sig],
      [pub.subarray(0, 64), msg, sig],
      [concatBytes(new Uint8Array([0x05]), pub.subarray(1)), msg, sig],
      [new Uint8Array(65).fill(0xff), msg, sig],
      [pub, msg, new Uint8Array(64)],
      [pub, msg, new Uint8Array(64).fill(0xff)],
      [pub, msg, sig.subarray(1)],
      [pub, msg, concatBytes(sig, new Uint8Array(1))],
      ["04", msg, sig],
      [pub, "message", sig],
      [pub, msg, null],
      [edPublic, msg, sig],
    ];
    for (const [k, m, s] of cases) {
      expect(nodeCrypto.p256Verify(k as Uint8Array, m as Uint8Array, s as Uint8Array)).toBe(false);
    }
  });

  it("refuses a private key that is not P-256 PKCS#8", () => {
    const edPkcs8 = concatBytes(fromHex("302e020100300506032b657004220420"), ed.seed);
    expectCode(() => nodeCrypto.p256Sign(edPkcs8, msg), "LK_INVALID_INPUT", /not a P-256/);
    expectCode(() => nodeCrypto.p256Sign(new Uint8Array(10), msg), "LK_INVALID_INPUT");
  });
});
