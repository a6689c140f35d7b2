/**
 * The unlock handshake (docs/protocol/link.md): full unlocks over the in-memory transport with 1-, 2- and
 * 3-link chains and EdDSA or ES256 holders; distinct coded refusals (wrong lock, expired, revoked by the
 * caller's hook, bad transcript signature, no intent, ...); relay resistance (an answer past the round-trip
 * bound); what an eavesdropper sees; the bounded, expiring set of outstanding challenges.
 */
import { describe, expect, it } from "vitest";
import { concatBytes, toHex, utf8 } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { keyId } from "../../src/core/keys/digital-key.ts";
import {
  type AnswerOutcome,
  answerChallenge,
  LockHandshake,
  type LockLinkConfig,
} from "../../src/core/link/handshake.ts";
import { encodeChallenge, IntentKind, LinkAction } from "../../src/core/link/messages.ts";
import { EpochMs, Milliseconds } from "../../src/core/units.ts";
import { memoryTransportPair } from "../../src/link/memory-transport.ts";
import { MessageLink } from "../../src/link/message-link.ts";
import { phoneUnlock, serveUnlock } from "../../src/link/unlock.ts";
import {
  answerOptions,
  c,
  containsBytes,
  DAY,
  ed,
  lockFor,
  mono,
  NOW,
  p256,
  type Wallet,
  wallet,
} from "../support/link-fixtures.ts";

const algName = (alg: CoseAlg) => (alg === CoseAlg.EdDSA ? "EdDSA" : "ES256");

interface Run {
  readonly outcome: AnswerOutcome;
  readonly phone: Awaited<ReturnType<typeof phoneUnlock>> | { error: unknown };
  readonly frames: { frame: Uint8Array; from: "a" | "b" }[];
}

/** One unlock over a fresh in-memory pair: `a` is the lock, `b` the phone. */
async function unlockOver(
  w: Wallet,
  opts: {
    frameSize?: number;
    delay?: number;
    lock?: Partial<LockLinkConfig>;
    answer?: Parameters<typeof answerOptions>[1];
  } = {},
): Promise<Run> {
  const frames: Run["frames"] = [];
  const [a, b] = memoryTransportPair({
    frameSize: opts.frameSize ?? 20,
    delay: Milliseconds(opts.delay ?? 0),
    tap: (frame, from) => frames.push({ frame, from }),
  });
  const lock = lockFor(w.owner, opts.lock);
  const lockLink = new MessageLink(a);
  const phoneLink = new MessageLink(b);
  const phoneP = phoneUnlock(c, phoneLink, answerOptions(w, opts.answer)).catch((error: unknown) => ({
    error,
  }));
  const outcome = await serveUnlock(lockLink, lock, { wallNow: () => NOW });
  const phone = await phoneP;
  a.close();
  return { outcome, phone, frames };
}

describe("unlock over the in-memory transport", () => {
  const cases = [1, 2, 3].flatMap((links) =>
    [CoseAlg.EdDSA, CoseAlg.ES256].flatMap((alg) =>
      [20, 244].map((frameSize) => ({ links, alg, name: algName(alg), frameSize })),
    ),
  );
  it.each(cases)(
    "a $links-link chain, $name holder, $frameSize-byte frames",
    async ({ links, alg, frameSize }) => {
      const w = wallet(links, alg);
      const started = performance.now();
      const run = await unlockOver(w, { frameSize });
      const ms = performance.now() - started;
      expect(run.outcome.ok).toBe(true);
      if (!run.outcome.ok) return;
      const v = run.outcome.verified;
      expect(v.source).toBe("phone");
      expect(v.action).toBe(LinkAction.Unlock);
      expect(v.intent.kind).toBe(IntentKind.UserAction);
      expect(v.holder.key).toEqual(w.holder.publicKey);
      expect(v.holderKeyId).toBe(toHex(keyId(c, w.holder.pk)));
      expect(v.links).toHaveLength(links);
      expect(v.serials).toEqual(
        Array.from({ length: links }, (_, i) => toHex(Uint8Array.of(0xa0 + i, 0x5e, 0x41, i))),
      );
      expect(v.scope).toEqual({ kind: "lock", id: "front-door" });
      expect(v.verifiedAt).toBe(NOW);
      expect(v.roundTrip).toBeLessThan(1500);
      expect("error" in run.phone).toBe(false);
      if ("error" in run.phone) return;
      expect(run.phone.result).toEqual({ accepted: true });
      expect(run.phone.challenge.lockId).toBe("front-door");
      const up = run.frames.filter((f) => f.from === "b").length;
      const down = run.frames.filter((f) => f.from === "a").length;
      console.log(
        `unlock ${links} link(s), ${algName(alg)} holder, ${frameSize}-byte frames: accepted; ` +
          `${down} frames lock→phone, ${up} phone→lock; ${ms.toFixed(1)} ms`,
      );
    },
  );

  it("the session carries later messages both ways (sealed, in order)", async () => {
    const w = wallet(2, CoseAlg.EdDSA);
    const run = await unlockOver(w);
    if (!run.outcome.ok || "error" in run.phone) throw new Error("unlock failed");
    const lockSide = run.outcome.channel;
    const phoneSide = run.phone.session.channel;
    const m1 = phoneSide.seal(5, utf8("events"));
    expect(lockSide.open(5, m1)).toEqual(utf8("events"));
    const m2 = lockSide.seal(5, utf8("revocations"));
    expect(phoneSide.open(5, m2)).toEqual(utf8("revocations"));
    expect(() => lockSide.open(5, m1)).toThrow(expect.objectContaining({ code: "LK_LINK_DECRYPT" })); // replay
  });

  it("the runtime's decision goes back to the phone in the Result", async () => {
    const w = wallet(1, CoseAlg.EdDSA);
    const [a, b] = memoryTransportPair({ frameSize: 244 });
    const phoneP = phoneUnlock(c, new MessageLink(b), answerOptions(w));
    const outcome = await serveUnlock(new MessageLink(a), lockFor(w.owner), {
      wallNow: () => NOW,
      decide: () => ({ accepted: false, code: "LK_MODE_FORBIDS" }),
    });
    expect(outcome.ok).toBe(true);
    expect((await phoneP).result).toEqual({ accepted: false, code: "LK_MODE_FORBIDS" });
  });
});

