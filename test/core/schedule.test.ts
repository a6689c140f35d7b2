import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatchkeyError } from "../../src/core/errors.ts";
import type { WeekDaySchedule, YearDaySchedule } from "../../src/core/model.ts";
import {
  assertTimeZone,
  assertWeekDaySchedule,
  assertYearDaySchedule,
  inWeekDaySchedule,
  inYearDaySchedule,
  type LocalTime,
  localTimeIn,
  parseLocalDateTime,
} from "../../src/core/schedule.ts";
import { EpochMs } from "../../src/core/units.ts";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T1970 = Date.UTC(1970, 0, 1);
const T2100 = Date.UTC(2100, 0, 1);

// ---------------------------------------------------------------------------------------------------------
// Test helpers and oracles (independent of the implementation under test)
// ---------------------------------------------------------------------------------------------------------

function expectInvalid(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(LatchkeyError);
  expect((thrown as LatchkeyError).code).toBe("LK_SCHEDULE_INVALID");
}

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
/** Formats `YYYY-MM-DDTHH:MM` from calendar fields. */
const fmtFields = (y: number, mo: number, d: number, h: number, mi: number): string =>
  `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}`;
/** Formats local epoch minutes as `YYYY-MM-DDTHH:MM` using the Date object as the calendar. */
const fmtMinutes = (minutes: number): string => new Date(minutes * MIN).toISOString().slice(0, 16);
/** Days in a month, by the Date object's calendar. */
const daysInMonthOracle = (y: number, mo: number): number => new Date(Date.UTC(y, mo, 0)).getUTCDate();

/** Local time at a fixed UTC offset, by Date arithmetic on the shifted instant. */
function fixedOffsetOracle(at: number, offsetMinutes: number): LocalTime {
  const d = new Date(Math.floor((at + offsetMinutes * MIN) / MIN) * MIN);
  const h = d.getUTCHours();
  const mi = d.getUTCMinutes();
  return {
    localEpochMinutes: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), h, mi) / MIN,
    weekday: d.getUTCDay(),
    minuteOfDay: h * 60 + mi,
  };
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const naiveFormats = new Map<string, Intl.DateTimeFormat>();
/** Uncached, straightforward Intl lookup (weekday from Intl, not arithmetic). Valid for years ≥ 100 AD. */
function naiveLocal(zone: string, at: number): LocalTime {
  let f = naiveFormats.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      weekday: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
    });
    naiveFormats.set(zone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(at)) p[part.type] = part.value;
  const h = Number(p.hour);
  const mi = Number(p.minute);
  return {
    localEpochMinutes: Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), h, mi) / MIN,
    weekday: WEEKDAYS[p.weekday ?? ""] ?? -1,
    minuteOfDay: h * 60 + mi,
  };
}

/** A LocalTime built from a local day number and a minute of day. */
function lt(day: number, minuteOfDay: number): LocalTime {
  return { localEpochMinutes: day * 1440 + minuteOfDay, weekday: (((day + 4) % 7) + 7) % 7, minuteOfDay };
}
/** The LocalTime of a `YYYY-MM-DDTHH:MM` string, via Date. */
function ltOf(s: string): LocalTime {
  const ms = Date.parse(`${s}Z`);
  const d = new Date(ms);
  return {
    localEpochMinutes: ms / MIN,
    weekday: d.getUTCDay(),
    minuteOfDay: d.getUTCHours() * 60 + d.getUTCMinutes(),
  };
}

/** Count the UTC minutes in [from, to) whose local time in `zone` satisfies `pred`. */
function countMinutes(zone: string, from: number, to: number, pred: (t: LocalTime) => boolean): number {
  let n = 0;
  for (let t = from; t < to; t += MIN) if (pred(localTimeIn(zone, EpochMs(t)))) n++;
  return n;
}

const week = (daysMask: number, sh: number, sm: number, eh: number, em: number): WeekDaySchedule => ({
  daysMask,
  startHour: sh,
  startMinute: sm,
  endHour: eh,
  endMinute: em,
});

