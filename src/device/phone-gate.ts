/**
 * A lock's phone-key gate (docs/protocol/link.md § "At the lock", digital-keys.md): it serves the unlock
 * handshake over any {@link MessageLink}, applies what the phone carries (a time ticket first, then
 * revocation lists newer than the lock's), checks every link of a chain against the lock's lists, and hands
 * a verified key to the same `decide()` and audit log as every other credential (source `phone`, with the
 * user the key was issued to and the key's serial). The verdict goes back to the phone in the sealed Result.
 *
 * When the lock's clock is not trusted, time-limited keys are refused with LK_CLOCK_UNTRUSTED and a fresh
 * time challenge; a time ticket that answers it (signed by the owner or a delegate, carried in the next
 * answer within 2 minutes) makes the clock trusted again.
 */

import type { JsonValue } from "../core/audit/canonical.ts";
import { AuditKind } from "../core/audit/chain.ts";
import type { CryptoPort } from "../core/crypto.ts";
import { toHex } from "../core/crypto.ts";
import type { PhoneKeyCheck } from "../core/decide.ts";
import { type ErrorCode, LatchkeyError } from "../core/errors.ts";
import { type AuthorityContext, scopeToText } from "../core/keys/authority.ts";
import { type PublicKey, VerifiedLinkCache } from "../core/keys/digital-key.ts";
import {
  applyNewer,
  isRevoked,
  revocationHorizon,
  type VerifiedRevocationList,
  verifyRevocationList,
} from "../core/keys/revocation.ts";
import {
  decideTimeTicket,
  type PendingChallenge,
  statusTicketAt,
  verifyTimeTicket,
} from "../core/keys/tickets.ts";
import { type AnswerOutcome, LockHandshake } from "../core/link/handshake.ts";
import {
  type CarriedObject,
  type Carry,
  encodeAbort,
  LinkAction,
  type ResultBody,
  TIME_CHALLENGE_BYTES,
} from "../core/link/messages.ts";
import type { VerifiedPhoneKey } from "../core/link/verified-phone-key.ts";
import { type EpochMs, type Milliseconds, MonotonicMs, type Seconds } from "../core/units.ts";
import type { MessageLink } from "../link/message-link.ts";
import { DEFAULT_STEP_TIMEOUT } from "../link/unlock.ts";
import type { StoredRevocationList } from "../store/sqlite/phone-key-store.ts";
import type { LockRuntime } from "./lock-runtime.ts";

/** What the gate needs from the hub's storage (the SQLite adapter: `PhoneKeyTables`). */
export interface PhoneGatePorts {
  /** The owner's root key, or null before the owner registered one (then every answer is refused). */
  root(): PublicKey | null;
  /** The revocation lists this lock applied (one per scope). */
  appliedLists(lockId: string): StoredRevocationList[];
  /** Persist a list this lock applied. */
  putAppliedList(lockId: string, list: StoredRevocationList): void;
  /** The user a key the hub registered (leaf serial, hex) was issued to; null for none or unknown. */
  keyUser(serial: string): string | null;
}

export interface PhoneGateOptions {
  /** The site the lock belongs to (the hub's id): `site:<id>` keys, lists and tickets apply here. */
  readonly siteId: string;
  /** Round-trip bound of the handshake. Default 1500 ms (BLE). */
  readonly roundTripBound?: Milliseconds;
  /** Accept passive (proximity-only) answers. Default false. */
  readonly allowPassive?: boolean;
  /** Skew on key, list and ticket times. Default 60 s. */
  readonly skew?: Seconds;
  /** How long to wait for the phone's answer. Default 10 s. */
  readonly timeout?: Milliseconds;
  /** Largest message accepted (carried lists make answers bigger). Default 16 KiB. */
  readonly maxMessageBytes?: number;
}

/** What one served exchange came to (for the caller's logs and tests; the audit log has it too). */
export type PhoneServeOutcome =
  | { readonly ok: true; readonly verified: VerifiedPhoneKey; readonly result: ResultBody }
  | { readonly ok: false; readonly code: ErrorCode; readonly result: ResultBody };