describe("distinct coded refusals", () => {
  const owner = ed();

  /** Challenge, answer and judge in core; also read the lock's reply on the phone. */
  function judge(
    w: Wallet,
    over: {
      lock?: Partial<LockLinkConfig>;
      answer?: Parameters<typeof answerOptions>[1];
      wallNow?: EpochMs;
    } = {},
  ) {
    const lock = lockFor(w.owner, over.lock);
    const ch = lock.challenge(NOW, mono(0));
    const a = answerChallenge(c, ch, answerOptions(w, over.answer));
    const outcome = lock.answer(a.answer, over.wallNow ?? NOW, mono(40));
    const phoneSees = a.session.readResult(LockHandshake.reply(outcome));
    return { outcome, phoneSees };
  }

  const refusals: [string, () => ReturnType<typeof judge>, string, string?][] = [
    [
      "a key for another lock",
      () => judge(wallet(2, CoseAlg.EdDSA, { scope: { kind: "lock", id: "back-door" } }, owner)),
      "LK_LINK_WRONG_LOCK",
      "wrong_lock",
    ],
    [
      "a key that expired",
      () => judge(wallet(2, CoseAlg.ES256, {}, owner), { wallNow: EpochMs(NOW + 31 * DAY) }),
      "LK_LINK_KEY_EXPIRED",
      "expired",
    ],
    [
      "a key not yet valid",
      () => judge(wallet(1, CoseAlg.EdDSA, { nbf: NumericDate(NOW / 1000 + 3600) }, owner)),
      "LK_LINK_KEY_EXPIRED",
      "not_yet_valid",
    ],
    [
      "a key revoked by the caller's hook",
      () =>
        judge(wallet(3, CoseAlg.EdDSA, {}, owner), {
          lock: { isRevoked: (serial) => toHex(serial) === "a15e4101" },
        }),
      "LK_LINK_REVOKED",
    ],
    [
      "a transcript signed by another key",
      () => {
        const w = wallet(2, CoseAlg.ES256, {}, owner);
        const thief = p256();
        return judge(w, { answer: { holder: { alg: CoseAlg.ES256, privateKey: thief.privateKey } } });
      },
      "LK_LINK_SIGNATURE",
    ],
    [
      "a chain from another owner",
      () => judge(wallet(2, CoseAlg.EdDSA, {}, ed()), { lock: { owner: owner.pk } }),
      "LK_LINK_KEY_INVALID",
      "signature",
    ],
    [
      "a lease key without a status ticket",
      () => judge(wallet(1, CoseAlg.EdDSA, { leaseSeconds: 7200 }, owner)),
      "LK_LINK_LEASE_STALE",
      "lease_stale",
    ],
    [
      "a passive answer (proximity unlock is off by default)",
      () =>
        judge(wallet(1, CoseAlg.EdDSA, {}, owner), {
          answer: { intent: { kind: IntentKind.Passive, ageMs: Milliseconds(0) } },
        }),
      "LK_LINK_NO_INTENT",
    ],
    [
      "a user action older than 15 s",
      () =>
        judge(wallet(1, CoseAlg.EdDSA, {}, owner), {
          answer: { intent: { kind: IntentKind.UserVerified, ageMs: Milliseconds(15_001) } },
        }),
      "LK_LINK_NO_INTENT",
    ],
  ];

  it.each(refusals)("%s → %s", (_, run, code, keyRefusal) => {
    const { outcome, phoneSees } = run();
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.refusal.code).toBe(code);
    if (keyRefusal !== undefined) expect(outcome.refusal.keyRefusal).toBe(keyRefusal);
    // The phone learns the code, sealed in the Result.
    expect(phoneSees).toEqual({ accepted: false, code });
  });

  it("each refusal has its own code, and the accepted controls pass", () => {
    const codes = refusals.map(([, run]) => {
      const { outcome } = run();
      return outcome.ok ? "ok" : `${outcome.refusal.code}:${outcome.refusal.keyRefusal ?? ""}`;
    });
    expect(new Set(codes).size).toBe(codes.length - 1); // the two intent refusals share LK_LINK_NO_INTENT
    console.log(`refusals: ${codes.join(", ")}`);
    // Controls: the same shapes accepted when the lock allows them.
    expect(
      judge(wallet(1, CoseAlg.EdDSA, {}, owner), {
        lock: { allowPassive: true },
        answer: { intent: { kind: IntentKind.Passive, ageMs: Milliseconds(0) } },
      }).outcome.ok,
    ).toBe(true);
    expect(judge(wallet(3, CoseAlg.EdDSA, {}, owner), { lock: { isRevoked: () => false } }).outcome.ok).toBe(
      true,
    );
  });

  it("the revocation hook sees every link, root first", () => {
    const seen: string[] = [];
    const w = wallet(3, CoseAlg.ES256, {}, owner);
    const isRevoked = (serial: Uint8Array, link: number) => {
      seen.push(`${link}:${toHex(serial)}`);
      return false;
    };
    judge(w, { lock: { isRevoked } });
    expect(seen).toEqual(["0:a05e4100", "1:a15e4101", "2:a25e4102"]);
  });

  it("the phone refuses a challenge from another lock, or of another version", () => {
    const w = wallet(1, CoseAlg.EdDSA, {}, owner);
    const ch = lockFor(owner).challenge(NOW, mono(0));
    expect(() => answerChallenge(c, ch, answerOptions(w, { expectLockId: "back-door" }))).toThrow(
      expect.objectContaining({ code: "LK_LINK_WRONG_LOCK" }),
    );
    const v2 = ch.slice();
    v2[2] = 2; // [1, version, ...]: the version is the array's second item
    expect(() => answerChallenge(c, v2, answerOptions(w))).toThrow(
      expect.objectContaining({ code: "LK_LINK_VERSION" }),
    );
    expect(() => answerChallenge(c, concatBytes(ch, Uint8Array.of(0)), answerOptions(w))).toThrow(
      expect.objectContaining({ code: "LK_LINK_MALFORMED" }),
    );
  });

  it("refuses a small-order ephemeral key from either side", () => {
    const w = wallet(1, CoseAlg.EdDSA, {}, owner);
    const bad = encodeChallenge({
      lockId: "front-door",
      siteId: "home",
      lockTime: NumericDate(NOW / 1000),
      nonce: new Uint8Array(16),
      ephemeral: new Uint8Array(32),
    });
    expect(() => answerChallenge(c, bad, answerOptions(w))).toThrow(
      expect.objectContaining({ code: "LK_LINK_MALFORMED" }),
    );
  });
});

