/**
 * The decision engine: `decide(state, attempt, now)` answers grant or deny, with a stable reason for
 * every deny. Pure: no I/O, no clock read, no randomness. The lock runtime builds the state, hashes a
 * typed PIN into a digest before calling (digits never reach this module), writes the decision to the
 * durable audit log and only then moves the bolt.
 *
 * Authenticator-app (TOTP) codes need the secret, an HMAC and the time, so the runtime verifies them
 * (`credentials/totp.ts`) and passes the outcome in the keypad attempt as a {@link TotpCheck}; this
 * module decides what that outcome means (dual credential, accept once, clock trust, scope).
 *
 * Semantics follow Matter 1.3 § 5.2 (Door Lock): UserType (§ 5.2.6.16), UserStatus (§ 5.2.6.15),
 * OperatingMode (§ 5.2.6.13), schedules (§ 5.2.10.14–19), wrong-code lockout (§ 5.2.9.32–33).
 */
import type {
  GuestCodeDecode,
  GuestCodeKind,
  GuestCodeRefusal,
  GuestCodeUsage,
} from "./credentials/guest-code.ts";
import { timingSafeEqualHex } from "./crypto.ts";
import { KeyRight, type KeyWindow } from "./keys/digital-key.ts";
import { type InputLockoutState, isDisabled, LockoutInput } from "./lockout.ts";
import {
  BatteryLevel,
  type Credential,
  type FingerprintCredential,
  inScope,
  LockState,
  OperatingMode,
  OperationSource,
  type PinCredential,
  type RfidCredential,
  Role,
  type TotpCredential,
  type User,
  UserStatus,
  UserType,
} from "./model.ts";
import { inWeekDaySchedule, inYearDaySchedule, type LocalTime, localTimeIn } from "./schedule.ts";
import { addMs, type EpochMs, secondsToMs } from "./units.ts";

/** Every reason an attempt can be denied. Stable ids: they are stored in the audit log and shown in the API. */
export const DenyReason = {
  /** No credential matches (wrong PIN, unknown card, unenrolled finger, unknown remote user). */
  UnknownCredential: "unknown_credential",
  /** The credential exists but is not scoped to this lock. */
  WrongLock: "wrong_lock",
  /** The user's UserStatus is OccupiedDisabled (suspended, or a used disposable user). */
  UserDisabled: "user_disabled",
  /** UserType NonAccess never opens. */
  NonAccessUser: "non_access_user",
  /** Outside every week-day / year-day window of a schedule-bound user. */
  OutsideSchedule: "outside_schedule",
  /** A disposable user already used, or an expiring user past its timeout. */
  Expired: "expired",
  /** The input (keypad, reader, fingerprint) is disabled after too many wrong attempts. */
  Lockout: "lockout",
  /** The OperatingMode forbids this source (Privacy; Vacation for non-programming users; NoRemoteLockUnlock). */
  ModeForbids: "mode_forbids",
  /** Battery critical: the remaining reserve is kept for owners and programming users. */
  BatteryReserve: "battery_reserve",
  /** A time-limited credential while the lock's clock is not trusted (set back or lost). */
  ClockUntrusted: "clock_untrusted",
  /** The bolt is jammed; the actuator will not be driven until the jam is cleared. */
  LockJammed: "lock_jammed",
  /**
   * A PIN alone from a user whose authenticator (TOTP) credential requires the PIN plus the code
   * (Matter's Dual credential rule). Not a wrong entry: the PIN was right.
   */
  SecondCredentialRequired: "second_credential_required",
  /** The right PIN followed by an authenticator code that is wrong, too old or not yet valid. Counts as a wrong entry. */
  TotpInvalid: "totp_invalid",
  /** An authenticator code already used (RFC 6238 § 5.2 accept once), or older than one used. Counts as a wrong entry. */
  TotpReplayed: "totp_replayed",
  /** A guest code revoked by an admin or its issuer (docs/protocol/guest-codes.md § 5). */
  Revoked: "revoked",
  /** A one-time or use-limited guest code whose uses are spent. */
  UsedUp: "used_up",
  /** An authentic guest code whose window has not started yet (not a wrong entry). */
  NotYetValid: "not_yet_valid",
  /** The lock's guest-code state table is full, so a limited code cannot be recorded: fail closed. */
  StateFull: "state_full",
  /** A phone key without the right for the action asked (unlock or lock). */
  KeyRightMissing: "key_right_missing",
} as const;
export type DenyReason = (typeof DenyReason)[keyof typeof DenyReason];