/** The lock's phone-key state, for its status report. */
export interface PhoneGateStatus {
  /** An owner root key is registered: phone keys can work here. */
  readonly ready: boolean;
  /** Age of the lock's newest revocation list (the older of site and lock lists), ms; null with none. */
  readonly revocationHorizon: number | null;
  readonly lists: readonly { scope: string; version: number; issuedAt: number }[];
  /** Carried objects the lock refused since start (bad signature, wrong scope, stale challenge). */
  readonly refusedObjects: number;
}

const DEFAULT_SKEW = 60 as Seconds;
const DEFAULT_GATE_MAX_MESSAGE = 16 * 1024;
/** Refusals that an untrusted clock may have caused: reported as LK_CLOCK_UNTRUSTED. */
const TIME_REFUSALS: ReadonlySet<ErrorCode> = new Set(["LK_LINK_KEY_EXPIRED", "LK_LINK_LEASE_STALE"]);

export class PhoneGate {
  readonly #crypto: CryptoPort;
  readonly #runtime: LockRuntime;
  readonly #ports: PhoneGatePorts;
  readonly #o: PhoneGateOptions;
  readonly #cache = new VerifiedLinkCache(256);
  #handshake: LockHandshake | null = null;
  #root: PublicKey | null = null;
  /** The lists this lock applied, by scope text, verified. */
  readonly #lists = new Map<string, { verified: VerifiedRevocationList; hash: string }>();
  #timeChallenge: PendingChallenge | null = null;
  #refusedObjects = 0;

  constructor(crypto: CryptoPort, runtime: LockRuntime, ports: PhoneGatePorts, options: PhoneGateOptions) {
    this.#crypto = crypto;
    this.#runtime = runtime;
    this.#ports = ports;
    this.#o = options;
    this.reload();
  }

  get lockId(): string {
    return this.#runtime.id;
  }

  /**
   * Re-read the root key and the applied lists (after the owner registered or replaced the root). Lists
   * are re-verified at their own issue time; one that no longer verifies (another root) is dropped.
   */
  reload(): void {
    const root = this.#ports.root();
    this.#root = root;
    this.#cache.clear();
    this.#lists.clear();
    this.#handshake =
      root === null
        ? null
        : new LockHandshake(this.#crypto, {
            lockId: this.lockId,
            siteId: this.#o.siteId,
            owner: root,
            ...(this.#o.roundTripBound !== undefined ? { roundTripBound: this.#o.roundTripBound } : {}),
            ...(this.#o.allowPassive !== undefined ? { allowPassive: this.#o.allowPassive } : {}),
            skew: this.#skew,
            maxMessageBytes: this.#maxMessage,
            cache: this.#cache,
            isRevoked: (serial) => this.isRevoked(serial),
            onCarry: (carry, wallNow) => this.#onCarry(carry, wallNow),
            statusTicketAt: (t, holder, now) => this.#statusTicketAt(t, holder, now),
          });
    if (root === null) return;
    for (const stored of this.#ports.appliedLists(this.lockId)) {
      try {
        const v = this.#verifyList(
          { signerChain: stored.signerChain, object: stored.list },
          (stored.issuedAt * 1000) as EpochMs,
        );
        this.#lists.set(scopeToText(v.scope), { verified: v, hash: toHex(this.#crypto.sha256(stored.list)) });
      } catch {
        // A list of another root: it revokes nothing under the current one.
      }
    }
  }

