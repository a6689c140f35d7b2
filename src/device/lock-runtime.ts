/**
 * The lock runtime: one door's state machine. It hears the hardware (keypad, reader, fingerprint,
 * door sensor, manual key, exit button, tamper, battery), decides every attempt with the pure
 * `decide()`, commits the audit event and the decision's effects in one durable transaction, and only
 * then drives the bolt. It also runs AutoRelockTime, door-ajar and forced-open detection, battery
 * bands, clock trust, and wrong-code lockout.
 */

import type { JsonValue } from "../core/audit/canonical.ts";
import { type AuditEventInput, AuditKind } from "../core/audit/chain.ts";
import { type ClockDistrust, type ClockReading, observeClock } from "../core/clock.ts";
import { type MutableCredentialIndex, replaceTotpCredential } from "../core/credential-index.ts";
import { normalizeUid, wiegandCardId } from "../core/credentials/card-id.ts";
import {
  decodeGuestCode,
  evaluateGuestCode,
  type GuestCodeUsage,
  type IssuerKey,
} from "../core/credentials/guest-code.ts";
import { PIN_MAX_DIGITS, PIN_MIN_DIGITS, pinDigest } from "../core/credentials/pin-policy.ts";
import { TOTP_DEFAULT_DIGITS, TOTP_DEFAULT_WINDOW, verifyTotp } from "../core/credentials/totp.ts";
import { decodeWiegand } from "../core/credentials/wiegand.ts";
import type { CryptoPort } from "../core/crypto.ts";
import {
  type Attempt,
  aloneTotpAt,
  type Decision,
  type DecisionState,
  DenyReason,
  decide,
  dualTotpAt,
  type GuestCodeCheck,
  guestCodeAttempt,
  lockoutInputOf,
  type TotpCheck,
} from "../core/decide.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import {
  INITIAL_LOCKOUT,
  type InputLockoutState,
  LockoutInput,
  type LockoutPolicy,
  recordFailure,
  recordSuccess,
} from "../core/lockout.ts";
import {
  BatteryLevel,
  type DoorState,
  inScope,
  LockState,
  OperatingMode,
  OperationSource,
  type TotpCredential,
  type User,
  UserStatus,
} from "../core/model.ts";
import { localTimeIn } from "../core/schedule.ts";
import { EpochMs, type Milliseconds, secondsToMs } from "../core/units.ts";
import type { RuntimeStateStore } from "../store/edge-ports.ts";
import type { LockRecord } from "../store/sqlite/edge-store.ts";
import type { AuditLog } from "./audit-log.ts";
import type { BoltPosition, Feedback, LockHardware, Scheduler } from "./ports.ts";

/** Shared hub services a runtime uses. */
export interface RuntimeContext {
  readonly store: RuntimeStateStore;
  readonly audit: AuditLog;
  readonly crypto: CryptoPort;
  /** The device's PIN-hash secret (HMAC key). */
  readonly pinSecret: Uint8Array;
  /** The hub's current credential index (replaced when users or credentials change). */
  readonly index: () => MutableCredentialIndex;
  readonly scheduler: Scheduler;
  /** How far behind its floor the RTC may read and stay trusted. */
  readonly clockTolerance: Milliseconds;
  /** Monotonic milliseconds (never jumps when the RTC is set): measures lockouts and clock jumps. */
  readonly monotonic: () => number;
  /** Remember a credential's last use (kept in memory, flushed by the hub's periodic tick). */
  readonly noteCredentialUse: (credentialId: string, at: EpochMs) => void;
  /** The guest-code issuer keys active on a lock (at most 8; docs/protocol/guest-codes.md § 1). */
  readonly guestCodeKeys: (lockId: string) => readonly IssuerKey[];
}

/** Most per-code guest-code rows a lock keeps (docs/protocol/guest-codes.md § 5): about 4 MiB. */
export const GUEST_CODE_STATE_CAP = 65_536;

const guestKey = (issuerId: string, epoch: number, codeId: string) => `${issuerId}/${epoch}/${codeId}`;

/** The outcome of one attempt as the API reports it. */
export interface AttemptResult {
  readonly feedback: Feedback;
  readonly decision: Decision | null;
  /** seq of the access event in the audit log. */
  readonly seq: number | null;
}

/** A snapshot for the status API. */
export interface LockStatus {
  readonly lockId: string;
  readonly name: string;
  readonly lockState: LockState;
  readonly doorState: DoorState;
  readonly operatingMode: OperatingMode;
  readonly battery: { readonly percent: number; readonly millivolts: number; readonly level: BatteryLevel };
  readonly tampered: boolean;
  readonly clock: {
    readonly now: EpochMs;
    readonly rtc: EpochMs;
    readonly trusted: boolean;
    readonly distrust: string | null;
  };
  readonly lockouts: Readonly<Record<LockoutInput, InputLockoutState>>;
  readonly autoRelockTime: number;
}

/** Length of an authenticator code typed at the keypad (RFC 4226 § 5.3; the apps' default). */
const KEYPAD_CODE_DIGITS = TOTP_DEFAULT_DIGITS;
/** The longest keypad entry: a 12-digit PIN followed by a 6-digit code. */
const MAX_KEYPAD_DIGITS = PIN_MAX_DIGITS + KEYPAD_CODE_DIGITS;

const CREDENTIAL_TYPE_OF: Record<Attempt["source"], string | null> = {
  keypad: "pin",
  rfid: "rfid",
  biometric: "fingerprint",
  remote: null,
  phone: "phoneKey",
};