/**
 * What the runtime found when it checked an authenticator (TOTP) code typed at the keypad (RFC 6238
 * § 5.2, `verifyTotp`). Never the digits.
 *
 * - `dual`: the entry was a PIN followed by the code; `pinDigest` of the attempt is the PIN part's
 *   digest and the code was checked against that PIN's user's TOTP credentials that require a PIN.
 * - `alone`: the entry was a code on its own, checked against the credentials that open without a PIN.
 *
 * `accepted` carries the time step T of the code (persisted as the credential's `lastStep`);
 * `replayed` means the code matched but at or below `lastStep`; `mismatch` that it matched nothing in
 * the window. `credentialId` is null only when a mismatch cannot be pinned to one credential.
 */
export type TotpCheck =
  | {
      readonly mode: "dual" | "alone";
      readonly outcome: "accepted";
      readonly credentialId: string;
      readonly step: number;
    }
  | {
      readonly mode: "dual" | "alone";
      readonly outcome: "replayed" | "mismatch";
      readonly credentialId: string | null;
    };

/**
 * An authentic guest code typed at the keypad, as the runtime found it (`decodeGuestCode` then
 * `evaluateGuestCode`, docs/protocol/guest-codes.md). Never the digits.
 */
export interface GuestCodeCheck {
  readonly issuerId: string;
  readonly epoch: number;
  readonly codeId: string;
  readonly kind: GuestCodeKind;
  /** Why the code's window or the lock's state refuses it; null when it may open. */
  readonly refusal: GuestCodeRefusal | "state_full" | null;
  /** The per-code record to persist with the grant (one-time, use-limited, first-use); null for none. */
  readonly record: GuestCodeUsage | null;
}

const GUEST_REFUSAL: Record<GuestCodeRefusal | "state_full", DenyReason> = {
  revoked: DenyReason.Revoked,
  used_up: DenyReason.UsedUp,
  expired: DenyReason.Expired,
  not_yet_valid: DenyReason.NotYetValid,
  outside_schedule: DenyReason.OutsideSchedule,
  state_full: DenyReason.StateFull,
};

/** The keypad attempt for an authentic guest code: its decode and the lock state's verdict (no digits). */
export function guestCodeAttempt(
  d: Extract<GuestCodeDecode, { status: "match" }>,
  refusal: GuestCodeCheck["refusal"],
  record: GuestCodeUsage | null,
): Attempt {
  const guestCode = {
    issuerId: d.issuerId,
    epoch: d.epoch,
    codeId: d.codeId,
    kind: d.params.kind,
    refusal,
    record,
  };
  return { source: "keypad", pinDigest: "", guestCode };
}

/**
 * A phone key whose chain and transcript signature the handshake verified (docs/protocol/link.md
 * § "At the lock"), as decide() needs it. The runtime names the user the key was issued to when the hub
 * registered it (null for a key delegated offline, which then decides on its own, like a guest code).
 */
export interface PhoneKeyCheck {
  readonly action: "unlock" | "lock";
  /** The leaf key's rights (KeyRight bits). */
  readonly rights: number;
  /** The leaf key's week-day windows in the lock's time zone, or null for none. */
  readonly schedule: readonly KeyWindow[] | null;
  readonly userId: string | null;
  /** Serial of the leaf key (hex) and key id of its holder (hex): for the audit log. */
  readonly serial: string;
  readonly holderKeyId: string;
}