describe("relay resistance: the round-trip bound", () => {
  const w = wallet(2, CoseAlg.EdDSA);

  it("accepts an answer at the bound and refuses one a millisecond later (LK_LINK_TOO_LATE)", () => {
    for (const [at, ok] of [
      [1500, true],
      [1501, false],
    ] as const) {
      const lock = lockFor(w.owner);
      const ch = lock.challenge(NOW, mono(10_000));
      const a = answerChallenge(c, ch, answerOptions(w));
      const o = lock.answer(a.answer, NOW, mono(10_000 + at));
      expect(o.ok).toBe(ok);
      if (!o.ok) {
        expect(o.refusal.code).toBe("LK_LINK_TOO_LATE");
        expect(o.channel).toBeNull();
        expect(a.session.readResult(LockHandshake.reply(o))).toEqual({
          accepted: false,
          code: "LK_LINK_TOO_LATE",
        });
      }
    }
  });

  it("a relay adding 150 ms each way is refused under a 200 ms bound; the direct link is accepted", async () => {
    const bound = { roundTripBound: Milliseconds(200) };
    const direct = await unlockOver(w, { frameSize: 244, lock: bound });
    expect(direct.outcome.ok).toBe(true);
    const relayed = await unlockOver(w, { frameSize: 244, delay: 150, lock: bound });
    expect(relayed.outcome.ok).toBe(false);
    if (relayed.outcome.ok) return;
    expect(relayed.outcome.refusal.code).toBe("LK_LINK_TOO_LATE");
    expect("error" in relayed.phone ? null : relayed.phone.result).toEqual({
      accepted: false,
      code: "LK_LINK_TOO_LATE",
    });
    const rt = direct.outcome.ok ? direct.outcome.verified.roundTrip : -1;
    console.log(
      `relay: direct round trip ${rt.toFixed(1)} ms accepted; +150 ms each way refused (LK_LINK_TOO_LATE)`,
    );
  });
});

