/**
 * Import into the hub (docs/formats/export.md § "Import"): a `latchkey-export` document, or a CSV file of
 * users. Two steps, so that a failing import changes nothing:
 *
 * 1. {@link planImport} / {@link planCsvImport} read and check everything first (format, every user,
 *    schedule, credential and lock reference, name conflicts, revocations) and return an {@link ImportPlan}:
 *    the list of changes to make, or throw a coded error and change nothing.
 * 2. {@link applyImport} makes the plan's changes through the hub's public methods, so each change is
 *    audited and recorded as a signed operation like any other. It plans again first and refuses a plan
 *    the hub's state no longer matches; should a step still fail, the changes made so far are undone.
 *
 * A version-1 document carries no secrets: PIN and authenticator users are reported for re-enrolment,
 * guest-code issuers, the guest-code ledger and phone keys are reported, not imported. A version-2
 * document carries them in a passphrase box (src/hub/export.ts): with the passphrase
 * ({@link planImportWithPassphrase}) PINs, authenticator apps and guest-code issuers are restored as one
 * last, atomic step ({@link Hub.restoreSecrets}); without it, it imports like version 1.
 */
import { z } from "zod";
import type { JsonValue } from "../core/audit/canonical.ts";
import { AuditKind } from "../core/audit/chain.ts";
import { normalizeUid, parseCardId } from "../core/credentials/card-id.ts";
import { GUEST_CODE_MAX_ISSUER_KEYS } from "../core/credentials/guest-code.ts";
import { TOTP_MAX_DIGITS, TOTP_MIN_DIGITS } from "../core/credentials/totp.ts";
import { timingSafeEqual } from "../core/crypto.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { assertDisplayName } from "../core/ids.ts";
import {
  type LockScope,
  OperatingMode,
  Role,
  UserStatus,
  UserType,
  type WeekDaySchedule,
  type YearDaySchedule,
} from "../core/model.ts";
import { assertTimeZone, assertWeekDaySchedule, assertYearDaySchedule } from "../core/schedule.ts";
import { EpochMs, Seconds } from "../core/units.ts";
import type { GuestCodeLedgerRecord, LockSettings } from "../store/sqlite/edge-store.ts";
import {
  type ExportSecrets,
  exportDigest,
  openExportSecrets,
  type RestoredCredential,
  type RestoredIssuer,
  type SecretRestore,
} from "./export.ts";
import { type Actor, Hub, type NewUser, type UserPatch } from "./hub.ts";
import { type BoxOptions, PassphraseBoxSchema } from "./passphrase-box.ts";

const values = <T extends Record<string, string>>(o: T) => Object.values(o) as [T[keyof T], ...T[keyof T][]];

// ------------------------------------------------------------------ the document's schema

const Id = z.string().min(1).max(64);
const LockId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/);
const Ms = z.number().int().min(0);

const WeekDayScheduleJson = z.strictObject({
  daysMask: z.number().int().min(1).max(127).describe("Matter DaysMaskMap: bit 0 Sunday … bit 6 Saturday"),
  startHour: z.number().int().min(0).max(23),
  startMinute: z.number().int().min(0).max(59),
  endHour: z.number().int().min(0).max(24),
  endMinute: z.number().int().min(0).max(59),
});
const YearDayScheduleJson = z.strictObject({
  start: z.string().max(16).describe("local YYYY-MM-DDTHH:MM in the lock's zone, inclusive"),
  end: z.string().max(16).describe("local YYYY-MM-DDTHH:MM in the lock's zone, exclusive"),
});
const LockScopeJson = z.union([z.literal("all"), z.array(LockId).min(1).max(100)]);

const LockSettingsJson = z.strictObject({
  autoRelockTime: z.number().int().min(0).max(86_400).describe("seconds, 0 = off"),
  wrongCodeEntryLimit: z.number().int().min(1).max(255),
  userCodeTemporaryDisableTime: z.number().int().min(1).max(255).describe("seconds"),
  maxDisableTime: z.number().int().min(1).max(86_400).describe("seconds"),
  doorAjarTime: z.number().int().min(5).max(86_400).describe("seconds"),
  batteryLowPercent: z.number().min(1).max(99),
  batteryCriticalPercent: z.number().min(0).max(98),
  pinMinLength: z.number().int().min(4).max(12),
  guestCodeDigits: z.number().int().min(10).max(15),
  guestCodeDriftMinutes: z.number().int().min(0).max(15),
});

const LockJson = z.strictObject({
  id: LockId,
  name: z.string().min(1).max(100),
  timeZone: z.string().min(1).max(64).describe("IANA time zone"),
  operatingMode: z.enum(values(OperatingMode)),
  settings: LockSettingsJson,
});

const UserJson = z.strictObject({
  id: Id,
  name: z.string().min(1).max(100),
  role: z.enum(values(Role)),
  userType: z.enum(values(UserType)),
  userStatus: z.enum(values(UserStatus)),
  weekDaySchedules: z.array(WeekDayScheduleJson).max(10),
  yearDaySchedules: z.array(YearDayScheduleJson).max(10),
  expiringTimeout: z.number().int().min(1).max(31_536_000).nullable().describe("seconds"),
  firstUsedAt: Ms.nullable(),
  createdAt: Ms,
});

const credentialCommon = {
  id: Id,
  userId: Id,
  locks: LockScopeJson,
  label: z.string().max(100).nullable(),
  createdAt: Ms,
  lastUsedAt: Ms.nullable(),
};
const CredentialJson = z.discriminatedUnion("type", [
  z.strictObject({
    ...credentialCommon,
    type: z.literal("pin"),
    pinLength: z.number().int().min(4).max(12),
    duress: z.boolean(),
  }),
  z.strictObject({ ...credentialCommon, type: z.literal("rfid"), cardId: z.string().min(1).max(64) }),
  z.strictObject({
    ...credentialCommon,
    type: z.literal("fingerprint"),
    slot: z.number().int().min(1).max(1000),
  }),
  z.strictObject({
    ...credentialCommon,
    type: z.literal("totp"),
    algorithm: z.string().min(1).max(16),
    digits: z.number().int().min(6).max(10),
    step: z.number().int().min(1).max(300).describe("seconds"),
    requirePin: z.boolean(),
  }),
]);

const GuestCodeIssuerJson = z.strictObject({
  lockId: LockId,
  issuerId: z.string().min(1).max(64),
  userId: Id,
  name: z.string().max(100),
  epoch: z.number().int().min(0),
  createdAt: Ms,
});
const GuestCodeJson = z.strictObject({
  lockId: LockId,
  issuerId: z.string().min(1).max(64),
  epoch: z.number().int().min(0),
  codeId: z.string().min(1).max(64),
  name: z.string().max(100),
  kind: z.string().max(32),
  validFrom: z.string().max(16),
  validTo: z.string().max(16),
  dropAfter: z.number().int(),
  issuedAt: Ms,
});
const PhoneKeyJson = z.looseObject({
  serial: z.string().min(1).max(64),
  userId: Id.nullable(),
  revokedAt: Ms.nullable(),
});

/** Format versions this reader knows (docs/formats/export.md: a reader refuses the others). */
export const EXPORT_VERSIONS = [1, 2] as const;

/** The `latchkey-export` document, version 1 (docs/formats/export.md). */
export const ExportDocumentV1Schema = z
  .strictObject({
    format: z.literal("latchkey-export"),
    version: z.literal(EXPORT_VERSIONS[0]),
    exportedAt: z.iso.datetime().describe("ISO 8601 UTC instant, from the exporting hub's clock"),
    hub: z.strictObject({ deviceId: z.string().min(1).max(64) }),
    locks: z.array(LockJson).max(100),
    users: z.array(UserJson).max(10_000),
    credentials: z.array(CredentialJson).max(50_000),
    guestCodeIssuers: z.array(GuestCodeIssuerJson).max(10_000),
    guestCodes: z.array(GuestCodeJson).max(100_000),
    phoneKeys: z.array(PhoneKeyJson).max(10_000),
    secretsIncluded: z.literal(false),
    note: z.string().max(2000),
  })
  .describe("Latchkey hub export, version 1 (docs/formats/export.md). No secrets.");