export class LockRuntime {
  private lockRecord: LockRecord;
  private lockState: LockState;
  private doorState: DoorState;
  private tampered = false;
  private batteryLevel: BatteryLevel;
  /** Persisted lockout counters (their `disabledUntil` is wall time, used to resume after a restart). */
  private lockouts: Record<LockoutInput, InputLockoutState>;
  /** The authoritative lockout deadlines, on the monotonic clock: setting the RTC cannot shorten them. */
  private monoLockedUntil: Record<LockoutInput, number> = { keypad: 0, reader: 0, fingerprint: 0 };
  /** The last trusted RTC reading and the monotonic time it was taken at. */
  private clockAnchor: { rtc: EpochMs; mono: number } | null = null;
  private clockDistrusted: ClockDistrust | null = null;
  private moving: Promise<BoltPosition> | null = null;
  private cancelRelock: (() => void) | null = null;
  private relockWhenClosed = false;
  private cancelAjar: (() => void) | null = null;
  private stopped = false;

  constructor(
    lock: LockRecord,
    readonly hw: LockHardware,
    private readonly ctx: RuntimeContext,
    initialBolt: BoltPosition,
  ) {
    this.lockRecord = lock;
    this.lockState = initialBolt === "jammed" ? LockState.Jammed : initialBolt;
    this.doorState = hw.door.isOpen() ? "open" : "closed";
    this.batteryLevel = this.bandOf(hw.battery.read().percent);
    const saved = ctx.store.lockouts().get(lock.id);
    this.lockouts = {
      keypad: saved?.get("keypad") ?? INITIAL_LOCKOUT,
      reader: saved?.get("reader") ?? INITIAL_LOCKOUT,
      fingerprint: saved?.get("fingerprint") ?? INITIAL_LOCKOUT,
    };
    // Resume persisted lockouts on the monotonic clock with what remained (a restart never shortens one).
    const start = this.readClockQuiet();
    for (const input of Object.values(LockoutInput)) {
      const until = this.lockouts[input].disabledUntil;
      if (until !== null && until > start.now)
        this.monoLockedUntil[input] = ctx.monotonic() + (until - start.now);
    }
    for (const u of ctx.store.guestCodeStates(lock.id))
      this.guestState.set(guestKey(u.issuerId, u.epoch, u.codeId), u);
    this.guestPrunedThrough = Number(ctx.store.getMeta(this.prunedKey()) ?? 0);
    const feedback = (p: Promise<AttemptResult>) => p.then((r) => r.feedback);
    hw.keypad.onEntry((digits) => feedback(this.keypadEntry(digits)));
    hw.reader.onUid((uid) => feedback(this.cardTap(uid)));
    hw.reader.onWiegand((frame) => feedback(this.wiegandFrame(frame)));
    hw.fingerprint.onMatch((slot) => feedback(this.fingerMatch(slot)));
    hw.exitButton.onPress(() => this.onExitButton());
    hw.manual.onTurn((to) => this.onManual(to));
    hw.door.onChange((open) => this.onDoor(open));
    hw.tamper.onChange((t) => this.onTamper(t));
  }

  get id(): string {
    return this.lockRecord.id;
  }

  get record(): LockRecord {
    return this.lockRecord;
  }

  /** Replace the lock's configuration (name, mode, settings) after a management change. */
  updateRecord(l: LockRecord): void {
    const wasPassage = this.lockRecord.operatingMode === OperatingMode.Passage;
    this.lockRecord = l;
    if (l.operatingMode === OperatingMode.Passage) this.disarmRelock();
    if (l.operatingMode === OperatingMode.Passage && this.lockState !== LockState.Unlocked) {
      void this.drive("unlocked", OperationSource.Remote, null);
    } else if (wasPassage && l.operatingMode !== OperatingMode.Passage) {
      this.armRelock();
    }
  }

  /**
   * Power-up: pick up where the door was. An unlocked bolt gets its AutoRelockTime again (a restart
   * must never leave a door open for good); Passage mode drives the bolt open.
   */
  resume(): void {
    if (this.lockRecord.operatingMode === OperatingMode.Passage) {
      if (this.lockState !== LockState.Unlocked) void this.drive("unlocked", OperationSource.Auto, null);
    } else if (this.lockState === LockState.Unlocked) {
      this.armRelock();
    }
  }

  /** Stop timers (hub shutdown). */
  stop(): void {
    this.stopped = true;
    this.disarmRelock();
    this.cancelAjar?.();
  }

  // ------------------------------------------------------------------ clock

  private floorKey(): string {
    return `clock.floor.${this.id}`;
  }

  /** The persisted time floor, cached: this runtime is its only writer (persistFloor, setClock). */
  private floorCache: EpochMs | null = null;

  // ------------------------------------------------------------------ guest codes (state)

  /** Per-code guest-code rows, mirrored from the store (written only with their audit event). */
  private readonly guestState = new Map<string, GuestCodeUsage>();
  /** Rows with drop_after ≤ this local minute were pruned: such codes are refused as expired. */
  private guestPrunedThrough = 0;

  private prunedKey(): string {
    return `guestcode.pruned.${this.id}`;
  }

  /** The lock's local wall-clock minute at `now` (null if the zone cannot say: fail closed). */
  private localMinute(now: EpochMs): number | null {
    try {
      return localTimeIn(this.lockRecord.timeZone, now).localEpochMinutes;
    } catch {
      return null;
    }
  }

  /** Number of per-code rows (for the cap and the status API). */
  get guestCodeRows(): number {
    return this.guestState.size;
  }