/** Known 2026 offset transitions (UTC instant, offset change in minutes), from the tz database. */
const TRANSITIONS: readonly { zone: string; at: number; delta: number }[] = [
  { zone: "Europe/Berlin", at: Date.UTC(2026, 2, 29, 1), delta: 60 },
  { zone: "Europe/Berlin", at: Date.UTC(2026, 9, 25, 1), delta: -60 },
  { zone: "America/New_York", at: Date.UTC(2026, 2, 8, 7), delta: 60 },
  { zone: "America/New_York", at: Date.UTC(2026, 10, 1, 6), delta: -60 },
  { zone: "Australia/Sydney", at: Date.UTC(2026, 3, 4, 16), delta: -60 },
  { zone: "Australia/Sydney", at: Date.UTC(2026, 9, 3, 16), delta: 60 },
  { zone: "Australia/Lord_Howe", at: Date.UTC(2026, 3, 4, 15), delta: -30 },
  { zone: "Australia/Lord_Howe", at: Date.UTC(2026, 9, 3, 15, 30), delta: 30 },
  { zone: "America/Santiago", at: Date.UTC(2026, 3, 5, 3), delta: -60 },
  { zone: "America/Santiago", at: Date.UTC(2026, 8, 6, 4), delta: 60 },
];

/** Offset changes each zone has had in 1970–2100 (the only allowed non-1-minute steps). */
const ZONE_DELTAS: Readonly<Record<string, readonly number[]>> = {
  "Europe/Berlin": [60, -60],
  "America/New_York": [60, -60],
  "Australia/Sydney": [60, -60],
  "Australia/Lord_Howe": [30, -30, 60, -60],
  "America/Santiago": [60, -60],
  "Asia/Kathmandu": [15],
  "Asia/Kolkata": [],
  UTC: [],
};
const ZONES = Object.keys(ZONE_DELTAS);

const instant1970to2100 = fc.integer({ min: T1970, max: T2100 });

// ---------------------------------------------------------------------------------------------------------
// localTimeIn
// ---------------------------------------------------------------------------------------------------------

