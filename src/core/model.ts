/**
 * The access-control model, in Matter Door Lock vocabulary (Matter 1.3 § 5.2, "Door Lock Cluster").
 * Plain data only: the lock runtime, the store and the hub all pass these shapes around.
 */
import type { HmacAlgorithm } from "./crypto.ts";
import type { EpochMs, Seconds } from "./units.ts";

/** Matter § 5.2.6.16 UserTypeEnum (the subset Latchkey supports), as stable string ids. */
export const UserType = {
  /** Access at any time (subject to OperatingMode and battery reserve). */
  Unrestricted: "unrestricted",
  /** Access only inside one of the user's year-day (date-time range) schedules. */
  YearDaySchedule: "yearDaySchedule",
  /** Access only inside one of the user's week-day schedules. */
  WeekDaySchedule: "weekDaySchedule",
  /** The "master" user of Matter: may use the keypad in Vacation mode. */
  Programming: "programming",
  /** Holds credentials but is never granted access (e.g. a record kept for audit). */
  NonAccess: "nonAccess",
  /** Access once; the user is disabled after the first grant. */
  Disposable: "disposable",
  /** Access for `expiringTimeout` after the first grant, then disabled. */
  ExpiringDisposable: "expiringDisposable",
  /** Access only when inside the week-day AND the year-day schedules the user has. */
  ScheduleRestricted: "scheduleRestricted",
} as const;
export type UserType = (typeof UserType)[keyof typeof UserType];

/** Matter § 5.2.6.15 UserStatusEnum (an "Available" slot is simply an absent user here). */
export const UserStatus = {
  OccupiedEnabled: "occupiedEnabled",
  OccupiedDisabled: "occupiedDisabled",
} as const;
export type UserStatus = (typeof UserStatus)[keyof typeof UserStatus];