describe("what an eavesdropper sees", () => {
  it.each([CoseAlg.EdDSA, CoseAlg.ES256])(
    "no holder key, key id or serial in any frame (holder alg %i)",
    async (alg) => {
      const w = wallet(3, alg);
      const run = await unlockOver(w, { frameSize: 20 });
      expect(run.outcome.ok).toBe(true);
      // Everything on the air, frame by frame, and the payloads joined per direction (headers dropped).
      const air = concatBytes(...run.frames.map((f) => f.frame));
      const joined = (["a", "b"] as const).map((side) =>
        concatBytes(...run.frames.filter((f) => f.from === side).map((f) => f.frame.subarray(2))),
      );
      const secrets: [string, Uint8Array][] = [];
      const parties = [w.owner, ...w.holders];
      for (const p of parties) {
        const kid = keyId(c, p.pk);
        secrets.push([`public key ${toHex(p.publicKey).slice(0, 8)}`, p.publicKey]);
        secrets.push([`key id ${toHex(kid)}`, kid]);
        secrets.push([`key id as text ${toHex(kid)}`, utf8(toHex(kid))]);
      }
      for (let i = 0; i < 3; i++) secrets.push([`serial ${i}`, Uint8Array.of(0xa0 + i, 0x5e, 0x41, i)]);
      let checks = 0;
      for (const [name, s] of secrets) {
        for (const hay of [air, ...joined]) {
          checks++;
          expect(containsBytes(hay, s), name).toBe(false);
        }
      }
      // Control: the same search does find them in the plaintext chain.
      expect(containsBytes(concatBytes(...w.chain), w.holder.publicKey)).toBe(true);
      console.log(
        `eavesdropper (${algName(alg)}): ${run.frames.length} frames, ${air.length} bytes; ` +
          `${secrets.length} secrets × 3 views = ${checks} searches, 0 found`,
      );
    },
  );
});

describe("outstanding challenges", () => {
  const w = wallet(1, CoseAlg.EdDSA);

  it("are bounded: the oldest is dropped for a new one", () => {
    const lock = lockFor(w.owner, { maxOutstanding: 4 });
    const chs = Array.from({ length: 5 }, (_, i) => lock.challenge(NOW, mono(i)));
    expect(lock.outstanding).toBe(4);
    const first = answerChallenge(c, chs[0]!, answerOptions(w));
    expect(lock.answer(first.answer, NOW, mono(10))).toMatchObject({
      ok: false,
      refusal: { code: "LK_LINK_NONCE" },
    });
    const last = answerChallenge(c, chs[4]!, answerOptions(w));
    expect(lock.answer(last.answer, NOW, mono(10)).ok).toBe(true);
    for (let i = 0; i < 200; i++) lock.challenge(NOW, mono(20 + i));
    expect(lock.outstanding).toBe(4);
  });

  it("expire after their lifetime", () => {
    const lock = lockFor(w.owner, { challengeLifetime: Milliseconds(5000) });
    const ch = lock.challenge(NOW, mono(0));
    const a = answerChallenge(c, ch, answerOptions(w));
    lock.challenge(NOW, mono(6000)); // expires the first
    expect(lock.outstanding).toBe(1);
    expect(lock.answer(a.answer, NOW, mono(6000))).toMatchObject({
      ok: false,
      refusal: { code: "LK_LINK_NONCE" },
    });
  });

  it("are single use: a second answer to one challenge is refused", () => {
    const lock = lockFor(w.owner);
    const ch = lock.challenge(NOW, mono(0));
    const a1 = answerChallenge(c, ch, answerOptions(w));
    const a2 = answerChallenge(c, ch, answerOptions(w));
    expect(lock.answer(a1.answer, NOW, mono(5)).ok).toBe(true);
    expect(lock.answer(a2.answer, NOW, mono(6))).toMatchObject({
      ok: false,
      refusal: { code: "LK_LINK_NONCE" },
    });
  });
});
