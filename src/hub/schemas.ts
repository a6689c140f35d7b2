/** zod schemas of the hub API's boundary: every request body, path and query is parsed here first. */
import { z } from "@hono/zod-openapi";
import { AuditKind } from "../core/audit/chain.ts";
import { OperatingMode, Role, UserStatus, UserType } from "../core/model.ts";

const values = <T extends Record<string, string>>(o: T) => Object.values(o) as [T[keyof T], ...T[keyof T][]];

export const LockIdParam = z.object({
  lockId: z
    .string()
    .min(1)
    .max(40)
    .openapi({ param: { name: "lockId", in: "path" }, example: "front-door" }),
});
export const UserIdParam = z.object({
  userId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "userId", in: "path" }, example: "usr_4f7k2m9q1x8z" }),
});
export const CredentialIdParam = z.object({
  credentialId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "credentialId", in: "path" } }),
});

export const TokenIdParam = z.object({
  tokenId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "tokenId", in: "path" } }),
});

export const WeekDayScheduleSchema = z
  .object({
    daysMask: z
      .number()
      .int()
      .min(1)
      .max(127)
      .openapi({ description: "Matter DaysMaskMap: bit 0 Sunday … bit 6 Saturday", example: 62 }),
    startHour: z.number().int().min(0).max(23),
    startMinute: z.number().int().min(0).max(59),
    endHour: z.number().int().min(0).max(24),
    endMinute: z.number().int().min(0).max(59),
  })
  .strict()
  .openapi("WeekDaySchedule");

export const YearDayScheduleSchema = z
  .object({
    start: z
      .string()
      .max(16)
      .openapi({ example: "2026-12-24T18:00", description: "local date-time, inclusive" }),
    end: z
      .string()
      .max(16)
      .openapi({ example: "2026-12-27T11:00", description: "local date-time, exclusive" }),
  })
  .strict()
  .openapi("YearDaySchedule");

export const LockScopeSchema = z
  .union([z.literal("all"), z.array(z.string().min(1).max(40)).min(1).max(100)])
  .openapi({ description: '"all" locks of the hub, or a list of lock ids', example: "all" });

export const ClaimBody = z
  .object({
    setupCode: z.string().min(1).max(64).openapi({ example: "7KQ2-M9XD-4HRT" }),
    ownerName: z.string().min(1).max(100).openapi({ example: "Alex" }),
  })
  .strict();

export const NewUserBody = z
  .object({
    name: z.string().min(1).max(100),
    role: z.enum(values(Role)).optional(),
    userType: z.enum(values(UserType)).optional(),
    weekDaySchedules: z.array(WeekDayScheduleSchema).max(10).optional(),
    yearDaySchedules: z.array(YearDayScheduleSchema).max(10).optional(),
    expiringTimeout: z
      .number()
      .int()
      .min(1)
      .max(31_536_000)
      .nullable()
      .optional()
      .openapi({ description: "seconds" }),
  })
  .strict()
  .openapi("NewUser");

export const UserPatchBody = NewUserBody.partial()
  .extend({ userStatus: z.enum(values(UserStatus)).optional() })
  .strict()
  .openapi("UserPatch");

export const PinBody = z
  .object({
    pin: z
      .string()
      .min(1)
      .max(32)
      .openapi({ description: "4–12 digits; never stored or logged", example: "480613" }),
    locks: LockScopeSchema.optional(),
    duress: z.boolean().optional(),
    replace: z
      .boolean()
      .optional()
      .openapi({ description: "replace the user's existing PIN of the same kind" }),
    label: z.string().max(100).nullable().optional(),
  })
  .strict();

export const TotpBody = z
  .object({
    locks: LockScopeSchema.optional(),
    requirePin: z.boolean().optional().openapi({
      description:
        "true (default): the PIN then the code in one keypad entry (Matter Dual credential); false: the code alone (owners and admins; at most 10 per lock)",
    }),
    label: z.string().max(100).nullable().optional(),
  })
  .strict();