/**
 * The `latchkey-export` document, version 2 (docs/formats/export.md § "Version 2"): version 1 plus
 * `secrets`, a passphrase box of kind `latchkey-export-secrets`.
 */
export const ExportDocumentV2Schema = ExportDocumentV1Schema.extend({
  version: z.literal(EXPORT_VERSIONS[1]),
  secretsIncluded: z.literal(true),
  secrets: PassphraseBoxSchema,
}).describe(
  "Latchkey hub export, version 2 (docs/formats/export.md): secrets sealed to a passphrase (scrypt + AES-256-GCM).",
);

/** A `latchkey-export` document of any version this reader knows. */
export const ExportDocumentSchema = z.discriminatedUnion("version", [
  ExportDocumentV1Schema,
  ExportDocumentV2Schema,
]);

export type ExportDocument = z.infer<typeof ExportDocumentSchema>;

/** The JSON Schema (draft 2020-12) of {@link ExportDocumentSchema}, as committed in docs/formats/export.schema.json. */
export function exportJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ExportDocumentSchema, { target: "draft-2020-12", io: "input" });
  return {
    $schema: schema.$schema,
    $id: "https://latchkey.dev/schemas/export.schema.json",
    title: "latchkey-export, versions 1 and 2",
    ...schema,
  };
}

// ------------------------------------------------------------------ the plan

/** How to treat a user, credential or lock the hub already has with different content. */
export type ImportMode = "strict" | "merge";

export interface ImportOptions {
  /** `strict` (default): a difference is LK_CONFLICT. `merge`: the document's user and lock fields win. */
  readonly mode?: ImportMode;
  /** The importing user: when given, the plan is checked against what this actor may do. */
  readonly actor?: Actor;
  /**
   * The opened `secrets` of a version-2 document ({@link openExportSecrets}): PINs, authenticator apps
   * and guest-code issuers are then restored. The document must be the one they were sealed with.
   */
  readonly secrets?: ExportSecrets;
}

/** One change of a plan. `user` is the user's id in the document (or `csv:<row>`), mapped at apply time. */
export type ImportStep =
  | { readonly op: "lock.add"; readonly lockId: string; readonly name: string; readonly timeZone: string }
  | {
      readonly op: "lock.update";
      readonly lockId: string;
      readonly patch: Partial<LockSettings> & { name?: string; timeZone?: string };
    }
  | { readonly op: "lock.mode"; readonly lockId: string; readonly mode: OperatingMode }
  | { readonly op: "user.add"; readonly user: string; readonly input: NewUser; readonly disabled: boolean }
  | { readonly op: "user.update"; readonly user: string; readonly userId: string; readonly patch: UserPatch }
  | {
      readonly op: "card.add";
      readonly user: string;
      /** The credential's id in the document. */
      readonly credential: string;
      readonly cardId: string;
      readonly locks: LockScope;
      readonly label: string | null;
    }
  | {
      readonly op: "fingerprint.add";
      readonly user: string;
      readonly credential: string;
      readonly slot: number;
      readonly locks: LockScope;
      readonly label: string | null;
    }
  /** Version 2 with the passphrase: this hub takes the document's PIN key or guest-code secret (it has none in use). */
  | { readonly op: "secret.adopt"; readonly key: "pin" | "guestCode" }
  | {
      readonly op: "pin.restore";
      readonly user: string;
      readonly credential: string;
      readonly locks: LockScope;
      readonly label: string | null;
      readonly pinLength: number;
      readonly duress: boolean;
    }
  | {
      readonly op: "totp.restore";
      readonly user: string;
      readonly credential: string;
      readonly locks: LockScope;
      readonly label: string | null;
      readonly requirePin: boolean;
      readonly algorithm: string;
      readonly digits: number;
      readonly step: number;
    }
  | {
      readonly op: "issuer.restore";
      readonly lockId: string;
      readonly issuerId: string;
      readonly user: string;
      readonly name: string;
      readonly epoch: number;
      readonly createdAt: number;
      /** Ledger entries of this epoch restored with it. */
      readonly ledger: number;
      /** Codes used or revoked at the exporting hub, revoked here. */
      readonly spent: number;
    };

/** The HMAC algorithms an authenticator credential may use (RFC 6238 § 1.2). */
const TOTP_ALGORITHMS = ["SHA-1", "SHA-256", "SHA-512"] as const;

/** Steps that {@link applyImport} hands to {@link Hub.restoreSecrets} as one batch, last. */
const SECRET_OPS: ReadonlySet<ImportStep["op"]> = new Set([
  "secret.adopt",
  "pin.restore",
  "totp.restore",
  "issuer.restore",
]);

/** Why a PIN or authenticator app was not restored. */
export type ReEnrolReason =
  /** A version-1 document: secrets are never in it. */
  | "notExported"
  /** A version-2 document imported without its passphrase. */
  | "noPassphrase"
  /** This hub has PINs of its own under another PIN key: PIN digests cannot be carried over. */
  | "pinKeyDiffers";

export interface ImportPlan {
  readonly source: "document" | "csv";
  readonly mode: ImportMode;
  /** The changes, in the order they are applied. Empty when the hub already holds everything. */
  readonly steps: readonly ImportStep[];
  /** Users of the document the hub already has (by id, or by name with the same fields): document id → hub id. */
  readonly existingUsers: Readonly<Record<string, string>>;
  readonly counts: {
    readonly locksAdded: number;
    readonly locksUpdated: number;
    readonly usersAdded: number;
    readonly usersUpdated: number;
    readonly usersUnchanged: number;
    readonly credentialsAdded: number;
    readonly credentialsUnchanged: number;
    /** PINs and authenticator apps restored from a version-2 document's secrets. */
    readonly credentialsRestored: number;
    readonly issuersRestored: number;
  };
  /** Users whose PIN or authenticator app was not imported: they enrol again (`reason` says why). */
  readonly reEnrol: readonly {
    readonly user: string;
    readonly name: string;
    readonly needs: readonly ("pin" | "totp")[];
    readonly reason: ReEnrolReason;
  }[];
  /**
   * The document's secrets: `sealed` (a version-2 box is present), `opened` (with the passphrase), and
   * for each key whether this hub's is the `same`, will `adopt` the document's, or `differs` (null: not
   * needed).
   */
  readonly secrets: {
    readonly sealed: boolean;
    readonly opened: boolean;
    readonly pinKey: "same" | "adopt" | "differs" | null;
    readonly guestCodeKey: "same" | "adopt" | "differs" | null;
  };
  /** Parts of the document that are listed but never imported. */
  readonly notImported: {
    readonly guestCodeIssuers: number;
    readonly guestCodes: number;
    readonly phoneKeys: number;
  };
  /** What was read, kept so {@link applyImport} can plan again against the hub's state at that moment. */
  readonly input: ImportModel;
}

/** What an import brings, whatever it was read from (a document or a CSV file). */
export interface ImportModel {
  readonly source: "document" | "csv";
  /** Version-2 document: the digest its secrets were sealed with ({@link exportDigest}); else null. */
  readonly documentSha256: string | null;
  /** The opened secrets (version 2 with the passphrase), else null. */
  readonly secrets: ExportSecrets | null;
  readonly issuers: readonly ImportIssuer[];
  readonly ledger: readonly GuestCodeLedgerRecord[];
  readonly locks: readonly ImportLock[];
  readonly users: readonly ImportUser[];
  readonly credentials: readonly ImportCredential[];
  readonly phoneKeys: readonly {
    readonly serial: string;
    readonly revokedAt: number | null;
    readonly where: string;
  }[];
  readonly guestCodeIssuers: number;
  readonly guestCodes: number;
}