  get #skew(): Seconds {
    return this.#o.skew ?? DEFAULT_SKEW;
  }

  get #maxMessage(): number {
    return this.#o.maxMessageBytes ?? DEFAULT_GATE_MAX_MESSAGE;
  }

  /** Is a serial revoked by any list this lock holds (site or lock)? */
  isRevoked(serial: Uint8Array): boolean {
    for (const { verified } of this.#lists.values()) if (isRevoked(verified, serial)) return true;
    return false;
  }

  status(): PhoneGateStatus {
    const now = this.#runtime.readClockQuiet().now;
    let horizon: number | null = null;
    const lists: { scope: string; version: number; issuedAt: number }[] = [];
    for (const [scope, { verified }] of this.#lists) {
      const age = revocationHorizon(verified, now);
      if (age !== null) horizon = Math.max(horizon ?? 0, age);
      lists.push({ scope, version: verified.version, issuedAt: verified.issuedAt });
    }
    return {
      ready: this.#root !== null,
      revocationHorizon: horizon,
      lists,
      refusedObjects: this.#refusedObjects,
    };
  }

  /**
   * Apply a revocation list (carried by a phone, or pushed by the hub): verify it, keep it if newer than the
   * lock's list for its scope, persist and audit it. Returns true when it was applied.
   * @throws LatchkeyError LK_ENVELOPE_* / LK_SIGNER_REFUSED / LK_SCOPE_MISMATCH / LK_REVOCATION_* /
   *   LK_KEYS_NOT_SET_UP
   */
  applyList(obj: CarriedObject, now: EpochMs = this.#runtime.readClockQuiet().now): boolean {
    const hash = toHex(this.#crypto.sha256(obj.object));
    for (const l of this.#lists.values()) if (l.hash === hash) return false; // the one it holds
    const candidate = this.#verifyList(obj, now);
    const scope = scopeToText(candidate.scope);
    const current = this.#lists.get(scope)?.verified ?? null;
    const { applied } = applyNewer(current, candidate);
    if (!applied) return false;
    const stored: StoredRevocationList = {
      scope,
      version: candidate.version,
      issuedAt: candidate.issuedAt,
      list: obj.object,
      signerChain: obj.signerChain,
    };
    this.#ports.putAppliedList(this.lockId, stored);
    this.#lists.set(scope, { verified: candidate, hash });
    this.#runtime.audit(AuditKind.RevocationApplied, {
      scope,
      version: candidate.version,
      issuedAt: candidate.issuedAt,
      ranges: candidate.ranges.length,
      signer: candidate.signer,
    });
    return true;
  }

  /** What the core checks a carried object's signer with: this lock, its root and lists; null without a root. */
  #authority(obj: CarriedObject): AuthorityContext | null {
    const root = this.#root;
    if (root === null) return null;
    return {
      root,
      lockId: this.lockId,
      siteId: this.#o.siteId,
      skew: this.#skew,
      signerChain: obj.signerChain,
      isRevoked: (s) => this.isRevoked(s),
    };
  }

  #verifyList(obj: CarriedObject, now: EpochMs): VerifiedRevocationList {
    const ctx = this.#authority(obj);
    if (ctx === null) throw this.#notSetUp();
    return verifyRevocationList(this.#crypto, obj.object, { ...ctx, now });
  }

  #notSetUp(): LatchkeyError {
    return new LatchkeyError("LK_KEYS_NOT_SET_UP", "no owner root key is registered at this hub");
  }

  /** Time ticket first (it may make the clock trusted), then lists, at the resulting time. Never throws. */
  #onCarry(carry: Carry, wallNow: EpochMs): EpochMs {
    let now = wallNow;
    if (carry.time !== null) {
      try {
        now = this.#applyTimeTicket(carry.time) ?? now;
      } catch {
        this.#refusedObjects++;
      }
    }
    for (const l of carry.lists) {
      try {
        this.applyList(l, now);
      } catch {
        this.#refusedObjects++;
      }
    }
    return now;
  }

  /** Returns the lock's new time when the ticket set the clock. */
  #applyTimeTicket(obj: CarriedObject): EpochMs | null {
    const ctx = this.#authority(obj);
    if (ctx === null) return null;
    const ticket = verifyTimeTicket(this.#crypto, obj.object, ctx);
    const signer = ticket.signer;
    const decision = decideTimeTicket(ticket, {
      reading: this.#runtime.readClockQuiet(),
      challenge: this.#timeChallenge,
      monotonicNow: MonotonicMs(this.#runtime.monotonicNow()),
    });
    if (decision.action === "setTime") {
      this.#timeChallenge = null;
      this.#runtime.setClockFromTicket(decision.time, signer);
      return this.#runtime.readClock().now;
    }
    if (decision.action === "raiseFloor") this.#runtime.raiseFloor(decision.floor, signer);
    return null;
  }

  #statusTicketAt(t: CarriedObject, holder: PublicKey, now: EpochMs): EpochMs | null {
    const ctx = this.#authority(t);
    if (ctx === null) return null;
    try {
      return statusTicketAt(this.#crypto, t.object, { ...ctx, now, holder });
    } catch {
      this.#refusedObjects++;
      return null;
    }
  }

  /** A fresh time challenge for the Result of a refusal caused by an untrusted clock. */
  #newTimeChallenge(): Uint8Array {
    const nonce = this.#crypto.randomBytes(TIME_CHALLENGE_BYTES);
    this.#timeChallenge = { nonce, issuedAt: MonotonicMs(this.#runtime.monotonicNow()) };
    return nonce;
  }

  /**
   * Serve one exchange: send a Challenge, judge the Answer, decide, reply. The link's arrival times must be
   * on the runtime's monotonic clock (`new MessageLink(t, { now: () => runtime.monotonicNow() })`).
   * Resolves with the outcome; rejects only when no answer came (LK_LINK_TIMEOUT / LK_LINK_CLOSED / framing).
   */
  async serve(link: MessageLink): Promise<PhoneServeOutcome> {
    const handshake = this.#handshake;
    if (handshake === null) {
      link.send(encodeAbort("LK_KEYS_NOT_SET_UP"));
      return {
        ok: false,
        code: "LK_KEYS_NOT_SET_UP",
        result: { accepted: false, code: "LK_KEYS_NOT_SET_UP" },
      };
    }
    link.send(handshake.challenge(this.#runtime.readClockQuiet().now, this.#mono()));
    const { message, at } = await link.next(this.#o.timeout ?? DEFAULT_STEP_TIMEOUT);
    const reading = this.#runtime.readClock();
    const outcome = handshake.answer(message, reading.now, at);
    if (!outcome.ok) return this.#refused(link, outcome);

    const v = outcome.verified;
    const check: PhoneKeyCheck = {
      action: v.action === LinkAction.Lock ? "lock" : "unlock",
      rights: v.rights,
      schedule: v.key.schedule,
      userId: this.#ports.keyUser(v.serials[v.serials.length - 1]!),
      serial: v.serials[v.serials.length - 1]!,
      holderKeyId: v.holderKeyId,
    };
    const extra: Record<string, JsonValue> = {
      intent: v.intent.kind,
      roundTripMs: Math.round(v.roundTrip),
      links: v.serials.length,
    };
    const r = await this.#runtime.attempt({ source: "phone", phone: check }, extra);
    let result: ResultBody;
    if (r.decision?.outcome === "grant") result = { accepted: true };
    else {
      const reason = r.decision?.outcome === "deny" ? r.decision.reason : null;
      if (reason === "clock_untrusted")
        result = { accepted: false, code: "LK_CLOCK_UNTRUSTED", timeChallenge: this.#newTimeChallenge() };
      else if (reason === "mode_forbids") result = { accepted: false, code: "LK_MODE_FORBIDS" };
      else result = { accepted: false, code: "LK_ACCESS_DENIED" };
    }
    link.send(LockHandshake.reply(outcome, result));
    return { ok: true, verified: v, result };
  }

  #mono(): MonotonicMs {
    return MonotonicMs(this.#runtime.monotonicNow());
  }

  #refused(link: MessageLink, outcome: Extract<AnswerOutcome, { ok: false }>): PhoneServeOutcome {
    const { refusal } = outcome;
    const reading = this.#runtime.readClock();
    let result: ResultBody = { accepted: false, code: refusal.code };
    if (!reading.trusted && TIME_REFUSALS.has(refusal.code) && outcome.channel !== null) {
      result = { accepted: false, code: "LK_CLOCK_UNTRUSTED", timeChallenge: this.#newTimeChallenge() };
    }
    const data: Record<string, JsonValue> = {
      source: "phone",
      credentialType: "phoneKey",
      reason:
        !reading.trusted && result.accepted === false && result.code === "LK_CLOCK_UNTRUSTED"
          ? "clock_untrusted"
          : refusal.code === "LK_LINK_REVOKED"
            ? "revoked"
            : (refusal.keyRefusal ?? "link_refused"),
      code: refusal.code,
    };
    if (refusal.link !== undefined) data.link = refusal.link;
    this.#runtime.audit(AuditKind.AccessDenied, data, reading);
    link.send(LockHandshake.reply(outcome, result));
    return { ok: false, code: result.accepted ? refusal.code : result.code, result };
  }
}