/** What was presented. PINs arrive only as their keyed digest (see `credentials/pin-policy.ts`). */
export type Attempt =
  | {
      readonly source: typeof OperationSource.Keypad;
      /** An authentic guest code: decided on its own (no user); `pinDigest` is then ignored. */
      readonly guestCode?: GuestCodeCheck;
      readonly pinDigest: string;
      /** An authenticator code in the same entry, already checked by the runtime. */
      readonly totp?: TotpCheck;
    }
  | { readonly source: typeof OperationSource.Rfid; readonly cardId: string }
  | { readonly source: typeof OperationSource.Biometric; readonly slot: number }
  /** A remote unlock by an already authenticated user (API token, later Matter fabric / phone key). */
  | { readonly source: typeof OperationSource.Remote; readonly userId: string }
  /** A verified phone key (docs/protocol/link.md); time-limited by construction (nbf/exp). */
  | { readonly source: typeof OperationSource.Phone; readonly phone: PhoneKeyCheck };

/** Users and credentials of a hub, indexed for O(1) lookup. A key may map to several credentials on different locks. */
export interface CredentialIndex {
  readonly users: ReadonlyMap<string, User>;
  /** Every credential of a user (remote attempts use it to find which locks the user may open). */
  readonly byUser: ReadonlyMap<string, readonly Credential[]>;
  readonly pins: ReadonlyMap<string, readonly PinCredential[]>;
  readonly cards: ReadonlyMap<string, readonly RfidCredential[]>;
  readonly fingerprints: ReadonlyMap<number, readonly FingerprintCredential[]>;
  /** Authenticator (TOTP) credentials by user: a code is checked against the user its PIN identified. */
  readonly totpByUser: ReadonlyMap<string, readonly TotpCredential[]>;
  /** The TOTP credentials that open without a PIN (`requirePin` false; at most 10 per lock). */
  readonly totpAlone: readonly TotpCredential[];
}

/** Everything decide() needs about one lock at one moment. */
export interface DecisionState {
  readonly lockId: string;
  /** IANA zone the schedules are evaluated in. */
  readonly timeZone: string;
  readonly operatingMode: OperatingMode;
  readonly lockState: LockState;
  readonly battery: BatteryLevel;
  readonly clockTrusted: boolean;
  readonly lockouts: Readonly<Record<LockoutInput, InputLockoutState>>;
  readonly index: CredentialIndex;
}

/** A state change decide() asks the runtime to persist together with the decision. */
export type Effect =
  | { readonly kind: "markFirstUse"; readonly userId: string; readonly at: EpochMs }
  | { readonly kind: "disableUser"; readonly userId: string }
  /** Accept once (RFC 6238 § 5.2): persist the code's time step as the credential's `lastStep` with the grant. */
  | { readonly kind: "acceptTotpStep"; readonly credentialId: string; readonly step: number }
  /** Record a guest code's use (one-time, use-limited, first-use) with the grant. */
  | { readonly kind: "guestCodeUse"; readonly record: GuestCodeUsage };

export type Decision =
  | {
      readonly outcome: "grant";
      /** The user; null for a guest code (it belongs to no user: the audit names its issuer and id). */
      readonly userId: string | null;
      readonly credentialId: string | null;
      /** A duress PIN: open as normal, raise a silent alarm. */
      readonly duress: boolean;
      readonly effects: readonly Effect[];
    }
  | {
      readonly outcome: "deny";
      readonly reason: DenyReason;
      readonly userId: string | null;
      readonly credentialId: string | null;
      /** Counts towards WrongCodeEntryLimit on the attempt's input. */
      readonly countsAsWrongEntry: boolean;
      readonly effects: readonly Effect[];
    };