  /** The stored row of a code, if any. */
  guestCodeState(issuerId: string, epoch: number, codeId: string): GuestCodeUsage | undefined {
    return this.guestState.get(guestKey(issuerId, epoch, codeId));
  }

  /**
   * Revoke one guest code: its row is written (revoked, keeping its uses) with the `admin.change` event
   * in one transaction. Idempotent. Throws LK_GUESTCODE_STATE_FULL at the cap for a code with no row.
   */
  revokeGuestCode(
    r: { issuerId: string; epoch: number; codeId: string; dropAfter: number },
    audit: Record<string, JsonValue>,
  ): void {
    const k = guestKey(r.issuerId, r.epoch, r.codeId);
    const old = this.guestState.get(k);
    if (!old && this.guestState.size >= GUEST_CODE_STATE_CAP) {
      throw new LatchkeyError(
        "LK_GUESTCODE_STATE_FULL",
        "the lock's guest-code table is full: raise the issuer's epoch to revoke its codes instead",
      );
    }
    const row: GuestCodeUsage = {
      issuerId: r.issuerId,
      epoch: r.epoch,
      codeId: r.codeId,
      revoked: true,
      uses: old?.uses ?? 0,
      firstUsedAt: old?.firstUsedAt ?? null,
      dropAfter: Math.max(old?.dropAfter ?? 0, r.dropAfter),
    };
    this.ctx.audit.commit(
      [{ at: this.readClock().now, lockId: this.id, kind: AuditKind.Admin, data: audit }],
      () => this.ctx.store.putGuestCodeState(this.id, row),
    );
    this.guestState.set(k, row);
  }

  /** Forget the in-memory rows of an issuer (all epochs, or those below `belowEpoch`) after the store dropped them. */
  forgetGuestCodeRows(issuerId: string, belowEpoch?: number): void {
    for (const [k, u] of this.guestState) {
      if (u.issuerId === issuerId && (belowEpoch === undefined || u.epoch < belowEpoch))
        this.guestState.delete(k);
    }
  }

  /**
   * Housekeeping (hub tick): with a trusted clock, delete rows whose codes can no longer pass and raise
   * the watermark, so the table stays bounded. Returns the number of rows pruned.
   */
  pruneGuestCodes(): number {
    const r = this.readClockQuiet();
    const local = r.trusted ? this.localMinute(r.now) : null;
    if (local === null || local <= this.guestPrunedThrough) return 0;
    let stale = false;
    for (const u of this.guestState.values()) if (u.dropAfter <= local) stale = true;
    if (!stale) return 0;
    // The watermark first: if we stop in between, leftover rows are refused by it anyway.
    this.ctx.store.setMeta(this.prunedKey(), String(local));
    const n = this.ctx.store.pruneGuestCodeState(this.id, local);
    for (const [k, u] of this.guestState) if (u.dropAfter <= local) this.guestState.delete(k);
    this.guestPrunedThrough = local;
    return n;
  }

  private readFloor(): EpochMs {
    this.floorCache ??= EpochMs(Number(this.ctx.store.getMeta(this.floorKey()) ?? 0));
    return this.floorCache;
  }

  /** Read the RTC against the floor and the monotonic estimate, without auditing (status, housekeeping). */
  readClockQuiet(): ClockReading {
    const mono = this.ctx.monotonic();
    // Whole milliseconds: a monotonic clock may be fractional (performance.now), event times are integers.
    const expected = this.clockAnchor
      ? EpochMs(Math.floor(this.clockAnchor.rtc + (mono - this.clockAnchor.mono)))
      : null;
    const reading = observeClock(
      this.hw.rtc.now(),
      this.hw.rtc.powerLost(),
      this.readFloor(),
      this.ctx.clockTolerance,
      expected,
    );
    if (reading.trusted) this.clockAnchor = { rtc: reading.now, mono };
    return reading;
  }

  /** Read the clock for a decision; audits the transition to "untrusted" once. */
  readClock(): ClockReading {
    const reading = this.readClockQuiet();
    if (!reading.trusted && this.clockDistrusted !== reading.distrust) {
      this.clockDistrusted = reading.distrust;
      this.emit(
        AuditKind.ClockUntrusted,
        { reason: reading.distrust, rtc: this.hw.rtc.now(), floor: this.readFloor() },
        reading,
      );
    } else if (reading.trusted) {
      this.clockDistrusted = null;
    }
    return reading;
  }

  /** Persist the time floor from a trusted RTC reading (called by the hub's periodic tick and at shutdown). */
  persistFloor(): void {
    const r = this.readClockQuiet();
    if (r.trusted) {
      this.ctx.store.setMeta(this.floorKey(), String(r.floor));
      this.floorCache = r.floor;
    }
  }

  /**
   * Set the RTC from a trusted source (an owner via the API). The time floor never goes back: setting
   * the clock earlier than the floor (beyond the drift tolerance) is refused with LK_CONFLICT unless
   * `force` (an owner correcting a clock that was set too far ahead), which is audited as forced.
   */
  setClock(t: EpochMs, actorUserId: string, force = false): void {
    const before = this.hw.rtc.now();
    const floor = this.readFloor();
    const backwards = t + this.ctx.clockTolerance < floor;
    if (backwards && !force) {
      throw new LatchkeyError(
        "LK_CONFLICT",
        "that time is earlier than the lock's time floor: time-limited credentials would regain validity; pass force to reset the floor",
      );
    }
    this.hw.rtc.set(t);
    this.clockDistrusted = null;
    this.clockAnchor = { rtc: t, mono: this.ctx.monotonic() };
    const newFloor = backwards ? t : (Math.max(floor, t) as EpochMs);
    this.ctx.audit.commit(
      [
        {
          at: t,
          lockId: this.id,
          kind: AuditKind.ClockSet,
          data: { from: before, to: t, userId: actorUserId, forced: backwards },
        },
      ],
      () => this.ctx.store.setMeta(this.floorKey(), String(newFloor)),
    );
    this.floorCache = EpochMs(newFloor);
  }

