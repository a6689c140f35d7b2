/**
 * Time tickets and status tickets (src/core/keys/tickets.ts, spec docs/protocol/digital-keys.md): a lock
 * whose RTC was set back refuses time-limited keys until a signed ticket newer than its floor, answering
 * its own fresh challenge, gives it trusted time back; replayed and old tickets never move the clock
 * back or make a lost clock trust an old time; status tickets yield `statusTicketAt` for lease keys and
 * refuse other holders, future tickets and bad signatures; 50,000 random and mutated inputs never crash
 * the decoders.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ClockReading, observeClock } from "../../src/core/clock.ts";
import { fromHex, toHex } from "../../src/core/crypto.ts";
import { encodeDeterministic } from "../../src/core/envelope/cbor.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { decodeClaims, NumericDate } from "../../src/core/envelope/cwt.ts";
import { type ErrorCode, isLatchkeyError, LatchkeyError } from "../../src/core/errors.ts";
import type { AuthorityContext, Issuer } from "../../src/core/keys/authority.ts";
import {
  type ChainContext,
  type DigitalKey,
  issueKey,
  KeyRight,
  type PublicKey,
  verifyKeyChain,
} from "../../src/core/keys/digital-key.ts";
import {
  decideTimeTicket,
  type LockClockState,
  type PendingChallenge,
  signStatusTicket,
  signTimeTicket,
  statusTicketAt,
  TicketClaimLabel,
  type TimeTicket,
  ticketFromClaims,
  verifyTimeTicket,
} from "../../src/core/keys/tickets.ts";
import { EpochMs, Milliseconds, MonotonicMs, Seconds } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { mulberry32 } from "../support/prng.ts";
import vectorFile from "../vectors/key-objects.json" with { type: "json" };

const c = nodeCrypto;
const T = Date.UTC(2026, 10, 22, 12, 0);
const TS = NumericDate(T / 1000);
const DAY = 86_400;
const TOL = Milliseconds(120_000);

type Party = Issuer & { pk: PublicKey };
function ed(): Party {
  const seed = c.randomBytes(32);
  const publicKey = c.ed25519PublicKey(seed);
  return { alg: CoseAlg.EdDSA, privateKey: seed, publicKey, pk: { alg: CoseAlg.EdDSA, key: publicKey } };
}
const owner = ed();
const cloud = ed(); // a delegated cloud key
const phone = ed();
const cloudChain = [
  issueKey(c, owner, {
    serial: Uint8Array.of(0xc1),
    holder: cloud.pk,
    scope: { kind: "site", id: "home" },
    nbf: NumericDate(TS - 30 * DAY),
    exp: NumericDate(TS + 365 * DAY),
    rights: KeyRight.IssueKeys,
    schedule: null,
    leaseSeconds: null,
  }),
];
const auth: AuthorityContext = { root: owner.pk, lockId: "front-door", siteId: "home", skew: Seconds(60) };
const here = { kind: "lock", id: "front-door" } as const;

function codeOf(f: () => unknown): ErrorCode {
  try {
    f();
  } catch (e) {
    if (e instanceof LatchkeyError) return e.code;
    throw e;
  }
  throw new Error("expected a LatchkeyError");
}

/** A guest's time-limited phone key, valid for a week from T − 1 h. */
const guestKey: Omit<DigitalKey, "issuer"> = {
  serial: Uint8Array.of(0x60),
  holder: phone.pk,
  scope: here,
  nbf: NumericDate(TS - 3600),
  exp: NumericDate(TS + 7 * DAY),
  rights: KeyRight.Unlock,
  schedule: null,
  leaseSeconds: null,
};

/** The lock's side of an unlock: time-limited keys need trusted time (the integration's rule). */
function unlockWith(reading: ClockReading, chain: Uint8Array[], extra: Partial<ChainContext> = {}) {
  if (!reading.trusted) return { ok: false, reason: "clock_untrusted" } as const;
  return verifyKeyChain(c, owner.pk, chain, {
    lockId: "front-door",
    siteId: "home",
    now: reading.now,
    skew: Seconds(60),
    ...extra,
  });
}

