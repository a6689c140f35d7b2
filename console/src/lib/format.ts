/** Wording and formatting shared by the pages: times, roles, credential kinds, audit events. */
import type { AuditEvent, Credential, OperatingMode, Role, User, UserType } from "../api/types.ts";

/** ms since the epoch, or an ISO string (the newer routes return ISO), as ms; NaN when unusable. */
export function toMs(t: string | number | null | undefined): number {
  if (t === null || t === undefined) return Number.NaN;
  return typeof t === "number" ? t : Date.parse(t);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

export function fmtDateTime(t: string | number | null | undefined): string {
  const ms = toMs(t);
  return Number.isFinite(ms) ? dateTime.format(ms) : "—";
}
export function fmtDate(t: string | number | null | undefined): string {
  const ms = toMs(t);
  return Number.isFinite(ms) ? dateOnly.format(ms) : "—";
}
export function fmtTime(t: string | number | null | undefined): string {
  const ms = toMs(t);
  return Number.isFinite(ms) ? timeOnly.format(ms) : "—";
}

/**
 * The hub's clock minus this device's, ms: relative times ("3 min ago") count from the hub's time, as the
 * times they describe come from it (a phone with a wrong clock still reads them right).
 */
let hubClockOffset = 0;
export function setHubClock(hubNow: number): void {
  if (Number.isFinite(hubNow)) hubClockOffset = hubNow - Date.now();
}
export const hubNow = (): number => Date.now() + hubClockOffset;

/** "3 min ago", "in 2 days" (from the hub's time). */
export function fmtRelative(t: string | number | null | undefined, now = hubNow()): string {
  const ms = toMs(t);
  if (!Number.isFinite(ms)) return "never";
  const d = ms - now;
  const abs = Math.abs(d);
  const units: [number, Intl.RelativeTimeFormatUnit][] = [
    [86_400_000, "day"],
    [3_600_000, "hour"],
    [60_000, "minute"],
    [1000, "second"],
  ];
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [size, unit] of units) {
    if (abs >= size || unit === "second") return rtf.format(Math.round(d / size), unit);
  }
  return "now";
}

/** A duration in ms as "2 d 3 h", "5 min", "12 s". */
export function fmtDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The six kinds of people the console offers; each maps to a hub role (and for delivery, a user type). */
export const PERSON_KINDS = [
  {
    id: "owner",
    label: "Owner",
    role: "owner",
    userType: null,
    hint: "Full control, including other owners.",
  },
  {
    id: "admin",
    label: "Admin",
    role: "admin",
    userType: null,
    hint: "Manages people, codes and schedules.",
  },
  {
    id: "member",
    label: "Roommate / member",
    role: "member",
    userType: null,
    hint: "Lives here; opens the door.",
  },
  { id: "guest", label: "Guest", role: "guest", userType: null, hint: "Visits; usually on a schedule." },
  {
    id: "service",
    label: "Cleaner / service",
    role: "service",
    userType: null,
    hint: "Works here: limit it to days and hours below.",
  },
  {
    id: "delivery",
    label: "Delivery",
    role: "service",
    userType: "disposable",
    hint: "Opens once, then the person is disabled.",
  },
] as const satisfies readonly {
  id: string;
  label: string;
  role: Role;
  userType: UserType | null;
  hint: string;
}[];
export type PersonKind = (typeof PERSON_KINDS)[number]["id"];

export function personKindOf(u: Pick<User, "role" | "userType">): PersonKind {
  if (u.role === "service" && (u.userType === "disposable" || u.userType === "expiringDisposable"))
    return "delivery";
  return u.role;
}

export function personKindLabel(u: Pick<User, "role" | "userType">): string {
  const k = personKindOf(u);
  return PERSON_KINDS.find((p) => p.id === k)?.label ?? u.role;
}

export const USER_TYPE_LABELS: Record<UserType, string> = {
  unrestricted: "Any time",
  weekDaySchedule: "Week-day schedule",
  yearDaySchedule: "Date ranges",
  scheduleRestricted: "Week days within date ranges",
  programming: "Any time, also in vacation mode",
  nonAccess: "Never opens (record only)",
  disposable: "Opens once",
  expiringDisposable: "For a while after first use",
};