  /**
   * Trusted time from a signed time ticket that answered this lock's own fresh challenge
   * (docs/protocol/digital-keys.md § "Time tickets", `decideTimeTicket` → setTime): set the RTC, persist
   * the floor, audit it with the signer.
   */
  setClockFromTicket(t: EpochMs, signer: string): void {
    const before = this.hw.rtc.now();
    this.hw.rtc.set(t);
    this.clockDistrusted = null;
    this.clockAnchor = { rtc: t, mono: this.ctx.monotonic() };
    const newFloor = Math.max(this.readFloor(), t) as EpochMs;
    this.ctx.audit.commit(
      [
        {
          at: t,
          lockId: this.id,
          kind: AuditKind.ClockSet,
          data: { from: before, to: t, source: "timeTicket", signer, forced: false },
        },
      ],
      () => this.ctx.store.setMeta(this.floorKey(), String(newFloor)),
    );
    this.floorCache = newFloor;
  }

  /**
   * Real time is at least `floor` (a signed time ticket without a challenge, `decideTimeTicket` →
   * raiseFloor): persist the higher floor. A clock behind it reads as untrusted from now on.
   */
  raiseFloor(floor: EpochMs, signer: string): void {
    if (floor <= this.readFloor()) return;
    const reading = this.readClockQuiet();
    this.ctx.audit.commit(
      [
        {
          at: reading.now,
          lockId: this.id,
          kind: AuditKind.ClockFloorRaised,
          data: { from: this.readFloor(), to: floor, signer },
        },
      ],
      () => this.ctx.store.setMeta(this.floorKey(), String(floor)),
    );
    this.floorCache = floor;
  }

  /** The runtime's monotonic clock (ms), the base of the link's round-trip and ticket freshness checks. */
  monotonicNow(): number {
    return this.ctx.monotonic();
  }

  /** Append one audit event for this lock (the phone gate's refusals and applied lists); returns its seq. */
  audit(kind: AuditKind, data: Record<string, JsonValue>, reading?: ClockReading): number {
    return this.emit(kind, data, reading);
  }

  // ------------------------------------------------------------------ inputs

  /**
   * Digits then '#' at the keypad. The digits are hashed (a PIN) or checked as an authenticator code at
   * once, and never stored or logged. How an entry is read: {@link keypadAttempt}.
   *
   * `extra` goes into the access event: a PIN carried by a Matter Lock/Unlock command is read exactly as
   * at the keypad (same user, schedule and wrong-entry lockout) with `{ source: "remote", via: "matter",
   * fabricIndex }` recorded; `action` "lock" secures the door instead (see {@link attempt}).
   */
  async keypadEntry(
    digits: string,
    extra: Record<string, JsonValue> = {},
    action: "unlock" | "lock" = "unlock",
  ): Promise<AttemptResult> {
    if (!/^\d+$/.test(digits) || digits.length > MAX_KEYPAD_DIGITS)
      return this.attempt(
        { source: "keypad", pinDigest: "" },
        { ...extra, malformed: true },
        undefined,
        action,
      );
    const reading = this.readClock();
    return this.attempt(this.keypadAttempt(digits, reading), extra, reading, action);
  }

  /**
   * Read one keypad entry (docs/protocol/totp.md, "Keypad entry"):
   *
   * 1. The whole entry is a PIN if any PIN has its digest (decide() then applies scope and, for a user
   *    whose TOTP credential requires the PIN, refuses the PIN alone).
   * 2. Otherwise, an entry of a PIN length (4–12) plus 6 digits: the last 6 are an authenticator code
   *    after the PIN, if the rest is a PIN at this lock whose user has a Dual TOTP credential here.
   * 3. Otherwise, exactly 6 digits: a code on its own, checked against this lock's TOTP credentials that
   *    open without a PIN. Only a code that matched one of them is reported; a miss reads as a wrong PIN.
   * 4. Otherwise the entry is an unknown PIN.
   *
   * The code is verified here (RFC 6238 § 5.2, one step either side, accept once) because that needs
   * the secret, HMAC and the time; decide() gets only the outcome.
   */
  private keypadAttempt(digits: string, reading: ClockReading): Attempt {
    const now = reading.now;
    const { crypto, pinSecret } = this.ctx;
    const index = this.ctx.index();
    const asPin: Attempt = { source: "keypad", pinDigest: pinDigest(crypto, pinSecret, digits) };
    if (index.pins.has(asPin.pinDigest)) return asPin;

    if (digits.length === this.lockRecord.settings.guestCodeDigits) {
      const guest = this.guestCodeAttempt(digits, reading);
      if (guest) return guest;
    }

    const pinLength = digits.length - KEYPAD_CODE_DIGITS;
    if (pinLength >= PIN_MIN_DIGITS && pinLength <= PIN_MAX_DIGITS) {
      const digest = pinDigest(crypto, pinSecret, digits.slice(0, pinLength));
      const pin = index.pins.get(digest)?.find((c) => inScope(c.locks, this.id));
      const dual = pin ? dualTotpAt(index, pin.userId, this.id) : [];
      if (dual.length > 0) {
        const totp = this.checkCode(dual, digits.slice(pinLength), now, "dual");
        return { source: "keypad", pinDigest: digest, totp };
      }
    }

    if (digits.length === KEYPAD_CODE_DIGITS) {
      const alone = aloneTotpAt(index, this.id);
      if (alone.length > 0) {
        const totp = this.checkCode(alone, digits, now, "alone");
        if (totp.outcome !== "mismatch") return { ...asPin, totp };
      }
    }
    return asPin;
  }