/** The lockout input an attempt counts against (remote attempts have none). */
export function lockoutInputOf(attempt: Attempt): LockoutInput | null {
  switch (attempt.source) {
    case "keypad":
      return LockoutInput.Keypad;
    case "rfid":
      return LockoutInput.Reader;
    case "biometric":
      return LockoutInput.Fingerprint;
    case "remote":
    case "phone":
      return null;
  }
}

const NO_EFFECTS: readonly Effect[] = [];

function deny(
  reason: DenyReason,
  user: User | null = null,
  credential: Credential | null = null,
  countsAsWrongEntry = false,
): Decision {
  return {
    outcome: "deny",
    reason,
    userId: user?.id ?? null,
    credentialId: credential?.id ?? null,
    countsAsWrongEntry,
    effects: NO_EFFECTS,
  };
}

type Match = { user: User; credential: Credential | null } | { reason: DenyReason };

function pickInScope<C extends Credential>(
  candidates: readonly C[] | undefined,
  lockId: string,
  accept: (c: C) => boolean,
): C | "wrongLock" | null {
  if (candidates === undefined) return null;
  let seen = false;
  for (const c of candidates) {
    if (!accept(c)) continue;
    seen = true;
    if (inScope(c.locks, lockId)) return c;
  }
  return seen ? "wrongLock" : null;
}

function lookup(state: DecisionState, attempt: Attempt): Match {
  const { index, lockId } = state;
  let found: Credential | "wrongLock" | null;
  switch (attempt.source) {
    case "keypad":
      // Keyed digests make map lookup leak nothing useful; the final comparison is constant-time anyway.
      found = pickInScope(index.pins.get(attempt.pinDigest), lockId, (c) =>
        timingSafeEqualHex(c.pinDigest, attempt.pinDigest),
      );
      break;
    case "rfid":
      found = pickInScope(index.cards.get(attempt.cardId), lockId, () => true);
      break;
    case "biometric":
      found = pickInScope(index.fingerprints.get(attempt.slot), lockId, () => true);
      break;
    case "remote": {
      // Owners and admins may operate every lock remotely; anyone else only a lock one of their
      // credentials is scoped to (remote access never widens what the user can open in person).
      const user = index.users.get(attempt.userId);
      if (!user) return { reason: DenyReason.UnknownCredential };
      if (user.role === Role.Owner || user.role === Role.Admin) return { user, credential: null };
      const scoped = (index.byUser.get(user.id) ?? []).some((c) => inScope(c.locks, lockId));
      return scoped ? { user, credential: null } : { reason: DenyReason.WrongLock };
    }
    case "phone": {
      // The key's scope was checked by the handshake; the user only has to exist still.
      const user = attempt.phone.userId === null ? undefined : index.users.get(attempt.phone.userId);
      return user ? { user, credential: null } : { reason: DenyReason.UnknownCredential };
    }
  }
  if (found === null) return { reason: DenyReason.UnknownCredential };
  if (found === "wrongLock") return { reason: DenyReason.WrongLock };
  const user = index.users.get(found.userId);
  return user ? { user, credential: found } : { reason: DenyReason.UnknownCredential };
}

const TIME_BOUND_TYPES: ReadonlySet<string> = new Set([
  UserType.WeekDaySchedule,
  UserType.YearDaySchedule,
  UserType.ScheduleRestricted,
  UserType.ExpiringDisposable,
]);

/** Is `now` inside one of a phone key's week-day windows ([start, end) minutes of the local day)? */
function inKeyWindows(windows: readonly KeyWindow[], timeZone: string, now: EpochMs): boolean {
  try {
    const local = localTimeIn(timeZone, now);
    return windows.some(
      (w) =>
        (w.daysMask & (1 << local.weekday)) !== 0 &&
        local.minuteOfDay >= w.startMinute &&
        local.minuteOfDay < w.endMinute,
    );
  } catch {
    return false;
  }
}

/**
 * A phone key that names no user (delegated offline): unprivileged, like a guest code. Privacy and
 * Vacation refuse it, a jam or the battery reserve stop it, an untrusted clock refuses it (every key has
 * nbf/exp), then its own week-day windows decide.
 */