describe("localTimeIn", () => {
  it("converts known instants (table)", () => {
    const cases: [string, number, string, number][] = [
      ["UTC", 0, "1970-01-01T00:00", 4],
      ["UTC", Date.UTC(2026, 0, 4, 23, 59, 59, 999), "2026-01-04T23:59", 0],
      ["Europe/Berlin", Date.UTC(2026, 2, 29, 0, 59), "2026-03-29T01:59", 0],
      ["Europe/Berlin", Date.UTC(2026, 2, 29, 1, 0), "2026-03-29T03:00", 0],
      ["Europe/Berlin", Date.UTC(2026, 9, 25, 0, 30), "2026-10-25T02:30", 0],
      ["Europe/Berlin", Date.UTC(2026, 9, 25, 1, 30), "2026-10-25T02:30", 0],
      // Local midnight is hour 0, not 24, and belongs to the new day.
      ["Europe/Berlin", Date.UTC(2026, 5, 30, 22, 0), "2026-07-01T00:00", 3],
      ["America/New_York", Date.UTC(2026, 0, 1, 5, 0), "2026-01-01T00:00", 4],
      ["America/New_York", Date.UTC(2026, 0, 1, 4, 59), "2025-12-31T23:59", 3],
      ["Asia/Kolkata", Date.UTC(2026, 0, 1, 18, 30), "2026-01-02T00:00", 5],
      ["Etc/GMT-5", Date.UTC(2026, 0, 1, 19, 0), "2026-01-02T00:00", 5],
      ["Etc/GMT+10", Date.UTC(2026, 0, 1, 9, 59), "2025-12-31T23:59", 3],
      // Santiago springs forward at midnight: Sat 23:59 (-04) is followed by Sun 01:00 (-03).
      ["America/Santiago", Date.UTC(2026, 8, 6, 3, 59), "2026-09-05T23:59", 6],
      ["America/Santiago", Date.UTC(2026, 8, 6, 4, 0), "2026-09-06T01:00", 0],
      // ... and falls back at midnight: Sun 00:00 (-03) becomes Sat 23:00 (-04) again.
      ["America/Santiago", Date.UTC(2026, 3, 5, 2, 59), "2026-04-04T23:59", 6],
      ["America/Santiago", Date.UTC(2026, 3, 5, 3, 0), "2026-04-04T23:00", 6],
      ["America/Santiago", Date.UTC(2026, 3, 5, 4, 0), "2026-04-05T00:00", 0],
    ];
    for (const [zone, at, local, weekday] of cases) {
      const got = localTimeIn(zone, EpochMs(at));
      expect({ zone, at, local: fmtMinutes(got.localEpochMinutes), weekday: got.weekday }).toEqual({
        zone,
        at,
        local,
        weekday,
      });
      expect(got.minuteOfDay).toBe(ltOf(local).minuteOfDay);
    }
  });

  it("handles the whole Date range, including a historical offset with seconds (Berlin LMT +0:53:28)", () => {
    expect(localTimeIn("UTC", EpochMs(8.64e15)).localEpochMinutes).toBe(8.64e15 / MIN);
    const early = localTimeIn("Europe/Berlin", EpochMs(-8.64e15));
    expect(early.localEpochMinutes).toBe(Math.floor((-8.64e15 + (53 * 60 + 28) * 1000) / MIN));
    expect(early.minuteOfDay).toBe(53);
  });

  it("equals plain arithmetic for fixed-offset zones (property, 1970–2100)", () => {
    const fixed: [string, number][] = [
      ["UTC", 0],
      ["Etc/GMT-5", 300],
      ["Etc/GMT+10", -600],
      ["Etc/GMT-14", 840],
      ["Asia/Kolkata", 330],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fixed), instant1970to2100, ([zone, offset], at) => {
        expect(localTimeIn(zone, EpochMs(at))).toEqual(fixedOffsetOracle(at, offset));
      }),
      { numRuns: 500 },
    );
  });

  it("equals an uncached Intl lookup for DST zones, including instants right around transitions (property)", () => {
    const nearTransition = fc
      .tuple(fc.constantFrom(...TRANSITIONS), fc.integer({ min: -3 * HOUR, max: 3 * HOUR }))
      .map(([tr, d]) => [tr.zone, tr.at + d] as const);
    const anywhere = fc.tuple(fc.constantFrom(...ZONES), instant1970to2100);
    fc.assert(
      fc.property(fc.array(fc.oneof(nearTransition, anywhere), { minLength: 1, maxLength: 40 }), (cases) => {
        for (const [zone, at] of cases) expect(localTimeIn(zone, EpochMs(at))).toEqual(naiveLocal(zone, at));
      }),
      { numRuns: 200 },
    );
  });

  it("is internally consistent: weekday and minuteOfDay follow from localEpochMinutes (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), instant1970to2100, (zone, at) => {
        const t = localTimeIn(zone, EpochMs(at));
        const day = Math.floor(t.localEpochMinutes / 1440);
        expect(t.minuteOfDay).toBe(t.localEpochMinutes - day * 1440);
        expect(t.minuteOfDay).toBeGreaterThanOrEqual(0);
        expect(t.minuteOfDay).toBeLessThan(1440);
        expect(t.weekday).toBe(new Date(day * DAY).getUTCDay());
      }),
    );
  });

  it("advances one local minute per real minute, or by 1 + the zone's offset change (property)", () => {
    const near = fc
      .tuple(fc.constantFrom(...TRANSITIONS), fc.integer({ min: -2 * MIN, max: 2 * MIN }))
      .map(([tr, d]) => [tr.zone, tr.at + d] as const);
    const anywhere = fc.tuple(fc.constantFrom(...ZONES), instant1970to2100);
    fc.assert(
      fc.property(fc.oneof(near, anywhere), ([zone, at]) => {
        const step =
          localTimeIn(zone, EpochMs(at + MIN)).localEpochMinutes -
          localTimeIn(zone, EpochMs(at)).localEpochMinutes;
        const allowed = [1, ...(ZONE_DELTAS[zone] ?? []).map((d) => 1 + d)];
        expect(allowed).toContain(step);
      }),
      { numRuns: 1000 },
    );
  });

  it("jumps by exactly 1 + delta across each known transition, and by 1 next to it", () => {
    for (const { zone, at, delta } of TRANSITIONS) {
      for (const before of [at - MIN, at - 1, at - 30_000]) {
        const step =
          localTimeIn(zone, EpochMs(before + MIN)).localEpochMinutes -
          localTimeIn(zone, EpochMs(before)).localEpochMinutes;
        expect({ zone, before, step }).toEqual({ zone, before, step: 1 + delta });
      }
      for (const t of [at - 2 * MIN, at]) {
        const step =
          localTimeIn(zone, EpochMs(t + MIN)).localEpochMinutes -
          localTimeIn(zone, EpochMs(t)).localEpochMinutes;
        expect({ zone, t, step }).toEqual({ zone, t, step: 1 });
      }
    }
  });

  it("rejects unknown zones and invalid instants with LK_SCHEDULE_INVALID", () => {
    for (const zone of [
      "Mars/Olympus_Mons",
      "",
      "+05:30",
      "Z",
      "Europe/Berlin ",
      "GMT+5:00",
      "../etc/passwd",
    ]) {
      expectInvalid(() => localTimeIn(zone, EpochMs(0)));
      expectInvalid(() => assertTimeZone(zone));
    }
    expectInvalid(() => assertTimeZone(undefined as unknown as string));
    for (const at of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1, -8.64e15 - 1]) {
      expectInvalid(() => localTimeIn("UTC", EpochMs(at)));
    }
  });

  it("accepts IANA ids, links and Etc zones", () => {
    for (const zone of [
      "UTC",
      "Europe/Berlin",
      "America/Argentina/Buenos_Aires",
      "US/Eastern",
      "Etc/GMT+12",
    ]) {
      expect(() => assertTimeZone(zone)).not.toThrow();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// DST: counting accepted real minutes through transition days
// ---------------------------------------------------------------------------------------------------------

describe("schedules across DST changes (minute-by-minute)", () => {
  /** [zone, local date, real minutes in that local day] */
  const days: [string, string, number][] = [
    ["Europe/Berlin", "2026-03-29", 23 * 60],
    ["Europe/Berlin", "2026-10-25", 25 * 60],
    ["Europe/Berlin", "2026-07-15", 24 * 60],
    ["America/New_York", "2026-03-08", 23 * 60],
    ["America/New_York", "2026-11-01", 25 * 60],
    ["Australia/Sydney", "2026-04-05", 25 * 60],
    ["Australia/Sydney", "2026-10-04", 23 * 60],
    ["Australia/Lord_Howe", "2026-04-05", 24 * 60 + 30],
    ["Australia/Lord_Howe", "2026-10-04", 24 * 60 - 30],
    // Santiago changes at local midnight: the repeated hour is Saturday 23:00, the skipped one Sunday 00:00.
    ["America/Santiago", "2026-04-04", 25 * 60],
    ["America/Santiago", "2026-04-05", 24 * 60],
    ["America/Santiago", "2026-09-05", 24 * 60],
    ["America/Santiago", "2026-09-06", 23 * 60],
  ];

  for (const [zone, date, realMinutes] of days) {
    it(`${zone} ${date}: whole day = ${realMinutes} min, 09:00–17:00 = 480 min`, () => {
      const day0 = Date.parse(`${date}T00:00Z`);
      const mask = 1 << new Date(day0).getUTCDay();
      const from = day0 - DAY;
      const to = day0 + 2 * DAY;
      const whole = week(mask, 0, 0, 24, 0);
      const office = week(mask, 9, 0, 17, 0);
      const next = fmtMinutes(day0 / MIN + 1440);
      const yearDay: YearDaySchedule = { start: `${date}T00:00`, end: next };
      expect(countMinutes(zone, from, to, (t) => inWeekDaySchedule(whole, t))).toBe(realMinutes);
      expect(countMinutes(zone, from, to, (t) => inYearDaySchedule(yearDay, t))).toBe(realMinutes);
      expect(countMinutes(zone, from, to, (t) => inWeekDaySchedule(office, t))).toBe(480);
    });
  }

  it("the skipped local hour has no instant; the repeated one has two per minute (Europe/Berlin)", () => {
    const hour2 = (date: string) => (t: LocalTime) =>
      fmtMinutes(t.localEpochMinutes).startsWith(`${date}T02:`);
    const spring = Date.UTC(2026, 2, 29);
    const fall = Date.UTC(2026, 9, 25);
    expect(countMinutes("Europe/Berlin", spring - DAY, spring + DAY, hour2("2026-03-29"))).toBe(0);
    expect(countMinutes("Europe/Berlin", fall - DAY, fall + DAY, hour2("2026-10-25"))).toBe(120);
  });

  it("no instant shows Santiago's skipped midnight hour on 2026-09-06", () => {
    const d = Date.UTC(2026, 8, 6);
    const sundayBefore1 = (t: LocalTime) => t.weekday === 0 && t.minuteOfDay < 60;
    expect(countMinutes("America/Santiago", d - DAY, d + DAY, sundayBefore1)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Week-day schedules
// ---------------------------------------------------------------------------------------------------------

const arbWeekSchedule: fc.Arbitrary<WeekDaySchedule> = fc
  .record({
    daysMask: fc.integer({ min: 1, max: 127 }),
    startHour: fc.integer({ min: 0, max: 23 }),
    startMinute: fc.integer({ min: 0, max: 59 }),
    end: fc.oneof<fc.Arbitrary<readonly [number, number]>[]>(
      fc.constant([24, 0]),
      fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })),
      // Bias toward the edges.
      fc.tuple(fc.constantFrom(0, 23), fc.constantFrom(0, 1, 59)),
    ),
  })
  .map(({ daysMask, startHour, startMinute, end: [endHour, endMinute] }) => ({
    daysMask,
    startHour,
    startMinute,
    endHour,
    endMinute,
  }))
  .filter((s) => s.startHour * 60 + s.startMinute !== s.endHour * 60 + s.endMinute);

const arbLocalTime: fc.Arbitrary<LocalTime> = fc
  .tuple(
    fc.integer({ min: -100_000, max: 100_000 }),
    fc.oneof(fc.integer({ min: 0, max: 1439 }), fc.constantFrom(0, 1, 1438, 1439)),
  )
  .map(([day, m]) => lt(day, m));

const popcount = (n: number): number => n.toString(2).replaceAll("0", "").length;

describe("week-day schedules", () => {
  it("matches the table of edge cases", () => {
    // 2026-01-05 is a Monday.
    const monNight = week(0b10, 22, 0, 6, 0);
    const monWhole = week(0b10, 0, 0, 24, 0);
    const satLate = week(0b1000000, 23, 0, 24, 0);
    const satLastMinute = week(0b1000000, 23, 59, 0, 0);
    const sunFirstMinute = week(0b1, 0, 0, 0, 1);
    const monNoonToMidnight = week(0b10, 12, 0, 0, 0);
    const cases: [WeekDaySchedule, string, boolean][] = [
      [monNight, "2026-01-05T21:59", false],
      [monNight, "2026-01-05T22:00", true],
      [monNight, "2026-01-05T23:59", true],
      [monNight, "2026-01-06T00:00", true],
      [monNight, "2026-01-06T05:59", true],
      [monNight, "2026-01-06T06:00", false],
      [monNight, "2026-01-05T00:00", false],
      [monNight, "2026-01-05T05:00", false],
      [monNight, "2026-01-04T23:00", false],
      [monWhole, "2026-01-05T00:00", true],
      [monWhole, "2026-01-05T23:59", true],
      [monWhole, "2026-01-06T00:00", false],
      [monWhole, "2026-01-04T23:59", false],
      [satLate, "2026-01-10T22:59", false],
      [satLate, "2026-01-10T23:00", true],
      [satLate, "2026-01-10T23:59", true],
      [satLate, "2026-01-11T00:00", false],
      [satLastMinute, "2026-01-10T23:58", false],
      [satLastMinute, "2026-01-10T23:59", true],
      [satLastMinute, "2026-01-11T00:00", false],
      [sunFirstMinute, "2026-01-11T00:00", true],
      [sunFirstMinute, "2026-01-11T00:01", false],
      [sunFirstMinute, "2026-01-10T23:59", false],
      [monNoonToMidnight, "2026-01-05T11:59", false],
      [monNoonToMidnight, "2026-01-05T12:00", true],
      [monNoonToMidnight, "2026-01-05T23:59", true],
      [monNoonToMidnight, "2026-01-06T00:00", false],
    ];
    for (const [s, at, want] of cases) {
      expect({ s, at, got: inWeekDaySchedule(s, ltOf(at)) }).toEqual({ s, at, got: want });
    }
  });

  it("a midnight-crossing window = (start day in mask and minute >= start) or (previous day in mask and minute < end) (property)", () => {
    fc.assert(
      fc.property(
        arbWeekSchedule.filter((s) => s.endHour * 60 + s.endMinute < s.startHour * 60 + s.startMinute),
        arbLocalTime,
        (s, t) => {
          const start = s.startHour * 60 + s.startMinute;
          const end = s.endHour * 60 + s.endMinute;
          const has = (d: number) => Math.floor(s.daysMask / 2 ** d) % 2 === 1;
          const want =
            (has(t.weekday) && t.minuteOfDay >= start) || (has((t.weekday + 6) % 7) && t.minuteOfDay < end);
          expect(inWeekDaySchedule(s, t)).toBe(want);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("agrees with an interval-on-the-week-circle oracle for every schedule (property)", () => {
    fc.assert(
      fc.property(arbWeekSchedule, arbLocalTime, (s, t) => {
        const start = s.startHour * 60 + s.startMinute;
        const endRaw = s.endHour * 60 + s.endMinute;
        const length = endRaw > start ? endRaw - start : endRaw + 1440 - start;
        const w = t.weekday * 1440 + t.minuteOfDay;
        let want = false;
        for (let d = 0; d < 7; d++) {
          if (!(s.daysMask & (1 << d))) continue;
          if ((((w - (d * 1440 + start)) % 10080) + 10080) % 10080 < length) want = true;
        }
        expect(inWeekDaySchedule(s, t)).toBe(want);
      }),
      { numRuns: 2000 },
    );
  });

  it("covers exactly popcount(daysMask) × window length minutes per week (property)", () => {
    fc.assert(
      fc.property(arbWeekSchedule, fc.integer({ min: -10_000, max: 10_000 }), (s, firstDay) => {
        const start = s.startHour * 60 + s.startMinute;
        const endRaw = s.endHour * 60 + s.endMinute;
        const length = endRaw > start ? endRaw - start : endRaw + 1440 - start;
        let n = 0;
        for (let i = 0; i < 7 * 1440; i++) {
          if (inWeekDaySchedule(s, lt(firstDay + Math.floor(i / 1440), i % 1440))) n++;
        }
        expect(n).toBe(popcount(s.daysMask) * length);
      }),
      { numRuns: 60 },
    );
  });

  it("accepts valid schedules", () => {
    for (const s of [
      week(1, 0, 0, 24, 0),
      week(127, 22, 0, 6, 0),
      week(0b0111110, 9, 0, 17, 0),
      week(64, 23, 59, 0, 0),
      week(1, 0, 0, 0, 1),
      week(1, 23, 0, 24, 0),
    ]) {
      expect(() => assertWeekDaySchedule(s)).not.toThrow();
    }
  });

  it("rejects invalid schedules with LK_SCHEDULE_INVALID (assert and in*)", () => {
    const bad: WeekDaySchedule[] = [
      week(0, 9, 0, 17, 0),
      week(128, 9, 0, 17, 0),
      week(-1, 9, 0, 17, 0),
      week(1.5, 9, 0, 17, 0),
      week(Number.NaN, 9, 0, 17, 0),
      week(1, 24, 0, 17, 0),
      week(1, -1, 0, 17, 0),
      week(1, 9.5, 0, 17, 0),
      week(1, 9, 60, 17, 0),
      week(1, 9, -1, 17, 0),
      week(1, 9, 0, 25, 0),
      week(1, 9, 0, 24, 30),
      week(1, 9, 0, 24, 1),
      week(1, 9, 0, 17, 60),
      week(1, 0, 0, 0, 0),
      week(1, 10, 15, 10, 15),
      { ...week(1, 9, 0, 17, 0), startHour: "9" as unknown as number },
      null as unknown as WeekDaySchedule,
    ];
    for (const s of bad) {
      expectInvalid(() => assertWeekDaySchedule(s));
      expectInvalid(() => inWeekDaySchedule(s, lt(0, 600)));
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Year-day schedules and parseLocalDateTime
// ---------------------------------------------------------------------------------------------------------

describe("parseLocalDateTime", () => {
  it("handles leap days", () => {
    expect(parseLocalDateTime("2000-02-29T00:00")).toBe(Date.UTC(2000, 1, 29) / MIN);
    expect(parseLocalDateTime("2028-02-29T23:59")).toBe(Date.UTC(2028, 1, 29, 23, 59) / MIN);
    expectInvalid(() => parseLocalDateTime("2027-02-29T00:00"));
    expectInvalid(() => parseLocalDateTime("2100-02-29T00:00"));
    expectInvalid(() => parseLocalDateTime("1900-02-29T00:00"));
    const range: YearDaySchedule = { start: "2028-02-28T00:00", end: "2028-03-01T00:00" };
    expect(inYearDaySchedule(range, ltOf("2028-02-29T12:00"))).toBe(true);
    expect(inYearDaySchedule(range, ltOf("2028-02-28T00:00"))).toBe(true);
    expect(inYearDaySchedule(range, ltOf("2028-02-29T23:59"))).toBe(true);
    expect(inYearDaySchedule(range, ltOf("2028-03-01T00:00"))).toBe(false);
    expect(inYearDaySchedule(range, ltOf("2028-02-27T23:59"))).toBe(false);
  });

  it("matches the LocalTime scale at the epoch and before it", () => {
    expect(parseLocalDateTime("1970-01-01T00:00")).toBe(0);
    expect(parseLocalDateTime("1969-12-31T23:59")).toBe(-1);
    expect(parseLocalDateTime("0000-03-01T00:00")).toBe(Date.parse("0000-03-01T00:00Z") / MIN);
    expect(parseLocalDateTime("9999-12-31T23:59")).toBe(Date.parse("9999-12-31T23:59Z") / MIN);
  });

  it("round-trips random valid date-times 1970–2199 (property)", () => {
    const arbDateTime = fc
      .record({
        y: fc.integer({ min: 1970, max: 2199 }),
        mo: fc.integer({ min: 1, max: 12 }),
        d: fc.integer({ min: 1, max: 31 }),
        h: fc.integer({ min: 0, max: 23 }),
        mi: fc.integer({ min: 0, max: 59 }),
      })
      .map((r) => ({ ...r, d: Math.min(r.d, daysInMonthOracle(r.y, r.mo)) }));
    fc.assert(
      fc.property(arbDateTime, ({ y, mo, d, h, mi }) => {
        const s = fmtFields(y, mo, d, h, mi);
        const v = parseLocalDateTime(s);
        expect(v).toBe(Date.UTC(y, mo - 1, d, h, mi) / MIN);
        expect(fmtMinutes(v)).toBe(s);
      }),
      { numRuns: 1000 },
    );
  });

  it("rejects days past the end of the month (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1970, max: 2199 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 29, max: 31 }),
        (y, mo, d) => {
          fc.pre(d > daysInMonthOracle(y, mo));
          expectInvalid(() => parseLocalDateTime(fmtFields(y, mo, d, 12, 0)));
        },
      ),
    );
  });

  it("agrees with localTimeIn: a one-minute range around the local time matches only that minute (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), instant1970to2100, (zone, at) => {
        const t = localTimeIn(zone, EpochMs(at));
        const s = fmtMinutes(t.localEpochMinutes);
        expect(parseLocalDateTime(s)).toBe(t.localEpochMinutes);
        const one: YearDaySchedule = { start: s, end: fmtMinutes(t.localEpochMinutes + 1) };
        expect(inYearDaySchedule(one, t)).toBe(true);
        expect(inYearDaySchedule(one, { ...t, localEpochMinutes: t.localEpochMinutes + 1 })).toBe(false);
        expect(inYearDaySchedule(one, { ...t, localEpochMinutes: t.localEpochMinutes - 1 })).toBe(false);
      }),
    );
  });

  it("rejects malformed strings with LK_SCHEDULE_INVALID", () => {
    for (const s of [
      "",
      "2026-1-01T00:00",
      "2026-01-1T00:00",
      "2026-01-01 00:00",
      "2026-01-01t00:00",
      "2026-01-01T0:00",
      "2026-01-01T24:00",
      "2026-01-01T23:60",
      "2026-13-01T00:00",
      "2026-00-10T00:00",
      "2026-01-00T00:00",
      "2026-04-31T00:00",
      "2026-01-01T00:00Z",
      "2026-01-01T00:00:00",
      "2026-01-01T00:00+01:00",
      " 2026-01-01T00:00",
      "+02026-01-01T00:00",
      "２０２６-01-01T00:00",
      "2026-01-01T00:00\n",
      12 as unknown as string,
    ]) {
      expectInvalid(() => parseLocalDateTime(s));
    }
  });
});

describe("year-day schedules", () => {
  it("validates", () => {
    expect(() => assertYearDaySchedule({ start: "2026-01-01T00:00", end: "2026-01-01T00:01" })).not.toThrow();
    const bad: YearDaySchedule[] = [
      { start: "2026-01-01T00:00", end: "2026-01-01T00:00" },
      { start: "2026-01-02T00:00", end: "2026-01-01T00:00" },
      { start: "2026-02-29T00:00", end: "2026-03-02T00:00" },
      { start: "2026-01-01T00:00", end: "2026-01-01T24:00" },
      { start: "2026-01-01", end: "2026-01-02" },
      null as unknown as YearDaySchedule,
    ];
    for (const s of bad) {
      expectInvalid(() => assertYearDaySchedule(s));
      expectInvalid(() => inYearDaySchedule(s, lt(20_000, 0)));
    }
  });

  it("start is inclusive and end exclusive", () => {
    const s: YearDaySchedule = { start: "2026-06-01T09:00", end: "2026-06-01T17:00" };
    expect(inYearDaySchedule(s, ltOf("2026-06-01T08:59"))).toBe(false);
    expect(inYearDaySchedule(s, ltOf("2026-06-01T09:00"))).toBe(true);
    expect(inYearDaySchedule(s, ltOf("2026-06-01T16:59"))).toBe(true);
    expect(inYearDaySchedule(s, ltOf("2026-06-01T17:00"))).toBe(false);
  });

  it("compares wall-clock time across Berlin's fall-back repeated hour (2026-10-25)", () => {
    const zone = "Europe/Berlin";
    const at = (h: number, m: number) => localTimeIn(zone, EpochMs(Date.UTC(2026, 9, 25, h, m)));
    // Ends inside the repeated hour: 02:00–02:30 local occurs twice (CEST, then CET), so it matches twice.
    const s: YearDaySchedule = { start: "2026-10-25T02:00", end: "2026-10-25T02:30" };
    expect(inYearDaySchedule(s, localTimeIn(zone, EpochMs(Date.UTC(2026, 9, 24, 23, 59))))).toBe(false); // 01:59 CEST
    expect(inYearDaySchedule(s, at(0, 0))).toBe(true); // 02:00 CEST: start inclusive
    expect(inYearDaySchedule(s, at(0, 29))).toBe(true); // 02:29 CEST
    expect(inYearDaySchedule(s, at(0, 30))).toBe(false); // 02:30 CEST: end exclusive
    expect(inYearDaySchedule(s, at(0, 59))).toBe(false); // 02:59 CEST
    expect(inYearDaySchedule(s, at(1, 0))).toBe(true); // 02:00 CET: the repeated hour again
    expect(inYearDaySchedule(s, at(1, 29))).toBe(true); // 02:29 CET
    expect(inYearDaySchedule(s, at(1, 30))).toBe(false); // 02:30 CET
    const day = Date.UTC(2026, 9, 25);
    expect(countMinutes(zone, day - DAY, day + DAY, (t) => inYearDaySchedule(s, t))).toBe(60);
    // Midnight to 03:00 local on the fall-back day is 4 real hours.
    const early: YearDaySchedule = { start: "2026-10-25T00:00", end: "2026-10-25T03:00" };
    expect(countMinutes(zone, day - DAY, day + DAY, (t) => inYearDaySchedule(early, t))).toBe(240);
    // ... and on the spring-forward day 00:00–03:00 is 2 real hours; a start in the skipped hour starts at 03:00.
    const spring = Date.UTC(2026, 2, 29);
    const sEarly: YearDaySchedule = { start: "2026-03-29T00:00", end: "2026-03-29T03:00" };
    const sSkipped: YearDaySchedule = { start: "2026-03-29T02:30", end: "2026-03-29T04:00" };
    expect(countMinutes(zone, spring - DAY, spring + DAY, (t) => inYearDaySchedule(sEarly, t))).toBe(120);
    expect(countMinutes(zone, spring - DAY, spring + DAY, (t) => inYearDaySchedule(sSkipped, t))).toBe(60);
  });
});