  /**
   * An entry of the guest-code length, decoded against this lock's issuer keys
   * (docs/protocol/guest-codes.md § 4–5). Only an authentic code (its tag matched one key) becomes a guest
   * attempt; anything else returns null and is read as a PIN, so a wrong code counts as a wrong entry.
   * With an untrusted clock the code is decoded against the runtime's estimate of the time and decide()
   * refuses it with `clock_untrusted`.
   */
  private guestCodeAttempt(digits: string, reading: ClockReading): Attempt | null {
    const keys = this.ctx.guestCodeKeys(this.id);
    if (keys.length === 0) return null;
    const local = this.localMinute(reading.now);
    if (local === null) return null;
    const settings = this.lockRecord.settings;
    let d: ReturnType<typeof decodeGuestCode>;
    try {
      d = decodeGuestCode(this.ctx.crypto, keys, digits, local, {
        digits: settings.guestCodeDigits,
        driftMinutes: settings.guestCodeDriftMinutes,
      });
    } catch {
      return null; // a configuration error opens nothing
    }
    if (d.status !== "match") return null;
    const usage = this.guestState.get(guestKey(d.issuerId, d.epoch, d.codeId));
    const ev = evaluateGuestCode(
      d,
      usage,
      reading.now,
      local,
      settings.guestCodeDriftMinutes,
      this.guestPrunedThrough,
    );
    let refusal: GuestCodeCheck["refusal"] = ev.ok ? null : ev.reason;
    let record = ev.ok ? ev.record : null;
    if (record && !usage && this.guestState.size >= GUEST_CODE_STATE_CAP) {
      refusal = "state_full";
      record = null;
    }
    return guestCodeAttempt(d, refusal, record);
  }

  /**
   * Check `code` against each of `candidates` (all of them: a handful at most). An accepted code wins
   * over a replayed one, which wins over a mismatch.
   */
  private checkCode(
    candidates: readonly TotpCredential[],
    code: string,
    now: EpochMs,
    mode: TotpCheck["mode"],
  ): TotpCheck {
    let accepted: { id: string; step: number } | null = null;
    let replayed: string | null = null;
    for (const c of candidates) {
      let r: ReturnType<typeof verifyTotp>;
      try {
        r = verifyTotp(this.ctx.crypto, c.secret, code, now, {
          step: c.step,
          digits: c.digits,
          alg: c.algorithm,
          window: TOTP_DEFAULT_WINDOW,
          lastAcceptedCounter: c.lastStep,
        });
      } catch {
        continue; // a corrupt credential (or a time before 1970) opens nothing
      }
      if (r.ok) accepted ??= { id: c.id, step: r.counter };
      else if (r.reason === "replayed") replayed ??= c.id;
    }
    if (accepted) return { mode, outcome: "accepted", credentialId: accepted.id, step: accepted.step };
    if (replayed) return { mode, outcome: "replayed", credentialId: replayed };
    return { mode, outcome: "mismatch", credentialId: candidates.length === 1 ? candidates[0]!.id : null };
  }

  /** An ISO 14443 card at the reader (UID as hex). A malformed UID is logged as a bad frame. */
  async cardTap(uid: string): Promise<AttemptResult> {
    let cardId: string;
    try {
      cardId = normalizeUid(uid);
    } catch (e) {
      return this.badFrame("uid", isLatchkeyError(e) ? e.code : "LK_CARD_FORMAT");
    }
    return this.attempt({ source: "rfid", cardId });
  }

  /** A Wiegand frame from the reader. A bad length or parity is logged as a bad frame, never matched. */
  async wiegandFrame(frame: string): Promise<AttemptResult> {
    let cardId: string;
    try {
      cardId = wiegandCardId(decodeWiegand(frame));
    } catch (e) {
      return this.badFrame("wiegand", isLatchkeyError(e) ? e.code : "LK_WIEGAND_FORMAT", frame.length);
    }
    return this.attempt({ source: "rfid", cardId }, { wiegandBits: frame.length });
  }

  /** The fingerprint sensor matched `slot` (null: no match). */
  async fingerMatch(slot: number | null): Promise<AttemptResult> {
    return this.attempt({ source: "biometric", slot: slot ?? -1 });
  }

  private badFrame(kind: string, code: string, bits?: number): AttemptResult {
    const data: Record<string, JsonValue> = { input: kind, code };
    if (bits !== undefined) data.bits = bits;
    return { feedback: "denied", decision: null, seq: this.emit(AuditKind.AlarmBadFrame, data) };
  }

  /** A remote unlock by an authenticated user (API, CLI). */
  async remoteUnlock(userId: string): Promise<AttemptResult> {
    return this.attempt({ source: "remote", userId });
  }

