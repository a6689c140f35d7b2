/**
 * Revocation lists (src/core/keys/revocation.ts, spec docs/protocol/digital-keys.md § "Revocation lists"):
 * range lists agree with a naive set, are canonical and merge; versions only go up whatever the order of
 * arrival; signers, scopes and sizes are enforced with coded errors; no tampered byte is accepted; the
 * vectors reproduce; and 60,000 random and mutated inputs never crash the decoders.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../src/core/crypto.ts";
import { encodeDeterministic } from "../../src/core/envelope/cbor.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { decodeClaims, EnvelopeKind, NumericDate, signCwt } from "../../src/core/envelope/cwt.ts";
import { type ErrorCode, isLatchkeyError, LatchkeyError } from "../../src/core/errors.ts";
import { type Issuer, signerOf } from "../../src/core/keys/authority.ts";
import { type DigitalKey, issueKey, KeyRight, type PublicKey } from "../../src/core/keys/digital-key.ts";
import {
  applyNewer,
  compareSerials,
  coversRanges,
  isRevoked,
  MAX_REVOCATION_LIST_BYTES,
  MAX_REVOCATION_RANGES,
  mergeRanges,
  nextSerial,
  normalizeRanges,
  RevocationClaimLabel,
  type RevocationContext,
  type RevocationList,
  rangesFromSerials,
  revocationHorizon,
  revocationListFromClaims,
  type SerialRange,
  signRevocationList,
  type VerifiedRevocationList,
  verifyRevocationList,
} from "../../src/core/keys/revocation.ts";
import { EpochMs, Seconds } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { buildKeyObjectVectors } from "../support/key-object-vectors.ts";
import { mulberry32 } from "../support/prng.ts";
import vectorFile from "../vectors/key-objects.json" with { type: "json" };

const c = nodeCrypto;
const T = Date.UTC(2026, 10, 22, 12, 0);
const TS = NumericDate(T / 1000);
const DAY = 86_400;

type Party = Issuer & { pk: PublicKey };
function ed(): Party {
  const seed = c.randomBytes(32);
  const publicKey = c.ed25519PublicKey(seed);
  return { alg: CoseAlg.EdDSA, privateKey: seed, publicKey, pk: { alg: CoseAlg.EdDSA, key: publicKey } };
}
const owner = ed();
const admin = ed();

function delegateLink(over: Partial<Omit<DigitalKey, "issuer">> = {}): Uint8Array {
  return issueKey(c, owner, {
    serial: Uint8Array.of(0xad, 1),
    holder: admin.pk,
    scope: { kind: "site", id: "home" },
    nbf: NumericDate(TS - DAY),
    exp: NumericDate(TS + 365 * DAY),
    rights: KeyRight.Unlock | KeyRight.IssueKeys,
    schedule: null,
    leaseSeconds: null,
    ...over,
  });
}
const adminChain = [delegateLink()];

const ctx: RevocationContext = {
  root: owner.pk,
  lockId: "front-door",
  siteId: "home",
  now: EpochMs(T),
  skew: Seconds(60),
};
const site = { kind: "site", id: "home" } as const;
const list = (version: number, ranges: readonly SerialRange[], issuedAt = TS - 60): RevocationList => ({
  scope: site,
  version,
  issuedAt: NumericDate(issuedAt),
  ranges,
});

/** The error code `f` throws; fails the test on a non-Latchkey error or no error. */
function codeOf(f: () => unknown): ErrorCode {
  try {
    f();
  } catch (e) {
    if (e instanceof LatchkeyError) return e.code;
    throw e;
  }
  throw new Error("expected a LatchkeyError");
}

/** Small serials, so random sets overlap, touch, and cross the ff → 0000 boundary. */
const serialArb = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 1 }),
  fc.uint8Array({ minLength: 2, maxLength: 2, max: 3 }),
  fc.constantFrom(
    Uint8Array.of(0xff),
    Uint8Array.of(0, 0),
    Uint8Array.of(0xff, 0xff),
    Uint8Array.of(0, 0, 0),
  ),
);
const rangeArb = fc
  .tuple(serialArb, serialArb)
  .map(([a, b]): SerialRange => (compareSerials(a, b) <= 0 ? { first: a, last: b } : { first: b, last: a }));