export const CardBody = z
  .object({
    uid: z
      .string()
      .max(40)
      .optional()
      .openapi({ description: "ISO 14443 UID, 4/7/10 bytes hex", example: "04:A1:B2:C3:D4:E5:F6" }),
    cardId: z
      .string()
      .max(40)
      .optional()
      .openapi({ description: "normalised card id", example: "h10301:123:45678" }),
    locks: LockScopeSchema.optional(),
    label: z.string().max(100).nullable().optional(),
  })
  .strict();

export const FingerprintBody = z
  .object({
    slot: z.number().int().min(1).max(1000),
    locks: LockScopeSchema.optional(),
    label: z.string().max(100).nullable().optional(),
  })
  .strict();

export const TokenBody = z.object({ label: z.string().min(1).max(100) }).strict();

export const NewLockBody = z
  .object({
    id: z.string().min(1).max(40).openapi({ example: "back-door" }),
    name: z.string().min(1).max(100).optional(),
    timeZone: z.string().min(1).max(64).optional().openapi({ example: "Europe/Berlin" }),
  })
  .strict();

export const LockPatchBody = z
  .object({
    name: z.string().min(1).max(100).optional(),
    timeZone: z.string().min(1).max(64).optional(),
    autoRelockTime: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .optional()
      .openapi({ description: "Matter AutoRelockTime, seconds; 0 off" }),
    wrongCodeEntryLimit: z.number().int().min(1).max(255).optional(),
    userCodeTemporaryDisableTime: z
      .number()
      .int()
      .min(1)
      .max(255)
      .optional()
      .openapi({ description: "seconds" }),
    maxDisableTime: z.number().int().min(1).max(86_400).optional().openapi({ description: "seconds" }),
    doorAjarTime: z.number().int().min(5).max(86_400).optional().openapi({ description: "seconds" }),
    batteryLowPercent: z.number().min(1).max(99).optional(),
    batteryCriticalPercent: z.number().min(0).max(98).optional(),
    pinMinLength: z.number().int().min(4).max(12).optional(),
    guestCodeDigits: z
      .number()
      .int()
      .min(10)
      .max(15)
      .optional()
      .openapi({ description: "guest-code length; changing it invalidates issued codes (issuers re-enrol)" }),
    guestCodeDriftMinutes: z
      .number()
      .int()
      .min(0)
      .max(15)
      .optional()
      .openapi({ description: "guest-code tolerance at window edges, minutes" }),
  })
  .strict();

export const ModeBody = z.object({ mode: z.enum(values(OperatingMode)) }).strict();
export const ClockBody = z
  .object({
    time: z.iso.datetime({ offset: true }).openapi({ example: "2026-11-22T10:00:00Z" }),
    force: z
      .boolean()
      .optional()
      .openapi({ description: "allow setting the clock behind the lock's time floor (audited)" }),
  })
  .strict();

export const AuditQueryParams = z
  .object({
    after: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .openapi({ description: "events with seq greater than this" }),
    before: z.coerce.number().int().min(1).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    lockId: z.string().max(40).optional(),
    userId: z.string().max(64).optional(),
    kind: z.enum(values(AuditKind)).optional(),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    order: z.enum(["asc", "desc"]).default("asc"),
  })
  .strict();

// ---- guest codes (docs/protocol/guest-codes.md)
export const IssuerIdParam = LockIdParam.extend({
  issuerId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "issuerId", in: "path" }, example: "iss_3f9a0c12b7e4" }),
});

export const EnrolIssuerBody = z
  .object({
    userId: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .openapi({ description: "the owner or admin to enrol (owners only; default: the caller)" }),
  })
  .strict();

const LOCAL_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/;
const LOCAL_DATE = /^\d{4}-\d{2}-\d{2}$/;
const localDateTime = (description: string) =>
  z
    .string()
    .regex(LOCAL_DATE_TIME, "must be a local date-time YYYY-MM-DDTHH:MM")
    .openapi({
      description: `${description}, local date-time in the lock's zone`,
      example: "2026-12-01T09:00",
    });
const codeName = z
  .string()
  .min(1)
  .max(100)
  .openapi({ description: "who the code is for (the ledger and the audit log name it)", example: "Cleaner" });
const windowFields = {
  name: codeName,
  from: localDateTime("window start, inclusive"),
  to: localDateTime("window end, exclusive"),
};

