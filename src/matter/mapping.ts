/**
 * Latchkey's model in Matter Door Lock terms (Matter 1.4 § 5.2) and back: states, sources, alarms, user
 * types, schedules and names. Pure functions and tables; the bridge (door-lock-endpoint.ts) uses them.
 */
import { DoorLock } from "@matter/main/clusters/door-lock";
import { AuditKind } from "../core/audit/chain.ts";
import {
  type DoorState,
  type LockState,
  type OperatingMode,
  UserStatus,
  UserType,
  type WeekDaySchedule,
  type YearDaySchedule,
} from "../core/model.ts";
import { civilFromDays, parseLocalDateTime } from "../core/schedule.ts";

/** LockStateEnum (§ 5.2.6.14); the transient states (locking, unlocking, unknown) read as null. */
export const MATTER_LOCK_STATE: Partial<Record<LockState, DoorLock.LockState>> = {
  locked: DoorLock.LockState.Locked,
  unlocked: DoorLock.LockState.Unlocked,
  jammed: DoorLock.LockState.NotFullyLocked,
};

/** DoorStateEnum (§ 5.2.6.7). */
export const MATTER_DOOR_STATE: Record<DoorState, DoorLock.DoorState> = {
  open: DoorLock.DoorState.DoorOpen,
  closed: DoorLock.DoorState.DoorClosed,
  ajar: DoorLock.DoorState.DoorAjar,
  forced: DoorLock.DoorState.DoorForcedOpen,
};

/** OperatingModeEnum (§ 5.2.6.13). */
export const MATTER_OPERATING_MODE: Record<OperatingMode, DoorLock.OperatingMode> = {
  normal: DoorLock.OperatingMode.Normal,
  vacation: DoorLock.OperatingMode.Vacation,
  privacy: DoorLock.OperatingMode.Privacy,
  noRemoteLockUnlock: DoorLock.OperatingMode.NoRemoteLockUnlock,
  passage: DoorLock.OperatingMode.Passage,
};

/**
 * OperationSourceEnum (§ 5.2.6.11) of an operation Latchkey audited. Latchkey's own remote paths (HTTP API,
 * CLI, cloud) and its phone keys are ProprietaryRemote: the spec's Remote means a Matter node and then
 * requires a fabric index and node id, which only the bridge's own commands have.
 */
export function matterSource(source: unknown): DoorLock.OperationSource {
  switch (source) {
    case "keypad":
      return DoorLock.OperationSource.Keypad;
    case "rfid":
      return DoorLock.OperationSource.Rfid;
    case "biometric":
      return DoorLock.OperationSource.Biometric;
    case "remote":
    case "phone":
      return DoorLock.OperationSource.ProprietaryRemote;
    case "manual":
      return DoorLock.OperationSource.Manual;
    case "button":
      return DoorLock.OperationSource.Button;
    case "auto":
      return DoorLock.OperationSource.Auto;
    default:
      return DoorLock.OperationSource.Unspecified;
  }
}

/** AlarmCodeEnum (§ 5.2.6.1) of an alarm Latchkey audited (a tamper switch's release raises none). */
export function matterAlarm(
  kind: string,
  data: Readonly<Record<string, unknown>>,
): DoorLock.AlarmCode | null {
  switch (kind) {
    case AuditKind.AlarmJam:
      return DoorLock.AlarmCode.LockJammed;
    case AuditKind.AlarmLockout:
      return DoorLock.AlarmCode.WrongCodeEntryLimit;
    case AuditKind.AlarmTamper:
      return data.tampered === false ? null : DoorLock.AlarmCode.FrontEsceutcheonRemoved;
    case AuditKind.AlarmForcedOpen:
      return DoorLock.AlarmCode.DoorForcedOpen;
    case AuditKind.AlarmDoorAjar:
      return DoorLock.AlarmCode.DoorAjar;
    case AuditKind.AlarmDuress:
      return DoorLock.AlarmCode.ForcedUser;
    default:
      return null;
  }
}

/**
 * WrongCodeEntryLimit (1–255 wrong entries) and UserCodeTemporaryDisableTime (1–255 s) of a lock's
 * settings (§ 5.2.9.27–28); Latchkey's own limits may be wider, Matter's attributes are uint8.
 */
export function matterLockSettings(s: {
  readonly wrongCodeEntryLimit: number;
  readonly userCodeTemporaryDisableTime: number;
}): { wrongCodeEntryLimit: number; userCodeTemporaryDisableTime: number } {
  const clamp = (n: number) => Math.min(255, Math.max(1, Math.round(n)));
  return {
    wrongCodeEntryLimit: clamp(s.wrongCodeEntryLimit),
    userCodeTemporaryDisableTime: clamp(s.userCodeTemporaryDisableTime),
  };
}

