/**
 * Output helpers of the `latchkey` command. Every string that comes from the hub (user, lock and
 * credential names, labels, audit event fields, error messages) goes through {@link safe} or
 * {@link logValue} before it reaches the terminal, so a hostile name cannot move the cursor, change
 * colours, set the window title or fake a log line.
 */
import type { AuditEvent } from "../core/audit/chain.ts";

/**
 * Characters that must not reach a terminal raw: C0 controls (ESC, newline, carriage return, …),
 * DEL, C1 controls (0x80–0x9f: CSI and OSC in 8-bit form), the Unicode line and paragraph
 * separators and the bidirectional overrides and isolates (which can make text read backwards).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** What JSON.stringify leaves unescaped inside strings (it escapes only U+0000–U+001F). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** `s` with control characters escaped: ESC → `\x1b`, newline → `\n`, U+202E → `\u202e`. */
export function safe(s: unknown): string {
  return String(s ?? "").replace(UNSAFE, escapeChar);
}

/** JSON text with the characters JSON.stringify leaves raw (C1 controls, U+2028, bidi) escaped. Still valid JSON. */
export function safeJson(data: unknown, indent?: number): string {
  return (JSON.stringify(data, null, indent) ?? "null").replace(
    UNSAFE_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const PLAIN = /^[\p{L}\p{N}_.:@/+#-]+$/u;

/**
 * A value for a `key=value` log field. A string is bare when it is plain, otherwise double-quoted with
 * `"` and `\` escaped and control characters escaped, so it can never contain a field separator or a
 * line break; other values are compact JSON (control characters escaped).
 */
export function logValue(v: unknown): string {
  if (typeof v !== "string") return safe(JSON.stringify(v) ?? "null");
  if (v !== "" && PLAIN.test(v)) return v;
  return `"${safe(v.replace(/[\\"]/g, (c) => `\\${c}`))}"`;
}

/** Rows as aligned columns under a header; cells are escaped here. The last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [header.map(String), ...rows.map((r) => r.map((c) => safe(c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function partsIn(ms: number, timeZone: string): Record<string, string> {
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      timeZoneName: "longOffset",
    });
  } catch {
    return partsIn(ms, "UTC");
  }
  const parts: Record<string, string> = {};
  for (const p of fmt.formatToParts(new Date(ms))) parts[p.type] = p.value;
  return parts;
}

/** `ms` as an ISO 8601 local time in `timeZone` with its offset, e.g. `2026-05-01T14:03:07+02:00`. */
export function isoInZone(ms: number, timeZone: string): string {
  if (!Number.isFinite(ms)) return String(ms);
  const p = partsIn(ms, timeZone);
  const offset = (p.timeZoneName ?? "GMT").replace(/^GMT/, "") || "+00:00";
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}${offset}`;
}

/** `ms` as `HH:MM:SS` in `timeZone`. */
export function clockInZone(ms: number, timeZone: string): string {
  const p = partsIn(ms, timeZone);
  return `${p.hour}:${p.minute}:${p.second}`;
}

/** What each Matter OperatingMode means for the people at the door, in one line. */
export const MODE_MEANINGS: Readonly<Record<string, string>> = {
  normal: "every credential and remote command works",
  vacation: "keypad, cards and fingerprints only for owners and programming users; remote still works",
  privacy: "nothing from outside opens; the inside button or the key returns it to normal",
  noRemoteLockUnlock: "remote lock and unlock refused; credentials at the door work",
  passage: "held unlocked: no credential needed, no auto-relock",
};

export function modeMeaning(mode: string): string {
  return MODE_MEANINGS[mode] ?? "unknown mode";
}

/** Event fields holding a time (epoch ms), shown as ISO times. */
const TIME_FIELDS = new Set(["until", "from", "to", "at", "time", "firstUsedAt", "expiresAt"]);
/** Event fields holding a user id, shown with the user's name when known. */
const USER_FIELDS = new Set(["userId", "actorId"]);

export interface EventContext {
  /** The time zone an event is shown in (its lock's, else the site's). */
  zoneOf(lockId: string | null): string;
  /** A user's name, when the caller may list users. */
  nameOf(userId: string): string | undefined;
}

/** One audit event as a log line: `#seq time lock kind key=value ...`, every hub string escaped. */
export function formatEvent(e: AuditEvent, ctx: EventContext): string {
  const zone = ctx.zoneOf(e.lockId);
  const parts = Object.entries(e.data ?? {}).map(([k, v]) => {
    if (TIME_FIELDS.has(k) && typeof v === "number" && v > 1e11) return `${k}=${isoInZone(v, zone)}`;
    if (USER_FIELDS.has(k) && typeof v === "string") {
      const name = ctx.nameOf(v);
      return `${k}=${logValue(v)}${name !== undefined ? `(${logValue(name)})` : ""}`;
    }
    return `${safe(k)}=${logValue(v)}`;
  });
  return [
    `#${e.seq}`,
    isoInZone(e.at, zone),
    safe(e.lockId ?? "hub").padEnd(12),
    safe(e.kind).padEnd(20),
    parts.join(" "),
  ]
    .join(" ")
    .trimEnd();
}

/** A string as a shell word (single-quoted when needed), for commands the CLI suggests. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const DAY_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** A Matter DaysMaskMap (bit 0 Sunday … bit 6 Saturday) as `Mon,Tue,...`, `weekdays`, `weekend` or `daily`. */
export function daysText(mask: number): string {
  if (mask === 127) return "daily";
  if (mask === 62) return "weekdays";
  if (mask === 65) return "weekend";
  // Monday first, Sunday last.
  return [1, 2, 3, 4, 5, 6, 0]
    .filter((d) => mask & (1 << d))
    .map((d) => DAY_NAMES[d])
    .join(",");
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** A user's schedules in one short cell: `weekdays 09:00–17:00; 2026-12-24T18:00→2026-12-27T11:00`. */
export function schedulesText(u: {
  weekDaySchedules?: readonly {
    daysMask: number;
    startHour: number;
    startMinute: number;
    endHour: number;
    endMinute: number;
  }[];
  yearDaySchedules?: readonly { start: string; end: string }[];
}): string {
  const week = (u.weekDaySchedules ?? []).map(
    (s) =>
      `${daysText(s.daysMask)} ${pad2(s.startHour)}:${pad2(s.startMinute)}-${pad2(s.endHour)}:${pad2(s.endMinute)}`,
  );
  const year = (u.yearDaySchedules ?? []).map((s) => `${s.start}..${s.end}`);
  return [...week, ...year].join("; ") || "-";
}
