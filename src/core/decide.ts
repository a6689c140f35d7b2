/**
 * The decision engine: `decide(state, attempt, now)` answers grant or deny, with a stable reason for
 * every deny. Pure: no I/O, no clock read, no randomness. The lock runtime builds the state, hashes a
 * typed PIN into a digest before calling (digits never reach this module), writes the decision to the
 * durable audit log and only then moves the bolt.
 *
 * Semantics follow Matter 1.3 § 5.2 (Door Lock): UserType (§ 5.2.6.16), UserStatus (§ 5.2.6.15),
 * OperatingMode (§ 5.2.6.13), schedules (§ 5.2.10.14–19), wrong-code lockout (§ 5.2.9.32–33).
 */
import { timingSafeEqualHex } from "./crypto.ts";
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
} as const;
export type DenyReason = (typeof DenyReason)[keyof typeof DenyReason];

/** What was presented. PINs arrive only as their keyed digest (see `credentials/pin-policy.ts`). */
export type Attempt =
  | { readonly source: typeof OperationSource.Keypad; readonly pinDigest: string }
  | { readonly source: typeof OperationSource.Rfid; readonly cardId: string }
  | { readonly source: typeof OperationSource.Biometric; readonly slot: number }
  /** A remote unlock by an already authenticated user (API token, later Matter fabric / phone key). */
  | { readonly source: typeof OperationSource.Remote; readonly userId: string };

/** Users and credentials of a hub, indexed for O(1) lookup. A key may map to several credentials on different locks. */
export interface CredentialIndex {
  readonly users: ReadonlyMap<string, User>;
  /** Every credential of a user (remote attempts use it to find which locks the user may open). */
  readonly byUser: ReadonlyMap<string, readonly Credential[]>;
  readonly pins: ReadonlyMap<string, readonly PinCredential[]>;
  readonly cards: ReadonlyMap<string, readonly RfidCredential[]>;
  readonly fingerprints: ReadonlyMap<number, readonly FingerprintCredential[]>;
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
  | { readonly kind: "disableUser"; readonly userId: string };

export type Decision =
  | {
      readonly outcome: "grant";
      readonly userId: string;
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

/**
 * Decide one access attempt.
 *
 * @param state the lock's view: mode, battery band, clock trust, per-input lockouts, credential index
 * @param attempt what was presented (PIN as its keyed digest, normalised card id, fingerprint slot, or an authenticated remote user)
 * @param now the trusted time (ms since epoch) from {@link observeClock}
 * @returns a grant (with effects to persist: first use, disabling a disposable user) or a deny with a {@link DenyReason}
 *
 * Order of checks: input lockout → credential lookup → user status/type → OperatingMode → jam →
 * battery reserve → clock trust (time-bound users only) → schedules → disposable/expiring use.
 * Never throws for any attempt.
 */
export function decide(state: DecisionState, attempt: Attempt, now: EpochMs): Decision {
  const input = lockoutInputOf(attempt);
  if (input !== null && isDisabled(state.lockouts[input], now)) return deny(DenyReason.Lockout);

  const match = lookup(state, attempt);
  if ("reason" in match) return deny(match.reason, null, null, true);
  const { user, credential } = match;

  if (user.userStatus !== UserStatus.OccupiedEnabled) return deny(DenyReason.UserDisabled, user, credential);
  if (user.userType === UserType.NonAccess) return deny(DenyReason.NonAccessUser, user, credential);
  if (!modeAllows(state.operatingMode, attempt.source, user))
    return deny(DenyReason.ModeForbids, user, credential);
  if (state.lockState === LockState.Jammed) return deny(DenyReason.LockJammed, user, credential);
  if (state.battery === BatteryLevel.Critical && !isPrivileged(user)) {
    return deny(DenyReason.BatteryReserve, user, credential);
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

  const duress = credential?.type === "pin" && credential.duress;
  return { outcome: "grant", userId: user.id, credentialId: credential?.id ?? null, duress, effects };
}