const naiveIn = (ranges: readonly SerialRange[], s: Uint8Array) =>
  ranges.some((r) => compareSerials(r.first, s) <= 0 && compareSerials(s, r.last) <= 0);

function assertCanonical(rs: readonly SerialRange[]): void {
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i]!;
    expect(compareSerials(r.first, r.last)).toBeLessThanOrEqual(0);
    if (i > 0) {
      const gapStart = nextSerial(rs[i - 1]!.last);
      expect(gapStart).not.toBeNull();
      // sorted, disjoint and not adjacent: at least one serial lies between
      expect(compareSerials(gapStart!, r.first)).toBeLessThan(0);
    }
  }
}

describe("serial ranges", () => {
  it("order is shortlex and the successor crosses lengths", () => {
    expect(compareSerials(Uint8Array.of(0xff), Uint8Array.of(0, 0))).toBeLessThan(0);
    expect(compareSerials(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBeLessThan(0);
    expect(nextSerial(Uint8Array.of(0, 0xff))).toEqual(Uint8Array.of(1, 0));
    expect(nextSerial(Uint8Array.of(0xff))).toEqual(Uint8Array.of(0, 0));
    expect(nextSerial(new Uint8Array(64).fill(0xff))).toBeNull();
  });

  it("ranges built from a random set are canonical, and isRevoked agrees with the set", () => {
    fc.assert(
      fc.property(
        fc.array(serialArb, { maxLength: 60 }),
        fc.array(serialArb, { maxLength: 30 }),
        (set, probes) => {
          const ranges = rangesFromSerials(set);
          assertCanonical(ranges);
          const naive = new Set(set.map(toHex));
          for (const s of [...set, ...probes]) expect(isRevoked({ ranges }, s)).toBe(naive.has(toHex(s)));
          // a set of n serials never needs more than n ranges
          expect(ranges.length).toBeLessThanOrEqual(naive.size);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("normalizing random ranges keeps exactly their serials; merge is a commutative, idempotent union", () => {
    fc.assert(
      fc.property(
        fc.array(rangeArb, { maxLength: 12 }),
        fc.array(rangeArb, { maxLength: 12 }),
        fc.array(serialArb, { maxLength: 40 }),
        (a, b, probes) => {
          const na = normalizeRanges(a);
          const nb = normalizeRanges(b);
          assertCanonical(na);
          const m = mergeRanges(na, nb);
          assertCanonical(m);
          expect(mergeRanges(nb, na)).toEqual(m);
          expect(mergeRanges(m, m)).toEqual(m);
          expect(coversRanges(m, na)).toBe(true);
          expect(coversRanges(m, nb)).toBe(true);
          for (const s of [...probes, ...a.map((r) => r.first), ...b.map((r) => r.last)]) {
            expect(isRevoked({ ranges: na }, s)).toBe(naiveIn(a, s));
            expect(isRevoked({ ranges: m }, s)).toBe(naiveIn(a, s) || naiveIn(b, s));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("coversRanges agrees with a naive subset check over all one-byte serials", () => {
    const one = fc.uint8Array({ minLength: 1, maxLength: 1 });
    fc.assert(
      fc.property(fc.array(one, { maxLength: 40 }), fc.array(one, { maxLength: 40 }), (a, b) => {
        const ra = rangesFromSerials(a);
        const rb = rangesFromSerials(b);
        const naive = b.every((s) => a.some((t) => t[0] === s[0]));
        expect(coversRanges(ra, rb)).toBe(naive);
      }),
      { numRuns: 500 },
    );
  });

  it("isRevoked is a binary search: 2,048 ranges take at most 12 probes", () => {
    const ranges = rangesFromSerials(
      Array.from({ length: 2048 }, (_, i) => Uint8Array.of((2 * i) >> 8, (2 * i) & 0xff)),
    );
    expect(ranges).toHaveLength(MAX_REVOCATION_RANGES);
    let probes = 0;
    const counted = new Proxy(ranges, {
      get(t, p, r) {
        if (typeof p === "string" && /^\d+$/.test(p)) probes++;
        return Reflect.get(t, p, r);
      },
    });
    expect(isRevoked({ ranges: counted }, Uint8Array.of(7, 0x31))).toBe(false);
    expect(probes).toBeLessThanOrEqual(12);
  });
});

describe("signed revocation lists", () => {
  const base = rangesFromSerials([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(9, 9)]);

  it("round-trips from the owner and from a delegate with the issue-keys right", () => {
    const a = verifyRevocationList(c, signRevocationList(c, owner, list(1, base)), ctx);
    expect(a).toMatchObject({ version: 1, signer: "owner", scope: site, signerSerials: [] });
    expect(a.ranges).toEqual(base);
    const b = verifyRevocationList(c, signRevocationList(c, admin, list(2, base)), {
      ...ctx,
      signerChain: adminChain,
    });
    expect(b.signer).toBe("delegate");
    expect(b.signerSerials).toEqual([Uint8Array.of(0xad, 1)]);
  });

  it("refuses wrong signers with coded errors", () => {
    const stranger = ed();
    const bytes = signRevocationList(c, stranger, list(1, base));
    expect(codeOf(() => verifyRevocationList(c, bytes, ctx))).toBe("LK_ENVELOPE_SIGNATURE");
    // The admin's list without its chain, and a stranger's list with the admin's chain.
    const byAdmin = signRevocationList(c, admin, list(1, base));
    expect(codeOf(() => verifyRevocationList(c, byAdmin, ctx))).toBe("LK_ENVELOPE_SIGNATURE");
    expect(codeOf(() => verifyRevocationList(c, bytes, { ...ctx, signerChain: adminChain }))).toBe(
      "LK_ENVELOPE_SIGNATURE",
    );
    const refusedChains: [string, Uint8Array[], Partial<RevocationContext>][] = [
      ["no issue-keys right", [delegateLink({ rights: KeyRight.Unlock })], {}],
      ["a lease key", [delegateLink({ leaseSeconds: 3600 })], {}],
      ["an expired key", [delegateLink({ exp: NumericDate(TS - 3600) })], {}],
      ["another lock's key", [delegateLink({ scope: { kind: "lock", id: "back-door" } })], {}],
      ["a chain not from the owner", [issueKey(c, stranger, { ...keyBody(), holder: admin.pk })], {}],
      ["a revoked signer", adminChain, { isRevoked: (s) => toHex(s) === "ad01" }],
      // a lock-scoped admin cannot sign the site's list
      ["a lock key signing a site list", [delegateLink({ scope: { kind: "lock", id: "front-door" } })], {}],
    ];
    for (const [name, chain, extra] of refusedChains) {
      expect(
        codeOf(() => verifyRevocationList(c, byAdmin, { ...ctx, signerChain: chain, ...extra })),
        name,
      ).toBe("LK_SIGNER_REFUSED");
    }
    // ... but may sign its own lock's list.
    const lockList = signRevocationList(c, admin, {
      ...list(1, base),
      scope: { kind: "lock", id: "front-door" },
    });
    const lockChain = [delegateLink({ scope: { kind: "lock", id: "front-door" } })];
    expect(verifyRevocationList(c, lockList, { ...ctx, signerChain: lockChain }).signer).toBe("delegate");
  });

  it("refuses other scopes, future lists and versions beyond iat", () => {
    const other = signRevocationList(c, owner, { ...list(1, base), scope: { kind: "site", id: "cabin" } });
    expect(codeOf(() => verifyRevocationList(c, other, ctx))).toBe("LK_SCOPE_MISMATCH");
    const otherLock = signRevocationList(c, owner, {
      ...list(1, base),
      scope: { kind: "lock", id: "back-door" },
    });
    expect(codeOf(() => verifyRevocationList(c, otherLock, ctx))).toBe("LK_SCOPE_MISMATCH");
    const future = signRevocationList(c, owner, list(1, base, TS + 3600));
    expect(codeOf(() => verifyRevocationList(c, future, ctx))).toBe("LK_ENVELOPE_EXPIRED");
    expect(codeOf(() => signRevocationList(c, owner, list(TS + 1, base, TS)))).toBe("LK_ENVELOPE_MALFORMED");
    expect(codeOf(() => signRevocationList(c, owner, list(0, base)))).toBe("LK_ENVELOPE_MALFORMED");
  });

  it("refuses oversize lists when signing and when verifying", () => {
    const many = (n: number) =>
      Array.from({ length: n }, (_, i) => Uint8Array.of((2 * i) >> 8, (2 * i) & 0xff));
    expect(codeOf(() => signRevocationList(c, owner, list(1, rangesFromSerials(many(2049)))))).toBe(
      "LK_REVOCATION_TOO_LARGE",
    );
    const big = Array.from({ length: 300 }, (_, i) => {
      const s = new Uint8Array(64).fill(i & 0xff);
      s[0] = i >> 8;
      return { first: s, last: nextSerial(nextSerial(s)!)! };
    });
    expect(codeOf(() => signRevocationList(c, owner, list(1, big)))).toBe("LK_REVOCATION_TOO_LARGE");
    // A signer that ignores the limits: too many ranges, then too many bytes.
    const raw = (items: unknown[], maxBytes = 256 * 1024) => {
      const { signer, iss } = signerOf(c, owner);
      return signCwt(
        c,
        signer,
        {
          kind: EnvelopeKind.Revocations,
          iss,
          aud: "site:home",
          iat: NumericDate(TS),
          extra: new Map<number, unknown>([
            [RevocationClaimLabel.version, 1],
            [RevocationClaimLabel.revoked, items],
          ]),
        },
        undefined,
        { maxBytes },
      );
    };
    expect(codeOf(() => verifyRevocationList(c, raw(many(2049)), ctx))).toBe("LK_REVOCATION_TOO_LARGE");
    const huge = raw(big.map((r) => [r.first, r.last]));
    expect(huge.length).toBeGreaterThan(MAX_REVOCATION_LIST_BYTES);
    expect(codeOf(() => verifyRevocationList(c, huge, ctx))).toBe("LK_REVOCATION_TOO_LARGE");
    // Non-canonical range lists are malformed.
    const a = Uint8Array.of(1);
    const b = Uint8Array.of(2);
    const d = Uint8Array.of(5);
    for (const items of [
      [b, a],
      [a, b],
      [a, a],
      [[a, a]],
      [[b, a]],
      [[a, d], b],
      [Uint8Array.of()],
      [1],
      "x",
    ]) {
      expect(
        codeOf(() => verifyRevocationList(c, raw(items as unknown[]), ctx)),
        JSON.stringify(items),
      ).toBe("LK_ENVELOPE_MALFORMED");
    }
    expect(verifyRevocationList(c, raw([a, [Uint8Array.of(3), d]]), ctx).ranges).toHaveLength(2);
  });

  it("accepts no tampered byte anywhere", () => {
    const bytes = signRevocationList(c, admin, list(4, base));
    let tried = 0;
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const t = bytes.slice();
        t[i] = t[i]! ^ mask;
        tried++;
        const code = codeOf(() => verifyRevocationList(c, t, { ...ctx, signerChain: adminChain }));
        expect(code.startsWith("LK_")).toBe(true);
      }
    }
    expect(tried).toBeGreaterThan(300);
  });
});

function keyBody(): Omit<DigitalKey, "issuer"> {
  return {
    serial: Uint8Array.of(0xbe, 1),
    holder: admin.pk,
    scope: site,
    nbf: NumericDate(TS - DAY),
    exp: NumericDate(TS + DAY),
    rights: KeyRight.IssueKeys,
    schedule: null,
    leaseSeconds: null,
  };
}

describe("applyNewer: the lock keeps the newest list per scope", () => {
  const verified = (l: RevocationList, by: Party = owner): VerifiedRevocationList =>
    verifyRevocationList(
      c,
      signRevocationList(c, by, l),
      by === owner ? ctx : { ...ctx, signerChain: adminChain },
    );

  it("ends at the highest version whatever the order of arrival; replays are ignored, not errors", () => {
    const lists = Array.from({ length: 6 }, (_, i) =>
      verified(list(i + 1, rangesFromSerials([Uint8Array.of(i), Uint8Array.of(40 + i * 3)]), TS - 600 + i)),
    );
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 20 }), (order) => {
        let current: VerifiedRevocationList | null = null;
        let seenMax = 0;
        for (const i of order) {
          const r = applyNewer(current, lists[i]!);
          expect(r.applied).toBe(i + 1 > seenMax);
          seenMax = Math.max(seenMax, i + 1);
          current = r.list;
          expect(current.version).toBe(seenMax);
        }
        expect(current!.ranges).toEqual(lists[seenMax - 1]!.ranges);
      }),
      { numRuns: 300 },
    );
  });

  it("lets only the owner remove revocations; a delegate's list must keep every one and not revoke its signer", () => {
    const v1 = verified(list(1, rangesFromSerials([Uint8Array.of(1), Uint8Array.of(2)])));
    const dropping = verified(list(2, rangesFromSerials([Uint8Array.of(1)])), admin);
    expect(codeOf(() => applyNewer(v1, dropping))).toBe("LK_REVOCATION_NOT_SUPERSET");
    const ownerDropping = verified(list(2, rangesFromSerials([Uint8Array.of(1)])));
    expect(applyNewer(v1, ownerDropping).applied).toBe(true);
    const adding = verified(
      list(3, rangesFromSerials([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)])),
      admin,
    );
    expect(applyNewer(v1, adding)).toMatchObject({ applied: true, list: { version: 3 } });
    expect(applyNewer(null, adding).applied).toBe(true);
    const selfRevoking = verified(
      list(4, rangesFromSerials([Uint8Array.of(1), Uint8Array.of(0xad, 1)])),
      admin,
    );
    expect(codeOf(() => applyNewer(v1, selfRevoking))).toBe("LK_SIGNER_REFUSED");
    const other = verifyRevocationList(
      c,
      signRevocationList(c, owner, { ...list(9, []), scope: { kind: "lock", id: "front-door" } }),
      ctx,
    );
    expect(codeOf(() => applyNewer(v1, other))).toBe("LK_SCOPE_MISMATCH");
  });

  it("reports the revocation horizon", () => {
    expect(revocationHorizon(null, EpochMs(T))).toBeNull();
    expect(revocationHorizon(list(1, [], TS - 3600), EpochMs(T))).toBe(3_600_000);
    expect(revocationHorizon(list(1, [], TS + 10), EpochMs(T))).toBe(0);
  });
});

describe("vectors (test/vectors/key-objects.json)", () => {
  it("reproduce byte for byte and verify", () => {
    expect(buildKeyObjectVectors()).toEqual(vectorFile);
    const root = vectorFile.keys[0]!;
    const vctx: RevocationContext = {
      root: { alg: CoseAlg.EdDSA, key: fromHex(root.publicKey) },
      lockId: vectorFile.lock.lockId,
      siteId: vectorFile.lock.siteId,
      now: EpochMs(vectorFile.lock.now * 1000),
      skew: Seconds(vectorFile.lock.skew),
    };
    let current: VerifiedRevocationList | null = null;
    for (const v of vectorFile.revocations) {
      const l = verifyRevocationList(c, fromHex(v.coseSign1), {
        ...vctx,
        signerChain: v.signerChain.map(fromHex),
      });
      expect(`${l.scope.kind}:${l.scope.id}`).toBe(v.list.scope);
      expect(l.version).toBe(v.list.version);
      expect(l.issuedAt).toBe(v.list.iat);
      expect(l.ranges.map((r) => [toHex(r.first), toHex(r.last)])).toEqual(v.list.ranges);
      if (current === null || current.scope.kind === l.scope.kind) current = applyNewer(current, l).list;
    }
    expect(isRevoked(current, fromHex("0000000000000066"))).toBe(false); // v3 emptied the site list
  });
});

describe("fuzz: list decoders never crash (60,000 inputs)", () => {
  it("refuses random, mutated and structured inputs with coded errors only", () => {
    const rand = mulberry32(0x5eed_1157);
    const int = (n: number) => Math.floor(rand() * n);
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
    const valid = [
      signRevocationList(
        c,
        owner,
        list(1, rangesFromSerials([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(7)])),
      ),
      signRevocationList(c, admin, list(2, [{ first: Uint8Array.of(0, 1), last: Uint8Array.of(9, 9) }])),
    ];
    // Claim maps around the valid shape: the decoder that runs after the signature verified.
    const serialItem = (): unknown =>
      int(3) === 0 ? [bytes(int(4)), bytes(int(4))] : int(8) === 0 ? int(1000) : bytes(int(5));
    const randomValue = (): unknown =>
      [() => int(1e6), () => "site:home", () => bytes(int(8)), () => [], () => null, () => -1][int(6)]!();
    function structured(): Uint8Array {
      const m = new Map<number, unknown>([
        [1, int(6) === 0 ? randomValue() : "aa"],
        [3, int(6) === 0 ? randomValue() : ["site:home", "lock:front-door", "lock:", "x:y"][int(4)]!],
        [6, int(6) === 0 ? randomValue() : TS],
        [-65537, int(8) === 0 ? "ticket" : "revocations"],
        [RevocationClaimLabel.version, int(6) === 0 ? randomValue() : 1 + int(5)],
        [RevocationClaimLabel.revoked, Array.from({ length: int(6) }, serialItem)],
      ]);
      if (int(8) === 0)
        m.delete([1, 3, 6, RevocationClaimLabel.version, RevocationClaimLabel.revoked][int(5)]!);
      if (int(8) === 0) m.set([2, 4, 5, 7, -65560][int(5)]!, randomValue());
      try {
        return encodeDeterministic(m);
      } catch {
        return bytes(10);
      }
    }
    const payloads = Array.from({ length: 50 }, structured);
    function mutate(b: Uint8Array): Uint8Array {
      const out = b.slice();
      switch (int(5)) {
        case 0:
          out[int(out.length)] = int(256);
          return out;
        case 1:
          out[int(out.length)]! ^= 1 << int(8);
          return out;
        case 2:
          return out.slice(0, int(out.length));
        case 3: {
          const i = int(out.length);
          return Uint8Array.from([...out.slice(0, i), ...bytes(1 + int(4)), ...out.slice(i)]);
        }
        default: {
          const i = int(out.length);
          return Uint8Array.from([...out.slice(0, i), ...out.slice(i + 1 + int(3))]);
        }
      }
    }
    const tally = new Map<string, number>();
    let total = 0;
    const validHex = new Set(valid.map(toHex));
    const run = (f: () => unknown, signed?: Uint8Array) => {
      total++;
      let k = "ok";
      try {
        f();
      } catch (e) {
        if (!isLatchkeyError(e)) throw e;
        k = e.code;
      }
      // A signed list is accepted only if it is an untouched original.
      if (k === "ok" && signed !== undefined) expect(validHex.has(toHex(signed))).toBe(true);
      tally.set(k, (tally.get(k) ?? 0) + 1);
    };
    const chains = [undefined, adminChain];
    for (let i = 0; i < 20_000; i++) {
      const v = valid[int(valid.length)]!;
      const input = int(4) === 0 ? bytes(int(400)) : mutate(v);
      run(() => verifyRevocationList(c, input, { ...ctx, signerChain: chains[int(2)] }), input);
    }
    for (let i = 0; i < 40_000; i++) {
      const k = int(4);
      const input =
        k === 0 ? bytes(int(200)) : k === 1 ? structured() : mutate(payloads[int(payloads.length)]!);
      run(() => revocationListFromClaims(decodeClaims(input)));
    }
    expect(total).toBe(60_000);
    expect([...tally.keys()].every((k) => k === "ok" || k.startsWith("LK_"))).toBe(true);
    console.log(`revocation fuzz: ${total} inputs`, Object.fromEntries(tally));
  });
});
