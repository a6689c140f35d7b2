/**
 * Fuzzing the envelope decoder and verifiers (docs/protocol/envelope.md): 100,000 inputs (30,000 generated,
 * 20,000 random, each tried with both decodeStrict and verifySign1, 10,000 structured, 40,000 mutated):
 *
 * - generated CBOR, canonical or not, whose acceptability the generator knows independently of the
 *   decoder (a differential check of every deterministic-encoding rule);
 * - pure random bytes of random lengths up to 2 KiB;
 * - COSE_Sign1-shaped structures with random headers, payloads and signatures;
 * - mutations of valid envelopes (byte and bit flips, truncation, extension, deletion, duplication,
 *   random splices and splices from other envelopes).
 *
 * Every input must either be accepted (only the untouched originals, or canonical CBOR) or be refused with
 * a LatchkeyError whose code is one of LK_ENVELOPE_*; any other exception fails. The random source is a
 * seeded PRNG, so a failure reproduces; the first failing inputs are printed as hex.
 */
import { describe, expect, it } from "vitest";
import { toHex, utf8 } from "../../src/core/crypto.ts";
import {
  DEFAULT_MAX_BYTES,
  decodeStrict,
  encodeDeterministic,
  MAX_DEPTH,
  Tagged,
} from "../../src/core/envelope/cbor.ts";
import {
  CoseAlg,
  type KeyResolver,
  type Sign1Signer,
  verifySign1,
} from "../../src/core/envelope/cose-sign1.ts";
import {
  type CwtClaims,
  EnvelopeKind,
  NumericDate,
  signCwt,
  verifyCwt,
} from "../../src/core/envelope/cwt.ts";
import { LatchkeyError } from "../../src/core/errors.ts";
import { EpochMs, Seconds } from "../../src/core/units.ts";
import { generateP256, nodeCrypto } from "../../src/platform/node-crypto.ts";
import { mulberry32 } from "../support/prng.ts";

const SEED = 0x1a7c4e11;

const prng = mulberry32;

const rand = prng(SEED);
/** An integer in [0, n). */
const int = (n: number): number => Math.floor(rand() * n);
const chance = (p: number): boolean => rand() < p;
function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}
function pick<T>(xs: readonly T[]): T {
  return xs[int(xs.length)]!;
}

type Outcome = "ok" | `LK_ENVELOPE_${string}`;

/** Tally of outcomes, and the first few inputs that broke a rule. */
class Tally {
  readonly counts = new Map<string, number>();
  readonly failures: string[] = [];
  total = 0;

