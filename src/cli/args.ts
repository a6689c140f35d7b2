/**
 * Parsing of command-line values that the CLI checks itself before calling the hub (numbers, days,
 * times). A parser used with commander throws InvalidArgumentError, which main.ts reports as
 * `error LK_INVALID_INPUT: ...` with exit status 2.
 */
import { InvalidArgumentError } from "commander";
import { LatchkeyError } from "../core/errors.ts";

/** A commander value parser for a whole number in [min, max]. */
export function intArg(min: number, max?: number): (value: string) => number {
  return (value: string) => {
    const n = /^\s*-?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
      throw new InvalidArgumentError(
        max !== undefined
          ? `Expected a whole number from ${min} to ${max}.`
          : `Expected a whole number ≥ ${min}.`,
      );
    }
    return n;
  };
}

const DAY_BITS: Record<string, number> = {
  sun: 0,
  sunday: 0,
  mon: 1,
  monday: 1,
  tue: 2,
  tues: 2,
  tuesday: 2,
  wed: 3,
  wednesday: 3,
  thu: 4,
  thur: 4,
  thurs: 4,
  thursday: 4,
  fri: 5,
  friday: 5,
  sat: 6,
  saturday: 6,
};
const DAY_GROUPS: Record<string, number> = { weekdays: 0b0111110, weekend: 0b1000001, daily: 0b1111111 };

/**
 * Days as a Matter DaysMaskMap (bit 0 Sunday … bit 6 Saturday): `mon,tue,fri`, a range `mon-fri`,
 * or `weekdays`, `weekend`, `daily`, combinable with commas. Throws LK_INVALID_INPUT.
 */
export function parseDays(text: string): number {
  let mask = 0;
  for (const raw of text.toLowerCase().split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const group = DAY_GROUPS[item];
    if (group !== undefined) {
      mask |= group;
      continue;
    }
    const range = /^([a-z]+)-([a-z]+)$/.exec(item);
    if (range) {
      const a = DAY_BITS[range[1]!];
      const b = DAY_BITS[range[2]!];
      if (a === undefined || b === undefined) throw badDays(item);
      // Monday-first week: mon-sun is the whole week, fri-mon wraps over the weekend.
      for (let d = a; ; d = (d + 1) % 7) {
        mask |= 1 << d;
        if (d === b) break;
      }
      continue;
    }
    const bit = DAY_BITS[item];
    if (bit === undefined) throw badDays(item);
    mask |= 1 << bit;
  }
  if (mask === 0) throw badDays(text);
  return mask;
}

function badDays(item: string): LatchkeyError {
  return new LatchkeyError(
    "LK_INVALID_INPUT",
    `--days: "${item}" is not a day: use mon,tue,wed,thu,fri,sat,sun, a range like mon-fri, or weekdays, weekend, daily`,
  );
}

/** `HH:MM` (00:00–23:59; `24:00` too when `allow24`) as hour and minute. Throws LK_INVALID_INPUT. */
export function parseHm(text: string, flag: string, allow24 = false): { hour: number; minute: number } {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  const hour = m ? Number(m[1]) : Number.NaN;
  const minute = m ? Number(m[2]) : Number.NaN;
  const ok = m && minute < 60 && (hour < 24 || (allow24 && hour === 24 && minute === 0));
  if (!ok) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `${flag} must be a time HH:MM${allow24 ? " (00:00–24:00)" : " (00:00–23:59)"}, e.g. 09:00`,
    );
  }
  return { hour, minute };
}

/** A local date-time `YYYY-MM-DDTHH:MM` (the lock's time zone) for year-day schedules. */
export function parseLocalDateTime(text: string, flag: string): string {
  const t = text.trim().replace(" ", "T");
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(t) || Number.isNaN(Date.parse(`${t}Z`))) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `${flag} must be a local date and time YYYY-MM-DDTHH:MM (the lock's time zone), e.g. 2026-12-24T18:00`,
    );
  }
  return t;
}

/** An absolute time with its offset (`...Z` or `...+02:00`), as an ISO string for the API. */
export function parseInstant(text: string, what: string): string {
  const t = text.trim();
  const ms = Date.parse(t);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(t) || Number.isNaN(ms)) {
    throw new LatchkeyError(
      "LK_INVALID_INPUT",
      `${what} must be an ISO time with its offset, e.g. 2026-05-01T09:30:00+02:00 or 2026-05-01T07:30:00Z`,
    );
  }
  return new Date(ms).toISOString();
}

/** `--locks`: "all" or comma-separated lock ids. */
export function parseLocks(v: string | undefined): "all" | string[] | undefined {
  if (v === undefined) return undefined;
  if (v.trim() === "all") return "all";
  const ids = v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length === 0) throw new LatchkeyError("LK_INVALID_INPUT", '--locks must be "all" or lock ids a,b');
  return ids;
}