  /**
   * A remote lock command (Matter § 5.2.10.1 LockDoor). Refused in Privacy and NoRemoteLockUnlock;
   * allowed in Passage ("closed at will"). The caller is authorised by decide() like an unlock — same
   * user, scope and schedule rules — but securing the door is never held back by the battery reserve,
   * a jam (driving is how a jam is cleared) or the mode's unlock rules.
   */
  async remoteLock(
    userId: string,
    extra: Record<string, JsonValue> = {},
  ): Promise<{ result: BoltPosition } | { refused: DenyReason }> {
    const reading = this.readClock();
    const mode = this.lockRecord.operatingMode;
    let reason: DenyReason | null = null;
    if (mode === OperatingMode.Privacy || mode === OperatingMode.NoRemoteLockUnlock)
      reason = DenyReason.ModeForbids;
    else {
      const state = {
        ...this.decisionState(reading),
        operatingMode: OperatingMode.Normal,
        lockState: LockState.Locked,
        battery: BatteryLevel.Ok,
      };
      const d = decide(state, { source: "remote", userId }, reading.now);
      if (d.outcome === "deny") reason = d.reason;
    }
    if (reason !== null) {
      this.emit(
        AuditKind.AccessDenied,
        { ...extra, source: "remote", action: "lock", reason, userId },
        reading,
      );
      return { refused: reason };
    }
    return { result: await this.drive("locked", OperationSource.Remote, userId, extra) };
  }

  private async onExitButton(): Promise<Feedback> {
    this.emit(AuditKind.RequestToExit, {});
    if (this.lockRecord.operatingMode === OperatingMode.Privacy) this.leavePrivacy("button");
    const r = await this.drive("unlocked", OperationSource.Button, null);
    return r === "jammed" ? "error" : "granted";
  }

  private onManual(to: "locked" | "unlocked"): void {
    const from = this.lockState;
    this.lockState = to;
    this.emit(AuditKind.ManualKey, { to });
    this.emit(AuditKind.LockState, { from, to, source: OperationSource.Manual });
    if (to === "unlocked") {
      if (this.lockRecord.operatingMode === OperatingMode.Privacy) this.leavePrivacy("manual");
      this.armRelock();
    } else {
      this.disarmRelock();
    }
  }

  private leavePrivacy(source: string): void {
    const next = { ...this.lockRecord, operatingMode: OperatingMode.Normal };
    this.ctx.audit.commit(
      [
        {
          at: this.readClock().now,
          lockId: this.id,
          kind: AuditKind.Admin,
          data: { action: "mode.set", mode: "normal", source },
        },
      ],
      () => this.ctx.store.updateLock(next),
    );
    this.lockRecord = next;
  }

  private onDoor(open: boolean): void {
    if (open) {
      const forced = this.lockState === LockState.Locked;
      this.doorState = forced ? "forced" : "open";
      this.emit(AuditKind.DoorState, { door: this.doorState });
      if (forced) this.emit(AuditKind.AlarmForcedOpen, {});
      this.cancelAjar?.();
      this.cancelAjar = this.ctx.scheduler.setTimer(
        secondsToMs(this.lockRecord.settings.doorAjarTime),
        () => {
          this.cancelAjar = null;
          if (this.hw.door.isOpen() && !this.stopped) {
            this.doorState = "ajar";
            this.emit(AuditKind.AlarmDoorAjar, { after: this.lockRecord.settings.doorAjarTime });
          }
        },
      );
    } else {
      this.doorState = "closed";
      this.cancelAjar?.();
      this.cancelAjar = null;
      this.emit(AuditKind.DoorState, { door: "closed" });
      if (this.relockWhenClosed) {
        this.relockWhenClosed = false;
        const mode = this.lockRecord.operatingMode;
        if (!this.stopped && mode !== OperatingMode.Passage && this.lockState === LockState.Unlocked) {
          void this.drive("locked", OperationSource.Auto, null);
        }
      }
    }
  }

  private onTamper(tampered: boolean): void {
    this.tampered = tampered;
    this.emit(AuditKind.AlarmTamper, { tampered });
  }

  // ------------------------------------------------------------------ the decision path

  private decisionState(reading: ClockReading): DecisionState {
    return {
      lockId: this.id,
      timeZone: this.lockRecord.timeZone,
      operatingMode: this.lockRecord.operatingMode,
      lockState: this.lockState,
      battery: this.batteryLevel,
      clockTrusted: reading.trusted,
      lockouts: this.effectiveLockouts(reading.now),
      index: this.ctx.index(),
    };
  }

  /** Lockout state as decide() should see it: disabled exactly while the monotonic deadline runs. */
  private effectiveLockouts(now: EpochMs): Record<LockoutInput, InputLockoutState> {
    const mono = this.ctx.monotonic();
    const m = this.monoLockedUntil;
    const l = this.lockouts;
    if (m.keypad <= mono && m.reader <= mono && m.fingerprint <= mono) {
      // The common case: no input is disabled. Only stale persisted deadlines need hiding.
      if (
        l.keypad.disabledUntil === null &&
        l.reader.disabledUntil === null &&
        l.fingerprint.disabledUntil === null
      )
        return l;
    }
    const view = (input: LockoutInput): InputLockoutState => {
      const left = this.monoLockedUntil[input] - mono;
      return { ...this.lockouts[input], disabledUntil: left > 0 ? EpochMs(now + left) : null };
    };
    return { keypad: view("keypad"), reader: view("reader"), fingerprint: view("fingerprint") };
  }

  private policy(): LockoutPolicy {
    const s = this.lockRecord.settings;
    return {
      wrongCodeEntryLimit: s.wrongCodeEntryLimit,
      userCodeTemporaryDisableTime: s.userCodeTemporaryDisableTime,
      maxDisableTime: s.maxDisableTime,
    };
  }