function decideAnonymousKey(state: DecisionState, key: PhoneKeyCheck, now: EpochMs): Decision {
  const mode = state.operatingMode;
  if (mode === OperatingMode.Privacy || mode === OperatingMode.Vacation) return deny(DenyReason.ModeForbids);
  if (state.lockState === LockState.Jammed) return deny(DenyReason.LockJammed);
  if (state.battery === BatteryLevel.Critical) return deny(DenyReason.BatteryReserve);
  if (!state.clockTrusted) return deny(DenyReason.ClockUntrusted);
  if (key.schedule !== null && !inKeyWindows(key.schedule, state.timeZone, now))
    return deny(DenyReason.OutsideSchedule);
  return { outcome: "grant", userId: null, credentialId: null, duress: false, effects: NO_EFFECTS };
}

function isPrivileged(user: User): boolean {
  return user.role === Role.Owner || user.userType === UserType.Programming;
}

function modeAllows(mode: OperatingMode, source: Attempt["source"], user: User): boolean {
  switch (mode) {
    case OperatingMode.Normal:
    case OperatingMode.Passage:
      return true;
    case OperatingMode.Privacy:
      return false;
    case OperatingMode.NoRemoteLockUnlock:
      return source !== OperationSource.Remote;
    case OperatingMode.Vacation:
      return source === OperationSource.Remote || isPrivileged(user);
  }
}

function withinSchedules(user: User, local: LocalTime): boolean {
  const inWeek = user.weekDaySchedules.some((s) => inWeekDaySchedule(s, local));
  const inYear = user.yearDaySchedules.some((s) => inYearDaySchedule(s, local));
  switch (user.userType) {
    case UserType.WeekDaySchedule:
      return inWeek;
    case UserType.YearDaySchedule:
      return inYear;
    case UserType.ScheduleRestricted: {
      const hasWeek = user.weekDaySchedules.length > 0;
      const hasYear = user.yearDaySchedules.length > 0;
      return (hasWeek || hasYear) && (!hasWeek || inWeek) && (!hasYear || inYear);
    }
    default:
      return true;
  }
}

/** Schedules are validated when written; a corrupt one (or zone) fails closed here instead of throwing. */
function safelyWithinSchedules(user: User, timeZone: string, now: EpochMs): boolean {
  try {
    return withinSchedules(user, localTimeIn(timeZone, now));
  } catch {
    return false;
  }
}

/** The user's TOTP credentials at `lockId` that need the PIN first (Dual): a code after their PIN is checked against these. */
export function dualTotpAt(index: CredentialIndex, userId: string, lockId: string): TotpCredential[] {
  return (index.totpByUser.get(userId) ?? []).filter((c) => c.requirePin && inScope(c.locks, lockId));
}

/** The TOTP credentials at `lockId` that open without a PIN: a 6-digit entry that is no PIN is checked against these. */
export function aloneTotpAt(index: CredentialIndex, lockId: string): TotpCredential[] {
  return index.totpAlone.filter((c) => inScope(c.locks, lockId));
}

/** Who presented what at the keypad once the TOTP rules are applied, or the deny they lead to. */
type Presented = {
  user: User;
  /** The credential the decision names: the TOTP credential when a code was accepted, else the PIN, card, ... */
  credential: Credential | null;
  /** The PIN of the entry (its duress flag counts), if any. */
  pin: PinCredential | null;
  /** The accepted TOTP credential and step, to persist as its `lastStep`. */
  totp: { credential: TotpCredential; step: number } | null;
};