export const CREDENTIAL_LABELS: Record<string, string> = {
  pin: "PIN",
  rfid: "Card",
  fingerprint: "Fingerprint",
  totp: "Authenticator",
  phoneKey: "Phone key",
  guestCode: "Guest code",
};

export function credentialSummary(c: Credential): string {
  switch (c.type) {
    case "pin":
      return `${c.duress ? "Duress PIN" : "PIN"} (${c.pinLength} digits)`;
    case "rfid":
      return `Card ${c.cardId}`;
    case "fingerprint":
      return `Fingerprint, sensor slot ${c.slot}`;
    case "totp":
      return c.requirePin ? "Authenticator (after the PIN)" : "Authenticator (code alone)";
  }
}

/** Matter § 5.2 OperatingMode, in words a household reads. */
export const MODE_TEXT: Record<OperatingMode, { label: string; means: string }> = {
  normal: { label: "Normal", means: "Every credential opens within its schedule; the door relocks itself." },
  vacation: {
    label: "Vacation",
    means:
      "Only owners and programming users open at the door; everyone else's PINs, cards and codes are refused. Remote unlock still works.",
  },
  privacy: {
    label: "Privacy",
    means:
      "Nothing opens from outside. The inside button or the mechanical key opens and returns the lock to normal.",
  },
  noRemoteLockUnlock: {
    label: "No remote",
    means: "Credentials at the door work; remote lock and unlock (console, app, Matter) are refused.",
  },
  passage: {
    label: "Passage",
    means:
      "The door is held unlocked for anyone, with no relock, until you switch back (office hours, a party).",
  },
};

export const DAY_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] as const;

export function daysOfMask(mask: number): string {
  const names = DAY_NAMES.filter((_, i) => (mask & (1 << i)) !== 0);
  if (mask === 0b0111110) return "Mon–Fri";
  if (mask === 0b1000001) return "Sat–Sun";
  if (mask === 127) return "every day";
  return names.join(", ");
}

const pad = (n: number) => String(n).padStart(2, "0");
export const hhmm = (h: number, m: number): string => `${pad(h)}:${pad(m)}`;