  /**
   * Decide an attempt, commit its audit events and effects durably, then (on grant) drive the bolt.
   * `action` "lock" (a phone key's lock intent, a PIN sent with a Matter LockDoor) secures the door.
   * Throws LK_AUDIT_NOT_DURABLE (after the hub's fatal handler ran) if the log cannot be written —
   * in which case the bolt does not move.
   */
  async attempt(
    attempt: Attempt,
    extra: Record<string, JsonValue> = {},
    reading: ClockReading = this.readClock(),
    action: "unlock" | "lock" = "unlock",
  ): Promise<AttemptResult> {
    const now = reading.now;
    let state = this.decisionState(reading);
    const securing = action === "lock" || (attempt.source === "phone" && attempt.phone.action === "lock");
    if (securing) {
      // Securing the door follows remoteLock's rules: only Privacy refuses it; neither the battery
      // reserve nor a jam (driving is how a jam is cleared) holds it back.
      state = {
        ...state,
        operatingMode:
          state.operatingMode === OperatingMode.Privacy ? OperatingMode.Privacy : OperatingMode.Normal,
        lockState: LockState.Locked,
        battery: BatteryLevel.Ok,
      };
    }
    const decision = decide(state, attempt, now);
    const input = lockoutInputOf(attempt);
    const events: AuditEventInput[] = [];
    const base: Record<string, JsonValue> = { source: attempt.source, ...extra };
    const guest = attempt.source === "keypad" ? attempt.guestCode : undefined;
    const credentialType = guest
      ? "guestCode"
      : attempt.source === "keypad" && attempt.totp
        ? "totp"
        : CREDENTIAL_TYPE_OF[attempt.source];
    if (credentialType) base.credentialType = credentialType;
    if (guest) {
      // The code's identity, never its digits (docs/protocol/guest-codes.md § 8).
      base.issuerId = guest.issuerId;
      base.epoch = guest.epoch;
      base.codeId = guest.codeId;
      base.codeKind = guest.kind;
    }
    if (attempt.source === "phone") {
      // The key's identity (serial and holder key id), never key material.
      base.action = attempt.phone.action;
      base.serial = attempt.phone.serial;
      base.holderKeyId = attempt.phone.holderKeyId;
    }
    if (decision.userId) base.userId = decision.userId;
    if (decision.credentialId) base.credentialId = decision.credentialId;

    let nextLockout: InputLockoutState | null = null;
    let lockoutPeriod = 0;
    if (decision.outcome === "grant") {
      events.push({ at: now, lockId: this.id, kind: AuditKind.AccessGranted, data: base });
      if (decision.duress) {
        events.push({
          at: now,
          lockId: this.id,
          kind: AuditKind.AlarmDuress,
          data: { userId: decision.userId },
        });
      }
      if (input) {
        const next = recordSuccess(this.lockouts[input]);
        if (next !== this.lockouts[input]) nextLockout = next;
      }
    } else {
      events.push({
        at: now,
        lockId: this.id,
        kind: AuditKind.AccessDenied,
        data: { ...base, reason: decision.reason },
      });
      if (input && decision.countsAsWrongEntry) {
        const { next, lockedOutUntil } = recordFailure(this.lockouts[input], this.policy(), now);
        nextLockout = next;
        if (lockedOutUntil !== null) lockoutPeriod = lockedOutUntil - now;
        if (lockedOutUntil !== null) {
          events.push({
            at: now,
            lockId: this.id,
            kind: AuditKind.AlarmLockout,
            data: { input, until: lockedOutUntil, strike: next.strikes },
          });
        }
      }
    }

    const index = this.ctx.index();
    const changedUsers: User[] = [];
    const acceptedSteps: TotpCredential[] = [];
    const guestRows: GuestCodeUsage[] = [];
    for (const eff of decision.effects) {
      if (eff.kind === "guestCodeUse") {
        guestRows.push(eff.record);
        continue;
      }
      if (eff.kind === "acceptTotpStep") {
        const c = decision.userId
          ? index.totpByUser.get(decision.userId)?.find((x) => x.id === eff.credentialId)
          : undefined;
        if (c) acceptedSteps.push({ ...c, lastStep: eff.step });
        continue;
      }
      const u = changedUsers.find((x) => x.id === eff.userId) ?? index.users.get(eff.userId);
      if (!u) continue;
      const updated: User =
        eff.kind === "markFirstUse"
          ? { ...u, firstUsedAt: eff.at }
          : { ...u, userStatus: UserStatus.OccupiedDisabled };
      const i = changedUsers.findIndex((x) => x.id === updated.id);
      if (i >= 0) changedUsers[i] = updated;
      else changedUsers.push(updated);
    }

    // One durable transaction: the events and the state they imply (a TOTP code's accepted step
    // included, so the code cannot open twice, even across a restart). Nothing else rides on the unlock
    // path (the time floor and last-use times are persisted on the hub's periodic tick).
    const [accessEvent] = this.ctx.audit.commit(events, () => {
      for (const u of changedUsers) this.ctx.store.upsertUser(u);
      for (const c of acceptedSteps) this.ctx.store.setTotpLastStep(c.id, c.lastStep!);
      for (const r of guestRows) this.ctx.store.putGuestCodeState(this.id, r);
      if (input && nextLockout) this.ctx.store.setLockout(this.id, input, nextLockout);
    });
    // Durable: now update memory and move the bolt.
    if (input && nextLockout) this.lockouts = { ...this.lockouts, [input]: nextLockout };
    if (input && lockoutPeriod > 0) this.monoLockedUntil[input] = this.ctx.monotonic() + lockoutPeriod;
    for (const u of changedUsers) index.users.set(u.id, u);
    for (const c of acceptedSteps) replaceTotpCredential(index, c);
    for (const r of guestRows) this.guestState.set(guestKey(r.issuerId, r.epoch, r.codeId), r);
    if (decision.outcome === "grant" && decision.credentialId)
      this.ctx.noteCredentialUse(decision.credentialId, now);

    let feedback: Feedback;
    if (decision.outcome === "grant") {
      // A PIN carried by a remote command (Matter, see keypadEntry) moves the bolt as the remote operation it is.
      const source = extra.source === OperationSource.Remote ? OperationSource.Remote : attempt.source;
      const r = await this.drive(securing ? "locked" : "unlocked", source, decision.userId);
      feedback = r === "jammed" ? "error" : "granted";
    } else {
      // A wrong PIN and an unknown user look the same at the keypad; only a disabled input says so.
      feedback = decision.reason === "lockout" ? "locked_out" : "denied";
    }
    return { feedback, decision, seq: accessEvent?.seq ?? null };
  }