interface ImportIssuer {
  readonly lockId: string;
  readonly issuerId: string;
  readonly userId: string;
  readonly name: string;
  readonly epoch: number;
  readonly createdAt: number;
  readonly where: string;
}

interface ImportLock {
  readonly id: string;
  readonly name: string;
  readonly timeZone: string;
  readonly operatingMode: OperatingMode;
  readonly settings: LockSettings | null;
  readonly where: string;
}

interface ImportUser {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly userType: UserType;
  readonly userStatus: UserStatus;
  readonly weekDaySchedules: readonly WeekDaySchedule[];
  readonly yearDaySchedules: readonly YearDaySchedule[];
  readonly expiringTimeout: number | null;
  /** `users[3]` or `row 4`: named in errors. */
  readonly where: string;
}

interface ImportCredentialBase {
  readonly id: string;
  readonly userId: string;
  readonly locks: LockScope;
  readonly label: string | null;
  readonly where: string;
}

type ImportCredential =
  | (ImportCredentialBase & { readonly type: "pin"; readonly pinLength: number; readonly duress: boolean })
  | (ImportCredentialBase & {
      readonly type: "totp";
      readonly algorithm: string;
      readonly digits: number;
      readonly step: number;
      readonly requirePin: boolean;
    })
  | (ImportCredentialBase & { readonly type: "rfid"; readonly cardId: string })
  | (ImportCredentialBase & { readonly type: "fingerprint"; readonly slot: number });

interface TakenCredential {
  readonly kind: "rfid" | "fingerprint";
  readonly key: string;
  readonly user: string;
  readonly locks: LockScope;
}

function invalid(where: string, detail: string, cause?: string): LatchkeyError {
  return new LatchkeyError("LK_INVALID_INPUT", `${where}: ${detail}`, {
    path: where,
    ...(cause ? { cause } : {}),
  });
}

/** A JSON path such as `$.users[2].name` from a zod issue path. */
function jsonPath(path: readonly PropertyKey[]): string {
  let s = "$";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  return s;
}

/** Run a validator from core and report its error at `where` as LK_INVALID_INPUT. */
function check(where: string, f: () => void): void {
  try {
    f();
  } catch (e) {
    if (isLatchkeyError(e)) throw invalid(where, e.detail, e.code);
    throw e;
  }
}

/**
 * Read a document (a parsed value or its JSON text) into an {@link ImportModel}. Throws LK_INVALID_INPUT
 * naming the JSON path of the first problem.
 */
export function readExportDocument(doc: unknown): ImportModel {
  let value = doc;
  if (typeof doc === "string") {
    try {
      value = JSON.parse(doc);
    } catch {
      throw invalid("$", "not JSON (truncated or damaged file?)");
    }
  }
  if (typeof value === "object" && value !== null && "version" in value) {
    const v = (value as { version: unknown }).version;
    if (
      (value as { format?: unknown }).format === "latchkey-export" &&
      !EXPORT_VERSIONS.includes(v as 1 | 2)
    ) {
      throw invalid(
        "$.version",
        `export format version ${JSON.stringify(v)} is not known to this hub (it reads ${EXPORT_VERSIONS.join(", ")})`,
      );
    }
  }
  const r = ExportDocumentSchema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw invalid(jsonPath(first.path), first.message);
  }
  const d = r.data;
  const dup = (list: readonly { id: string }[], what: string) => {
    const seen = new Set<string>();
    list.forEach((x, i) => {
      if (seen.has(x.id)) throw invalid(`$.${what}[${i}].id`, `duplicate id ${x.id}`);
      seen.add(x.id);
    });
  };
  dup(d.locks, "locks");
  dup(d.users, "users");
  dup(d.credentials, "credentials");
  const seenIssuers = new Set<string>();
  d.guestCodeIssuers.forEach((i, k) => {
    const key = `${i.lockId}/${i.issuerId}`;
    if (seenIssuers.has(key))
      throw invalid(`$.guestCodeIssuers[${k}].issuerId`, `duplicate issuer ${i.issuerId}`);
    seenIssuers.add(key);
  });
  return {
    source: "document",
    documentSha256: d.version === 2 ? exportDigest(value as Record<string, unknown>) : null,
    secrets: null,
    issuers: d.guestCodeIssuers.map((i, k) => ({ ...i, where: `$.guestCodeIssuers[${k}]` })),
    ledger: d.guestCodes.map((e) => ({ ...e }) as GuestCodeLedgerRecord),
    locks: d.locks.map((l, i) => ({
      ...l,
      settings: l.settings as unknown as LockSettings,
      where: `$.locks[${i}]`,
    })),
    users: d.users.map((u, i) => ({ ...u, where: `$.users[${i}]` })),
    credentials: d.credentials.map((c, i): ImportCredential => {
      const common = {
        id: c.id,
        userId: c.userId,
        locks: c.locks,
        label: c.label,
        where: `$.credentials[${i}]`,
      };
      if (c.type === "rfid") return { ...common, type: "rfid", cardId: c.cardId };
      if (c.type === "fingerprint") return { ...common, type: "fingerprint", slot: c.slot };
      if (c.type === "pin") return { ...common, type: "pin", pinLength: c.pinLength, duress: c.duress };
      return {
        ...common,
        type: "totp",
        algorithm: c.algorithm,
        digits: c.digits,
        step: c.step,
        requirePin: c.requirePin,
      };
    }),
    phoneKeys: d.phoneKeys.map((k, i) => ({
      serial: k.serial,
      revokedAt: k.revokedAt,
      where: `$.phoneKeys[${i}]`,
    })),
    guestCodeIssuers: d.guestCodeIssuers.length,
    guestCodes: d.guestCodes.length,
  };
}

// ------------------------------------------------------------------ CSV

/** One CSV row, validated. `row` counts lines of records as a spreadsheet shows them (the header is row 1). */
export interface CsvUserRow {
  readonly row: number;
  readonly name: string;
  readonly role: Role;
  /** Normalised card id (`uid:04a1b2c3`, `h10301:123:45678`), or null. */
  readonly cardId: string | null;
  readonly weekDaySchedules: readonly WeekDaySchedule[];
}

/** The CSV columns: `name` is required, the others optional (docs/formats/export.md § "CSV"). */
export const CSV_COLUMNS = ["name", "role", "card", "schedule"] as const;

/** RFC 4180 records: quoted fields may hold commas, quotes (doubled) and line breaks. Throws LK_INVALID_INPUT. */
function csvRecords(text: string): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  let i = 0;
  const src = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const endField = () => {
    record.push(field);
    field = "";
  };
  while (i < src.length) {
    const ch = src[i]!;
    if (quoted) {
      if (ch === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = src[i];
        if (next !== undefined && next !== "," && next !== "\r" && next !== "\n") {
          throw invalid(
            `row ${records.length + 1}`,
            'text after a closing quote (a quote inside a field is written "")',
          );
        }
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"') {
      if (field !== "") throw invalid(`row ${records.length + 1}`, "a quote inside an unquoted field");
      quoted = true;
      i++;
    } else if (ch === ",") {
      endField();
      i++;
    } else if (ch === "\r" || ch === "\n") {
      endField();
      records.push(record);
      record = [];
      i += ch === "\r" && src[i + 1] === "\n" ? 2 : 1;
    } else {
      field += ch;
      i++;
    }
  }
  if (quoted) throw invalid(`row ${records.length + 1}`, "a quoted field is not closed");
  if (field !== "" || record.length > 0) {
    endField();
    records.push(record);
  }
  return records;
}

const DAY_BITS: Readonly<Record<string, number>> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

function parseHm(text: string, allow24: boolean): { hour: number; minute: number } | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (!m) return null;
  const hour = Number(m[1]);
  const minute = Number(m[2]);
  if (minute > 59 || hour > 24 || (hour === 24 && (!allow24 || minute !== 0))) return null;
  return { hour, minute };
}