describe("time tickets", () => {
  it("verify from the owner and from a delegate; the delegate's chain is checked at the ticket's time", () => {
    const challenge = c.randomBytes(16);
    const a = verifyTimeTicket(c, signTimeTicket(c, owner, { scope: here, time: TS, challenge }), auth);
    expect(a).toMatchObject({ signer: "owner", time: TS, scope: here });
    expect(a.challenge).toEqual(challenge);
    const b = verifyTimeTicket(
      c,
      signTimeTicket(c, cloud, { scope: { kind: "site", id: "home" }, time: TS, challenge: null }),
      { ...auth, signerChain: cloudChain },
    );
    expect(b).toMatchObject({ signer: "delegate", challenge: null });
    // The cloud key ends in a year: it cannot vouch for 2099 (or for before it was issued).
    for (const time of [NumericDate(4_070_908_800), NumericDate(TS - 60 * DAY)]) {
      const far = signTimeTicket(c, cloud, { scope: here, time, challenge: null });
      expect(codeOf(() => verifyTimeTicket(c, far, { ...auth, signerChain: cloudChain }))).toBe(
        "LK_SIGNER_REFUSED",
      );
    }
    const stranger = ed();
    const forged = signTimeTicket(c, stranger, { scope: here, time: TS, challenge: null });
    expect(codeOf(() => verifyTimeTicket(c, forged, auth))).toBe("LK_ENVELOPE_SIGNATURE");
    expect(codeOf(() => verifyTimeTicket(c, forged, { ...auth, signerChain: cloudChain }))).toBe(
      "LK_ENVELOPE_SIGNATURE",
    );
    const elsewhere = signTimeTicket(c, owner, {
      scope: { kind: "lock", id: "back-door" },
      time: TS,
      challenge: null,
    });
    expect(codeOf(() => verifyTimeTicket(c, elsewhere, auth))).toBe("LK_SCOPE_MISMATCH");
    const status = signStatusTicket(c, owner, { scope: here, holder: phone.pk, issuedAt: TS });
    expect(codeOf(() => verifyTimeTicket(c, status, auth))).toBe("LK_ENVELOPE_MALFORMED");
  });

  it("a lock whose RTC was set back refuses time-limited keys until a fresh ticket newer than its floor", () => {
    const chain = [issueKey(c, owner, guestKey)];
    const floor = EpochMs(T + 3_600_000); // the lock last trusted its clock at T + 1 h
    let mono = MonotonicMs(50_000);
    // Someone sets the RTC back two days, to a time where a revoked-and-expired key would still work.
    const rtc = EpochMs(T - 2 * DAY * 1000);
    let reading = observeClock(rtc, false, floor, TOL);
    expect(reading).toMatchObject({ trusted: false, distrust: "setBack" });
    expect(unlockWith(reading, chain)).toEqual({ ok: false, reason: "clock_untrusted" });

    const state = (r: ClockReading, challenge: PendingChallenge | null): LockClockState => ({
      reading: r,
      challenge,
      monotonicNow: mono,
    });
    // 1. An old ticket the wallet still carries (before the floor): ignored, nothing moves.
    const old = verifyTimeTicket(
      c,
      signTimeTicket(c, owner, { scope: here, time: TS, challenge: null }),
      auth,
    );
    expect(decideTimeTicket(old, state(reading, null))).toEqual({ action: "ignore", reason: "not_newer" });
    // 2. A newer ticket without a challenge only raises the floor: the clock stays untrusted.
    const carried = verifyTimeTicket(
      c,
      signTimeTicket(c, cloud, { scope: here, time: NumericDate(TS + 7200), challenge: null }),
      { ...auth, signerChain: cloudChain },
    );
    const d2 = decideTimeTicket(carried, state(reading, null));
    expect(d2).toEqual({ action: "raiseFloor", floor: T + 7_200_000 });
    reading = observeClock(rtc, false, d2.action === "raiseFloor" ? d2.floor : floor, TOL);
    expect(reading.trusted).toBe(false);
    expect(unlockWith(reading, chain).ok).toBe(false);
    // 3. The lock issues a challenge; the phone fetches a ticket for it (14 s round trip).
    const challenge: PendingChallenge = { nonce: c.randomBytes(16), issuedAt: mono };
    const signedAt = NumericDate(TS + 3 * 3600);
    const fresh = signTimeTicket(c, owner, { scope: here, time: signedAt, challenge: challenge.nonce });
    mono = MonotonicMs(mono + 14_000);
    const d3 = decideTimeTicket(verifyTimeTicket(c, fresh, auth), state(reading, challenge));
    expect(d3).toEqual({
      action: "setTime",
      time: signedAt * 1000 + 14_000,
      floor: signedAt * 1000 + 14_000,
    });
    if (d3.action !== "setTime") return;
    // The runtime sets the RTC and persists the floor: the clock is trusted again and the key opens.
    reading = observeClock(d3.time, false, d3.floor, TOL);
    expect(reading.trusted).toBe(true);
    expect(unlockWith(reading, chain).ok).toBe(true);
    // 4. The same ticket replayed later (challenge used and cleared, or a new one pending) is refused.
    expect(
      codeOf(() =>
        decideTimeTicket(verifyTimeTicket(c, fresh, auth), state(observeClock(rtc, false, floor, TOL), null)),
      ),
    ).toBe("LK_TICKET_CHALLENGE");
    const next: PendingChallenge = { nonce: c.randomBytes(16), issuedAt: mono };
    expect(
      codeOf(() =>
        decideTimeTicket(verifyTimeTicket(c, fresh, auth), state(observeClock(rtc, false, floor, TOL), next)),
      ),
    ).toBe("LK_TICKET_CHALLENGE");
    // ... and to a lock whose floor already passed it, ignored.
    expect(decideTimeTicket(verifyTimeTicket(c, fresh, auth), state(reading, challenge)).action).toBe(
      "ignore",
    );
  });

  it("a lock that lost power regains trust only from a ticket answering its own fresh challenge", () => {
    const floor = EpochMs(T);
    const reading = observeClock(EpochMs(0), true, floor, TOL);
    expect(reading.distrust).toBe("powerLost");
    const challenge: PendingChallenge = { nonce: c.randomBytes(32), issuedAt: MonotonicMs(1000) };
    const ticket = (time: number, nonce: Uint8Array | null): TimeTicket => ({
      scope: here,
      time: NumericDate(time),
      challenge: nonce,
    });
    const at = (ms: number): LockClockState => ({ reading, challenge, monotonicNow: MonotonicMs(ms) });
    // An old ticket captured last week, newer than the floor but not fresh: no trust, floor only.
    expect(decideTimeTicket(ticket(TS + 60, null), at(2000))).toEqual({
      action: "raiseFloor",
      floor: T + 60_000,
    });
    // A ticket for this challenge but arriving after the freshness bound (2 min by default).
    expect(codeOf(() => decideTimeTicket(ticket(TS + 60, challenge.nonce), at(1000 + 120_001)))).toBe(
      "LK_TICKET_CHALLENGE",
    );
    expect(decideTimeTicket(ticket(TS + 60, challenge.nonce), at(1000 + 120_000)).action).toBe("setTime");
    // A custom bound, and a monotonic clock that went back (a reboot: the challenge is gone anyway).
    expect(
      codeOf(() => decideTimeTicket(ticket(TS + 60, challenge.nonce), at(7000), Milliseconds(5000))),
    ).toBe("LK_TICKET_CHALLENGE");
    expect(codeOf(() => decideTimeTicket(ticket(TS + 60, challenge.nonce), at(999)))).toBe(
      "LK_TICKET_CHALLENGE",
    );
  });

  it("never moves the clock or the floor back, and sets time only for the pending, fresh challenge", () => {
    const nonce = Uint8Array.from({ length: 16 }, (_, i) => i);
    fc.assert(
      fc.property(
        fc.integer({ min: -1e7, max: 1e7 }),
        fc.constantFrom<"none" | "match" | "other">("none", "match", "other"),
        fc.boolean(),
        fc.integer({ min: -1000, max: 300_000 }),
        fc.boolean(),
        (dt, kind, pending, elapsed, trusted) => {
          const floor = EpochMs(T);
          const reading: ClockReading = trusted
            ? { now: floor, trusted: true, distrust: null, floor }
            : { now: floor, trusted: false, distrust: "setBack", floor };
          const challenge =
            kind === "none" ? null : kind === "match" ? nonce : Uint8Array.from(nonce, (b) => b ^ 1);
          const t: TimeTicket = { scope: here, time: NumericDate(TS + dt), challenge };
          const state: LockClockState = {
            reading,
            challenge: pending ? { nonce, issuedAt: MonotonicMs(10_000) } : null,
            monotonicNow: MonotonicMs(10_000 + elapsed),
          };
          let d: ReturnType<typeof decideTimeTicket>;
          try {
            d = decideTimeTicket(t, state);
          } catch (e) {
            expect(isLatchkeyError(e, "LK_TICKET_CHALLENGE")).toBe(true);
            expect(kind !== "none" && dt >= 0).toBe(true);
            return;
          }
          // A challenged ticket counts in whole seconds: one in the floor's own second still answers.
          if (d.action === "ignore") expect(dt).toBeLessThanOrEqual(kind === "none" ? 0 : -1);
          else if (d.action === "raiseFloor") expect(d.floor).toBeGreaterThan(floor);
          else expect(d.floor).toBeGreaterThanOrEqual(floor);
          if (d.action === "setTime") {
            expect(kind === "match" && pending && elapsed >= 0 && elapsed <= 120_000).toBe(true);
            expect(d.time).toBeGreaterThanOrEqual(t.time * 1000);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("accepts no tampered byte anywhere", () => {
    const bytes = signTimeTicket(c, cloud, { scope: here, time: TS, challenge: c.randomBytes(16) });
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const t = bytes.slice();
        t[i] = t[i]! ^ mask;
        expect(
          codeOf(() => verifyTimeTicket(c, t, { ...auth, signerChain: cloudChain })).startsWith("LK_"),
        ).toBe(true);
      }
    }
  });
});

describe("status tickets for lease keys", () => {
  const leaseKey = { ...guestKey, leaseSeconds: 2 * 3600 };
  const chain = [issueKey(c, owner, leaseKey)];
  const sctx = { ...auth, now: EpochMs(T), holder: phone.pk, signerChain: cloudChain };

  it("yield statusTicketAt for verifyKeyChain; a stale one leaves the key refused", () => {
    const fresh = signStatusTicket(c, cloud, {
      scope: here,
      holder: phone.pk,
      issuedAt: NumericDate(TS - 1800),
    });
    const at = statusTicketAt(c, fresh, sctx);
    expect(at).toBe(T - 1_800_000);
    expect(
      unlockWith(observeClock(EpochMs(T), false, EpochMs(T), TOL), chain, { statusTicketAt: at }).ok,
    ).toBe(true);
    const old = signStatusTicket(c, owner, {
      scope: here,
      holder: phone.pk,
      issuedAt: NumericDate(TS - 3 * 3600),
    });
    const oldAt = statusTicketAt(c, old, { ...sctx, signerChain: [] });
    expect(
      unlockWith(observeClock(EpochMs(T), false, EpochMs(T), TOL), chain, { statusTicketAt: oldAt }),
    ).toMatchObject({ ok: false, reason: "lease_stale" });
  });

  it("refuse another holder, a future ticket, a bad signature, another lock and a time ticket", () => {
    const other = ed();
    const t = (over: Partial<{ holder: PublicKey; issuedAt: NumericDate }>, by: Party = cloud) =>
      signStatusTicket(c, by, { scope: here, holder: phone.pk, issuedAt: TS, ...over });
    expect(codeOf(() => statusTicketAt(c, t({ holder: other.pk }), sctx))).toBe("LK_TICKET_HOLDER");
    expect(codeOf(() => statusTicketAt(c, t({ issuedAt: NumericDate(TS + 120) }), sctx))).toBe(
      "LK_ENVELOPE_EXPIRED",
    );
    expect(statusTicketAt(c, t({ issuedAt: NumericDate(TS + 59) }), sctx)).toBe((TS + 59) * 1000); // within skew
    expect(codeOf(() => statusTicketAt(c, t({}, other), sctx))).toBe("LK_ENVELOPE_SIGNATURE");
    expect(codeOf(() => statusTicketAt(c, t({}), { ...sctx, signerChain: [] }))).toBe(
      "LK_ENVELOPE_SIGNATURE",
    );
    expect(codeOf(() => statusTicketAt(c, t({}), { ...sctx, isRevoked: (s) => s[0] === 0xc1 }))).toBe(
      "LK_SIGNER_REFUSED",
    );
    const elsewhere = signStatusTicket(c, cloud, {
      scope: { kind: "site", id: "cabin" },
      holder: phone.pk,
      issuedAt: TS,
    });
    expect(codeOf(() => statusTicketAt(c, elsewhere, sctx))).toBe("LK_SCOPE_MISMATCH");
    const time = signTimeTicket(c, cloud, { scope: here, time: TS, challenge: null });
    expect(codeOf(() => statusTicketAt(c, time, sctx))).toBe("LK_ENVELOPE_MALFORMED");
    const bytes = t({});
    for (let i = 0; i < bytes.length; i++) {
      const m = bytes.slice();
      m[i] = m[i]! ^ 0x40;
      expect(codeOf(() => statusTicketAt(c, m, sctx)).startsWith("LK_")).toBe(true);
    }
  });
});

describe("vectors (test/vectors/key-objects.json)", () => {
  it("time and status tickets verify with the fixed keys", () => {
    const keys = Object.fromEntries(
      vectorFile.keys.map((k) => [k.name, { alg: CoseAlg.EdDSA, key: fromHex(k.publicKey) }]),
    );
    const vctx: AuthorityContext = {
      root: keys.owner!,
      lockId: vectorFile.lock.lockId,
      siteId: vectorFile.lock.siteId,
      skew: Seconds(vectorFile.lock.skew),
    };
    for (const v of vectorFile.timeTickets) {
      const t = verifyTimeTicket(c, fromHex(v.coseSign1), {
        ...vctx,
        signerChain: v.signerChain.map(fromHex),
      });
      expect(`${t.scope.kind}:${t.scope.id}`).toBe(v.ticket.scope);
      expect(t.time).toBe(v.ticket.time);
      expect(t.challenge === null ? null : toHex(t.challenge)).toBe(v.ticket.challenge);
    }
    for (const v of vectorFile.statusTickets) {
      const at = statusTicketAt(c, fromHex(v.coseSign1), {
        ...vctx,
        signerChain: v.signerChain.map(fromHex),
        now: EpochMs(vectorFile.lock.now * 1000),
        holder: keys.phone!,
      });
      expect(at).toBe(v.ticket.iat * 1000);
    }
  });
});

describe("fuzz: ticket decoders never crash (50,000 inputs)", () => {
  it("refuses random, mutated and structured inputs with coded errors only", () => {
    const rand = mulberry32(0x71c4e75);
    const int = (n: number) => Math.floor(rand() * n);
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
    const randomValue = (): unknown =>
      [
        () => int(1e6),
        () => "lock:front-door",
        () => bytes(int(40)),
        () => [],
        () => null,
        () => "time",
        () => "status",
      ][int(7)]!();
    function structured(): Uint8Array {
      const m = new Map<number, unknown>([
        [1, "aa"],
        [3, int(5) === 0 ? randomValue() : "lock:front-door"],
        [6, int(5) === 0 ? randomValue() : TS],
        [-65537, int(8) === 0 ? "revocations" : "ticket"],
        [TicketClaimLabel.type, int(4) === 0 ? randomValue() : ["time", "status"][int(2)]!],
      ]);
      if (int(2) === 0) m.set(TicketClaimLabel.challenge, int(3) === 0 ? randomValue() : bytes(16 + int(50)));
      if (int(2) === 0) m.set(2, int(3) === 0 ? randomValue() : toHex(bytes(16)));
      if (int(6) === 0) m.delete([1, 3, 6, TicketClaimLabel.type][int(4)]!);
      if (int(8) === 0) m.set([4, 5, 7, -65561][int(4)]!, randomValue());
      return encodeDeterministic(m);
    }
    function mutate(b: Uint8Array): Uint8Array {
      const out = b.slice();
      const i = int(out.length);
      switch (int(4)) {
        case 0:
          out[i] = int(256);
          return out;
        case 1:
          return out.slice(0, i);
        case 2:
          return Uint8Array.from([...out.slice(0, i), ...bytes(1 + int(4)), ...out.slice(i)]);
        default:
          return Uint8Array.from([...out.slice(0, i), ...out.slice(i + 1 + int(3))]);
      }
    }
    const valid = [
      signTimeTicket(c, owner, { scope: here, time: TS, challenge: bytes(16) }),
      signTimeTicket(c, cloud, { scope: here, time: TS, challenge: null }),
      signStatusTicket(c, cloud, { scope: here, holder: phone.pk, issuedAt: TS }),
    ];
    const validHex = new Set(valid.map(toHex));
    const tally = new Map<string, number>();
    const run = (f: () => unknown, input: Uint8Array, signed: boolean) => {
      let k = "ok";
      try {
        f();
      } catch (e) {
        if (!isLatchkeyError(e)) throw e;
        k = e.code;
      }
      if (k === "ok" && signed) expect(validHex.has(toHex(input))).toBe(true);
      tally.set(k, (tally.get(k) ?? 0) + 1);
    };
    const sctx = { ...auth, now: EpochMs(T), holder: phone.pk };
    const chains = [[], cloudChain];
    for (let i = 0; i < 15_000; i++) {
      const input = int(4) === 0 ? bytes(int(300)) : mutate(valid[int(valid.length)]!);
      const chain = chains[int(2)]!;
      if (int(2) === 0) run(() => verifyTimeTicket(c, input, { ...auth, signerChain: chain }), input, true);
      else run(() => statusTicketAt(c, input, { ...sctx, signerChain: chain }), input, true);
    }
    const seeds = Array.from({ length: 50 }, structured);
    for (let i = 0; i < 35_000; i++) {
      const k = int(4);
      const input = k === 0 ? bytes(int(150)) : k === 1 ? structured() : mutate(seeds[int(seeds.length)]!);
      run(() => ticketFromClaims(decodeClaims(input)), input, false);
    }
    const total = [...tally.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(50_000);
    console.log(`ticket fuzz: ${total} inputs`, Object.fromEntries(tally));
  });
});