/** Latchkey roles: what a user may do through the management API (not what opens the door). */
export const Role = {
  Owner: "owner",
  Admin: "admin",
  Member: "member",
  Guest: "guest",
  Service: "service",
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/**
 * Matter § 5.2.6.9 CredentialTypeEnum (subset), plus `totp`, a Latchkey extension: Matter has no
 * authenticator-app credential. The mechanical key is an event source, not a credential.
 */
export const CredentialType = {
  Pin: "pin",
  Rfid: "rfid",
  Fingerprint: "fingerprint",
  /** An authenticator-app code (RFC 6238 TOTP). Latchkey extension, not a Matter credential type. */
  Totp: "totp",
} as const;
export type CredentialType = (typeof CredentialType)[keyof typeof CredentialType];

/** Matter § 5.2.6.13 OperatingModeEnum. */
export const OperatingMode = {
  /** All interfaces enabled. */
  Normal: "normal",
  /** Only remote interaction enabled; the keypad (and other local credentials) only for programming users and owners. */
  Vacation: "vacation",
  /** All external interaction disabled; the inside button or mechanical key returns the lock to Normal. */
  Privacy: "privacy",
  /** Remote Lock/Unlock commands disabled; local credentials work. */
  NoRemoteLockUnlock: "noRemoteLockUnlock",
  /** The lock is held unlocked: no validation needed, no auto-relock. */
  Passage: "passage",
} as const;
export type OperatingMode = (typeof OperatingMode)[keyof typeof OperatingMode];

/** Matter § 5.2.6.14 LockStateEnum plus the transient states a motorised bolt goes through. */
export const LockState = {
  Locked: "locked",
  Unlocking: "unlocking",
  Unlocked: "unlocked",
  Locking: "locking",
  /** Matter "NotFullyLocked": the bolt stalled; needs a lock/unlock command or service. */
  Jammed: "jammed",
  /** The runtime does not know (e.g. just after power-up, before the actuator reports). */
  Unknown: "unknown",
} as const;
export type LockState = (typeof LockState)[keyof typeof LockState];

/** Matter § 5.2.6.7 DoorStateEnum (subset), as read from the door position sensor. */
export const DoorState = {
  Closed: "closed",
  Open: "open",
  /** Open for longer than the configured ajar time. */
  Ajar: "ajar",
  /** Opened while the bolt was locked. */
  Forced: "forced",
} as const;
export type DoorState = (typeof DoorState)[keyof typeof DoorState];

/** Matter § 5.2.6.11 OperationSourceEnum (subset): where a lock operation came from. */
export const OperationSource = {
  Keypad: "keypad",
  Rfid: "rfid",
  Biometric: "biometric",
  /** Over the network: the hub API, CLI, or (later) Matter / MQTT. */
  Remote: "remote",
  /**
   * A phone key presented over the phone ↔ lock link (docs/protocol/link.md). Latchkey extension: Matter
   * 1.4 calls its own phone-key source Aliro.
   */
  Phone: "phone",
  /** The mechanical key or a hand on the thumb-turn. */
  Manual: "manual",
  /** Request-to-exit button on the inside. */
  Button: "button",
  /** AutoRelockTime expired. */
  Auto: "auto",
} as const;
export type OperationSource = (typeof OperationSource)[keyof typeof OperationSource];

/**
 * A week-day schedule (Matter § 5.2.10.14 SetWeekDaySchedule). `daysMask` uses Matter's DaysMaskMap:
 * bit 0 Sunday, bit 1 Monday … bit 6 Saturday. Times are local wall-clock times in the lock's time zone.
 * When `end` is not after `start` the window crosses midnight and ends on the following day
 * (it belongs to the day it starts on). `endHour` 24 with `endMinute` 0 means end of day.
 */
export interface WeekDaySchedule {
  readonly daysMask: number;
  readonly startHour: number;
  readonly startMinute: number;
  readonly endHour: number;
  readonly endMinute: number;
}

/**
 * A year-day schedule (Matter § 5.2.10.17 SetYearDaySchedule): a local date-time range in the lock's
 * time zone, `start` inclusive and `end` exclusive, each as `YYYY-MM-DDTHH:MM`.
 */
export interface YearDaySchedule {
  readonly start: string;
  readonly end: string;
}

/** A person (Matter "User"). */
export interface User {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly userType: UserType;
  readonly userStatus: UserStatus;
  readonly weekDaySchedules: readonly WeekDaySchedule[];
  readonly yearDaySchedules: readonly YearDaySchedule[];
  /** For `expiringDisposable`: how long access lasts after the first grant. */
  readonly expiringTimeout: Seconds | null;
  /** The first grant, for `disposable` and `expiringDisposable` users. */
  readonly firstUsedAt: EpochMs | null;
  readonly createdAt: EpochMs;
}

/** Which locks of the hub a credential opens: all of them, or the listed lock ids. */
export type LockScope = "all" | readonly string[];

interface CredentialBase {
  readonly id: string;
  readonly userId: string;
  readonly locks: LockScope;
  readonly label: string | null;
  readonly createdAt: EpochMs;
}

/**
 * A PIN. Only `pinDigest` is kept: HMAC-SHA-256(pinSecret, digits) as lowercase hex, where `pinSecret`
 * is the device's PIN-hash secret held outside the database. A duress PIN opens the door and raises a
 * silent duress alarm.
 */
export interface PinCredential extends CredentialBase {
  readonly type: "pin";
  readonly pinDigest: string;
  readonly pinLength: number;
  readonly duress: boolean;
}

/** An RFID card by its normalised card id (see `core/credentials/card-id.ts`), e.g. `uid:04a1b2c3d4e5f6`. */
export interface RfidCredential extends CredentialBase {
  readonly type: "rfid";
  readonly cardId: string;
}

/** A fingerprint: the sensor stores the template and reports only the matching slot number. */
export interface FingerprintCredential extends CredentialBase {
  readonly type: "fingerprint";
  readonly slot: number;
}

/**
 * An authenticator app (RFC 6238 TOTP) typed at the keypad. A Latchkey extension: Matter § 5.2.6.9 has
 * no TOTP credential type. The secret is held in memory only; the store keeps it sealed
 * (AES-256-GCM under `secrets/totp-seal-key`, see docs/protocol/totp.md).
 *
 * With `requirePin` (the default: Matter's CredentialRuleEnum `Dual`, two credentials for one user) the
 * user types their PIN immediately followed by the current code in one entry, and their PIN alone no
 * longer opens. Without it (owners and admins only) the code alone opens; at most 10 such credentials
 * per lock, because every one of them is a target for a random 6-digit guess.
 */
export interface TotpCredential extends CredentialBase {
  readonly type: "totp";
  /** The shared secret K (RFC 4226 § 4 R6: 16–64 bytes, 20 by default). Never stored in clear, never shown after enrolment. */
  readonly secret: Uint8Array;
  /** The HMAC hash (RFC 6238 § 1.2); SHA-1, the default every authenticator app supports. */
  readonly algorithm: HmacAlgorithm;
  /** Code length (RFC 4226 § 5.3); 6. */
  readonly digits: number;
  /** Time step X (RFC 6238 § 4.1); 30 s. */
  readonly step: Seconds;
  /** Dual credential: the PIN must precede the code (default true). */
  readonly requirePin: boolean;
  /** The time step T of the last accepted code (accept once, RFC 6238 § 5.2), or null before the first. */
  readonly lastStep: number | null;
}

export type Credential = PinCredential | RfidCredential | FingerprintCredential | TotpCredential;

/** Battery condition bands used by decide(): `critical` keeps a reserve for owners only. */
export const BatteryLevel = { Ok: "ok", Low: "low", Critical: "critical" } as const;
export type BatteryLevel = (typeof BatteryLevel)[keyof typeof BatteryLevel];

/** Is the credential usable at `lockId`? */
export function inScope(scope: LockScope, lockId: string): boolean {
  return scope === "all" || scope.includes(lockId);
}