/**
 * A week-day schedule such as `mon-fri 08:00-18:00`, `sat,sun 10:00-14:00` or `daily 22:00-06:00`;
 * several joined with `;`. Days: `mon`…`sun`, ranges (Monday-first, wrapping), `weekdays`, `weekend`,
 * `daily`. Returns null when the text is not one.
 */
export function parseWeekSchedules(text: string): WeekDaySchedule[] | null {
  const out: WeekDaySchedule[] = [];
  for (const part of text.split(";")) {
    const m = /^\s*([a-z,-]+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$/i.exec(part);
    if (!m) return null;
    let mask = 0;
    for (const item of m[1]!.toLowerCase().split(",")) {
      if (item === "weekdays") mask |= 0b0111110;
      else if (item === "weekend") mask |= 0b1000001;
      else if (item === "daily") mask |= 0b1111111;
      else {
        const range = /^([a-z]{3})-([a-z]{3})$/.exec(item);
        const a = DAY_BITS[range ? range[1]! : item];
        const b = range ? DAY_BITS[range[2]!] : a;
        if (a === undefined || b === undefined) return null;
        for (let d = a; ; d = (d + 1) % 7) {
          mask |= 1 << d;
          if (d === b) break;
        }
      }
    }
    const start = parseHm(m[2]!, false);
    const end = parseHm(m[3]!, true);
    if (!start || !end || mask === 0) return null;
    out.push({
      daysMask: mask,
      startHour: start.hour,
      startMinute: start.minute,
      endHour: end.hour,
      endMinute: end.minute,
    });
  }
  return out;
}

/** A card as a normalised id: `uid:<hex>`, a Wiegand id (`h10301:123:45678`), or bare UID hex. */
function cardIdOf(text: string): string {
  return /^(uid:|[a-z0-9]+:\d)/.test(text) ? parseCardId(text) : normalizeUid(text);
}

/**
 * Parse a CSV file of users (RFC 4180; a header naming the columns is required; `name` is required,
 * `role`, `card` and `schedule` optional). Every row is checked; the first bad one throws
 * LK_INVALID_INPUT naming its row (the header is row 1).
 */
export function parseUsersCsv(text: string): CsvUserRow[] {
  const records = csvRecords(text);
  const header = records[0];
  if (!header || header.every((h) => h.trim() === "")) throw invalid("row 1", "the header row is missing");
  const cols = header.map((h) => h.trim().toLowerCase());
  for (const c of cols) {
    if (!(CSV_COLUMNS as readonly string[]).includes(c)) {
      throw invalid("row 1", `unknown column "${c.slice(0, 40)}" (columns: ${CSV_COLUMNS.join(", ")})`);
    }
  }
  if (new Set(cols).size !== cols.length) throw invalid("row 1", "a column is named twice");
  if (!cols.includes("name")) throw invalid("row 1", 'the header needs a "name" column');
  const rows: CsvUserRow[] = [];
  records.slice(1).forEach((rec, i) => {
    const row = i + 2;
    const where = `row ${row}`;
    if (rec.length === 1 && rec[0]!.trim() === "") return; // a blank line
    if (rec.length !== cols.length)
      throw invalid(where, `has ${rec.length} fields, the header ${cols.length}`);
    const get = (c: (typeof CSV_COLUMNS)[number]) => {
      const k = cols.indexOf(c);
      return k < 0 ? "" : rec[k]!.trim();
    };
    const name = get("name");
    check(`${where}, name`, () => assertDisplayName(name));
    const roleText = get("role").toLowerCase() || Role.Member;
    if (!(values(Role) as string[]).includes(roleText)) {
      throw invalid(
        `${where}, role`,
        `"${roleText.slice(0, 20)}" is not a role (${values(Role).join(", ")})`,
      );
    }
    const cardText = get("card");
    let cardId: string | null = null;
    if (cardText !== "") {
      check(`${where}, card`, () => {
        cardId = cardIdOf(cardText);
      });
    }
    const scheduleText = get("schedule");
    const weekDaySchedules = scheduleText === "" ? [] : parseWeekSchedules(scheduleText);
    if (weekDaySchedules === null) {
      throw invalid(`${where}, schedule`, 'must look like "mon-fri 08:00-18:00" (several joined with ";")');
    }
    for (const s of weekDaySchedules) check(`${where}, schedule`, () => assertWeekDaySchedule(s));
    rows.push({ row, name, role: roleText as Role, cardId, weekDaySchedules });
  });
  return rows;
}

/** The CSV rows as an {@link ImportModel}: users without ids on the hub yet, cards for all locks. */
export function csvModel(rows: readonly CsvUserRow[]): ImportModel {
  return {
    source: "csv",
    documentSha256: null,
    secrets: null,
    issuers: [],
    ledger: [],
    locks: [],
    users: rows.map((r) => ({
      id: `csv:${r.row}`,
      name: r.name,
      role: r.role,
      userType: r.weekDaySchedules.length > 0 ? UserType.WeekDaySchedule : UserType.Unrestricted,
      userStatus: UserStatus.OccupiedEnabled,
      weekDaySchedules: r.weekDaySchedules,
      yearDaySchedules: [],
      expiringTimeout: null,
      where: `row ${r.row}`,
    })),
    credentials: rows.flatMap((r) =>
      r.cardId === null
        ? []
        : [
            {
              id: `csv:${r.row}:card`,
              userId: `csv:${r.row}`,
              type: "rfid" as const,
              cardId: r.cardId,
              locks: "all" as const,
              label: null,
              where: `row ${r.row}, card`,
            },
          ],
    ),
    phoneKeys: [],
    guestCodeIssuers: 0,
    guestCodes: 0,
  };
}

// ------------------------------------------------------------------ planning

/**
 * Ids the hub has removed or revoked: from the operation log's tombstones, and from the audit log. An id
 * that an earlier import mapped to a hub id (`import.applied`, `restoredFrom`) is dead when that hub id
 * is, so an old export never brings back, under its old id, what was removed after it was imported.
 * Guest-code issuers as `lockId/issuerId`.
 */
function tombstones(hub: Hub): {
  users: Set<string>;
  credentials: Set<string>;
  keys: Set<string>;
  issuers: Set<string>;
} {
  const users = new Set<string>();
  const credentials = new Set<string>();
  const keys = new Set<string>();
  const issuers = new Set<string>();
  /** Hub id → the document ids imported as it. */
  const aliases = new Map<string, Set<string>>();
  const alias = (hubId: unknown, docId: unknown) => {
    if (typeof hubId !== "string" || typeof docId !== "string" || hubId === docId) return;
    const set = aliases.get(hubId) ?? new Set<string>();
    set.add(docId);
    aliases.set(hubId, set);
  };
  const state = hub.replica.state();
  if (state) {
    for (const id of state.removedUsers) users.add(id);
    for (const id of state.removedCredentials) credentials.add(id);
    for (const s of state.revokedKeys) keys.add(s);
  }
  // The audit log has every removal this hub made, also while the operation log is inactive.
  let afterSeq = 0;
  for (;;) {
    const page = hub.store.query({ kinds: [AuditKind.Admin], afterSeq, limit: 5000 });
    for (const e of page) {
      const d = e.data as Record<string, JsonValue>;
      if (d.action === "user.remove" && typeof d.userId === "string") {
        users.add(d.userId);
        if (Array.isArray(d.credentialIds))
          for (const c of d.credentialIds) if (typeof c === "string") credentials.add(c);
      } else if (d.action === "credential.remove" && typeof d.credentialId === "string") {
        credentials.add(d.credentialId);
      } else if (d.action === "credential.add" && typeof d.restoredFrom === "string") {
        alias(d.credentialId, d.restoredFrom);
      } else if (d.action === "import.applied") {
        for (const m of [d.users, d.credentials]) {
          if (typeof m === "object" && m !== null && !Array.isArray(m))
            for (const [docId, hubId] of Object.entries(m)) alias(hubId, docId);
        }
      } else if (
        d.action === "guestCode.issuer.remove" &&
        typeof d.lockId === "string" &&
        typeof d.issuerId === "string"
      ) {
        issuers.add(`${d.lockId}/${d.issuerId}`);
      }
    }
    if (page.length < 5000) break;
    afterSeq = page[page.length - 1]!.seq;
  }
  for (const k of hub.store.phoneKeys.keys()) if (k.revokedAt !== null) keys.add(k.serial);
  for (const set of [users, credentials]) {
    for (const id of [...set]) for (const docId of aliases.get(id) ?? []) set.add(docId);
  }
  return { users, credentials, keys, issuers };
}

function stale(where: string, what: string): LatchkeyError {
  return new LatchkeyError(
    "LK_IMPORT_STALE",
    `${where}: ${what} was removed or revoked on this hub after the export was taken; an older export cannot bring it back`,
    { path: where },
  );
}

/** A field of a located thing: `$.users[2].name`, or `row 3, name` in a CSV file. */
function at(where: string, field: string): string {
  return where.startsWith("$") ? `${where}.${field}` : `${where}, ${field}`;
}

function conflict(where: string, detail: string): LatchkeyError {
  return new LatchkeyError("LK_CONFLICT", `${where}: ${detail}`, { path: where });
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const sameScope = (a: LockScope, b: LockScope) =>
  a === "all" || b === "all" ? a === b : sameJson([...a].sort(), [...b].sort());
const overlap = (a: LockScope, b: LockScope) => a === "all" || b === "all" || a.some((id) => b.includes(id));
const RANK: Readonly<Record<Role, number>> = { owner: 4, admin: 3, member: 2, guest: 1, service: 1 };

/** Codes of an issuer's exported epoch that were used or revoked at the exporting hub (revoked on restore). */
function spentCodes(
  sec: ExportSecrets,
  i: { readonly lockId: string; readonly issuerId: string; readonly epoch: number },
): { codeId: string; dropAfter: number }[] {
  return sec.guestCodeState
    .filter(
      (u) =>
        u.lockId === i.lockId &&
        u.issuerId === i.issuerId &&
        u.epoch === i.epoch &&
        (u.revoked || u.uses > 0 || u.firstUsedAt !== null),
    )
    .map((u) => ({ codeId: u.codeId, dropAfter: u.dropAfter }));
}

/**
 * Plan the import of a `latchkey-export` document (a parsed value or its JSON text). See the module doc.
 * With `opts.secrets` the document must be the version-2 document they were opened from (else
 * LK_EXPORT_MODIFIED).
 */
export function planImport(hub: Hub, doc: unknown, opts: ImportOptions = {}): ImportPlan {
  const model = readExportDocument(doc);
  if (!opts.secrets) return planModel(hub, model, opts);
  if (model.documentSha256 === null)
    throw invalid("$.version", "secrets were given for a version-1 document, which has none");
  if (model.documentSha256 !== opts.secrets.documentSha256) {
    throw new LatchkeyError(
      "LK_EXPORT_MODIFIED",
      "the document is not the one these secrets were sealed with (modified after export?); nothing was changed",
    );
  }
  return planModel(hub, { ...model, secrets: opts.secrets }, opts);
}

/**
 * Open a version-2 document's secrets with `passphrase` ({@link openExportSecrets}), then plan with them.
 * Checks everything before any change, like {@link planImport}; additionally throws LK_PASSPHRASE_WRONG,
 * LK_PASSPHRASE_BOX_MALFORMED, LK_EXPORT_MODIFIED. `box` options are for tests only.
 */
export async function planImportWithPassphrase(
  hub: Hub,
  doc: unknown,
  passphrase: string,
  opts: Omit<ImportOptions, "secrets"> & { readonly box?: BoxOptions } = {},
): Promise<ImportPlan> {
  // The cheap checks first, so a broken document or a caller who may not restore secrets is refused
  // before the key derivation (and an admin learns nothing about the passphrase).
  if (opts.actor && opts.actor.role !== Role.Owner) {
    throw new LatchkeyError(
      "LK_FORBIDDEN",
      "only an owner can restore secrets: import without the passphrase",
      {
        path: "$.secrets",
      },
    );
  }
  readExportDocument(doc);
  const secrets = await openExportSecrets(doc, passphrase, opts.box);
  return planImport(hub, doc, { ...opts, secrets });
}

/** Plan the import of a CSV file of users ({@link parseUsersCsv}). */
export function planCsvImport(hub: Hub, text: string, opts: ImportOptions = {}): ImportPlan {
  return planModel(hub, csvModel(parseUsersCsv(text)), opts);
}

/**
 * Check an {@link ImportModel} against the hub and list the changes. Throws LK_INVALID_INPUT,
 * LK_CONFLICT, LK_IMPORT_STALE or LK_FORBIDDEN (with `opts.actor`); changes nothing.
 */
export function planModel(hub: Hub, model: ImportModel, opts: ImportOptions = {}): ImportPlan {
  const mode = opts.mode ?? "strict";
  const dead = tombstones(hub);
  const steps: ImportStep[] = [];
  const modeSteps: ImportStep[] = [];
  let locksAdded = 0;
  let locksUpdated = 0;

  // Locks: known ones compared, new ones added.
  const hubLocks = new Map(hub.locks().map((l) => [l.id, l]));
  const lockIds = new Set(hubLocks.keys());
  for (const l of model.locks) {
    check(`${l.where}.name`, () => assertDisplayName(l.name, "lock name"));
    check(`${l.where}.timeZone`, () => assertTimeZone(l.timeZone));
    if (l.settings && l.settings.batteryCriticalPercent >= l.settings.batteryLowPercent) {
      throw invalid(`${l.where}.settings`, "batteryCriticalPercent must be below batteryLowPercent");
    }
    lockIds.add(l.id);
    const cur = hubLocks.get(l.id);
    const settings = l.settings ?? cur?.settings ?? null;
    if (!cur) {
      steps.push({ op: "lock.add", lockId: l.id, name: l.name, timeZone: l.timeZone });
      if (settings) steps.push({ op: "lock.update", lockId: l.id, patch: { ...settings } });
      if (l.operatingMode !== OperatingMode.Normal)
        modeSteps.push({ op: "lock.mode", lockId: l.id, mode: l.operatingMode });
      locksAdded++;
      continue;
    }
    const differs =
      cur.name !== l.name ||
      cur.timeZone !== l.timeZone ||
      !sameJson({ ...cur.settings }, { ...cur.settings, ...settings });
    if (differs || cur.operatingMode !== l.operatingMode) {
      if (mode !== "merge")
        throw conflict(
          l.where,
          `lock ${l.id} exists on this hub with other settings (import with merge to overwrite)`,
        );
      if (differs)
        steps.push({
          op: "lock.update",
          lockId: l.id,
          patch: { name: l.name, timeZone: l.timeZone, ...settings },
        });
      if (cur.operatingMode !== l.operatingMode)
        modeSteps.push({ op: "lock.mode", lockId: l.id, mode: l.operatingMode });
      locksUpdated++;
    }
  }
  for (const s of modeSteps) {
    if (
      s.op === "lock.mode" &&
      s.mode === OperatingMode.Privacy &&
      hubLocks.has(s.lockId) &&
      hub.lock(s.lockId).status().lockState !== "locked"
    ) {
      throw conflict(`lock ${s.lockId}`, "Privacy mode can only be set while the door is locked");
    }
  }

  // Users: by id, then by name; new ones added.
  const hubUsers = hub.users();
  const byId = new Map(hubUsers.map((u) => [u.id, u]));
  const names = new Map(hubUsers.map((u) => [u.name.toLowerCase(), u]));
  const docNames = new Set<string>();
  const existingUsers: Record<string, string> = {};
  const userIds = new Set<string>();
  let usersAdded = 0;
  let usersUpdated = 0;
  let usersUnchanged = 0;
  const forbidden = (where: string, why: string) =>
    new LatchkeyError("LK_FORBIDDEN", `${where}: ${why}`, { path: where });
  for (const u of model.users) {
    const name = u.name.trim();
    check(at(u.where, "name"), () => assertDisplayName(name));
    for (const [i, s] of u.weekDaySchedules.entries()) {
      check(at(u.where, `weekDaySchedules[${i}]`), () => assertWeekDaySchedule(s));
    }
    for (const [i, s] of u.yearDaySchedules.entries()) {
      check(at(u.where, `yearDaySchedules[${i}]`), () => assertYearDaySchedule(s));
    }
    if (u.userType === UserType.ExpiringDisposable && u.expiringTimeout === null) {
      throw invalid(at(u.where, "expiringTimeout"), "an expiringDisposable user needs expiringTimeout");
    }
    if (docNames.has(name.toLowerCase()))
      throw conflict(u.where, `another user in this import is also named "${name}"`);
    docNames.add(name.toLowerCase());
    if (dead.users.has(u.id)) throw stale(u.where, `user ${u.id} (${name})`);
    userIds.add(u.id);
    if (opts.actor) {
      if (RANK[opts.actor.role] < RANK.admin) throw forbidden(u.where, "importing needs the admin role");
      if (opts.actor.role !== Role.Owner && RANK[u.role] >= RANK.admin)
        throw forbidden(u.where, "only an owner can import owners and admins");
      if (opts.actor.role !== Role.Owner && u.userType === UserType.Programming)
        throw forbidden(u.where, "only an owner can import a programming user");
    }
    const fields = {
      name,
      role: u.role,
      userType: u.userType,
      weekDaySchedules: u.weekDaySchedules,
      yearDaySchedules: u.yearDaySchedules,
      expiringTimeout: u.expiringTimeout,
      userStatus: u.userStatus,
    };
    const byName = names.get(name.toLowerCase());
    const cur = byId.get(u.id) ?? byName;
    if (cur) {
      if (byName && byName.id !== cur.id)
        throw conflict(u.where, `another user on this hub is already named "${name}"`);
      existingUsers[u.id] = cur.id;
      const mine = {
        name: cur.name,
        role: cur.role,
        userType: cur.userType,
        weekDaySchedules: cur.weekDaySchedules,
        yearDaySchedules: cur.yearDaySchedules,
        expiringTimeout: cur.expiringTimeout,
        userStatus: cur.userStatus,
      };
      if (sameJson(mine, fields)) {
        usersUnchanged++;
        continue;
      }
      if (mode !== "merge")
        throw conflict(
          u.where,
          `user "${cur.name}" exists on this hub with other fields (import with merge to overwrite)`,
        );
      if (cur.role === Role.Owner && (u.role !== Role.Owner || u.userStatus !== UserStatus.OccupiedEnabled)) {
        throw conflict(u.where, `an import does not demote or disable an owner ("${cur.name}")`);
      }
      if (opts.actor && opts.actor.role !== Role.Owner && RANK[cur.role] >= RANK.admin)
        throw forbidden(u.where, "only an owner can change owners and admins");
      const patch: Record<string, unknown> = {};
      for (const k of Object.keys(fields) as (keyof typeof fields)[]) {
        if (!sameJson(mine[k], fields[k])) patch[k] = fields[k];
      }
      steps.push({ op: "user.update", user: u.id, userId: cur.id, patch: patch as UserPatch });
      usersUpdated++;
      continue;
    }
    const input: NewUser = {
      name,
      role: u.role,
      userType: u.userType,
      weekDaySchedules: u.weekDaySchedules,
      yearDaySchedules: u.yearDaySchedules,
      expiringTimeout: u.expiringTimeout,
    };
    steps.push({ op: "user.add", user: u.id, input, disabled: u.userStatus === UserStatus.OccupiedDisabled });
    usersAdded++;
  }

  // Credentials: cards and fingerprints are enrolled again; PINs and authenticator apps are re-enrolled by people.
  const hubCreds = hub.credentialViews();
  const credById = new Map(hubCreds.map((c) => [c.id, c]));
  const hubIdOf = (docUser: string) => existingUsers[docUser] ?? `new:${docUser}`;
  const taken: TakenCredential[] = hubCreds.flatMap((c): TakenCredential[] =>
    c.type === "rfid"
      ? [{ kind: "rfid" as const, key: c.cardId, user: c.userId, locks: c.locks }]
      : c.type === "fingerprint"
        ? [{ kind: "fingerprint" as const, key: String(c.slot), user: c.userId, locks: c.locks }]
        : [],
  );
  const reEnrol = new Map<
    string,
    { user: string; name: string; needs: Set<"pin" | "totp">; reason: ReEnrolReason }
  >();
  let credentialsAdded = 0;
  let credentialsUnchanged = 0;

  // Version 2 with the passphrase: PINs (digests under the exporting hub's key) and authenticator apps.
  const sec = model.secrets;
  const pinKey = sec ? hub.secretKeyStatus("pin", sec.pinKey) : null;
  const notRestored: ReEnrolReason =
    model.documentSha256 === null ? "notExported" : sec ? "pinKeyDiffers" : "noPassphrase";
  const hubAll = sec ? hub.store.credentials() : [];
  const pinsTaken = hubAll.flatMap((c) =>
    c.type === "pin" ? [{ digest: c.pinDigest, user: c.userId, locks: c.locks, duress: c.duress }] : [],
  );
  const totpTaken = hubAll.flatMap((c) => (c.type === "totp" ? [{ secret: c.secret, user: c.userId }] : []));
  const aloneOn = new Map<string, number>();
  for (const c of hubAll) {
    if (c.type !== "totp" || c.requirePin) continue;
    for (const l of lockIds)
      if (c.locks === "all" || c.locks.includes(l)) aloneOn.set(l, (aloneOn.get(l) ?? 0) + 1);
  }
  const secretSteps: ImportStep[] = [];
  let credentialsRestored = 0;
  if (
    sec &&
    opts.actor &&
    opts.actor.role !== Role.Owner &&
    model.credentials.length + model.issuers.length > 0
  ) {
    throw forbidden(
      "$.secrets",
      "only an owner can restore secrets (PINs, authenticator apps, guest-code issuers)",
    );
  }
  for (const c of model.credentials) {
    if (!userIds.has(c.userId)) throw invalid(`${c.where}.userId`, `no user ${c.userId} in this import`);
    if (c.locks !== "all") {
      c.locks.forEach((id, i) => {
        if (!lockIds.has(id))
          throw invalid(`${c.where}.locks[${i}]`, `no lock ${id} in this import or on this hub`);
      });
      if (new Set(c.locks).size !== c.locks.length)
        throw invalid(`${c.where}.locks`, "a lock is listed twice");
    }
    if (dead.credentials.has(c.id)) throw stale(c.where, `credential ${c.id}`);
    if (c.type === "pin" || c.type === "totp") {
      if (credById.has(c.id)) {
        credentialsUnchanged++;
        continue;
      }
      const user = hubIdOf(c.userId);
      if (sec && c.type === "pin" && pinKey !== "differs") {
        const digest = sec.pins.get(c.id);
        if (digest === undefined)
          throw invalid(c.where, "the secrets hold no PIN digest for this credential");
        const same = pinsTaken.find((p) => p.digest === digest && overlap(p.locks, c.locks));
        if (same) {
          if (same.user === user && same.duress === c.duress && sameScope(same.locks, c.locks)) {
            credentialsUnchanged++;
            continue;
          }
          throw new LatchkeyError(
            "LK_PIN_IN_USE",
            `${c.where}: this PIN is already another user's (or another kind's) on an overlapping lock`,
            { path: c.where },
          );
        }
        pinsTaken.push({ digest, user, locks: c.locks, duress: c.duress });
        secretSteps.push({
          op: "pin.restore",
          user: c.userId,
          credential: c.id,
          locks: c.locks,
          label: c.label,
          pinLength: c.pinLength,
          duress: c.duress,
        });
        credentialsRestored++;
        continue;
      }
      if (sec && c.type === "totp") {
        const t = sec.totp.get(c.id);
        if (t === undefined)
          throw invalid(c.where, "the secrets hold no authenticator secret for this credential");
        if (!(TOTP_ALGORITHMS as readonly string[]).includes(c.algorithm))
          throw invalid(at(c.where, "algorithm"), `must be one of ${TOTP_ALGORITHMS.join(", ")}`);
        if (c.digits < TOTP_MIN_DIGITS || c.digits > TOTP_MAX_DIGITS)
          throw invalid(at(c.where, "digits"), `must be ${TOTP_MIN_DIGITS}–${TOTP_MAX_DIGITS}`);
        const same = totpTaken.find((x) => timingSafeEqual(x.secret, t.secret));
        if (same) {
          if (same.user === user) {
            credentialsUnchanged++;
            continue;
          }
          throw conflict(c.where, "another user on this hub has this authenticator secret");
        }
        if (!c.requirePin) {
          for (const l of lockIds) {
            if (c.locks !== "all" && !c.locks.includes(l)) continue;
            const n = (aloneOn.get(l) ?? 0) + 1;
            if (n > Hub.MAX_TOTP_ALONE_PER_LOCK) {
              throw new LatchkeyError(
                "LK_TOTP_ALONE_LIMIT",
                `${c.where}: lock ${l} would have more than ${Hub.MAX_TOTP_ALONE_PER_LOCK} authenticator codes that open without a PIN`,
                { path: c.where, lockId: l },
              );
            }
            aloneOn.set(l, n);
          }
        }
        totpTaken.push({ secret: t.secret, user });
        secretSteps.push({
          op: "totp.restore",
          user: c.userId,
          credential: c.id,
          locks: c.locks,
          label: c.label,
          requirePin: c.requirePin,
          algorithm: c.algorithm,
          digits: c.digits,
          step: c.step,
        });
        credentialsRestored++;
        continue;
      }
      const u = model.users.find((x) => x.id === c.userId)!;
      const entry = reEnrol.get(u.id) ?? {
        user: u.id,
        name: u.name.trim(),
        needs: new Set(),
        reason: notRestored,
      };
      entry.needs.add(c.type);
      reEnrol.set(u.id, entry);
      continue;
    }
    let key: string;
    if (c.type === "rfid") {
      let id = "";
      check(at(c.where, "cardId"), () => {
        id = parseCardId(c.cardId);
      });
      key = id;
    } else {
      key = String(c.slot);
    }
    const user = hubIdOf(c.userId);
    const cur = credById.get(c.id);
    if (cur) {
      const same =
        cur.userId === user &&
        cur.type === c.type &&
        sameScope(cur.locks, c.locks) &&
        (cur.type === "rfid"
          ? cur.cardId === key
          : cur.type === "fingerprint"
            ? String(cur.slot) === key
            : false);
      if (same || mode === "merge") {
        // merge keeps the hub's credential: a credential is replaced by removing it and enrolling anew.
        credentialsUnchanged++;
        continue;
      }
      throw conflict(c.where, `credential ${c.id} exists on this hub with other fields`);
    }
    const clash = taken.find((t) => t.kind === c.type && t.key === key && overlap(t.locks, c.locks));
    if (clash) {
      if (clash.user === user && sameScope(clash.locks, c.locks)) {
        credentialsUnchanged++;
        continue;
      }
      throw conflict(
        c.where,
        c.type === "rfid"
          ? "this card is already enrolled on this lock"
          : `fingerprint slot ${key} is already enrolled on this lock`,
      );
    }
    taken.push({ kind: c.type, key, user, locks: c.locks });
    steps.push(
      c.type === "rfid"
        ? { op: "card.add", user: c.userId, credential: c.id, cardId: key, locks: c.locks, label: c.label }
        : {
            op: "fingerprint.add",
            user: c.userId,
            credential: c.id,
            slot: c.slot,
            locks: c.locks,
            label: c.label,
          },
    );
    credentialsAdded++;
  }
  for (const k of model.phoneKeys) {
    if (k.revokedAt === null && dead.keys.has(k.serial)) throw stale(k.where, `phone key ${k.serial}`);
  }

  // Guest-code issuers (version 2 with the passphrase): same ids and epochs, keys from the same secret.
  const issuerSteps: ImportStep[] = [];
  let issuersUnchanged = 0;
  let ledgerRestored = 0;
  const guestCodeKey =
    sec && model.issuers.length > 0 ? hub.secretKeyStatus("guestCode", sec.guestCodeKey) : null;
  if (sec && guestCodeKey !== "differs") {
    const hubIssuers = hub.store.guestCodeIssuers();
    const perLock = new Map<string, number>();
    for (const i of hubIssuers) perLock.set(i.lockId, (perLock.get(i.lockId) ?? 0) + 1);
    for (const i of model.issuers) {
      if (dead.issuers.has(`${i.lockId}/${i.issuerId}`))
        throw stale(i.where, `guest-code issuer ${i.issuerId}`);
      if (!lockIds.has(i.lockId))
        throw invalid(`${i.where}.lockId`, `no lock ${i.lockId} in this import or on this hub`);
      if (!userIds.has(i.userId)) throw invalid(`${i.where}.userId`, `no user ${i.userId} in this import`);
      if (hubIssuers.some((x) => x.lockId === i.lockId && x.issuerId === i.issuerId)) {
        issuersUnchanged++;
        continue;
      }
      const u = model.users.find((x) => x.id === i.userId)!;
      // Only enabled owners and admins issue (docs/protocol/guest-codes.md § 1): others stay out.
      if (RANK[u.role] < RANK.admin || u.userStatus !== UserStatus.OccupiedEnabled) continue;
      check(at(i.where, "name"), () => assertDisplayName(i.name));
      const n = (perLock.get(i.lockId) ?? 0) + 1;
      if (n > GUEST_CODE_MAX_ISSUER_KEYS)
        throw conflict(
          i.where,
          `lock ${i.lockId} would have more than ${GUEST_CODE_MAX_ISSUER_KEYS} guest-code issuers`,
        );
      perLock.set(i.lockId, n);
      const ledger = model.ledger.filter(
        (e) => e.lockId === i.lockId && e.issuerId === i.issuerId && e.epoch === i.epoch,
      ).length;
      ledgerRestored += ledger;
      issuerSteps.push({
        op: "issuer.restore",
        lockId: i.lockId,
        issuerId: i.issuerId,
        user: i.userId,
        name: i.name,
        epoch: i.epoch,
        createdAt: i.createdAt,
        ledger,
        spent: spentCodes(sec, i).length,
      });
    }
  }
  const adopt: ImportStep[] = [];
  if (pinKey === "free" && secretSteps.some((x) => x.op === "pin.restore"))
    adopt.push({ op: "secret.adopt", key: "pin" });
  if (guestCodeKey === "free" && issuerSteps.length > 0) adopt.push({ op: "secret.adopt", key: "guestCode" });
  const keyView = (st: "same" | "free" | "differs" | null, used: boolean) =>
    st === null || !used ? null : st === "free" ? "adopt" : st;

  return {
    source: model.source,
    mode,
    steps: [...steps, ...modeSteps, ...adopt, ...secretSteps, ...issuerSteps],
    existingUsers,
    counts: {
      locksAdded,
      locksUpdated,
      usersAdded,
      usersUpdated,
      usersUnchanged,
      credentialsAdded,
      credentialsUnchanged,
      credentialsRestored,
      issuersRestored: issuerSteps.length,
    },
    reEnrol: [...reEnrol.values()].map((e) => ({
      user: e.user,
      name: e.name,
      needs: [...e.needs].sort(),
      reason: e.reason,
    })),
    secrets: {
      sealed: model.documentSha256 !== null,
      opened: sec !== null,
      pinKey: keyView(
        pinKey,
        model.credentials.some((c) => c.type === "pin"),
      ),
      guestCodeKey: keyView(guestCodeKey, model.issuers.length > 0),
    },
    notImported: {
      guestCodeIssuers: model.guestCodeIssuers - issuerSteps.length - issuersUnchanged,
      guestCodes: model.guestCodes - ledgerRestored,
      phoneKeys: model.phoneKeys.length,
    },
    input: model,
  };
}

/** The plan as the API and CLI show it (without the data it was read from). */
export function planView(plan: ImportPlan): Omit<ImportPlan, "input"> {
  const { input: _input, ...view } = plan;
  return view;
}

// ------------------------------------------------------------------ applying

export interface ImportResult {
  readonly applied: number;
  /** Document user id → the id on this hub (new users get fresh ids). */
  readonly users: Readonly<Record<string, string>>;
  /** Document credential id → the id on this hub, for the credentials this import added or restored. */
  readonly credentials: Readonly<Record<string, string>>;
  readonly reEnrol: ImportPlan["reEnrol"];
}

/**
 * Apply a plan as `actor`: each change through the hub's public methods (audited, and recorded as a
 * signed operation). Plans again first and refuses with LK_CONFLICT a plan the hub's state no longer
 * matches, so the checks hold at this moment. Should a step fail anyway, the changes made before it are
 * undone (locks added by the import stay: the hub cannot remove a lock), and the error is thrown.
 * Restoring secrets (version 2) is the last step, one call to {@link Hub.restoreSecrets} (owner only).
 * A document import ends with an `import.applied` audit event mapping document ids to this hub's ids
 * (never a secret), which keeps the stale rule working across hubs.
 */
export function applyImport(hub: Hub, actor: Actor, plan: ImportPlan): ImportResult {
  hub.requireRole(actor, Role.Admin);
  const fresh = planModel(hub, plan.input, { mode: plan.mode, actor });
  if (!sameJson(fresh.steps, plan.steps)) {
    throw new LatchkeyError("LK_CONFLICT", "the hub changed since this import was planned: plan it again");
  }
  const users: Record<string, string> = { ...fresh.existingUsers };
  const credentials: Record<string, string> = {};
  const batch: ImportStep[] = [];
  const undo: (() => void)[] = [];
  const userOf = (ref: string) => {
    const id = users[ref];
    if (id === undefined)
      throw new LatchkeyError("LK_INTERNAL", `import step names user ${ref} before it was added`);
    return id;
  };
  let applied = 0;
  try {
    for (const s of fresh.steps) {
      if (SECRET_OPS.has(s.op)) {
        batch.push(s);
        continue;
      }
      switch (s.op) {
        case "lock.add":
          hub.addLock(actor, { id: s.lockId, name: s.name, timeZone: s.timeZone });
          break;
        case "lock.update": {
          const before = hub.lock(s.lockId).record;
          hub.updateLockSettings(actor, s.lockId, s.patch);
          undo.push(() =>
            hub.updateLockSettings(actor, s.lockId, {
              name: before.name,
              timeZone: before.timeZone,
              ...before.settings,
            }),
          );
          break;
        }
        case "lock.mode": {
          const before = hub.lock(s.lockId).record.operatingMode;
          hub.setOperatingMode(actor, s.lockId, s.mode);
          undo.push(() => hub.setOperatingMode(actor, s.lockId, before));
          break;
        }
        case "user.add": {
          const u = hub.addUser(actor, s.input);
          users[s.user] = u.id;
          undo.push(() => hub.removeUser(actor, u.id));
          if (s.disabled) hub.updateUser(actor, u.id, { userStatus: UserStatus.OccupiedDisabled });
          break;
        }
        case "user.update": {
          const before = hub.user(s.userId);
          hub.updateUser(actor, s.userId, s.patch);
          const back: Record<string, unknown> = {};
          for (const k of Object.keys(s.patch)) back[k] = before[k as keyof typeof before];
          undo.push(() => hub.updateUser(actor, s.userId, back as UserPatch));
          break;
        }
        case "card.add": {
          const c = hub.addCard(
            actor,
            userOf(s.user),
            { cardId: s.cardId },
            { locks: s.locks, label: s.label },
          );
          credentials[s.credential] = c.id;
          undo.push(() => hub.removeCredential(actor, c.id));
          break;
        }
        case "fingerprint.add": {
          const c = hub.addFingerprint(actor, userOf(s.user), s.slot, { locks: s.locks, label: s.label });
          credentials[s.credential] = c.id;
          undo.push(() => hub.removeCredential(actor, c.id));
          break;
        }
      }
      applied++;
    }
    if (batch.length > 0) {
      const r = hub.restoreSecrets(actor, secretRestore(plan.input, batch, userOf));
      Object.assign(credentials, r.credentials);
      applied += batch.length;
    }
  } catch (e) {
    for (const f of undo.reverse()) {
      try {
        f();
      } catch (undoError) {
        console.error("latchkey: import: could not undo a step:", undoError);
      }
    }
    throw e;
  }
  if (applied > 0 && plan.input.source === "document") {
    // Not for CSV: its row ids are positions, not identities.
    hub.audit.append({
      at: hub.now(),
      lockId: null,
      kind: AuditKind.Admin,
      data: {
        action: "import.applied",
        actorId: actor.userId,
        steps: applied,
        users: renamed(users),
        credentials: renamed(credentials),
      },
    });
  }
  return { applied, users, credentials, reEnrol: fresh.reEnrol };
}

/** The entries of a document id → hub id map whose ids differ (the others need no record). */
function renamed(m: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).filter(([doc, mine]) => doc !== mine));
}

