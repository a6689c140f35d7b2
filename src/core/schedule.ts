/**
 * Access schedules in a lock's local wall-clock time (Matter 1.3 § 5.2.10.14 SetWeekDaySchedule and
 * § 5.2.10.17 SetYearDaySchedule).
 *
 * Schedules are evaluated in local wall-clock time *at the instant of the decision*: an instant is first
 * turned into a {@link LocalTime} in the lock's IANA time zone ({@link localTimeIn}), and the schedule is
 * then compared against that local time. Consequences on DST-change days:
 * - a window 09:00–17:00 is exactly 8 real hours when the zone's transitions happen at night;
 * - a whole-day window 00:00–24:00 covers 23 real hours on a spring-forward day and 25 on a fall-back day;
 * - the skipped local hour (e.g. 02:00–03:00 on Europe/Berlin's spring-forward day) contains no instant,
 *   and the repeated local hour on a fall-back day is matched twice (once per instant that shows it).
 *
 * Pure: no Node APIs. The time zone database is the platform's, through `Intl.DateTimeFormat`.
 */
import { LatchkeyError } from "./errors.ts";
import type { WeekDaySchedule, YearDaySchedule } from "./model.ts";
import type { EpochMs } from "./units.ts";

/** A moment expressed in a lock's local wall-clock time. */
export interface LocalTime {
  /**
   * Local wall-clock time as minutes since 1970-01-01T00:00 *local* (i.e. `Date.UTC(y, m-1, d, h, mi) / 60000`).
   * Comparable across days; the same value as {@link parseLocalDateTime} returns for that wall-clock time.
   */
  readonly localEpochMinutes: number;
  /** 0 = Sunday … 6 = Saturday (Matter DaysMaskMap bit index). */
  readonly weekday: number;
  /** Minutes since local midnight, 0…1439. */
  readonly minuteOfDay: number;
}

const MS_PER_SECOND = 1000;
const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 86_400_000;
const MINUTES_PER_DAY = 1440;
/** ECMAScript's Date range: ±8.64e15 ms around the epoch. */
const MAX_EPOCH_MS = 8.64e15;
/**
 * The UTC offset of a zone is looked up once per bucket of this size and reused for every instant in it,
 * provided the offset is the same at both ends of the bucket (no transition inside). Buckets that contain a
 * transition are resolved exactly, per call. This assumes no two transitions within one bucket cancel
 * out, which holds for every zone in the tz database.
 */
const BUCKET_MS = 3_600_000;
/** Bound on the per-zone offset cache (entries); the cache is simply cleared when full. */
const MAX_BUCKETS_PER_ZONE = 1024;
/** Bound on the number of zone ids cached (ids are matched case-insensitively, so variants count). */
const MAX_ZONES = 512;
/** Bound on the memo of parsed year-day strings. */
const MAX_PARSED = 4096;

/** An IANA id: `Area/Location`, `UTC`, `Etc/GMT+5`… Rejects offset strings such as `+05:30`. */
const ZONE_ID = /^[A-Za-z][A-Za-z0-9_+\-/]*$/;
/** `YYYY-MM-DDTHH:MM`, ASCII digits only. */
const LOCAL_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/;

interface ZoneCache {
  readonly fmt: Intl.DateTimeFormat;
  /** bucket index → UTC offset in ms, or NaN when the bucket contains a transition. */
  readonly offsets: Map<number, number>;
  lastBucket: number;
  lastOffset: number;
}

const zones = new Map<string, ZoneCache>();
const parsed = new Map<string, number>();

function invalid(detail: string, data?: Record<string, unknown>): LatchkeyError {
  return new LatchkeyError("LK_SCHEDULE_INVALID", detail, data);
}