/**
 * A guest code to issue through the hub, by kind (LK-GC1 § 3). Windows are widened outward to the format's
 * grid; the response says what was granted. Use counts, durations, day sets and occurrence lengths must be
 * one of the listed values (else LK_GUESTCODE_INVALID).
 */
export const IssueGuestCodeBody = z
  .discriminatedUnion("kind", [
    z.object({ kind: z.literal("window"), ...windowFields }).strict(),
    z.object({ kind: z.literal("oneTime"), ...windowFields }).strict(),
    z
      .object({
        kind: z.literal("uses"),
        ...windowFields,
        uses: z
          .number()
          .int()
          .min(1)
          .max(100)
          .openapi({ description: "grants in the window: 2, 3, 5 or 10" }),
      })
      .strict(),
    z
      .object({
        kind: z.literal("firstUse"),
        ...windowFields,
        durationMinutes: z.number().int().min(1).max(100_000).openapi({
          description: "minutes the code stays valid after its first grant: 60, 240, 1440 or 10080",
        }),
      })
      .strict(),
    z
      .object({
        kind: z.literal("recurring"),
        name: codeName,
        daysMask: z.number().int().min(1).max(127).openapi({
          description: "Matter DaysMaskMap (bit 0 Sunday … bit 6 Saturday); one of the LK-GC1 day sets",
          example: 62,
        }),
        startHour: z.number().int().min(0).max(23),
        lengthHours: z
          .number()
          .int()
          .min(1)
          .max(24)
          .openapi({ description: "occurrence length: 1, 2, 3, 4, 6, 8, 10 or 12 hours" }),
        fromDate: z
          .string()
          .regex(LOCAL_DATE, "must be a date YYYY-MM-DD")
          .openapi({ description: "first day (widened to the start of its month)", example: "2026-12-01" }),
        toDate: z
          .string()
          .regex(LOCAL_DATE, "must be a date YYYY-MM-DD")
          .openapi({ description: "last day (widened to the end of its month)", example: "2027-02-28" }),
      })
      .strict(),
  ])
  .openapi("GuestCodeRequest");

export const GuestCodeRevocationBody = z
  .object({
    issuerId: z.string().min(1).max(64),
    epoch: z.number().int().min(0).max(0xffff),
    codeId: z
      .string()
      .regex(/^[0-9a-f]{16}$/, "must be 16 lowercase hex digits")
      .openapi({ example: "9c41d07e2b5a6f13" }),
    dropAfter: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .openapi({
        description: "local minute after which the code can never pass (from the issuer's ledger)",
      }),
    mac: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits")
      .optional()
      .openapi({
        description:
          "the issuer's HMAC-SHA-256 over the revocation (LK-GC1 § 5): required when no API token is sent",
      }),
  })
  .strict()
  .openapi("GuestCodeRevocation");