/** The secret steps of a plan as {@link SecretRestore}, with the secrets from the opened document. */
function secretRestore(
  model: ImportModel,
  batch: readonly ImportStep[],
  userOf: (ref: string) => string,
): SecretRestore {
  const sec = model.secrets;
  if (!sec) throw new LatchkeyError("LK_INTERNAL", "secret steps in a plan without secrets");
  const missing = () => new LatchkeyError("LK_INTERNAL", "a secret step names nothing in the secrets");
  let pinKey: Uint8Array | null = null;
  let guestCodeKey: Uint8Array | null = null;
  const creds: RestoredCredential[] = [];
  const issuers: RestoredIssuer[] = [];
  for (const s of batch) {
    if (s.op === "secret.adopt") {
      if (s.key === "pin") pinKey = sec.pinKey;
      else guestCodeKey = sec.guestCodeKey;
    } else if (s.op === "pin.restore") {
      const digest = sec.pins.get(s.credential);
      if (digest === undefined) throw missing();
      creds.push({
        from: s.credential,
        userId: userOf(s.user),
        type: "pin",
        pinDigest: digest,
        pinLength: s.pinLength,
        duress: s.duress,
        locks: s.locks,
        label: s.label,
      });
    } else if (s.op === "totp.restore") {
      const t = sec.totp.get(s.credential);
      if (t === undefined) throw missing();
      creds.push({
        from: s.credential,
        userId: userOf(s.user),
        type: "totp",
        secret: t.secret,
        lastStep: t.lastStep,
        algorithm: s.algorithm as (typeof TOTP_ALGORITHMS)[number],
        digits: s.digits,
        step: Seconds(s.step),
        requirePin: s.requirePin,
        locks: s.locks,
        label: s.label,
      });
    } else if (s.op === "issuer.restore") {
      issuers.push({
        record: {
          lockId: s.lockId,
          issuerId: s.issuerId,
          userId: userOf(s.user),
          name: s.name,
          epoch: s.epoch,
          createdAt: EpochMs(s.createdAt),
        },
        ledger: model.ledger.filter(
          (e) => e.lockId === s.lockId && e.issuerId === s.issuerId && e.epoch === s.epoch,
        ),
        spent: spentCodes(sec, s),
      });
    }
  }
  return { pinKey, guestCodeKey, credentials: creds, issuers };
}