/** Latchkey deny reasons as OperationErrorEnum (§ 5.2.6.12). */
export function operationError(reason: unknown): DoorLock.OperationError {
  switch (reason) {
    case "unknown_credential":
    case "wrong_lock":
    case "totp_invalid":
    case "second_credential_required":
    case "pin_required":
    case "malformed":
      return DoorLock.OperationError.InvalidCredential;
    case "user_disabled":
    case "expired":
    case "non_access_user":
      return DoorLock.OperationError.DisabledUserDenied;
    case "battery_reserve":
      return DoorLock.OperationError.InsufficientBattery;
    default:
      return DoorLock.OperationError.Restricted;
  }
}

/** UserTypeEnum (§ 5.2.6.16) → Latchkey; the types Latchkey does not implement are absent. */
export const LATCHKEY_USER_TYPE: Partial<Record<number, UserType>> = {
  [DoorLock.UserType.UnrestrictedUser]: UserType.Unrestricted,
  [DoorLock.UserType.YearDayScheduleUser]: UserType.YearDaySchedule,
  [DoorLock.UserType.WeekDayScheduleUser]: UserType.WeekDaySchedule,
  [DoorLock.UserType.ProgrammingUser]: UserType.Programming,
  [DoorLock.UserType.NonAccessUser]: UserType.NonAccess,
  [DoorLock.UserType.DisposableUser]: UserType.Disposable,
  [DoorLock.UserType.ScheduleRestrictedUser]: UserType.ScheduleRestricted,
};

/** Latchkey → UserTypeEnum. */
export const MATTER_USER_TYPE: Record<UserType, DoorLock.UserType> = {
  unrestricted: DoorLock.UserType.UnrestrictedUser,
  yearDaySchedule: DoorLock.UserType.YearDayScheduleUser,
  weekDaySchedule: DoorLock.UserType.WeekDayScheduleUser,
  programming: DoorLock.UserType.ProgrammingUser,
  nonAccess: DoorLock.UserType.NonAccessUser,
  disposable: DoorLock.UserType.DisposableUser,
  expiringDisposable: DoorLock.UserType.ExpiringUser,
  scheduleRestricted: DoorLock.UserType.ScheduleRestrictedUser,
};

export const MATTER_USER_STATUS: Record<UserStatus, DoorLock.UserStatus> = {
  occupiedEnabled: DoorLock.UserStatus.OccupiedEnabled,
  occupiedDisabled: DoorLock.UserStatus.OccupiedDisabled,
};

/** UserStatusEnum → Latchkey (Available is not a status a user can be set to). */
export function latchkeyUserStatus(s: DoorLock.UserStatus | null | undefined): UserStatus | undefined {
  if (s === DoorLock.UserStatus.OccupiedEnabled) return UserStatus.OccupiedEnabled;
  if (s === DoorLock.UserStatus.OccupiedDisabled) return UserStatus.OccupiedDisabled;
  return undefined;
}

/** LockDataTypeEnum (§ 5.2.6.12) of a Latchkey credential type (TOTP has none: Unspecified). */
export function lockDataTypeOf(credentialType: unknown): DoorLock.LockDataType {
  switch (credentialType) {
    case "pin":
      return DoorLock.LockDataType.Pin;
    case "rfid":
      return DoorLock.LockDataType.Rfid;
    case "fingerprint":
      return DoorLock.LockDataType.Fingerprint;
    default:
      return DoorLock.LockDataType.Unspecified;
  }
}

/** UserName is at most 10 bytes (§ 5.2.10.18.2): a longer Latchkey name is cut at a character boundary. */
export const MATTER_USER_NAME_BYTES = 10;

export function matterUserName(name: string): string {
  const enc = new TextEncoder();
  if (enc.encode(name).byteLength <= MATTER_USER_NAME_BYTES) return name;
  let out = "";
  for (const ch of name) {
    if (enc.encode(out + ch).byteLength > MATTER_USER_NAME_BYTES) break;
    out += ch;
  }
  return out.trimEnd();
}

const DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] as const;

/** DaysMaskMap (§ 5.2.6.3) flags → Latchkey's `daysMask` (the same bits: bit 0 Sunday … bit 6 Saturday). */
export function daysMaskOf(flags: DoorLock.DaysMask): number {
  return DAYS.reduce((acc, d, i) => (flags[d] ? acc | (1 << i) : acc), 0);
}

/** Latchkey's `daysMask` → DaysMaskMap flags. */
export function daysMaskFlags(mask: number): DoorLock.DaysMask {
  const out: Record<string, boolean> = {};
  DAYS.forEach((d, i) => {
    out[d] = (mask & (1 << i)) !== 0;
  });
  return out as DoorLock.DaysMask;
}