function zoneCache(timeZone: string): ZoneCache {
  const hit = zones.get(timeZone);
  if (hit !== undefined) return hit;
  if (typeof timeZone !== "string" || !ZONE_ID.test(timeZone)) {
    throw invalid("unknown time zone", { timeZone });
  }
  let fmt: Intl.DateTimeFormat;
  try {
    // No year: it is derived from the UTC instant (see offsetAt), which sidesteps eras and 2-digit years.
    fmt = new Intl.DateTimeFormat("en-US", {
      timeZone,
      calendar: "gregory",
      numberingSystem: "latn",
      hourCycle: "h23",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  } catch {
    throw invalid("unknown time zone", { timeZone });
  }
  const entry: ZoneCache = { fmt, offsets: new Map(), lastBucket: Number.NaN, lastOffset: 0 };
  if (zones.size >= MAX_ZONES) zones.clear();
  zones.set(timeZone, entry);
  return entry;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The proleptic Gregorian date of a day number (days since 1970-01-01; H. Hinnant's civil_from_days). */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return isLeapYear(y) ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** The zone's exact UTC offset (ms, whole seconds) at instant `at`, via Intl (slow path, ~5 µs). */
function offsetAt(fmt: Intl.DateTimeFormat, at: number): number {
  let month = 0;
  let day = 0;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const p of fmt.formatToParts(at)) {
    switch (p.type) {
      case "month":
        month = Number(p.value);
        break;
      case "day":
        day = Number(p.value);
        break;
      case "hour":
        hour = Number(p.value);
        break;
      case "minute":
        minute = Number(p.value);
        break;
      case "second":
        second = Number(p.value);
        break;
      default:
    }
  }
  // Some engines (old ICU with hour12: false) print midnight as 24; h23 should not, but be safe.
  if (hour === 24) hour = 0;
  const utcSecondMs = Math.floor(at / MS_PER_SECOND) * MS_PER_SECOND;
  const utcDay = Math.floor(at / MS_PER_DAY);
  const utc = new Date(at);
  const utcMonth = utc.getUTCMonth() + 1;
  const utcDate = utc.getUTCDate();
  // |offset| < 1 day, so the local date is the UTC date, the day before, or the day after.
  let delta: number;
  if (month === utcMonth) delta = day - utcDate;
  else delta = day === 1 ? 1 : -1;
  if (delta < -1 || delta > 1 || Number.isNaN(delta + hour + minute + second)) {
    throw new LatchkeyError("LK_INTERNAL", "unexpected Intl.DateTimeFormat output", { at });
  }
  const localMs = (utcDay + delta) * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * MS_PER_SECOND;
  return localMs - utcSecondMs;
}

/** The offset for `at`, from the bucket cache when the bucket has no transition. */
function cachedOffset(z: ZoneCache, at: number): number {
  const bucket = Math.floor(at / BUCKET_MS);
  if (bucket === z.lastBucket) {
    return Number.isNaN(z.lastOffset) ? offsetAt(z.fmt, at) : z.lastOffset;
  }
  let off = z.offsets.get(bucket);
  if (off === undefined) {
    const start = Math.max(bucket * BUCKET_MS, -MAX_EPOCH_MS);
    const end = Math.min(bucket * BUCKET_MS + BUCKET_MS - 1, MAX_EPOCH_MS);
    const a = offsetAt(z.fmt, start);
    off = a === offsetAt(z.fmt, end) ? a : Number.NaN;
    if (z.offsets.size >= MAX_BUCKETS_PER_ZONE) z.offsets.clear();
    z.offsets.set(bucket, off);
  }
  z.lastBucket = bucket;
  z.lastOffset = off;
  return Number.isNaN(off) ? offsetAt(z.fmt, at) : off;
}

/**
 * Wall-clock time at instant `at` (EpochMs, UTC) in IANA zone `timeZone` (e.g. `Europe/Berlin`).
 *
 * One `Intl.DateTimeFormat` is cached per zone, and the zone's UTC offset per hour of UTC time, so the
 * hot path (every access decision) is a map lookup plus arithmetic; `Intl` is consulted about twice per
 * new hour and per call only within an hour that contains an offset transition. Exact to the second,
 * including historical offsets with seconds; the result is floored to the minute.
 *
 * @throws LatchkeyError `LK_SCHEDULE_INVALID` for an unknown zone or an instant outside the ECMAScript
 *   Date range (±8.64e15 ms, or not a finite number).
 */
export function localTimeIn(timeZone: string, at: EpochMs): LocalTime {
  const z = zoneCache(timeZone);
  if (!(at >= -MAX_EPOCH_MS && at <= MAX_EPOCH_MS)) {
    throw invalid("instant is not a valid time", { at });
  }
  const localMs = at + cachedOffset(z, at);
  const localEpochMinutes = Math.floor(localMs / MS_PER_MINUTE);
  const localDay = Math.floor(localEpochMinutes / MINUTES_PER_DAY);
  return {
    localEpochMinutes,
    // 1970-01-01 was a Thursday (4).
    weekday: (((localDay + 4) % 7) + 7) % 7,
    minuteOfDay: localEpochMinutes - localDay * MINUTES_PER_DAY,
  };
}

/**
 * Checks that `timeZone` is a valid IANA zone id known to the platform's time zone database (matched
 * case-insensitively, links such as `US/Eastern` included). Offset strings (`+05:30`) are rejected.
 *
 * @throws LatchkeyError `LK_SCHEDULE_INVALID` otherwise.
 */
export function assertTimeZone(timeZone: string): void {
  zoneCache(timeZone);
}

/**
 * Parses a local date-time `YYYY-MM-DDTHH:MM` (4-digit year, proleptic Gregorian, a real calendar date:
 * Feb 29 only in leap years; hours 00–23, minutes 00–59; no seconds, offset or zone) to local epoch
 * minutes, the same scale as {@link LocalTime.localEpochMinutes}.
 *
 * @throws LatchkeyError `LK_SCHEDULE_INVALID` for anything else.
 */
export function parseLocalDateTime(s: string): number {
  const hit = parsed.get(s);
  if (hit !== undefined) return hit;
  const m = typeof s === "string" ? LOCAL_DATE_TIME.exec(s) : null;
  if (m === null) throw invalid("date-time must be YYYY-MM-DDTHH:MM", { value: s });
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59) {
    throw invalid("not a real calendar date-time", { value: s });
  }
  const minutes = daysFromCivil(year, month, day) * MINUTES_PER_DAY + hour * 60 + minute;
  if (parsed.size >= MAX_PARSED) parsed.clear();
  parsed.set(s, minutes);
  return minutes;
}

function isIntIn(n: unknown, lo: number, hi: number): boolean {
  return typeof n === "number" && Number.isInteger(n) && n >= lo && n <= hi;
}

/**
 * Validates a week-day schedule (Matter § 5.2.10.14 SetWeekDaySchedule): `daysMask` an integer 1…127
 * (DaysMaskMap, bit 0 Sunday … bit 6 Saturday), `startHour` 0–23, `endHour` 0–24 (24 only with
 * `endMinute` 0, meaning end of day), minutes 0–59, all integers, and start ≠ end. An end not after the
 * start is a window crossing midnight.
 *
 * @throws LatchkeyError `LK_SCHEDULE_INVALID` otherwise.
 */
export function assertWeekDaySchedule(s: WeekDaySchedule): void {
  if (typeof s !== "object" || s === null) throw invalid("week-day schedule must be an object");
  if (!isIntIn(s.daysMask, 1, 127)) {
    throw invalid("daysMask must be an integer 1..127", { daysMask: s.daysMask });
  }
  if (!isIntIn(s.startHour, 0, 23) || !isIntIn(s.startMinute, 0, 59)) {
    throw invalid("start must be 00:00..23:59", { startHour: s.startHour, startMinute: s.startMinute });
  }
  if (!isIntIn(s.endHour, 0, 24) || !isIntIn(s.endMinute, 0, 59) || (s.endHour === 24 && s.endMinute !== 0)) {
    throw invalid("end must be 00:00..24:00", { endHour: s.endHour, endMinute: s.endMinute });
  }
  if (s.startHour * 60 + s.startMinute === s.endHour * 60 + s.endMinute) {
    throw invalid("week-day window is empty (start equals end)");
  }
}

/**
 * Validates a year-day schedule (Matter § 5.2.10.17 SetYearDaySchedule): `start` and `end` both parse
 * with {@link parseLocalDateTime} and `end` is after `start`.
 *
 * @throws LatchkeyError `LK_SCHEDULE_INVALID` otherwise.
 */
export function assertYearDaySchedule(s: YearDaySchedule): void {
  yearDayRange(s);
}

function yearDayRange(s: YearDaySchedule): { start: number; end: number } {
  if (typeof s !== "object" || s === null) throw invalid("year-day schedule must be an object");
  const start = parseLocalDateTime(s.start);
  const end = parseLocalDateTime(s.end);
  if (end <= start) throw invalid("year-day window is empty or inverted", { start: s.start, end: s.end });
  return { start, end };
}

/**
 * Is local time `t` inside the week-day window (Matter § 5.2.10.14)? Start inclusive, end exclusive,
 * compared as local wall-clock minutes. If end ≤ start (in minutes of day) the window crosses midnight
 * and belongs to the day it starts on: Mon 22:00–06:00 covers Mon 22:00 up to Tue 06:00 (exclusive), so
 * it matches on Monday from 22:00 and on Tuesday before 06:00. `endHour` 24 means end of day.
 *
 * @throws LatchkeyError `LK_SCHEDULE_INVALID` if the schedule is invalid (see {@link assertWeekDaySchedule}).
 */
export function inWeekDaySchedule(s: WeekDaySchedule, t: LocalTime): boolean {
  assertWeekDaySchedule(s);
  const start = s.startHour * 60 + s.startMinute;
  const end = s.endHour * 60 + s.endMinute;
  const m = t.minuteOfDay;
  const today = (s.daysMask >> t.weekday) & 1;
  if (start < end) return today === 1 && m >= start && m < end;
  const yesterday = (s.daysMask >> ((t.weekday + 6) % 7)) & 1;
  return (today === 1 && m >= start) || (yesterday === 1 && m < end);
}

/**
 * Is local time `t` inside `[start, end)` of the year-day schedule (Matter § 5.2.10.17)? Compared as
 * local wall-clock minutes, so on a fall-back day an instant in the repeated hour matches whenever its
 * wall-clock time does.
 *
 * @throws LatchkeyError `LK_SCHEDULE_INVALID` if the schedule is invalid (see {@link assertYearDaySchedule}).
 */
export function inYearDaySchedule(s: YearDaySchedule, t: LocalTime): boolean {
  const { start, end } = yearDayRange(s);
  return t.localEpochMinutes >= start && t.localEpochMinutes < end;
}
