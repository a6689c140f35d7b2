/**
 * Guest codes in words: the digits grouped for reading aloud, windows as local dates, and the message an
 * issuer sends the guest. Pure (used by the CLI's offline issuer and the hub's API alike).
 */
import { civilFromDays } from "../schedule.ts";
import { formatLocalMinutes, type IssuedGuestCode } from "./guest-code.ts";

/** Digits in groups of four from the right-hand end, e.g. `1385 7694 1984`: easier to read aloud. */
export function groupDigits(code: string): string {
  return code.replace(/\B(?=(\d{4})+$)/g, " ");
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] as const;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] as const;

/** `Tue 1 Dec 2026 09:00` for a local minute. */
export function friendlyLocal(minutes: number): string {
  const day = Math.floor(minutes / 1440);
  const c = civilFromDays(day);
  const hm = formatLocalMinutes(minutes).slice(11);
  return `${WEEKDAYS[(((day + 4) % 7) + 7) % 7]} ${c.day} ${MONTHS[c.month - 1]} ${c.year} ${hm}`;
}

/** Names of a DaysMaskMap, e.g. `Mon–Fri`. */
export function daysText(mask: number): string {
  const names: Record<number, string> = {
    127: "every day",
    62: "Mon–Fri",
    65: "Sat and Sun",
    126: "Mon–Sat",
    31: "Sun–Thu",
  };
  return names[mask] ?? WEEKDAYS.filter((_, i) => mask & (1 << i)).join(", ");
}

/** What a code does, in words (for the shareable message and `code list`). */
export function describeIssued(issued: IssuedGuestCode): string {
  const p = issued.plan.params;
  const span = `from ${friendlyLocal(p.from)} until ${friendlyLocal(p.to)}`;
  switch (p.kind) {
    case "window":
      return `any number of times ${span}`;
    case "oneTime":
      return `once, ${span}`;
    case "uses":
      return `${p.uses} times, ${span}`;
    case "firstUse": {
      const d = p.durationMinutes ?? 0;
      const dur = d % 1440 === 0 ? `${d / 1440} day${d === 1440 ? "" : "s"}` : `${d / 60} hours`;
      return `for ${dur} from its first use, which must be ${span}`;
    }
    case "recurring": {
      const r = p.recurring!;
      const start = `${String(r.startHour).padStart(2, "0")}:00`;
      const end = `${String((r.startHour + r.lengthHours) % 24).padStart(2, "0")}:00`;
      return `${daysText(r.daysMask)} ${start}–${end}, ${span}`;
    }
  }
}

/**
 * The message to send a guest: their code grouped in fours, what it allows, and the lock's zone.
 * Contains the digits: show it to the issuer once; never log it.
 */
export function shareText(
  issued: IssuedGuestCode,
  guestName: string,
  lockName: string,
  timeZone: string,
): string {
  return (
    `Hi ${guestName}, your code for ${lockName} is ${groupDigits(issued.code)}. ` +
    `It works ${describeIssued(issued)} (${timeZone} time). Type the digits, then #.`
  );
}