/** A week-day schedule as SetWeekDaySchedule / GetWeekDayScheduleResponse fields (§ 5.2.10.14). */
export interface MatterWeekDay {
  readonly daysMask: DoorLock.DaysMask;
  readonly startHour: number;
  readonly startMinute: number;
  readonly endHour: number;
  readonly endMinute: number;
}

/**
 * Latchkey → Matter. Matter's EndHour is 0–23, so Latchkey's end of day (24:00) reads as 23:59; a window
 * that crosses midnight (end before start, which Matter cannot express) is shown as stored.
 */
export function toMatterWeekDay(s: WeekDaySchedule): MatterWeekDay {
  const endOfDay = s.endHour === 24;
  return {
    daysMask: daysMaskFlags(s.daysMask),
    startHour: s.startHour,
    startMinute: s.startMinute,
    endHour: endOfDay ? 23 : s.endHour,
    endMinute: endOfDay ? 59 : s.endMinute,
  };
}

/** Matter → Latchkey; null for what § 5.2.10.14 refuses (no day, end not after start). */
export function fromMatterWeekDay(m: MatterWeekDay): WeekDaySchedule | null {
  const mask = daysMaskOf(m.daysMask);
  if (mask < 1 || mask > 127) return null;
  if (m.endHour * 60 + m.endMinute <= m.startHour * 60 + m.startMinute) return null;
  return {
    daysMask: mask,
    startHour: m.startHour,
    startMinute: m.startMinute,
    endHour: m.endHour,
    endMinute: m.endMinute,
  };
}

/**
 * Seconds from 1970-01-01 to the Matter epoch, 2000-01-01 (Matter Core § 7.19.2.5 epoch-s). matter.js's
 * API takes and gives epoch-s fields as seconds since 1970 and shifts them on the wire, so the values
 * here are since 1970; nothing before 2000 can be sent.
 */
const MATTER_EPOCH_S = 946_684_800;

/**
 * `YYYY-MM-DDTHH:MM` local → a Year Day schedule's LocalStartTime/LocalEndTime (§ 5.2.10.7): "epoch
 * seconds with the local time offset", i.e. the local wall-clock time counted as if it were UTC.
 */
export function toMatterLocalTime(s: string): number {
  return Math.max(MATTER_EPOCH_S, parseLocalDateTime(s) * 60);
}

/**
 * LocalStartTime/LocalEndTime → `YYYY-MM-DDTHH:MM`. Latchkey keeps minutes: `round` "up" for a start
 * and "down" for an end, so a window never grows (a 10:00:30 start begins at 10:01).
 */
export function fromMatterLocalTime(epochS: number, round: "up" | "down"): string {
  const minutes = round === "up" ? Math.ceil(epochS / 60) : Math.floor(epochS / 60);
  const days = Math.floor(minutes / 1440);
  const m = minutes - days * 1440;
  const { year, month, day } = civilFromDays(days);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(year, 4)}-${p(month)}-${p(day)}T${p(Math.floor(m / 60))}:${p(m % 60)}`;
}

/** A year-day schedule as Matter fields (§ 5.2.10.17). */
export function toMatterYearDay(s: YearDaySchedule): { localStartTime: number; localEndTime: number } {
  return { localStartTime: toMatterLocalTime(s.start), localEndTime: toMatterLocalTime(s.end) };
}

/** Matter → Latchkey; null when the window is empty once cut to whole minutes. */
export function fromMatterYearDay(localStartTime: number, localEndTime: number): YearDaySchedule | null {
  if (localEndTime <= localStartTime) return null;
  const start = fromMatterLocalTime(localStartTime, "up");
  const end = fromMatterLocalTime(localEndTime, "down");
  return parseLocalDateTime(end) > parseLocalDateTime(start) ? { start, end } : null;
}

/** A schedule's identity for the slot map: its fields in a fixed order. */
export function scheduleKey(s: WeekDaySchedule | YearDaySchedule): string {
  if ("daysMask" in s) return `w:${s.daysMask}:${s.startHour}:${s.startMinute}:${s.endHour}:${s.endMinute}`;
  return `y:${s.start}:${s.end}`;
}

/** Keys of a list of schedules, the n-th repeat of an identical schedule told apart by `#n`. */
export function scheduleKeys(list: readonly (WeekDaySchedule | YearDaySchedule)[]): string[] {
  const seen = new Map<string, number>();
  return list.map((s) => {
    const k = scheduleKey(s);
    const n = seen.get(k) ?? 0;
    seen.set(k, n + 1);
    return n === 0 ? k : `${k}#${n}`;
  });
}