// ---- simulator inputs
/** The keys pressed at a simulated keypad: digits, optionally ended by `#` (the terminator, not part of the code). */
export const SimKeypadBody = z
  .object({
    digits: z
      .string()
      .regex(/^[0-9]{1,32}#?$/, "digits 0-9 (1 to 32), optionally ended by #")
      .openapi({ example: "480613#" }),
  })
  .strict();
export const SimCardBody = z.object({ uid: z.string().min(1).max(40) }).strict();
export const SimWiegandBody = z
  .object({ frame: z.string().min(1).max(64).openapi({ description: "bits as 0/1 characters" }) })
  .strict();
export const SimFingerBody = z.object({ slot: z.number().int().min(1).max(1000).nullable() }).strict();
export const SimDoorBody = z.object({ open: z.boolean() }).strict();
export const SimManualBody = z.object({ to: z.enum(["locked", "unlocked"]) }).strict();
export const SimBatteryBody = z.object({ percent: z.number().min(0).max(100) }).strict();
export const SimTamperBody = z.object({ tampered: z.boolean() }).strict();
export const SimRtcBody = z
  .object({ time: z.iso.datetime({ offset: true }).optional(), powerLost: z.boolean().optional() })
  .strict();

export const ErrorEnvelope = z
  .object({
    ok: z.literal(false),
    error: z.object({ code: z.string().openapi({ example: "LK_PIN_WEAK" }), message: z.string() }),
  })
  .openapi("Error");
export const OkEnvelope = z.object({ ok: z.literal(true), data: z.unknown() }).openapi("Ok");

// ---------------------------------------------------------------- phone keys (docs/protocol/digital-keys.md)

const B64URL = /^[A-Za-z0-9_-]*$/;
const b64url = (max: number) => z.string().min(1).max(max).regex(B64URL, "base64url");

/** A public key: COSE alg (-7 ES256, -8 EdDSA) and the raw key, base64url. */
export const PublicKeyJson = z
  .object({
    alg: z.union([z.literal(-7), z.literal(-8)]).openapi({ example: -7 }),
    key: b64url(200).openapi({
      example: "BGx0...",
      description: "ES256: 65-byte SEC1 point; EdDSA: 32 bytes",
    }),
  })
  .strict();

export const KeyAuthorityJson = z
  .object({
    root: PublicKeyJson,
    hubLink: b64url(4096).openapi({ description: "COSE_Sign1 key: owner → this hub's signing key" }),
  })
  .strict();

export const RegisterAuthorityBody = KeyAuthorityJson.extend({
  replace: z.boolean().optional().openapi({ description: "replace a registered root (revokes every key)" }),
}).strict();

export const ClaimWithKeysBody = z
  .object({
    setupCode: z.string().min(1).max(64).openapi({ example: "7KQ2-M9XD-4HRT" }),
    ownerName: z.string().min(1).max(100).openapi({ example: "Alex" }),
    keyAuthority: KeyAuthorityJson.optional(),
  })
  .strict();

export const KeyWindowJson = z
  .object({
    daysMask: z.number().int().min(1).max(127),
    startMinute: z.number().int().min(0).max(1439),
    endMinute: z.number().int().min(1).max(1440),
  })
  .strict()
  .refine((w) => w.endMinute > w.startMinute, "endMinute must be after startMinute");

export const IssueKeyBody = z
  .object({
    holder: PublicKeyJson,
    name: z.string().min(1).max(100).openapi({ example: "Sam's phone" }),
    userId: z.string().min(1).max(64).optional(),
    lockId: z.string().min(1).max(40).optional().openapi({ description: "default: every lock of the site" }),
    rights: z
      .array(z.enum(["unlock", "lock", "manageUsers", "issueKeys"]))
      .min(1)
      .max(4)
      .default(["unlock", "lock"]),
    from: z.number().int().min(0).optional().openapi({ description: "ms since the epoch; default now" }),
    until: z.number().int().min(0).openapi({ description: "ms since the epoch" }),
    leaseSeconds: z.number().int().min(60).max(31_622_400).optional(),
    schedule: z.array(KeyWindowJson).max(16).optional(),
  })
  .strict();

export const SerialParam = z.object({
  serial: z
    .string()
    .regex(/^(?:[0-9a-fA-F]{2}){1,64}$/, "a serial is 1-64 bytes of hex")
    .transform((s) => s.toLowerCase())
    .openapi({ param: { name: "serial", in: "path" }, example: "0000000000000001" }),
});

export const SyncBody = z
  .object({
    request: b64url(400_000),
    signature: b64url(200),
  })
  .strict();

const LOCK_ID = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

/** The signed JSON inside a sync request (docs/protocol/wallet-sync.md). */
export const SyncRequestJson = z
  .object({
    v: z.literal(1),
    holder: PublicKeyJson,
    at: z.number().int().min(0),
    nonce: z.string().regex(/^[A-Za-z0-9_-]{22}$/, "16 bytes, base64url"),
    timeChallenges: z
      .array(z.object({ lockId: LOCK_ID, challenge: z.string().regex(/^[A-Za-z0-9_-]{22}$/) }).strict())
      .max(8),
    events: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
            at: z.number().int().min(0),
            lockId: LOCK_ID,
            action: z.enum(["unlock", "lock"]),
            accepted: z.boolean(),
            code: z
              .string()
              .regex(/^LK_[A-Z_]{1,40}$/)
              .nullable(),
            serial: z
              .string()
              .regex(/^[0-9a-f]{2,128}$/)
              .nullable(),
          })
          .strict(),
      )
      .max(500),
    site: LOCK_ID.optional().openapi({
      description: "the site the wallet belongs to; another hub refuses it",
    }),
  })
  .strict();

