/**
 * Replay and tamper resistance of the unlock handshake (docs/protocol/link.md § "Security properties"):
 * 10,000 replayed answers, every byte of an answer flipped, every byte of every key inside an answer
 * flipped (by a phone that signs whatever it sends), every byte of the lock's Result flipped: 0 accepted.
 */
import { describe, expect, it } from "vitest";
import type { CryptoPort } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { isLatchkeyError } from "../../src/core/errors.ts";
import { answerChallenge, LockHandshake } from "../../src/core/link/handshake.ts";
import { decodeMessage, encodeAnswer, MessageType } from "../../src/core/link/messages.ts";
import { answerOptions, c, lockFor, mono, NOW, wallet } from "../support/link-fixtures.ts";

function tally(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}
const show = (m: Map<string, number>) => [...m].map(([k, n]) => `${k} ${n}`).join(", ");

/** A port whose randomness repeats: every challenge of a lock built on it is the same bytes. */
function repeatingRandom(): CryptoPort {
  return { ...c, randomBytes: (n) => new Uint8Array(n).map((_, i) => (i * 73 + 11) & 0xff) };
}

describe("replayed answers", () => {
  it("10,000 replays of recorded answers: 0 accepted", () => {
    const w = wallet(2, CoseAlg.ES256);
    const lock = lockFor(w.owner);
    let t = 0;
    const recorded: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      const ch = lock.challenge(NOW, mono(t));
      const a = answerChallenge(c, ch, answerOptions(w));
      expect(lock.answer(a.answer, NOW, mono(t + 30)).ok).toBe(true);
      recorded.push(a.answer);
      t += 100;
    }
    const rebooted = lockFor(w.owner); // same lock, outstanding set lost (a restart)
    const codes = new Map<string, number>();
    let accepted = 0;
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) {
      t += 7;
      const fresh = lock.challenge(NOW, mono(t)); // there is always a live challenge to aim at
      const old = recorded[i % recorded.length]!;
      let target = lock;
      let bytes = old;
      switch (i % 4) {
        case 0: // as recorded, to the same lock
          break;
        case 1: {
          // re-aimed at the live challenge: its nonce put in place of the old one
          const m = decodeMessage(old);
          const f = decodeMessage(fresh);
          if (m.type !== MessageType.Answer || f.type !== MessageType.Challenge) throw new Error("shape");
          bytes = encodeAnswer({ nonce: f.nonce, ephemeral: m.ephemeral, sealed: m.sealed });
          break;
        }
        case 2: // to the lock after a restart
          target = rebooted;
          rebooted.challenge(NOW, mono(t));
          break;
        case 3: // replayed at once, well inside the round-trip bound
          t += 1;
          break;
      }
      const o = target.answer(bytes, NOW, mono(t + 5));
      if (o.ok) accepted++;
      else tally(codes, o.refusal.code);
    }
    const ms = performance.now() - started;
    console.log(`replay: 10000 replayed answers, ${accepted} accepted (${show(codes)}); ${ms.toFixed(0)} ms`);
    expect(accepted).toBe(0);
    expect(codes.get("LK_LINK_NONCE")).toBe(7500);
    expect(codes.get("LK_LINK_DECRYPT")).toBe(2500);
  });
});

describe("tampered answers", () => {
  it.each([CoseAlg.EdDSA, CoseAlg.ES256])(
    "every byte of an answer flipped three ways (holder alg %i): 0 accepted",
    (alg) => {
      const w = wallet(2, alg);
      const port = repeatingRandom();
      const lock = lockFor(w.owner, {}, port);
      const ch = lock.challenge(NOW, mono(0));
      const a = answerChallenge(c, ch, answerOptions(w));
      // The untampered answer is accepted against the (repeating) challenge...
      expect(lock.answer(a.answer, NOW, mono(10)).ok).toBe(true);
      const codes = new Map<string, number>();
      let accepted = 0;
      let tried = 0;
      for (let i = 0; i < a.answer.length; i++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const t = a.answer.slice();
          t[i]! ^= mask;
          lock.challenge(NOW, mono(0));
          const o = lock.answer(t, NOW, mono(10));
          tried++;
          if (o.ok) accepted++;
          else tally(codes, o.refusal.code);
        }
      }
      // ...and still is afterwards: the refusals above were the tampering, nothing else.
      lock.challenge(NOW, mono(0));
      expect(lock.answer(a.answer, NOW, mono(10)).ok).toBe(true);
      console.log(
        `tamper answer (${alg === CoseAlg.EdDSA ? "EdDSA" : "ES256"}): ${a.answer.length} bytes × 3 = ${tried} tampered, ${accepted} accepted (${show(codes)})`,
      );
      expect(accepted).toBe(0);
    },
  );

  it("every byte of every key inside an answer flipped, by a phone that signs what it sends: 0 accepted", () => {
    const w = wallet(3, CoseAlg.ES256);
    const lock = lockFor(w.owner, {}, repeatingRandom());
    const codes = new Map<string, number>();
    let accepted = 0;
    let tried = 0;
    const started = performance.now();
    for (let li = 0; li < w.chain.length; li++) {
      const key = w.chain[li]!;
      for (let i = 0; i < key.length; i++) {
        const t = key.slice();
        t[i]! ^= i % 2 === 0 ? 0x01 : 0x80;
        const chain = w.chain.slice();
        chain[li] = t;
        const ch = lock.challenge(NOW, mono(0));
        const a = answerChallenge(c, ch, answerOptions(w, { chain }));
        const o = lock.answer(a.answer, NOW, mono(10));
        tried++;
        if (o.ok) accepted++;
        else tally(codes, `${o.refusal.code}${o.refusal.keyRefusal ? `/${o.refusal.keyRefusal}` : ""}`);
      }
    }
    const ms = performance.now() - started;
    console.log(
      `tamper keys: ${w.chain.map((k) => k.length).join("+")} bytes in 3 links = ${tried} tampered answers, ${accepted} accepted (${show(codes)}); ${ms.toFixed(0)} ms`,
    );
    expect(accepted).toBe(0);
    expect(tried).toBeGreaterThan(600);
  });

  it("every byte of the lock's Result flipped: the phone never reads a tampered verdict", () => {
    const w = wallet(1, CoseAlg.EdDSA);
    const lock = lockFor(w.owner, {}, repeatingRandom());
    const ch = lock.challenge(NOW, mono(0));
    const first = answerChallenge(c, ch, answerOptions(w));
    const reply = LockHandshake.reply(lock.answer(first.answer, NOW, mono(5)));
    let misread = 0;
    let tried = 0;
    for (let i = 0; i < reply.length; i++) {
      // A fresh phone session per try (a failed open closes a session for good).
      lock.challenge(NOW, mono(0));
      const p = answerChallenge(c, ch, answerOptions(w));
      const r = LockHandshake.reply(lock.answer(p.answer, NOW, mono(5)));
      const t = r.slice();
      t[i]! ^= 0x01;
      tried++;
      try {
        p.session.readResult(t);
        misread++;
      } catch (e) {
        expect(isLatchkeyError(e)).toBe(true);
      }
    }
    console.log(`tamper result: ${tried} tampered Results, ${misread} read`);
    expect(misread).toBe(0);
  });
});