/** Local date-time input value (`YYYY-MM-DDTHH:MM`) of a Date, in the browser's zone. */
export function localInputValue(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Where an attempt came from. */
const SOURCES: Record<string, string> = {
  keypad: "at the keypad",
  rfid: "with a card",
  biometric: "with a fingerprint",
  remote: "remotely",
  phone: "with a phone key",
  manual: "with the key or thumb-turn",
  button: "with the inside button",
  auto: "by auto-relock",
};

/** Refusal reasons of decide(), in words. */
export const DENY_REASONS: Record<string, string> = {
  unknown_credential: "unknown credential",
  wrong_lock: "not valid for this door",
  user_disabled: "person suspended",
  non_access_user: "person never opens",
  outside_schedule: "outside schedule",
  expired: "expired",
  lockout: "keypad locked out",
  mode_forbids: "mode forbids",
  battery_reserve: "battery reserve",
  clock_untrusted: "clock not trusted",
  lock_jammed: "lock jammed",
  second_credential_required: "needs the authenticator code too",
  totp_invalid: "wrong authenticator code",
  totp_replayed: "authenticator code already used",
  revoked: "code revoked",
  used_up: "code used up",
  not_yet_valid: "code not valid yet",
  state_full: "code store full",
};

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

/**
 * Who an attempt was: the person's name, a guest code's name ("Parcel courier (guest code)"), or null.
 * `names` maps user ids and `code:<codeId>` to names (lib/people.ts).
 */
export function whoOf(e: AuditEvent, names: ReadonlyMap<string, string>): string | null {
  const id = str(e.data.userId);
  if (id) return names.get(id) ?? "A removed person";
  const code = str(e.data.codeId);
  if (code) {
    const n = names.get(`code:${code}`);
    return n ? `${n} (guest code)` : `Guest code ${code}`;
  }
  return null;
}

/** One line about an audit event, naming people from `names` (see {@link whoOf}). */
export function describeEvent(e: AuditEvent, names: ReadonlyMap<string, string>): string {
  const d = e.data;
  const who = () => whoOf(e, names) ?? "Someone";
  const cred = CREDENTIAL_LABELS[str(d.credentialType) ?? ""] ?? str(d.credentialType);
  const src = SOURCES[str(d.source) ?? ""] ?? "";
  switch (e.kind) {
    case "access.granted":
      return `${who()} opened ${src}${cred && !str(d.codeId) ? ` (${cred})` : ""}`;
    case "access.denied": {
      const reason = DENY_REASONS[str(d.reason) ?? ""] ?? str(d.reason) ?? "refused";
      const who2 = whoOf(e, names) ?? (cred ? `A ${cred}` : "An attempt");
      return `${who2} refused ${src}: ${reason}`;
    }
    case "lock.state":
      return `Bolt ${str(d.to) ?? "changed"}${src ? ` ${src}` : ""}`;
    case "door.state":
      return `Door ${str(d.to) ?? str(d.state) ?? "changed"}`;
    case "lock.manual_key":
      return `Mechanical key turned${str(d.to) ? ` to ${str(d.to)}` : ""}`;
    case "lock.request_to_exit":
      return "Inside exit button pressed";
    case "admin.change":
      return `${names.get(str(d.actorId) ?? "") ?? (str(d.actorId) === "system" ? "The hub" : "An admin")}: ${adminAction(d)}`;
    case "clock.untrusted":
      return `Clock not trusted${str(d.reason) ? `: ${str(d.reason)}` : ""}`;
    case "clock.set":
      return "Clock set";
    case "power.up":
      return "Lock powered up";
    case "audit.trimmed":
      return "Old events trimmed (signed anchor kept)";
    default:
      if (e.kind.startsWith("alarm.")) return `Alarm: ${e.kind.slice(6).replaceAll("_", " ")}`;
      return e.kind;
  }
}

const ADMIN_ACTIONS: Record<string, string> = {
  "hub.claim": "claimed the hub",
  "pin.refused_in_use": "tried a PIN someone else has (refused)",
  "hub.recover": "recovered owner access with the recovery code",
  "hub.recovery_rotate": "made a new recovery code",
  "user.offboard": "offboarded a person",
  "lock.add": "added the lock",
  "lock.update": "changed lock settings",
  "mode.set": "changed the mode",
  "user.add": "added a person",
  "user.update": "changed a person",
  "user.remove": "removed a person",
  "credential.add": "added a credential",
  "credential.remove": "removed a credential",
  "token.issue": "made an API token",
  "token.revoke": "revoked an API token",
  "guestCode.issue": "issued a guest code",
  "guestCode.revoke": "revoked a guest code",
  "guestCode.issuer.add": "enrolled a guest-code issuer",
  "guestCode.issuer.remove": "removed a guest-code issuer",
  "guestCode.issuer.epoch": "revoked an issuer's guest codes",
  "keys.root": "registered the owner root key",
  "keys.issue": "issued a phone key",
  "keys.revoke": "revoked a phone key",
  "import.applied": "imported people and rules",
  "import.undo": "undid an import",
};

function adminAction(d: Record<string, unknown>): string {
  const action = str(d.action) ?? "change";
  const words = ADMIN_ACTIONS[action] ?? action;
  const name = str(d.name);
  const mode = str(d.mode);
  return `${words}${name ? ` (${name})` : ""}${mode ? ` to ${mode}` : ""}`;
}

export function isAlarm(kind: string): boolean {
  return kind.startsWith("alarm.");
}

/** The wall-clock parts of `ms` in the IANA zone `tz` (a lock's zone). */
export function zonedParts(
  ms: number,
  tz: string,
): { year: number; month: number; day: number; hour: number; minute: number; weekday: number } {
  const f = new Intl.DateTimeFormat("en-US", {
    timeZone: tz,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    weekday: "short",
    hourCycle: "h23",
  });
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(ms)) p[part.type] = part.value;
  const weekday = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(p.weekday ?? "Sun");
  return {
    year: Number(p.year),
    month: Number(p.month),
    day: Number(p.day),
    hour: Number(p.hour) % 24,
    minute: Number(p.minute),
    weekday: Math.max(0, weekday),
  };
}

/** `YYYY-MM-DDTHH:MM` of `ms` in the lock's zone (what guest-code windows and date ranges are written in). */
export function lockLocal(ms: number, tz: string): string {
  const z = zonedParts(ms, tz);
  return `${z.year}-${pad(z.month)}-${pad(z.day)}T${pad(z.hour)}:${pad(z.minute)}`;
}
