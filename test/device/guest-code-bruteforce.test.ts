/**
 * The brute-force simulation of docs/protocol/guest-codes.md § 6: 1,000,000 uniformly random 12-digit
 * guesses at one keypad of a lock that always has 100 live guest codes (one issuer key), under the
 * foundation's lockout policy (WrongCodeEntryLimit 5, 60 s doubling to 3,840 s), with a fake clock that
 * jumps to the end of each lockout, as a patient attacker would wait.
 *
 * Every guess goes through the decision path the lock runtime uses — `decodeGuestCode` →
 * `evaluateGuestCode` → `decide()` (or, for a guess that is no authentic code, the PIN digest → `decide()`)
 * → `recordFailure` / `recordSuccess` — without the SQLite commit, which would make a million guesses take
 * minutes. The first 2,000 guesses are also made at the real hub's simulated keypad (SQLite, the runtime,
 * the audit log) and must give the same outcomes at the same instants.
 *
 * Reported (console) and checked: accepted = 0; the instant of the last guess = the spec's formula
 * (767,976,900 s after the start when all 10^6 guesses count as wrong entries); and the share of guesses
 * that landed on a payload valid at that instant, against W_now / Np (this tests the false-accept formula
 * P = W_now / 10^12 itself, not the luck of one seed: the expected number of accepts is ≈ 0.05).
 */
import { describe, expect, it } from "vitest";
import { buildCredentialIndex } from "../../src/core/credential-index.ts";
import {
  countValidPayloads,
  decodeGuestCode,
  deriveIssuerKey,
  evaluateGuestCode,
  formatLocalMinutes,
  type GuestCodeRequest,
  type GuestCodeUsage,
  issueGuestCode,
  PAYLOAD_COUNT,
  payloadValidAt,
  tagModulus,
} from "../../src/core/credentials/guest-code.ts";
import { pinDigest } from "../../src/core/credentials/pin-policy.ts";
import { fromHex } from "../../src/core/crypto.ts";
import { type Attempt, type DecisionState, decide, guestCodeAttempt } from "../../src/core/decide.ts";
import {
  DEFAULT_LOCKOUT_POLICY,
  INITIAL_LOCKOUT,
  type InputLockoutState,
  recordFailure,
  recordSuccess,
} from "../../src/core/lockout.ts";
import { localTimeIn } from "../../src/core/schedule.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { makeHub } from "../support/hub-harness.ts";
import { mulberry32 } from "../support/prng.ts";

const GUESSES = 1_000_000;
const HUB_PREFIX = 2_000;
const ZONE = "Europe/Berlin";
const c = nodeCrypto;
const T = tagModulus(12);

const prng = mulberry32;

/** Uniform 12-digit strings. */
function guesses(seed: number): () => string {
  const r = prng(seed);
  return () => {
    const v = Math.floor(r() * 1e6) * 1e6 + Math.floor(r() * 1e6);
    return String(v).padStart(12, "0");
  };
}

/** 100 codes live this week (local), of every kind: what a busy issuer keeps on the lock. */
function liveCodes(key: Uint8Array, nowLocal: number): string[] {
  const day = Math.floor(nowLocal / 1440);
  const d = (n: number) => formatLocalMinutes((day + n) * 1440).slice(0, 10);
  const reqs: GuestCodeRequest[] = [];
  for (let i = 0; i < 40; i++)
    reqs.push({
      kind: "window",
      from: `${d(0)}T00:00`,
      to: `${d(1 + (i % 6))}T${String(Math.floor(i / 6)).padStart(2, "0")}:00`,
    });
  for (let i = 0; i < 15; i++) reqs.push({ kind: "oneTime", from: `${d(0)}T00:00`, to: `${d(1 + i)}T00:00` });
  for (let i = 0; i < 15; i++)
    reqs.push({
      kind: "uses",
      from: `${d(0)}T00:00`,
      to: `${d(1 + i)}T00:00`,
      uses: [2, 3, 5, 10][i % 4]!,
    });
  for (let i = 0; i < 15; i++)
    reqs.push({
      kind: "firstUse",
      from: `${d(0)}T00:00`,
      to: `${d(1 + i)}T00:00`,
      durationMinutes: [60, 240, 1440, 10_080][i % 4]!,
    });
  for (let i = 0; i < 15; i++)
    reqs.push({
      kind: "recurring",
      daysMask: 0x7f,
      startHour: i,
      lengthHours: 12,
      fromDate: d(0),
      toDate: d(0),
    });
  const seen = new Set<string>();
  return reqs.map((req) => {
    const issued = issueGuestCode(c, key, req, { avoid: seen });
    seen.add(issued.codeId);
    return issued.code;
  });
}

/** Time of the n-th counted wrong guess under the default policy (seconds after the first). */
function specTime(n: number): number {
  const batch = Math.ceil(n / 5) - 1; // lockouts before this guess
  const periods = [60, 120, 240, 480, 960, 1920];
  if (batch <= 6) return periods.slice(0, batch).reduce((a, b) => a + b, 0);
  return 3780 + 3840 * (batch - 6);
}

interface Outcome {
  readonly at: number;
  readonly granted: boolean;
  readonly reason: string | null;
}