/** Apply an accepted/replayed/mismatched code (already checked by the runtime) to `candidates`. */
function judgeCode(
  state: DecisionState,
  check: TotpCheck,
  user: User,
  candidates: readonly TotpCredential[],
  pin: PinCredential | null,
): Presented | Decision {
  const named = candidates.find((c) => c.id === check.credentialId) ?? null;
  // A code's validity depends on the time: with an untrusted clock neither a match nor a mismatch
  // means anything, so refuse before judging it (not counted: nothing opens until the time is set).
  if (!state.clockTrusted) return deny(DenyReason.ClockUntrusted, user, named ?? pin);
  if (check.outcome !== "accepted") {
    const reason = check.outcome === "mismatch" ? DenyReason.TotpInvalid : DenyReason.TotpReplayed;
    return deny(reason, user, named, true);
  }
  if (named === null) return deny(DenyReason.UnknownCredential, null, null, true);
  if (named.lastStep !== null && check.step <= named.lastStep) {
    return deny(DenyReason.TotpReplayed, user, named, true);
  }
  return { user, credential: named, pin, totp: { credential: named, step: check.step } };
}

/**
 * Identify who is at the door: the credential lookup, plus for the keypad the TOTP rules (code alone,
 * PIN then code, and a PIN alone refused when its user's rule is Dual).
 */
function identify(state: DecisionState, attempt: Attempt): Presented | Decision {
  const { index, lockId } = state;
  const check = attempt.source === "keypad" ? attempt.totp : undefined;
  if (check?.mode === "alone") {
    const cred = aloneTotpAt(index, lockId).find((c) => c.id === check.credentialId);
    const user = cred ? index.users.get(cred.userId) : undefined;
    if (!cred || !user || check.outcome === "mismatch")
      return deny(DenyReason.UnknownCredential, null, null, true);
    return judgeCode(state, check, user, [cred], null);
  }

  const match = lookup(state, attempt);
  if ("reason" in match) return deny(match.reason, null, null, true);
  const { user, credential } = match;
  const pin = credential?.type === "pin" ? credential : null;
  if (attempt.source !== "keypad") return { user, credential, pin, totp: null };

  const dual = dualTotpAt(index, user.id, lockId);
  if (check === undefined) {
    if (dual.length > 0) return deny(DenyReason.SecondCredentialRequired, user, credential);
    return { user, credential, pin, totp: null };
  }
  // PIN then code from a user with no Dual TOTP here: the entry as a whole is unknown.
  if (dual.length === 0) return deny(DenyReason.UnknownCredential, null, null, true);
  return judgeCode(state, check, user, dual, pin);
}

/**
 * Decide one access attempt.
 *
 * @param state the lock's view: mode, battery band, clock trust, per-input lockouts, credential index
 * @param attempt what was presented (PIN as its keyed digest, with the runtime's {@link TotpCheck} of an
 *   authenticator code if the entry had one; normalised card id; fingerprint slot; or an authenticated remote user)
 * @param now the trusted time (ms since epoch) from {@link observeClock}
 * @returns a grant (with effects to persist: first use, disabling a disposable user, a TOTP credential's
 *   accepted step) or a deny with a {@link DenyReason}
 *
 * Order of checks: input lockout → credential lookup (for an authenticator code: the Dual rule, then
 * clock trust, then the code and accept once) → user status/type → OperatingMode → jam → battery
 * reserve → clock trust (time-bound users and phone keys) → schedules (the user's, and a phone key's
 * week-day windows) → disposable/expiring use. A phone key first needs the right for its action; one
 * that names no user is decided like a guest code.
 * Never throws for any attempt.
 */