  run(input: Uint8Array, f: () => unknown): Outcome | "other" {
    this.total++;
    let result: Outcome | "other";
    try {
      f();
      result = "ok";
    } catch (e) {
      if (e instanceof LatchkeyError && e.code.startsWith("LK_ENVELOPE_")) {
        result = e.code as Outcome;
      } else {
        result = "other";
        this.fail(input, `threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
    }
    this.counts.set(result, (this.counts.get(result) ?? 0) + 1);
    return result;
  }

  fail(input: Uint8Array, why: string): void {
    if (this.failures.length < 5) this.failures.push(`${why} — input ${toHex(input.subarray(0, 300))}`);
  }
}

// --- a generator of CBOR that knows whether what it wrote is in deterministic form --------------------

const TWO_53 = 2n ** 53n;

/** Writes random CBOR items; `ok` stays true only while everything written is canonical and allowed. */
class CborWriter {
  readonly out: number[] = [];
  ok = true;

  /** A head with argument `arg`; usually in the shortest form, sometimes (non-canonically) wider. */
  head(major: number, arg: bigint): void {
    const minWidth = arg < 24n ? 0 : arg < 256n ? 1 : arg < 65536n ? 2 : arg < 2n ** 32n ? 4 : 8;
    let width = minWidth;
    if (chance(0.04)) {
      width = pick([0, 1, 2, 4, 8].filter((w) => w >= minWidth && (w > 0 || arg < 24n)));
      if (width !== minWidth) this.ok = false;
    }
    if (width === 0) {
      this.out.push((major << 5) | Number(arg));
      return;
    }
    this.out.push((major << 5) | { 1: 24, 2: 25, 4: 26, 8: 27 }[width]!);
    for (let i = width - 1; i >= 0; i--) this.out.push(Number((arg >> BigInt(8 * i)) & 0xffn));
  }

  argument(): bigint {
    switch (int(4)) {
      case 0:
        return BigInt(int(30));
      case 1:
        return pick([
          23n,
          24n,
          255n,
          256n,
          65535n,
          65536n,
          2n ** 32n - 1n,
          2n ** 32n,
          TWO_53 - 2n,
          TWO_53 - 1n,
          TWO_53,
        ]);
      case 2:
        return BigInt(int(2 ** 31));
      default:
        return chance(0.5) ? BigInt(int(70000)) : (BigInt(int(2 ** 31)) << 33n) | BigInt(int(2 ** 31));
    }
  }

  text(): void {
    let s = "";
    const n = int(8);
    for (let i = 0; i < n; i++) {
      s += pick([
        () => String.fromCharCode(0x20 + int(95)),
        () => String.fromCharCode(0x80 + int(0x780)),
        () => String.fromCharCode(pick([0x800 + int(0xd000), 0xe000 + int(0x2000)])),
        () => String.fromCodePoint(0x10000 + int(0x100000)),
        () => "\ufeff",
        () => "\ufffd",
        () => "\u0000",
      ])();
    }
    let bytes = [...utf8(s)];
    if (chance(0.05)) {
      // A byte that never occurs in UTF-8, anywhere in the string.
      const at = int(bytes.length + 1);
      bytes = [...bytes.slice(0, at), pick([0xc0, 0xc1, 0xf5, 0xf8, 0xfe, 0xff]), ...bytes.slice(at)];
      this.ok = false;
    }
    this.head(3, BigInt(bytes.length));
    this.out.push(...bytes);
  }

  /** An integer or text map key, written into its own writer so keys can be sorted. */
  key(): CborWriter {
    const w = new CborWriter();
    const r = int(10);
    if (r < 4) {
      const arg = w.argument();
      w.head(0, arg);
      if (arg > TWO_53 - 1n) w.ok = false;
    } else if (r < 7) {
      w.negint();
    } else if (r < 9) {
      w.text();
    } else {
      // Not a permitted key type: a byte string, an array, a map, or a simple value.
      w.out.push(...pick([[0x40], [0x41, int(256)], [0x80], [0xa0], [0xf4], [0xf6]]));
      w.ok = false;
    }
    return w;
  }

  negint(): void {
    const arg = this.argument();
    this.head(1, arg);
    // -1 - arg must stay ≥ -(2^53 - 1)
    if (arg > TWO_53 - 2n) this.ok = false;
  }

  /** One item at nesting `depth` (the number of containers around it). */
  item(depth: number): void {
    const containers = depth < 6 ? 0.35 : 0.1;
    const r = rand();
    if (r < containers) {
      if (depth + 1 > MAX_DEPTH) this.ok = false;
      if (chance(0.5)) this.array(depth);
      else this.map(depth);
      return;
    }
    switch (int(12)) {
      case 0:
      case 1: {
        const arg = this.argument();
        this.head(0, arg);
        if (arg > TWO_53 - 1n) this.ok = false;
        return;
      }
      case 2:
        this.negint();
        return;
      case 3:
      case 4: {
        const n = int(chance(0.9) ? 24 : 300);
        this.head(2, BigInt(n));
        for (let i = 0; i < n; i++) this.out.push(int(256));
        return;
      }
      case 5:
      case 6:
        this.text();
        return;
      case 7:
        this.out.push(pick([0xf4, 0xf5, 0xf6]));
        return;
      case 8:
        if (chance(0.9)) {
          this.out.push(pick([0xf4, 0xf5, 0xf6]));
          return;
        }
        // undefined, an unassigned simple value, a two-byte simple value, or a stray break
        this.out.push(...pick([[0xf7], [0xe0 + int(20)], [0xf8, int(256)], [0xff]]));
        this.ok = false;
        return;
      case 9:
        if (chance(0.8)) {
          this.out.push(0xf6);
          return;
        }
        // A float of some width: never allowed by default.
        this.out.push(
          ...pick([
            [0xf9, int(256), int(256)],
            [0xfa, ...randomBytes(4)],
            [0xfb, ...randomBytes(8)],
          ]),
        );
        this.ok = false;
        return;
      case 10:
        if (chance(0.8)) {
          this.out.push(0x00);
          return;
        }
        // A tag: none is allowed by default.
        this.head(6, BigInt(pick([0, 1, 2, 18, 24, 55799, int(300)])));
        this.ok = false;
        if (depth + 1 > MAX_DEPTH) this.ok = false;
        this.item(depth + 1);
        return;
      default:
        this.out.push(int(24));
    }
  }

  array(depth: number): void {
    const n = int(5);
    if (chance(0.03)) {
      this.out.push(0x9f);
      for (let i = 0; i < n; i++) this.item(depth + 1);
      this.out.push(0xff);
      this.ok = false;
      return;
    }
    this.head(4, BigInt(n));
    for (let i = 0; i < n; i++) this.item(depth + 1);
  }

  map(depth: number): void {
    const n = int(5);
    const entries: { key: CborWriter; value: CborWriter }[] = [];
    for (let i = 0; i < n; i++) {
      const key = chance(0.1) && entries.length > 0 ? pick(entries).key : this.key(); // sometimes a duplicate
      const value = new CborWriter();
      value.item(depth + 1);
      entries.push({ key, value });
    }
    const hex = (w: CborWriter) => toHex(Uint8Array.from(w.out));
    entries.sort((a, b) => (hex(a.key) < hex(b.key) ? -1 : hex(a.key) > hex(b.key) ? 1 : 0));
    if (chance(0.15)) entries.reverse();
    if (chance(0.15)) entries.sort(() => rand() - 0.5);
    for (let i = 1; i < entries.length; i++) {
      // Canonical only with strictly increasing encoded keys (which also rules out duplicates).
      if (!(hex(entries[i - 1]!.key) < hex(entries[i]!.key))) this.ok = false;
    }
    const indefinite = chance(0.03);
    if (indefinite) {
      this.out.push(0xbf);
      this.ok = false;
    } else {
      this.head(5, BigInt(n));
    }
    for (const { key, value } of entries) {
      this.out.push(...key.out, ...value.out);
      if (!key.ok || !value.ok) this.ok = false;
    }
    if (indefinite) this.out.push(0xff);
  }
}

/** One generated item, sometimes wrapped deep, truncated or with a trailing byte. */
function generatedCbor(): { bytes: Uint8Array; canonical: boolean } {
  const w = new CborWriter();
  if (chance(0.05)) {
    // Deep nesting around the limit: k one-element arrays around a small item.
    const k = 10 + int(12);
    for (let i = 0; i < k; i++) w.out.push(0x81);
    w.out.push(0x01);
    if (k > MAX_DEPTH) w.ok = false;
  } else {
    w.item(0);
  }
  let bytes = Uint8Array.from(w.out);
  let canonical = w.ok;
  if (chance(0.03) && bytes.length > 1) {
    bytes = bytes.subarray(0, int(bytes.length)); // CBOR is prefix-free: a proper prefix is never an item
    canonical = false;
  } else if (chance(0.03)) {
    bytes = Uint8Array.from([...bytes, int(256)]);
    canonical = false;
  }
  return { bytes, canonical: canonical && bytes.length > 0 };
}

// --- envelopes to mutate -------------------------------------------------------------------------------

const edSeed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const p256 = generateP256();
const signers: Sign1Signer[] = [
  { alg: CoseAlg.EdDSA, kid: utf8("ed-1"), privateKey: edSeed },
  { alg: CoseAlg.ES256, kid: utf8("p256-1"), privateKey: p256.privateKeyPkcs8Der },
];
const keysByKid = new Map([
  ["ed-1", { alg: CoseAlg.EdDSA, publicKey: nodeCrypto.ed25519PublicKey(edSeed) }],
  ["p256-1", { alg: CoseAlg.ES256, publicKey: p256.publicKeySec1 }],
]);
const resolveKey: KeyResolver = (kid) => keysByKid.get(String.fromCharCode(...kid)) ?? null;

const NOW = EpochMs(1_767_225_600_000);
const claimSets: CwtClaims[] = [
  {
    kind: EnvelopeKind.Key,
    iss: "site:home",
    sub: "user:alice",
    exp: NumericDate(1_798_761_600),
    cti: randomBytes(8),
  },
  { kind: EnvelopeKind.Key, extra: new Map<number, unknown>([[-70000, [1, "two", randomBytes(5)]]]) },
  {
    kind: EnvelopeKind.Key,
    aud: "lock:front-door",
    nbf: NumericDate(1_767_225_000),
    iat: NumericDate(1_767_225_000),
  },
];
const aads = [new Uint8Array(0), utf8("lock:front-door")];
const originals: { bytes: Uint8Array; aad: Uint8Array }[] = [];
for (const signer of signers) {
  for (const claims of claimSets) {
    for (const aad of aads) originals.push({ bytes: signCwt(nodeCrypto, signer, claims, aad), aad });
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function mutate(src: Uint8Array): Uint8Array {
  let b = src.slice();
  const steps = chance(0.7) ? 1 : 2 + int(3);
  for (let s = 0; s < steps; s++) {
    const at = int(b.length + 1);
    switch (int(9)) {
      case 0:
        if (b.length > 0) b[Math.min(at, b.length - 1)] = int(256);
        break;
      case 1:
      case 2:
        if (b.length > 0) b[Math.min(at, b.length - 1)]! ^= 1 << int(8);
        break;
      case 3:
        b = b.subarray(0, int(b.length));
        break;
      case 4:
        b = Uint8Array.from([...b, ...randomBytes(1 + int(16))]);
        break;
      case 5: {
        const end = Math.min(b.length, at + int(12));
        b = Uint8Array.from([...b.subarray(0, at), ...randomBytes(int(12)), ...b.subarray(end)]);
        break;
      }
      case 6: {
        const other = pick(originals).bytes;
        const from = int(other.length);
        const piece = other.subarray(from, from + 1 + int(40));
        const end = Math.min(b.length, at + int(40));
        b = Uint8Array.from([...b.subarray(0, at), ...piece, ...b.subarray(end)]);
        break;
      }
      case 7: {
        const end = Math.min(b.length, at + 1 + int(8));
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(end)]);
        break;
      }
      default: {
        const end = Math.min(b.length, at + 1 + int(8));
        b = Uint8Array.from([...b.subarray(0, end), ...b.subarray(at, end), ...b.subarray(end)]);
      }
    }
  }
  return b;
}

/** A COSE_Sign1-shaped structure with random headers, payload and signature. */
function randomSign1(): Uint8Array {
  const labelPool: unknown[] = [1, 2, 3, 4, 5, 6, 16, 33, -1, -70000, "kid"];
  const valuePool = (): unknown =>
    pick<() => unknown>([
      () => pick([-8, -7, -35, -257, 0]),
      () => pick([utf8("ed-1"), utf8("p256-1"), utf8("x"), new Uint8Array(0), randomBytes(70)]),
      () => [4],
      () => "EdDSA",
      () => null,
      () => new Map(),
    ])();
  const header = (n: number) => {
    const m = new Map<unknown, unknown>();
    if (chance(0.8)) m.set(1, pick([-8, -7, -35, "EdDSA"]));
    if (chance(0.8)) m.set(4, pick([utf8("ed-1"), utf8("p256-1"), utf8("nobody")]));
    for (let i = 0; i < n; i++) m.set(pick(labelPool), valuePool());
    return m;
  };
  const prot = encodeDeterministic(header(chance(0.7) ? 0 : 1 + int(2)));
  const unprot = chance(0.7) ? new Map() : header(1);
  const payload = chance(0.5) ? pick(originals).bytes.subarray(0, 40) : randomBytes(int(60));
  const sig = randomBytes(chance(0.9) ? 64 : int(80));
  const parts: unknown[] = [prot, unprot, payload, sig];
  if (chance(0.05)) parts.pop();
  return encodeDeterministic(chance(0.95) ? new Tagged(18, parts) : parts);
}

// --- the runs --------------------------------------------------------------------------------------------

describe(`envelope fuzzing (seed ${SEED.toString(16)})`, () => {
  it("generated CBOR: accepted exactly when canonical, and then re-encoded to the same bytes", () => {
    const t = new Tally();
    let accepted = 0;
    for (let i = 0; i < 30_000; i++) {
      const { bytes, canonical } = generatedCbor();
      let value: unknown;
      const r = t.run(bytes, () => {
        value = decodeStrict(bytes);
      });
      const expected =
        bytes.length > DEFAULT_MAX_BYTES ? "LK_ENVELOPE_TOO_LARGE" : canonical ? "ok" : "refused";
      if (r === "ok") {
        accepted++;
        if (expected !== "ok") t.fail(bytes, "accepted a non-canonical encoding");
        else if (!equalBytes(encodeDeterministic(value), bytes))
          t.fail(bytes, "accepted, but re-encodes differently");
      } else if (expected === "ok") {
        t.fail(bytes, `refused a canonical encoding with ${r}`);
      }
    }
    expect(t.failures).toEqual([]);
    expect(t.total).toBe(30_000);
    // Both sides of the check get exercised.
    expect(accepted).toBeGreaterThan(5_000);
    expect(t.total - accepted).toBeGreaterThan(5_000);
  });

  it("random bytes up to 2 KiB: refused with an envelope code (or accepted and canonical)", () => {
    const t = new Tally();
    for (let i = 0; i < 20_000; i++) {
      const bytes = randomBytes(chance(0.5) ? int(16) : int(2049));
      let value: unknown;
      const r = t.run(bytes, () => {
        value = decodeStrict(bytes, { tags: [18] });
      });
      if (r === "ok" && !equalBytes(encodeDeterministic(value), bytes))
        t.fail(bytes, "re-encodes differently");
      if (t.run(bytes, () => verifySign1(nodeCrypto, bytes, resolveKey)) === "ok") t.fail(bytes, "verified");
    }
    expect(t.failures).toEqual([]);
    expect(t.total).toBe(40_000);
  });

  it("COSE_Sign1-shaped structures with random headers and signatures never verify", () => {
    const t = new Tally();
    for (let i = 0; i < 10_000; i++) {
      const bytes = randomSign1();
      if (t.run(bytes, () => verifySign1(nodeCrypto, bytes, resolveKey)) === "ok") t.fail(bytes, "verified");
    }
    expect(t.failures).toEqual([]);
    // The structures reach every stage of verification.
    for (const code of ["LK_ENVELOPE_MALFORMED", "LK_ENVELOPE_ALG", "LK_ENVELOPE_SIGNATURE"]) {
      expect(t.counts.get(code) ?? 0, code).toBeGreaterThan(100);
    }
  });

  it("mutated envelopes: only untouched originals verify", () => {
    const t = new Tally();
    let untouched = 0;
    for (const o of originals) {
      expect(t.run(o.bytes, () => verifyCwt(nodeCrypto, o.bytes, cwtOptions(o.aad)))).toBe("ok");
    }
    for (let i = 0; i < 40_000; i++) {
      const o = pick(originals);
      const bytes = mutate(o.bytes);
      const same = equalBytes(bytes, o.bytes);
      if (same) untouched++;
      const r = t.run(bytes, () => verifyCwt(nodeCrypto, bytes, cwtOptions(o.aad)));
      if (r === "ok" && !same) t.fail(bytes, "a changed envelope verified");
      if (r !== "ok" && same) t.fail(bytes, `an untouched envelope was refused with ${r}`);
    }
    expect(t.failures).toEqual([]);
    expect(t.counts.get("ok") ?? 0).toBe(originals.length + untouched);
    expect(t.counts.get("LK_ENVELOPE_SIGNATURE") ?? 0).toBeGreaterThan(1_000);
    expect(t.counts.get("LK_ENVELOPE_MALFORMED") ?? 0).toBeGreaterThan(1_000);
  });
});

function cwtOptions(externalAad: Uint8Array) {
  return { resolveKey, kind: EnvelopeKind.Key, now: NOW, skew: Seconds(60), externalAad };
}