/** The attack through the pure decision path. */
function attack(
  key: Uint8Array,
  pinSecret: Uint8Array,
  start: EpochMs,
  n: number,
  onOutcome?: (o: Outcome) => void,
) {
  const keys = [{ issuerId: "iss_sim", epoch: 0, key }];
  const index = buildCredentialIndex([], []);
  const usage = new Map<string, GuestCodeUsage>();
  const next = guesses(20261122);
  let lockout: InputLockoutState = INITIAL_LOCKOUT;
  let now = start;
  let accepted = 0;
  let counted = 0;
  let authentic = 0;
  let validPayload = 0;
  let week = -1;
  let live: string[] = [];
  for (let i = 0; i < n; i++) {
    if (lockout.disabledUntil !== null && now < lockout.disabledUntil) now = lockout.disabledUntil;
    const local = localTimeIn(ZONE, now).localEpochMinutes;
    const w = Math.floor(local / 10_080);
    if (w !== week) {
      week = w;
      live = liveCodes(key, local); // the issuer keeps 100 codes live all the time
    }
    const digits = next();
    if (payloadValidAt(Math.floor(Number(digits) / T), local)) validPayload++;
    const d = decodeGuestCode(c, keys, digits, local);
    let attempt: Attempt;
    if (d.status === "match") {
      authentic++;
      const ev = evaluateGuestCode(d, usage.get(d.codeId), now, local, 2, 0);
      attempt = guestCodeAttempt(d, ev.ok ? null : ev.reason, ev.ok ? ev.record : null);
    } else {
      attempt = { source: "keypad", pinDigest: pinDigest(c, pinSecret, digits) };
    }
    const state: DecisionState = {
      lockId: "front-door",
      timeZone: ZONE,
      operatingMode: "normal",
      lockState: "locked",
      battery: "ok",
      clockTrusted: true,
      lockouts: { keypad: lockout, reader: INITIAL_LOCKOUT, fingerprint: INITIAL_LOCKOUT },
      index,
    };
    const dec = decide(state, attempt, now);
    onOutcome?.({
      at: now,
      granted: dec.outcome === "grant",
      reason: dec.outcome === "deny" ? dec.reason : null,
    });
    if (dec.outcome === "grant") {
      accepted++;
      lockout = recordSuccess(lockout);
    } else if (dec.countsAsWrongEntry) {
      counted++;
      lockout = recordFailure(lockout, DEFAULT_LOCKOUT_POLICY, now).next;
    }
  }
  return { accepted, counted, authentic, validPayload, lastAt: now, live };
}

describe("brute force against 100 live guest codes (docs/protocol/guest-codes.md § 6)", () => {
  it("the first guesses give the same outcomes at the same instants at the real hub's keypad", async () => {
    const h = makeHub();
    try {
      const issuer = h.hub.enrolIssuer(h.owner, "front-door");
      const key = fromHex(issuer.keyHex);
      const start = h.clock.now();
      const pure: Outcome[] = [];
      // The pure path needs the hub's PIN secret only to hash non-codes (no PIN is enrolled either way).
      attack(key, new Uint8Array(32), start, HUB_PREFIX, (o) => pure.push(o));
      const rt = h.hub.lock("front-door");
      const next = guesses(20261122);
      const real: Outcome[] = [];
      for (let i = 0; i < HUB_PREFIX; i++) {
        const disabledUntil = h.hub.store.lockouts().get("front-door")?.get("keypad")?.disabledUntil ?? null;
        if (disabledUntil !== null && h.clock.now() < disabledUntil) h.clock.set(disabledUntil);
        const at = h.clock.now();
        const r = await rt.keypadEntry(next());
        const d = r.decision!;
        real.push({ at, granted: d.outcome === "grant", reason: d.outcome === "deny" ? d.reason : null });
      }
      expect(real).toEqual(pure);
    } finally {
      h.cleanup();
    }
  });

  it(`accepts none of ${GUESSES.toLocaleString("en")} random guesses, at the attack time the spec states`, () => {
    const start = EpochMs(Date.UTC(2026, 0, 5, 9, 0));
    const key = deriveIssuerKey(c, new Uint8Array(32).fill(7), "front-door", "iss_sim", 0);
    const t0 = performance.now();
    const r = attack(key, new Uint8Array(32).fill(3), start, GUESSES);
    const seconds = (r.lastAt - start) / 1000;
    // W_now averaged over instants of a week: the share of guesses that can hit a valid payload.
    const samples = Array.from(
      { length: 7 },
      (_, i) => localTimeIn(ZONE, EpochMs(start + i * 90_061_000)).localEpochMinutes,
    );
    const wNow = samples.reduce((a, t) => a + countValidPayloads(t), 0) / samples.length;
    const expectedShare = wNow / PAYLOAD_COUNT;
    const share = r.validPayload / GUESSES;
    console.log(
      `guest-code brute force: ${GUESSES} guesses, accepted ${r.accepted}, counted as wrong ${r.counted}, ` +
        `authentic but not valid ${r.authentic}, last guess at ${seconds} s (${(seconds / 86_400).toFixed(1)} days, ` +
        `${(seconds / 86_400 / 365.25).toFixed(1)} years); valid-now payloads ${(share * 100).toFixed(2)} % ` +
        `(W_now/Np = ${(expectedShare * 100).toFixed(2)} %, W_now ≈ ${Math.round(wNow)}); expected accepts ` +
        `${((GUESSES * wNow) / 1e12).toFixed(3)}; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    expect(r.accepted).toBe(0);
    expect(r.live).toHaveLength(100);
    // Every guess but the authentic ones counted; the last one came at the spec's instant.
    expect(r.counted).toBe(GUESSES - r.authentic);
    expect(seconds).toBe(specTime(r.counted));
    if (r.counted === GUESSES) expect(seconds).toBe(767_976_900);
    expect(Math.abs(share - expectedShare)).toBeLessThan(0.01);
  });
});