export function decide(state: DecisionState, attempt: Attempt, now: EpochMs): Decision {
  const input = lockoutInputOf(attempt);
  if (input !== null && isDisabled(state.lockouts[input], now)) return deny(DenyReason.Lockout);
  if (attempt.source === "keypad" && attempt.guestCode) return decideGuestCode(state, attempt.guestCode);
  if (attempt.source === "phone") {
    const needed = attempt.phone.action === "lock" ? KeyRight.Lock : KeyRight.Unlock;
    if ((attempt.phone.rights & needed) === 0) return deny(DenyReason.KeyRightMissing);
    if (attempt.phone.userId === null) return decideAnonymousKey(state, attempt.phone, now);
  }

  const presented = identify(state, attempt);
  if ("outcome" in presented) return presented;
  const { user, credential, pin, totp } = presented;

  if (user.userStatus !== UserStatus.OccupiedEnabled) return deny(DenyReason.UserDisabled, user, credential);
  if (user.userType === UserType.NonAccess) return deny(DenyReason.NonAccessUser, user, credential);
  if (!modeAllows(state.operatingMode, attempt.source, user))
    return deny(DenyReason.ModeForbids, user, credential);
  if (state.lockState === LockState.Jammed) return deny(DenyReason.LockJammed, user, credential);
  if (state.battery === BatteryLevel.Critical && !isPrivileged(user)) {
    return deny(DenyReason.BatteryReserve, user, credential);
  }

  if (attempt.source === "phone") {
    // Every key is time-limited (nbf/exp): with an untrusted clock its validity means nothing.
    if (!state.clockTrusted) return deny(DenyReason.ClockUntrusted, user, credential);
    const windows = attempt.phone.schedule;
    if (windows !== null && !inKeyWindows(windows, state.timeZone, now))
      return deny(DenyReason.OutsideSchedule, user, credential);
  }
  if (TIME_BOUND_TYPES.has(user.userType)) {
    if (!state.clockTrusted) return deny(DenyReason.ClockUntrusted, user, credential);
    if (user.userType !== UserType.ExpiringDisposable && !safelyWithinSchedules(user, state.timeZone, now)) {
      return deny(DenyReason.OutsideSchedule, user, credential);
    }
  }

  const effects: Effect[] = [];
  if (user.userType === UserType.Disposable) {
    if (user.firstUsedAt !== null) return deny(DenyReason.Expired, user, credential);
    effects.push(
      { kind: "markFirstUse", userId: user.id, at: now },
      { kind: "disableUser", userId: user.id },
    );
  } else if (user.userType === UserType.ExpiringDisposable) {
    if (user.firstUsedAt === null) {
      effects.push({ kind: "markFirstUse", userId: user.id, at: now });
    } else if (
      user.expiringTimeout === null ||
      now >= addMs(user.firstUsedAt, secondsToMs(user.expiringTimeout))
    ) {
      // Past its timeout the user is disabled for good (Matter ExpiringUser), so it shows as such.
      return {
        ...deny(DenyReason.Expired, user, credential),
        effects: [{ kind: "disableUser", userId: user.id }],
      };
    }
  }
  if (totp) effects.push({ kind: "acceptTotpStep", credentialId: totp.credential.id, step: totp.step });

  const duress = pin?.duress ?? false;
  return { outcome: "grant", userId: user.id, credentialId: credential?.id ?? null, duress, effects };
}

/**
 * A guest code is an unprivileged, time-bound credential of no user: Privacy and Vacation refuse it, a
 * jam or the battery reserve stop it, an untrusted clock refuses it, then its own window and state
 * decide. None of these refusals counts as a wrong entry: the code is authentic (a wrong or forged
 * code never gets here; the runtime reports it as an unknown PIN).
 */
function decideGuestCode(state: DecisionState, gc: GuestCodeCheck): Decision {
  const mode = state.operatingMode;
  if (mode === OperatingMode.Privacy || mode === OperatingMode.Vacation) return deny(DenyReason.ModeForbids);
  if (state.lockState === LockState.Jammed) return deny(DenyReason.LockJammed);
  if (state.battery === BatteryLevel.Critical) return deny(DenyReason.BatteryReserve);
  if (!state.clockTrusted) return deny(DenyReason.ClockUntrusted);
  if (gc.refusal !== null) return deny(GUEST_REFUSAL[gc.refusal]);
  const effects: Effect[] = gc.record ? [{ kind: "guestCodeUse", record: gc.record }] : [];
  return { outcome: "grant", userId: null, credentialId: null, duress: false, effects };
}
