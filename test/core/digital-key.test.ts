/**
 * Digital keys and delegation chains (groundwork for issue 4, src/core/keys/digital-key.ts): a chain of
 * owner → admin → guest verifies offline; every widening, a missing issue right, a foreign signature,
 * tampering at any byte, expiry, wrong lock, stale lease and over-long chains are refused with distinct
 * reasons; the verifier never throws.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import {
  ALL_KEY_RIGHTS,
  assertUsablePublicKey,
  type ChainContext,
  type DigitalKey,
  issueKey,
  KeyRight,
  type PublicKey,
  VerifiedLinkCache,
  verifyKeyChain,
} from "../../src/core/keys/digital-key.ts";
import { EpochMs, Seconds } from "../../src/core/units.ts";
import { generateP256, nodeCrypto } from "../../src/platform/node-crypto.ts";

const c = nodeCrypto;
const T = Date.UTC(2026, 10, 22, 12, 0);
const sec = (ms: number) => NumericDate(Math.floor(ms / 1000));
const DAY = 86_400_000;

type Party = { alg: CoseAlg; privateKey: Uint8Array; publicKey: Uint8Array; pk: PublicKey };
function ed(): Party {
  const seed = c.randomBytes(32);
  const publicKey = c.ed25519PublicKey(seed);
  return { alg: CoseAlg.EdDSA, privateKey: seed, publicKey, pk: { alg: CoseAlg.EdDSA, key: publicKey } };
}
function p256(): Party {
  const k = generateP256();
  return {
    alg: CoseAlg.ES256,
    privateKey: k.privateKeyPkcs8Der,
    publicKey: k.publicKeySec1,
    pk: { alg: CoseAlg.ES256, key: k.publicKeySec1 },
  };
}

const owner = ed();
const admin = p256(); // phone secure hardware holds P-256 keys
const guest = ed();
const ctx: ChainContext = { lockId: "front-door", siteId: "home", now: EpochMs(T), skew: Seconds(60) };

type Body = Omit<DigitalKey, "issuer">;
const adminKey: Body = {
  serial: Uint8Array.of(1),
  holder: admin.pk,
  scope: { kind: "site", id: "home" },
  nbf: sec(T - DAY),
  exp: sec(T + 365 * DAY),
  rights: ALL_KEY_RIGHTS,
  schedule: null,
  leaseSeconds: null,
};
const guestKey: Body = {
  serial: Uint8Array.of(2),
  holder: guest.pk,
  scope: { kind: "lock", id: "front-door" },
  nbf: sec(T - 3_600_000),
  exp: sec(T + 7 * DAY),
  rights: KeyRight.Unlock | KeyRight.Lock,
  schedule: [{ daysMask: 0x7f, startMinute: 8 * 60, endMinute: 20 * 60 }],
  leaseSeconds: null,
};
const chainOf = (a: Body = adminKey, g: Body = guestKey) => [issueKey(c, owner, a), issueKey(c, admin, g)];

describe("digital key chains", () => {
  it("verify offline: owner → admin (P-256) → guest (Ed25519)", () => {
    const r = verifyKeyChain(c, owner.pk, chainOf(), ctx);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.key.rights).toBe(KeyRight.Unlock | KeyRight.Lock);
    expect(r.key.holder.key).toEqual(guest.publicKey);
    expect(r.links).toHaveLength(2);
    // A single link from the owner also verifies.
    expect(verifyKeyChain(c, owner.pk, [issueKey(c, owner, guestKey)], ctx).ok).toBe(true);
  });

  const widen: [string, Partial<Body>][] = [
    ["more rights", { rights: KeyRight.Unlock | KeyRight.ManageUsers }],
    ["a site instead of a lock", { scope: { kind: "site", id: "home" } }],
    ["another lock", { scope: { kind: "lock", id: "back-door" } }],
    ["an earlier start", { nbf: sec(T - 2 * DAY), exp: sec(T + DAY) }],
    ["a later end", { exp: sec(T + 400 * DAY) }],
  ];
  it.each(widen)("refuses a link that widens: %s", (_, change) => {
    // Parent: the guest key as an intermediate with issue rights; child: the change applied.
    const mid: Body = { ...guestKey, holder: admin.pk, rights: guestKey.rights | KeyRight.IssueKeys };
    const leaf: Body = { ...guestKey, serial: Uint8Array.of(3), ...change };
    const chain = [issueKey(c, owner, mid), issueKey(c, admin, leaf)];
    expect(verifyKeyChain(c, owner.pk, chain, { ...ctx, lockId: "front-door" })).toEqual({
      ok: false,
      reason: "widened",
      link: 1,
    });
  });

  it("refuses widening of schedules and leases", () => {
    const mid: Body = { ...guestKey, holder: admin.pk, rights: ALL_KEY_RIGHTS, leaseSeconds: 7200 };
    const cases: Partial<Body>[] = [
      { schedule: null },
      { schedule: [{ daysMask: 0x7f, startMinute: 7 * 60, endMinute: 12 * 60 }] },
      { schedule: [{ daysMask: 0x7f, startMinute: 9 * 60, endMinute: 12 * 60 }], leaseSeconds: null },
      { schedule: [{ daysMask: 0x7f, startMinute: 9 * 60, endMinute: 12 * 60 }], leaseSeconds: 7201 },
    ];
    for (const change of cases) {
      const chain = [issueKey(c, owner, mid), issueKey(c, admin, { ...guestKey, ...change })];
      expect(verifyKeyChain(c, owner.pk, chain, { ...ctx, statusTicketAt: EpochMs(T) }).ok).toBe(false);
    }
    const narrower = {
      schedule: [{ daysMask: 0x3e, startMinute: 9 * 60, endMinute: 12 * 60 }],
      leaseSeconds: 3600,
    };
    const chain = [issueKey(c, owner, mid), issueKey(c, admin, { ...guestKey, ...narrower })];
    expect(verifyKeyChain(c, owner.pk, chain, { ...ctx, statusTicketAt: EpochMs(T - 1000) }).ok).toBe(true);
    expect(
      verifyKeyChain(c, owner.pk, chain, { ...ctx, statusTicketAt: EpochMs(T - 3_601_000) }),
    ).toMatchObject({
      ok: false,
      reason: "lease_stale",
    });
    expect(verifyKeyChain(c, owner.pk, chain, ctx)).toMatchObject({ ok: false, reason: "lease_stale" });
  });

  it("a chain that widens scope, rights or time at any link is refused (4-link chains, every link, every dimension)", () => {
    // owner → site admin → lock admin → sub-admin → guest: each link narrower than its parent.
    const parties = [ed(), ed(), ed(), ed()];
    const base: Body[] = [
      { ...adminKey, holder: parties[0]!.pk, serial: Uint8Array.of(10) },
      {
        ...adminKey,
        holder: parties[1]!.pk,
        serial: Uint8Array.of(11),
        scope: { kind: "lock", id: "front-door" },
        nbf: sec(T - DAY + 1000),
        exp: sec(T + 300 * DAY),
        schedule: [{ daysMask: 0x7f, startMinute: 6 * 60, endMinute: 22 * 60 }],
        leaseSeconds: 86_400,
      },
      {
        ...adminKey,
        holder: parties[2]!.pk,
        serial: Uint8Array.of(12),
        scope: { kind: "lock", id: "front-door" },
        nbf: sec(T - DAY + 2000),
        exp: sec(T + 200 * DAY),
        rights: KeyRight.Unlock | KeyRight.Lock | KeyRight.IssueKeys,
        schedule: [{ daysMask: 0x3e, startMinute: 7 * 60, endMinute: 21 * 60 }],
        leaseSeconds: 43_200,
      },
      {
        ...guestKey,
        holder: parties[3]!.pk,
        serial: Uint8Array.of(13),
        nbf: sec(T - DAY + 3000),
        exp: sec(T + 100 * DAY),
        rights: KeyRight.Unlock,
        schedule: [{ daysMask: 0x3e, startMinute: 8 * 60, endMinute: 20 * 60 }],
        leaseSeconds: 3600,
      },
    ];
    const signers = [owner, ...parties];
    const sign = (bodies: Body[]) => bodies.map((b, i) => issueKey(c, signers[i]!, b));
    const status = { ...ctx, statusTicketAt: EpochMs(T - 1000) };
    expect(verifyKeyChain(c, owner.pk, sign(base), status).ok).toBe(true);
    const widen: Record<string, (b: Body, parent: Body) => Partial<Body>> = {
      scope: (_b, p) => ({
        scope: p.scope.kind === "site" ? { kind: "site", id: "elsewhere" } : { kind: "site", id: "home" },
      }),
      rights: (b, p) => ({ rights: b.rights | (~p.rights & ALL_KEY_RIGHTS) || ALL_KEY_RIGHTS }),
      nbf: (_b, p) => ({ nbf: NumericDate(p.nbf - 1) }),
      exp: (_b, p) => ({ exp: NumericDate(p.exp + 1) }),
      schedule: (_b, p) => ({
        schedule:
          p.schedule === null
            ? null
            : [{ ...p.schedule[0]!, endMinute: Math.min(1440, p.schedule[0]!.endMinute + 1) }],
      }),
      scheduleDropped: () => ({ schedule: null }),
      lease: (_b, p) => ({ leaseSeconds: p.leaseSeconds === null ? null : p.leaseSeconds + 1 }),
      leaseDropped: () => ({ leaseSeconds: null }),
    };
    let tried = 0;
    let refused = 0;
    const reasons = new Map<string, number>();
    for (let link = 1; link < base.length; link++) {
      for (const [dim, f] of Object.entries(widen)) {
        const parent = base[link - 1]!;
        const change = f(base[link]!, parent);
        const widened = { ...base[link]!, ...change };
        // Skip changes that do not widen (the parent has no schedule or lease to escape).
        if (JSON.stringify(widened) === JSON.stringify(base[link])) continue;
        if (dim === "rights" && (widened.rights & ~parent.rights) === 0) continue;
        if (dim.startsWith("schedule") && parent.schedule === null) continue; // nothing to escape
        if (dim.startsWith("lease") && parent.leaseSeconds === null) continue;
        const bodies = base.slice();
        bodies[link] = widened;
        tried++;
        const r = verifyKeyChain(c, owner.pk, sign(bodies), status);
        if (!r.ok) {
          refused++;
          const k = `${r.reason}@${r.link}`;
          reasons.set(k, (reasons.get(k) ?? 0) + 1);
        }
      }
    }
    console.log(
      `widening: ${tried} widened chains (links 1-3 × 8 dimensions), ${tried - refused} accepted`,
      Object.fromEntries(reasons),
    );
    expect(tried).toBeGreaterThanOrEqual(18);
    expect(refused).toBe(tried);
  });

  it("refuses unusable holder keys: Ed25519 points of small order, P-256 points off the curve", () => {
    const smallOrder = [
      "0100000000000000000000000000000000000000000000000000000000000000",
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000080",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
      "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ].map((h) => ({ alg: CoseAlg.EdDSA, key: Uint8Array.from(Buffer.from(h, "hex")) }));
    const offCurve = [
      Uint8Array.of(4, ...new Uint8Array(64)),
      Uint8Array.of(4, ...admin.publicKey.subarray(1, 64), admin.publicKey[64]! ^ 1),
      Uint8Array.of(4, ...new Uint8Array(64).fill(0xff)),
    ].map((key) => ({ alg: CoseAlg.ES256, key }));
    for (const pk of [...smallOrder, ...offCurve]) {
      expect(() => assertUsablePublicKey(pk)).toThrow(/LK_ENVELOPE_ALG/);
      // A key naming such a holder does not decode, so no chain ending in it verifies.
      const chain = chainOf(adminKey, { ...guestKey, holder: pk });
      expect(verifyKeyChain(c, owner.pk, chain, ctx)).toMatchObject({
        ok: false,
        reason: "malformed",
        link: 1,
      });
    }
    for (const pk of [owner.pk, admin.pk, guest.pk]) expect(() => assertUsablePublicKey(pk)).not.toThrow();
    // Why it matters: the identity point "verifies" a forged signature (R = identity, S = 0).
    const forged = Uint8Array.of(1, ...new Uint8Array(63));
    console.log(
      `unusable keys: ${smallOrder.length} small-order Ed25519 + ${offCurve.length} off-curve P-256 refused; identity point accepts a forged signature at the raw verify: ${c.ed25519Verify(smallOrder[0]!.key, new Uint8Array(8), forged)}`,
    );
  });

  it("refuses a key issued by a holder without the issue-keys right", () => {
    const chain = chainOf({ ...adminKey, rights: KeyRight.Unlock | KeyRight.Lock });
    expect(verifyKeyChain(c, owner.pk, chain, ctx)).toEqual({ ok: false, reason: "no_issue_right", link: 1 });
  });

  it("refuses foreign signatures, wrong roots and swapped links", () => {
    const stranger = ed();
    expect(verifyKeyChain(c, stranger.pk, chainOf(), ctx)).toMatchObject({
      ok: false,
      reason: "signature",
      link: 0,
    });
    const forged = [issueKey(c, owner, adminKey), issueKey(c, stranger, guestKey)];
    expect(verifyKeyChain(c, owner.pk, forged, ctx)).toMatchObject({
      ok: false,
      reason: "signature",
      link: 1,
    });
    const [a, g] = chainOf();
    expect(verifyKeyChain(c, owner.pk, [g!, a!], ctx).ok).toBe(false);
  });

  it("refuses expired, not-yet-valid and wrong-lock keys with distinct reasons", () => {
    expect(verifyKeyChain(c, owner.pk, chainOf(), { ...ctx, now: EpochMs(T + 8 * DAY) })).toMatchObject({
      reason: "expired",
      link: 1,
    });
    expect(verifyKeyChain(c, owner.pk, chainOf(), { ...ctx, now: EpochMs(T - 2 * 3_600_000) })).toMatchObject(
      {
        reason: "not_yet_valid",
        link: 1,
      },
    );
    expect(verifyKeyChain(c, owner.pk, chainOf(), { ...ctx, lockId: "back-door" })).toMatchObject({
      reason: "wrong_lock",
    });
  });

  it("refuses chains longer than four links", () => {
    const parties = [owner, ed(), ed(), ed(), ed(), ed()];
    const links = parties
      .slice(1)
      .map((p, i) => issueKey(c, parties[i]!, { ...adminKey, serial: Uint8Array.of(10 + i), holder: p.pk }));
    expect(verifyKeyChain(c, owner.pk, links.slice(0, 4), { ...ctx }).ok).toBe(true);
    expect(verifyKeyChain(c, owner.pk, links, ctx)).toMatchObject({ ok: false, reason: "chain_too_long" });
  });

  it("a cache of verified links changes no decision: time is rechecked, signers are part of the key", () => {
    const cache = new VerifiedLinkCache(8);
    const chain = chainOf();
    expect(verifyKeyChain(c, owner.pk, chain, ctx, cache).ok).toBe(true);
    expect(cache.size).toBe(2);
    expect(verifyKeyChain(c, owner.pk, chain, ctx, cache).ok).toBe(true);
    expect(verifyKeyChain(c, owner.pk, chain, { ...ctx, now: EpochMs(T + 8 * DAY) }, cache)).toMatchObject({
      reason: "expired",
    });
    expect(verifyKeyChain(c, ed().pk, chain, ctx, cache)).toMatchObject({
      ok: false,
      reason: "signature",
      link: 0,
    });
    const narrowerParent = chainOf({ ...adminKey, rights: KeyRight.Unlock });
    expect(verifyKeyChain(c, owner.pk, narrowerParent, ctx, cache)).toMatchObject({
      reason: "no_issue_right",
    });
    for (let i = 0; i < 20; i++)
      verifyKeyChain(c, owner.pk, chainOf({ ...adminKey, serial: Uint8Array.of(50 + i) }), ctx, cache);
    expect(cache.size).toBe(8);
  });

  it("accepts no tampered byte anywhere in either link", () => {
    const chain = chainOf();
    let accepted = 0;
    let tried = 0;
    for (let li = 0; li < chain.length; li++) {
      const bytes = chain[li]!;
      for (let i = 0; i < bytes.length; i++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const t = bytes.slice();
          t[i] = t[i]! ^ mask;
          const mutated = chain.slice();
          mutated[li] = t;
          tried++;
          if (verifyKeyChain(c, owner.pk, mutated, ctx).ok) accepted++;
        }
      }
    }
    console.log(
      `tamper key chain: ${tried} tampered chains (every byte of 2 links × 3 masks), ${accepted} accepted`,
    );
    expect(tried).toBeGreaterThan(1000);
    expect(accepted).toBe(0);
  });

  it("never throws on random or truncated input", () => {
    const [a, g] = chainOf();
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            fc.integer({ min: 0, max: 400 }).map((n) => g!.slice(0, n)),
          ),
          {
            maxLength: 5,
          },
        ),
        (chain) => {
          const r = verifyKeyChain(c, owner.pk, [a!, ...chain], ctx);
          expect(typeof r.ok).toBe("boolean");
        },
      ),
      { numRuns: 2000 },
    );
  });
});