  // ------------------------------------------------------------------ the bolt

  /**
   * Drive the bolt to `target`, auditing the state change. Drives never overlap: a caller waits for
   * the motor to stop, then re-checks where the bolt is before starting its own drive.
   */
  async drive(
    target: "locked" | "unlocked",
    source: OperationSource,
    userId: string | null,
    extra: Record<string, JsonValue> = {},
  ): Promise<BoltPosition> {
    while (this.moving) await this.moving;
    if (this.lockState === target) {
      if (target === "unlocked") this.armRelock();
      return target;
    }
    const from = this.lockState;
    this.lockState = target === "unlocked" ? LockState.Unlocking : LockState.Locking;
    this.disarmRelock();
    const motion = this.hw.actuator.drive(target);
    this.moving = motion;
    let result: BoltPosition;
    try {
      result = await motion;
    } finally {
      if (this.moving === motion) this.moving = null;
    }
    this.hw.battery.onOperation?.();
    if (result === "jammed") {
      this.lockState = LockState.Jammed;
      this.emit(AuditKind.AlarmJam, { target, source });
    } else {
      this.lockState = result;
      const data: Record<string, JsonValue> = { ...extra, from, to: result, source };
      if (userId) data.userId = userId;
      this.emit(AuditKind.LockState, data);
      if (result === "unlocked") this.armRelock();
    }
    this.checkBattery();
    return result;
  }

  /** Cancel any pending auto-relock, including one waiting for the door to close. */
  private disarmRelock(): void {
    this.cancelRelock?.();
    this.cancelRelock = null;
    this.relockWhenClosed = false;
  }

  private armRelock(): void {
    this.disarmRelock();
    const t = this.lockRecord.settings.autoRelockTime;
    if (t <= 0 || this.lockRecord.operatingMode === OperatingMode.Passage || this.stopped) return;
    this.cancelRelock = this.ctx.scheduler.setTimer(secondsToMs(t), () => {
      this.cancelRelock = null;
      if (this.stopped || this.lockState !== LockState.Unlocked) return;
      if (this.lockRecord.operatingMode === OperatingMode.Passage) return;
      if (this.hw.door.isOpen()) {
        this.relockWhenClosed = true;
        return;
      }
      void this.drive("locked", OperationSource.Auto, null);
    });
  }

  // ------------------------------------------------------------------ battery

  private bandOf(percent: number): BatteryLevel {
    const s = this.lockRecord.settings;
    if (percent <= s.batteryCriticalPercent) return BatteryLevel.Critical;
    if (percent <= s.batteryLowPercent) return BatteryLevel.Low;
    return BatteryLevel.Ok;
  }

  /** Re-read the gauge; raise low/critical alarms when the band worsens. */
  checkBattery(): void {
    const reading = this.hw.battery.read();
    const band = this.bandOf(reading.percent);
    const order = { ok: 0, low: 1, critical: 2 } as const;
    if (order[band] > order[this.batteryLevel]) {
      this.emit(band === "critical" ? AuditKind.AlarmBatteryCritical : AuditKind.AlarmBatteryLow, {
        percent: reading.percent,
        millivolts: reading.millivolts,
      });
    }
    this.batteryLevel = band;
  }

  // ------------------------------------------------------------------ status

  status(): LockStatus {
    const reading = this.readClockQuiet();
    const b = this.hw.battery.read();
    return {
      lockId: this.id,
      name: this.lockRecord.name,
      lockState: this.lockState,
      doorState: this.doorState,
      operatingMode: this.lockRecord.operatingMode,
      battery: { ...b, level: this.batteryLevel },
      tampered: this.tampered,
      clock: {
        now: reading.now,
        rtc: this.hw.rtc.now(),
        trusted: reading.trusted,
        distrust: reading.distrust,
      },
      lockouts: this.effectiveLockouts(reading.now),
      autoRelockTime: this.lockRecord.settings.autoRelockTime,
    };
  }

  /** Append one event for this lock; returns its seq. */
  private emit(kind: AuditKind, data: Record<string, JsonValue>, reading?: ClockReading): number {
    const at = (reading ?? this.readClockQuiet()).now;
    return this.ctx.audit.commit([{ at, lockId: this.id, kind, data }])[0]?.seq ?? 0;
  }
}