/** Signed management operations (COSE_Sign1, base64url), as `POST /api/v1/ops` takes them. */
export const SubmitOpsBody = z
  .object({
    ops: z.array(b64url(12_000)).min(1).max(500).openapi({ description: "COSE_Sign1 operations, base64url" }),
  })
  .strict();

export const OpsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    after: z.string().max(34).optional().openapi({ description: "HLC text: operations after this stamp" }),
  })
  .strict();

/** `POST /api/v1/import`: a `latchkey-export` document or a CSV file of users (docs/formats/export.md § "Import"). */
export const ImportBody = z
  .object({
    document: z
      .unknown()
      .optional()
      .openapi({ description: "a latchkey-export document (checked in full by the importer)" }),
    csv: z.string().max(4_000_000).optional().openapi({ description: "CSV text: name,role,card,schedule" }),
    dryRun: z.boolean().optional().openapi({ description: "return the plan without applying it" }),
    mode: z.enum(["strict", "merge"]).optional().openapi({
      description: "strict (default): a differing existing entry is LK_CONFLICT; merge: the import wins",
    }),
    passphrase: z.string().min(1).max(4096).optional().openapi({
      description:
        "the passphrase of a version-2 document's secrets: PINs, authenticator apps and guest-code issuers are restored (owner only)",
    }),
  })
  .strict()
  .refine((b) => (b.document === undefined) !== (b.csv === undefined), {
    message: "give exactly one of document or csv",
  })
  .refine((b) => b.passphrase === undefined || b.document !== undefined, {
    message: "a passphrase goes with a version-2 document, not with csv",
  });

// ---------------------------------------------------------------- console (issue 7)

/** `POST /api/v1/recover`. */
export const RecoverBody = z
  .object({
    recoveryCode: z.string().min(1).max(64).openapi({ example: "LKR-7KQ2M-9XD4H-RT8VN-2PQ6W-K3J9A" }),
    label: z.string().min(1).max(100).optional(),
  })
  .strict();

/** `POST /api/v1/users/{userId}/offboard`. */
export const OffboardBody = z
  .object({
    remove: z
      .boolean()
      .optional()
      .openapi({ description: "remove the user too (default: keep them, disabled)" }),
  })
  .strict();

/** `GET /api/v1/review`. */
export const ReviewQuery = z
  .object({
    days: z.coerce
      .number()
      .int()
      .min(1)
      .max(3650)
      .optional()
      .openapi({ description: "ghost after N days, default 30" }),
  })
  .strict();

/** `POST /api/v1/check`. */
export const CheckBody = z.object({ lockId: z.string().min(1).max(64).optional() }).strict();

export const CheckIdParam = z.object({
  checkId: z
    .string()
    .regex(/^chk-[0-9a-f]{16}$/)
    .openapi({ param: { name: "checkId", in: "path" }, example: "chk-0123456789abcdef" }),
});

// ---- export with secrets, encrypted audit export (docs/formats/export.md)

/** `POST /api/v1/export`: an export version 2, its secrets sealed to this passphrase (owner only). */
export const ExportSecretsBody = z
  .object({
    passphrase: z
      .string()
      .min(1)
      .max(4096)
      .openapi({ description: "12 characters or more; scrypt + AES-256-GCM (docs/formats/export.md)" }),
  })
  .strict();

/** `POST /api/v1/audit/export`: audit events with seq in [fromSeq, toSeq], sealed to a passphrase. */
export const AuditExportBody = z
  .object({
    passphrase: z.string().min(1).max(4096).openapi({ description: "12 characters or more" }),
    fromSeq: z
      .number()
      .int()
      .min(1)
      .optional()
      .openapi({ description: "first seq (default: the first kept)" }),
    toSeq: z.number().int().min(1).optional().openapi({ description: "last seq (default: the head)" }),
  })
  .strict();
