/**
 * The cloud's REST API (JSON over HTTP), for tenants managing a fleet of sites. Built like the hub's API
 * (src/hub/api.ts): every route is declared once with its zod schemas, which validate the request and
 * document it in the OpenAPI document at `/api/v1/openapi.json`; one response envelope
 * `{ ok: true, data }` | `{ ok: false, error: { code, message } }` with the code's HTTP status; a
 * refused request changes nothing.
 *
 * Authentication: `Authorization: Bearer <token>` (tenants.ts: SHA-256 lookup, constant-time compare,
 * revoked tokens refused). Roles: `viewer` reads, `admin` changes, `owner` also manages tokens.
 *
 * Tenant isolation: every query is scoped by the caller's tenant, and a site, token or webhook of
 * another tenant answers exactly as one that does not exist: 404 `LK_NOT_FOUND`, never 403.
 *
 * The cloud is never the authority (docs/protocol/operations.md). A change made here (users, credentials,
 * schedules, modes) becomes one signed operation, signed with the cloud's own Ed25519 key (actor = its
 * key id), stamped by a hybrid logical clock kept per site (the largest stamp the site's operations hold,
 * then a tick), stored in `ops` with origin `cloud` and handed to `publishOps` for the hub. It is refused
 * with `LK_CLOUD_NOT_DELEGATED` unless the fold of the site's operations gives the cloud's key the admin
 * role there (an owner grants it with `role.set`). A PIN set here is sealed to the site's X25519 key at
 * once, in memory (src/core/ops/seal.ts): the database never holds a PIN or a PIN digest, and the API
 * never returns sealed bytes.
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { assertPinAcceptable, PIN_MIN_DIGITS } from "../core/credentials/pin-policy.ts";
import type { CryptoPort } from "../core/crypto.ts";
import { fromHex, toHex } from "../core/crypto.ts";
import { CoseAlg, type Sign1Signer } from "../core/envelope/cose-sign1.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { assertDisplayName, newId } from "../core/ids.ts";
import { assertUsablePublicKey, type KeyScope, keyId, type PublicKey } from "../core/keys/digital-key.ts";
import { OperatingMode, UserStatus, UserType } from "../core/model.ts";
import { decodeHeldOp, genesisFromJson } from "../core/ops/admit.ts";
import { HybridLogicalClock, hlcFromText, hlcToText } from "../core/ops/hlc.ts";
import { foldOps, type Genesis, type ReplicaState } from "../core/ops/merge.ts";
import {
  makeOperation,
  type Operation,
  type OperationBody,
  operationToJson,
  signOperation,
} from "../core/ops/operation.ts";
import { SealedKind, sealContext, sealToLock } from "../core/ops/seal.ts";
import type { SqlClient, SqlQueryable } from "./db/sql.ts";
import {
  authenticateToken,
  issueToken,
  listTokens,
  revokeToken,
  roleAtLeast,
  type TokenActor,
  TokenRole,
} from "./tenants.ts";

/** What {@link createCloudApi} needs. */
export interface CloudApiDeps {
  readonly db: SqlClient;
  readonly crypto: CryptoPort;
  /** Wall clock, ms since the Unix epoch. */
  readonly clock: () => number;
  /** The cloud's Ed25519 signing key: its 32-byte seed. It signs every operation the cloud makes. */
  readonly signer: Uint8Array;
  /**
   * Send operations (COSE_Sign1 bytes) to a site's hub (`ops/down`). Called after they are stored; if it
   * fails, the operations stay stored (and show as drift) and the sync resends them on the hub's next hello.
   */
  readonly publishOps: (siteId: string, ops: Uint8Array[]) => Promise<void>;
  /** Where internal errors and publish failures are reported (never a token, PIN or secret). Default: stderr. */
  readonly log?: (message: string) => void;
}

type Method = "get" | "post" | "put" | "patch" | "delete";
type AnyObject = z.ZodObject<z.ZodRawShape>;
type Infer<T> = T extends z.ZodType ? z.infer<T> : undefined;

interface RouteSpec<
  P extends AnyObject | undefined,
  Q extends AnyObject | undefined,
  B extends z.ZodType | undefined,
> {
  readonly method: Method;
  /** OpenAPI-style path, e.g. `/api/v1/sites/{siteId}`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  /** Minimum token role; `null` for the unauthenticated routes. Default: viewer (any valid token). */
  readonly role?: TokenRole | null;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
}

interface HandlerArgs<P, Q, B> {
  readonly params: Infer<P>;
  readonly query: Infer<Q>;
  readonly body: Infer<B>;
  readonly actor: TokenActor;
  readonly c: Context;
}

/** Largest request body, bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

// ------------------------------------------------------------------ schemas (the API's boundary)

const values = <T extends Record<string, string>>(o: T) => Object.values(o) as [T[keyof T], ...T[keyof T][]];
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const id = (name: string, example?: string) =>
  z
    .string()
    .regex(ID_RE, "1-64 characters of A-Z a-z 0-9 _ -")
    .openapi({ param: { name, in: "path" }, ...(example ? { example } : {}) });

const SiteParam = z.object({ siteId: id("siteId", "hub_0123456789abcdef") });
const SiteUserParam = z.object({ siteId: id("siteId"), userId: id("userId", "usr_4f7k2m9q1x8z") });
const SiteCredentialParam = z.object({ siteId: id("siteId"), credentialId: id("credentialId") });
const SiteLockParam = z.object({ siteId: id("siteId"), lockId: id("lockId", "front-door") });
const TokenParam = z.object({ tokenId: id("tokenId") });
const WebhookParam = z.object({ webhookId: id("webhookId") });

const hexBytes = (n: number, what: string) =>
  z
    .string()
    .regex(new RegExp(`^[0-9a-fA-F]{${2 * n}}$`), `${what}: ${n} bytes of hex`)
    .transform((s) => s.toLowerCase());
const displayName = z
  .string()
  .min(1)
  .max(100)
  .superRefine((s, ctx) => {
    try {
      assertDisplayName(s);
      if (s !== s.trim()) ctx.addIssue({ code: "custom", message: "no spaces around a name" });
    } catch {
      ctx.addIssue({ code: "custom", message: "1-100 characters, no control characters" });
    }
  });
const intText = (max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,15}$/, "a non-negative integer")
    .transform(Number)
    .refine((n) => n <= max, `at most ${max}`);
const Cursor = z
  .string()
  .max(400)
  .regex(/^[A-Za-z0-9_-]+$/, "a cursor from a previous page");

const GenesisKeyJson = z
  .object({
    alg: z.union([z.literal(-8), z.literal(-7), z.literal("EdDSA"), z.literal("ES256")]).openapi({
      description: "COSE alg: -8 (EdDSA, Ed25519) or -7 (ES256, P-256)",
    }),
    publicKey: z
      .string()
      .regex(/^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{130})$/, "hex: 32 bytes (Ed25519) or 65 bytes (P-256)"),
  })
  .strict();

const NewSiteBody = z
  .object({
    siteId: z
      .string()
      .regex(ID_RE)
      .openapi({ description: "the hub's device id", example: "hub_0123456789abcdef" }),
    name: displayName,
    devicePublicKey: hexBytes(32, "devicePublicKey").openapi({ description: "the hub's Ed25519 device key" }),
    sealPublicKey: hexBytes(32, "sealPublicKey").openapi({
      description: "the site's X25519 key: PINs set in the cloud are sealed to it",
    }),
    genesis: z.array(GenesisKeyJson).min(1).max(16).openapi({ description: "the owner root keys" }),
  })
  .strict()
  .openapi("NewSite");

const NewTokenBody = z
  .object({ role: z.enum(values(TokenRole)), label: displayName })
  .strict()
  .openapi("NewToken");

/** Hub user roles the cloud may set: never `owner` (owners are root keys, added by an owner). */
const CLOUD_SETTABLE_ROLES = ["admin", "member", "guest", "service"] as const;
const Timeout = z.number().int().min(1).max(31_536_000).nullable().openapi({ description: "seconds" });

const WeekDay = z
  .object({
    daysMask: z.number().int().min(1).max(127).openapi({ description: "Matter DaysMaskMap: bit 0 Sunday" }),
    startHour: z.number().int().min(0).max(23),
    startMinute: z.number().int().min(0).max(59),
    endHour: z.number().int().min(0).max(24),
    endMinute: z.number().int().min(0).max(59),
  })
  .strict()
  .openapi("CloudWeekDaySchedule");
const YearDay = z
  .object({
    start: z.string().max(16).openapi({ example: "2026-12-24T18:00" }),
    end: z.string().max(16).openapi({ example: "2026-12-27T11:00" }),
  })
  .strict()
  .openapi("CloudYearDaySchedule");

const NewUserBody = z
  .object({
    name: displayName,
    userType: z.enum(values(UserType)).optional(),
    userStatus: z.enum(values(UserStatus)).optional(),
    role: z.enum(CLOUD_SETTABLE_ROLES).optional(),
    expiringTimeout: Timeout.optional(),
    weekDaySchedules: z.array(WeekDay).max(16).optional(),
    yearDaySchedules: z.array(YearDay).max(16).optional(),
  })
  .strict()
  .openapi("CloudNewUser");

const UserPatchBody = z
  .object({
    name: displayName.optional(),
    userType: z.enum(values(UserType)).optional(),
    userStatus: z.enum(values(UserStatus)).optional(),
    role: z.enum(CLOUD_SETTABLE_ROLES).optional(),
    expiringTimeout: Timeout.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, "change at least one field")
  .openapi("CloudUserPatch");

const SchedulesBody = z
  .object({ weekDaySchedules: z.array(WeekDay).max(16), yearDaySchedules: z.array(YearDay).max(16) })
  .strict()
  .openapi("CloudSchedules");

const LocksScope = z
  .union([z.literal("all"), z.array(z.string().regex(ID_RE)).min(1).max(64)])
  .openapi({ description: '"all" locks of the site, or lock ids' });
const credentialCommon = {
  userId: z.string().regex(ID_RE),
  locks: LocksScope.optional(),
  label: displayName.nullable().optional(),
};
const NewCredentialBody = z
  .discriminatedUnion("type", [
    z
      .object({
        type: z.literal("pin"),
        ...credentialCommon,
        pin: z
          .string()
          .max(32)
          .openapi({ description: "4-12 digits; sealed at once, never stored or logged" }),
        duress: z.boolean().optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal("rfid"),
        ...credentialCommon,
        cardId: z.string().max(40).openapi({
          description: "normalised card id: uid:<hex> or <format>:<fc>:<cn>",
          example: "uid:04a1b2c3",
        }),
      })
      .strict(),
    z
      .object({
        type: z.literal("fingerprint"),
        ...credentialCommon,
        slot: z.number().int().min(0).max(65535),
      })
      .strict(),
  ])
  .openapi("CloudNewCredential");

const ModeBody = z.object({ mode: z.enum(values(OperatingMode)) }).strict();

const KIND_RE = /^(?:\*|[a-z][a-z0-9_.]{0,63})$/;
const NewWebhookBody = z
  .object({
    url: z
      .string()
      .max(2048)
      .refine((u) => {
        try {
          const p = new URL(u);
          return (p.protocol === "http:" || p.protocol === "https:") && p.hostname !== "";
        } catch {
          return false;
        }
      }, "an http:// or https:// URL"),
    kinds: z
      .array(z.string().regex(KIND_RE, 'a notification kind such as "alarm.tamper", or "*"'))
      .min(1)
      .max(32)
      .refine((k) => new Set(k).size === k.length, "kinds must be unique"),
  })
  .strict()
  .openapi("NewWebhook");

const PageQuery = z.object({ limit: intText(1000).optional(), cursor: Cursor.optional() }).strict();
const AuditQuery = z
  .object({
    site: z.string().regex(ID_RE).optional(),
    lock: z.string().regex(ID_RE).optional(),
    kind: z.string().regex(KIND_RE).optional(),
    from: intText(2 ** 48)
      .optional()
      .openapi({ description: "ms since the epoch, inclusive" }),
    to: intText(2 ** 48)
      .optional()
      .openapi({ description: "ms since the epoch, exclusive" }),
    limit: intText(500).optional(),
    cursor: Cursor.optional(),
  })
  .strict();
const NotificationQuery = z
  .object({
    site: z.string().regex(ID_RE).optional(),
    kind: z.string().regex(KIND_RE).optional(),
    limit: intText(500).optional(),
    cursor: Cursor.optional(),
  })
  .strict();

const ErrorEnvelope = z
  .object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) })
  .openapi("CloudError");
const OkEnvelope = z.object({ ok: z.literal(true), data: z.unknown() }).openapi("CloudOk");

// ------------------------------------------------------------------ helpers

/** Parse `value` with `schema` or throw LK_INVALID_INPUT naming the offending fields (never their values). */
function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join(".") || what}: ${i.message}`)
    .join("; ");
  throw new LatchkeyError("LK_INVALID_INPUT", `invalid ${what}: ${issues}`);
}

function errorResponse(c: Context, e: LatchkeyError) {
  return c.json({ ok: false, error: { code: e.code, message: e.message } }, e.httpStatus as 400);
}

const notFound = (what: string) => new LatchkeyError("LK_NOT_FOUND", `no such ${what}`);

function encodeCursor(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString("base64url");
}

/** Decode a cursor and check its shape with `schema`; a forged or stale one is LK_INVALID_INPUT. */
function decodeCursor<T extends z.ZodType>(text: string, schema: T): z.infer<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", "the cursor is not one this API gave");
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new LatchkeyError("LK_INVALID_INPUT", "the cursor is not one this API gave");
  return r.data;
}

function algOf(a: number | string): CoseAlg {
  return a === -8 || a === "EdDSA" ? CoseAlg.EdDSA : CoseAlg.ES256;
}

/** JSON view of an operation for the API: never sealed bytes. */
function opJson(op: Operation): Record<string, unknown> {
  const j = operationToJson(op);
  const payload = { ...(j.payload as Record<string, unknown>) };
  if ("sealed" in payload) {
    delete payload.sealed;
    payload.secret = "sealed";
  }
  return { ...j, payload };
}

interface SiteRow {
  id: string;
  tenant_id: string;
  name: string;
  device_public_key: Uint8Array;
  seal_public_key: Uint8Array | null;
  genesis: unknown;
  online: boolean;
  status_at: number | null;
  last_hello_at: number | null;
  created_at: number;
}

interface OpRow {
  op_id: string;
  hlc: string;
  kind: string;
  target: string;
  actor: string;
  cose: Uint8Array;
  origin: "hub" | "cloud";
  received_at: number;
  acked_at: number | null;
  refused: string | null;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

// ------------------------------------------------------------------ the app

/**
 * Build the cloud's API app (a Hono app; serve it with @hono/node-server, or call `app.request()` in
 * tests). Routes are under `/api/v1`; the OpenAPI document is at `/api/v1/openapi.json`.
 * Errors are answered as coded envelopes; nothing is thrown out of a request.
 */
export function createCloudApi(deps: CloudApiDeps): OpenAPIHono {
  const { db, crypto, clock } = deps;
  const log = deps.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const cloudKey: PublicKey = { alg: CoseAlg.EdDSA, key: crypto.ed25519PublicKey(deps.signer) };
  const cloudKid = keyId(crypto, cloudKey);
  const cloudKeyId = toHex(cloudKid);
  const signer: Sign1Signer = { alg: CoseAlg.EdDSA, kid: cloudKid, privateKey: deps.signer };
  /** The cloud's HLC node id: the first 8 bytes of its key id (distinct from every hub's). */
  const nodeId = cloudKeyId.slice(0, 16);

  const app = new OpenAPIHono();
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new LatchkeyError("LK_PAYLOAD_TOO_LARGE", `request body over ${MAX_BODY_BYTES} bytes`);
      },
    }),
  );
  app.onError((err, c) => {
    if (isLatchkeyError(err)) return errorResponse(c, err);
    if (err instanceof HTTPException) {
      return errorResponse(
        c,
        new LatchkeyError(err.status === 413 ? "LK_PAYLOAD_TOO_LARGE" : "LK_INVALID_INPUT", err.message),
      );
    }
    log(
      `latchkey cloud: internal error in API: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    return errorResponse(c, new LatchkeyError("LK_INTERNAL", "internal error (see the cloud's log)"));
  });
  app.notFound((c) =>
    errorResponse(c, new LatchkeyError("LK_NOT_FOUND", `no route ${c.req.method} ${c.req.path}`)),
  );
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });

  /** Declare a route: its schemas validate the request and document it. */
  function route<
    P extends AnyObject | undefined,
    Q extends AnyObject | undefined,
    B extends z.ZodType | undefined,
  >(spec: RouteSpec<P, Q, B>, handler: (a: HandlerArgs<P, Q, B>) => unknown): void {
    const open = spec.role === null;
    app.openAPIRegistry.registerPath({
      method: spec.method,
      path: spec.path,
      summary: spec.summary,
      tags: [spec.tag],
      ...(open ? {} : { security: [{ bearer: [] }] }),
      request: {
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.query ? { query: spec.query } : {}),
        ...(spec.body
          ? { body: { content: { "application/json": { schema: spec.body } }, required: true } }
          : {}),
      },
      responses: {
        200: { description: "OK", content: { "application/json": { schema: OkEnvelope } } },
        default: {
          description: "Error (see error.code)",
          content: { "application/json": { schema: ErrorEnvelope } },
        },
      },
    });
    const honoPath = spec.path.replace(/\{(\w+)\}/g, ":$1");
    app.on(spec.method.toUpperCase(), honoPath, async (c) => {
      let actor: TokenActor = { tenantId: "", tokenId: "", role: TokenRole.Viewer };
      if (!open) {
        actor = await authenticate(c);
        const min = spec.role ?? TokenRole.Viewer;
        if (!roleAtLeast(actor.role, min)) {
          throw new LatchkeyError("LK_FORBIDDEN", `this needs a token with role ${min} or above`);
        }
      }
      const params = spec.params ? parse(spec.params, c.req.param(), "path") : undefined;
      const query = spec.query ? parse(spec.query, c.req.query(), "query") : undefined;
      let body: unknown;
      if (spec.body) {
        let raw: unknown;
        try {
          raw = await c.req.json();
        } catch (e) {
          if (isLatchkeyError(e)) throw e;
          throw new LatchkeyError("LK_INVALID_INPUT", "request body is not valid JSON");
        }
        body = parse(spec.body, raw, "body");
      }
      const result = await handler({ params, query, body, actor, c } as HandlerArgs<P, Q, B>);
      if (result instanceof Response) return result;
      return c.json({ ok: true, data: result ?? null });
    });
  }

  async function authenticate(c: Context): Promise<TokenActor> {
    const m = /^Bearer (\S+)$/.exec(c.req.header("authorization") ?? "");
    if (!m?.[1]) throw new LatchkeyError("LK_UNAUTHENTICATED", "send Authorization: Bearer <token>");
    return authenticateToken(db, crypto, m[1]);
  }

  /** The caller's site, or LK_NOT_FOUND (also for another tenant's site). `forUpdate` locks its row. */
  async function siteOf(
    q: SqlQueryable,
    actor: TokenActor,
    siteId: string,
    forUpdate = false,
  ): Promise<SiteRow> {
    const r = await q.query<SiteRow>(
      `SELECT id, tenant_id, name, device_public_key, seal_public_key, genesis, online, status_at, last_hello_at, created_at
         FROM sites WHERE id = $1 AND tenant_id = $2${forUpdate ? " FOR UPDATE" : ""}`,
      [siteId, actor.tenantId],
    );
    const row = r.rows[0];
    if (!row) throw notFound("site");
    return row;
  }

  async function opRows(q: SqlQueryable, siteId: string): Promise<OpRow[]> {
    const r = await q.query<OpRow>(
      `SELECT o.op_id, o.hlc, o.kind, o.target, o.actor, o.cose, o.origin, o.received_at,
              a.acked_at, f.code AS refused
         FROM ops o
         LEFT JOIN op_acks a ON a.site_id = o.site_id AND a.op_id = o.op_id
         LEFT JOIN op_refusals f ON f.site_id = o.site_id AND f.op_id = o.op_id
        WHERE o.site_id = $1
        ORDER BY o.hlc, o.op_id`,
      [siteId],
    );
    return r.rows;
  }

  /** The folded state of a site's operations, and the operations. */
  async function siteState(
    q: SqlQueryable,
    site: SiteRow,
  ): Promise<{ state: ReplicaState; genesis: Genesis; rows: OpRow[]; ops: Operation[] }> {
    const rows = await opRows(q, site.id);
    const ops = rows.map((r) => decodeHeldOp(crypto, new Uint8Array(r.cose)));
    const genesis = genesisFromJson(crypto, site.genesis);
    return { state: foldOps(genesis, ops), genesis, rows, ops };
  }

  function delegated(state: ReplicaState): boolean {
    return state.roles.get(cloudKeyId) === "admin" || state.owners.has(cloudKeyId);
  }

  async function driftCount(q: SqlQueryable, siteId: string): Promise<number> {
    const r = await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ops o
        WHERE o.site_id = $1 AND o.origin = 'cloud'
          AND NOT EXISTS (SELECT 1 FROM op_acks a WHERE a.site_id = o.site_id AND a.op_id = o.op_id)`,
      [siteId],
    );
    return Number(r.rows[0]?.n ?? 0);
  }

  /** What a write's builder gets: the site, its folded state, and stamps from the site's clock. */
  interface WriteContext {
    readonly site: SiteRow;
    readonly state: ReplicaState;
    /** A body for an operation of the cloud's key at the next HLC stamp. */
    body<K extends OperationBody["kind"]>(
      kind: K,
      target: string,
      payload: Extract<OperationBody, { kind: K }>["payload"],
      scope?: KeyScope,
    ): OperationBody;
  }

  /**
   * Make, sign, store and publish operations at a site, in one transaction that locks the site's row
   * (so the site's stamps are made one at a time). Refused with LK_CLOUD_NOT_DELEGATED unless the cloud's
   * key is an admin there; with LK_CONFLICT if the merge would skip one of them.
   */
  async function write(
    actor: TokenActor,
    siteId: string,
    build: (w: WriteContext) => OperationBody[],
  ): Promise<{ ops: Record<string, unknown>[]; published: boolean }> {
    const now = clock();
    const made = await db.transaction(async (tx) => {
      const site = await siteOf(tx, actor, siteId, true);
      const { state, genesis, ops } = await siteState(tx, site);
      if (!delegated(state)) {
        throw new LatchkeyError(
          "LK_CLOUD_NOT_DELEGATED",
          `the cloud's key (${cloudKeyId}) has no admin role at site ${site.id}: an owner must grant it first`,
        );
      }
      const max = await tx.query<{ hlc: string | null }>(
        "SELECT max(hlc) AS hlc FROM ops WHERE site_id = $1",
        [site.id],
      );
      const maxText = max.rows[0]?.hlc ?? null;
      const hlc = new HybridLogicalClock(nodeId, maxText ? { last: hlcFromText(maxText) } : {});
      const bodies = build({
        site,
        state,
        body: (kind, target, payload, scope) =>
          ({
            hlc: hlc.tick(now),
            actor: cloudKeyId,
            scope: scope ?? { kind: "site", id: site.id },
            kind,
            target,
            payload,
          }) as OperationBody,
      });
      const out: { op: Operation; cose: Uint8Array }[] = [];
      for (const b of bodies) {
        let op: Operation;
        try {
          op = makeOperation(crypto, b);
        } catch (e) {
          if (isLatchkeyError(e, "LK_OP_MALFORMED")) throw new LatchkeyError("LK_INVALID_INPUT", e.detail);
          throw e;
        }
        out.push({ op, cose: signOperation(crypto, signer, b) });
      }
      const after = foldOps(genesis, [...ops, ...out.map((o) => o.op)]);
      for (const { op } of out) {
        const why = after.skipped.get(op.id);
        if (why !== undefined) {
          throw new LatchkeyError("LK_CONFLICT", `the site's merge would skip this change (${why})`, {
            reason: why,
          });
        }
      }
      for (const { op, cose } of out) {
        await tx.query(
          `INSERT INTO ops (site_id, op_id, hlc, kind, target, actor, cose, origin, received_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'cloud', $8) ON CONFLICT DO NOTHING`,
          [site.id, op.id, hlcToText(op.hlc), op.kind, op.target, op.actor, cose, now],
        );
      }
      return out;
    });
    let published = true;
    try {
      await deps.publishOps(
        siteId,
        made.map((m) => m.cose),
      );
    } catch (e) {
      published = false;
      log(
        `latchkey cloud: could not publish ${made.length} operation(s) to site ${siteId} (kept; resent on the hub's next hello): ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return {
      ops: made.map(({ op }) => ({ id: op.id, hlc: hlcToText(op.hlc), kind: op.kind, target: op.target })),
      published,
    };
  }

  function liveUser(state: ReplicaState, userId: string): void {
    if (!state.users.has(userId)) throw notFound("user");
  }

  // ---------------------------------------------------------------- service
  app.get("/healthz", (c) => c.json({ ok: true, data: { status: "ready" } }));
  app.get("/api/v1/openapi.json", (c) =>
    c.json(
      app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: {
          title: "Latchkey cloud API",
          version: "1",
          description:
            "Fleet management for Latchkey sites. The cloud replicates and relays; each site's hub stays the authority.",
        },
      }),
    ),
  );

  route(
    {
      method: "get",
      path: "/api/v1/cloud/identity",
      summary: "The cloud's signing key (an owner grants it the admin role to let the cloud make changes)",
      tag: "cloud",
      role: null,
    },
    () => ({ alg: "EdDSA", algId: CoseAlg.EdDSA, publicKey: toHex(cloudKey.key), keyId: cloudKeyId }),
  );

  // ---------------------------------------------------------------- tokens (owner)
  route(
    {
      method: "get",
      path: "/api/v1/tokens",
      summary: "The tenant's API tokens",
      tag: "tokens",
      role: "owner",
    },
    ({ actor }) => listTokens(db, actor.tenantId),
  );
  route(
    {
      method: "post",
      path: "/api/v1/tokens",
      summary: "Issue an API token (shown once)",
      tag: "tokens",
      role: "owner",
      body: NewTokenBody,
    },
    async ({ actor, body, c }) => {
      const { view, token } = await issueToken(db, crypto, actor.tenantId, body.role, body.label, clock());
      c.header("cache-control", "no-store");
      return { ...view, token };
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/tokens/{tokenId}/revoke",
      summary: "Revoke an API token (not the last owner token)",
      tag: "tokens",
      role: "owner",
      params: TokenParam,
    },
    ({ actor, params }) => revokeToken(db, actor.tenantId, params.tokenId, clock()),
  );

  // ---------------------------------------------------------------- sites
  async function siteSummary(
    q: SqlQueryable,
    s: SiteRow,
    withState: boolean,
  ): Promise<Record<string, unknown>> {
    const head = await q.query<{ seq: number; hash: string; checkpoint_seq: number; updated_at: number }>(
      "SELECT seq, hash, checkpoint_seq, updated_at FROM audit_heads WHERE site_id = $1",
      [s.id],
    );
    const problems = await q.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM chain_problems WHERE site_id = $1",
      [s.id],
    );
    const h = head.rows[0];
    const out: Record<string, unknown> = {
      id: s.id,
      name: s.name,
      online: s.online,
      statusAt: num(s.status_at),
      lastHelloAt: num(s.last_hello_at),
      createdAt: Number(s.created_at),
      auditHead: h
        ? {
            seq: Number(h.seq),
            hash: h.hash,
            checkpointSeq: Number(h.checkpoint_seq),
            updatedAt: Number(h.updated_at),
          }
        : null,
      chainProblems: Number(problems.rows[0]?.n ?? 0),
      drift: await driftCount(q, s.id),
    };
    if (withState) {
      const { state } = await siteState(q, s);
      out.devicePublicKey = toHex(new Uint8Array(s.device_public_key));
      out.sealPublicKey = s.seal_public_key ? toHex(new Uint8Array(s.seal_public_key)) : null;
      out.genesis = s.genesis;
      out.cloudDelegated = delegated(state);
    }
    return out;
  }

  route(
    { method: "get", path: "/api/v1/sites", summary: "The tenant's sites", tag: "sites" },
    async ({ actor }) => {
      const r = await db.query<SiteRow>(
        `SELECT id, tenant_id, name, device_public_key, seal_public_key, genesis, online, status_at, last_hello_at, created_at
         FROM sites WHERE tenant_id = $1 ORDER BY name, id`,
        [actor.tenantId],
      );
      const out = [];
      for (const s of r.rows) out.push(await siteSummary(db, s, false));
      return out;
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/sites",
      summary: "Register a hub as a site (its device, seal and owner root keys)",
      tag: "sites",
      role: "admin",
      body: NewSiteBody,
    },
    async ({ actor, body }) => {
      const device: PublicKey = { alg: CoseAlg.EdDSA, key: fromHex(body.devicePublicKey) };
      assertUsablePublicKey(device);
      const seal = fromHex(body.sealPublicKey);
      if (crypto.x25519SharedSecret(crypto.randomBytes(32), seal) === null) {
        throw new LatchkeyError("LK_INVALID_INPUT", "sealPublicKey is not a usable X25519 key");
      }
      const genesis = body.genesis.map((k) => ({ alg: algOf(k.alg), publicKey: k.publicKey.toLowerCase() }));
      genesisFromJson(crypto, genesis);
      const now = clock();
      const r = await db.query(
        `INSERT INTO sites (id, tenant_id, name, device_public_key, seal_public_key, genesis, created_at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT (id) DO NOTHING`,
        [body.siteId, actor.tenantId, body.name, device.key, seal, JSON.stringify(genesis), now],
      );
      if (r.rowCount === 0)
        throw new LatchkeyError("LK_CONFLICT", "a site with this id is already registered");
      return siteSummary(db, await siteOf(db, actor, body.siteId), true);
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/sites/{siteId}",
      summary: "A site: online, last hello, audit head, chain problems, drift",
      tag: "sites",
      params: SiteParam,
    },
    async ({ actor, params }) => siteSummary(db, await siteOf(db, actor, params.siteId), true),
  );
  route(
    {
      method: "get",
      path: "/api/v1/sites/{siteId}/locks",
      summary: "The site's locks, as the hub last published their state",
      tag: "sites",
      params: SiteParam,
    },
    async ({ actor, params }) => {
      const site = await siteOf(db, actor, params.siteId);
      const r = await db.query<{ lock_id: string; state: unknown; updated_at: number }>(
        "SELECT lock_id, state, updated_at FROM locks WHERE site_id = $1 ORDER BY lock_id",
        [site.id],
      );
      return r.rows.map((l) => ({ id: l.lock_id, state: l.state, updatedAt: Number(l.updated_at) }));
    },
  );

  // ---------------------------------------------------------------- users and credentials (folded view)
  route(
    {
      method: "get",
      path: "/api/v1/sites/{siteId}/users",
      summary: "The site's users, folded from its operations",
      tag: "users",
      params: SiteParam,
    },
    async ({ actor, params }) => {
      const { state } = await siteState(db, await siteOf(db, actor, params.siteId));
      return [...state.users.values()].map((u) => {
        const s = state.schedules.get(u.id);
        return { ...u, weekDaySchedules: s?.weekDay ?? [], yearDaySchedules: s?.yearDay ?? [] };
      });
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/sites/{siteId}/credentials",
      summary: "The site's credentials, folded from its operations (never their sealed secrets)",
      tag: "users",
      params: SiteParam,
    },
    async ({ actor, params }) => {
      const { state } = await siteState(db, await siteOf(db, actor, params.siteId));
      return [...state.credentials.values()].map((cr) => {
        if (cr.type === "pin") {
          const { sealed: _, ...rest } = cr;
          return rest;
        }
        if (cr.type === "totp") {
          const { sealed: _, ...rest } = cr;
          return rest;
        }
        return cr;
      });
    },
  );

  route(
    {
      method: "post",
      path: "/api/v1/sites/{siteId}/users",
      summary: "Add a user (a signed user.upsert, and schedule.set when schedules are given)",
      tag: "users",
      role: "admin",
      params: SiteParam,
      body: NewUserBody,
    },
    async ({ actor, params, body }) => {
      const userId = newId((n) => crypto.randomBytes(n), "usr");
      const { weekDaySchedules, yearDaySchedules, ...fields } = body;
      const r = await write(actor, params.siteId, (w) => {
        const ops = [w.body("user.upsert", userId, fields as never)];
        if (weekDaySchedules || yearDaySchedules) {
          ops.push(
            w.body("schedule.set", userId, {
              weekDay: weekDaySchedules ?? [],
              yearDay: yearDaySchedules ?? [],
            }),
          );
        }
        return ops;
      });
      return { userId, ...r };
    },
  );
  route(
    {
      method: "patch",
      path: "/api/v1/sites/{siteId}/users/{userId}",
      summary: "Change a user's fields (a signed user.upsert)",
      tag: "users",
      role: "admin",
      params: SiteUserParam,
      body: UserPatchBody,
    },
    ({ actor, params, body }) =>
      write(actor, params.siteId, (w) => {
        liveUser(w.state, params.userId);
        return [w.body("user.upsert", params.userId, body as never)];
      }),
  );
  route(
    {
      method: "delete",
      path: "/api/v1/sites/{siteId}/users/{userId}",
      summary: "Remove a user for good, with their credentials (a signed user.remove)",
      tag: "users",
      role: "admin",
      params: SiteUserParam,
    },
    ({ actor, params }) =>
      write(actor, params.siteId, (w) => {
        liveUser(w.state, params.userId);
        return [w.body("user.remove", params.userId, {})];
      }),
  );
  route(
    {
      method: "put",
      path: "/api/v1/sites/{siteId}/users/{userId}/schedules",
      summary: "Replace a user's week-day and year-day schedules (a signed schedule.set)",
      tag: "users",
      role: "admin",
      params: SiteUserParam,
      body: SchedulesBody,
    },
    ({ actor, params, body }) =>
      write(actor, params.siteId, (w) => {
        liveUser(w.state, params.userId);
        return [
          w.body("schedule.set", params.userId, {
            weekDay: body.weekDaySchedules,
            yearDay: body.yearDaySchedules,
          }),
        ];
      }),
  );
  route(
    {
      method: "post",
      path: "/api/v1/sites/{siteId}/credentials",
      summary: "Add a credential (a signed credential.upsert; a PIN is sealed to the site's key at once)",
      tag: "users",
      role: "admin",
      params: SiteParam,
      body: NewCredentialBody,
    },
    async ({ actor, params, body }) => {
      if (body.type === "pin") assertPinAcceptable(body.pin, PIN_MIN_DIGITS);
      const credentialId = newId((n) => crypto.randomBytes(n), "cred");
      const locks: "all" | string[] =
        body.locks === undefined || body.locks === "all" ? "all" : [...new Set(body.locks)].sort();
      const common = { userId: body.userId, locks, label: body.label ?? null };
      const r = await write(actor, params.siteId, (w) => {
        liveUser(w.state, body.userId);
        if (body.type === "pin") {
          if (!w.site.seal_public_key) {
            throw new LatchkeyError(
              "LK_CONFLICT",
              "the site has no seal key registered: PINs cannot be set from the cloud",
            );
          }
          const sealed = sealToLock(
            crypto,
            new Uint8Array(w.site.seal_public_key),
            { kind: SealedKind.Pin, pin: body.pin },
            sealContext(w.site.id, credentialId),
          );
          return [
            w.body("credential.upsert", credentialId, {
              ...common,
              type: "pin",
              sealed,
              duress: body.duress ?? false,
            }),
          ];
        }
        if (body.type === "rfid") {
          return [
            w.body("credential.upsert", credentialId, { ...common, type: "rfid", cardId: body.cardId }),
          ];
        }
        return [
          w.body("credential.upsert", credentialId, { ...common, type: "fingerprint", slot: body.slot }),
        ];
      });
      return { credentialId, ...r };
    },
  );
  route(
    {
      method: "delete",
      path: "/api/v1/sites/{siteId}/credentials/{credentialId}",
      summary: "Remove a credential for good (a signed credential.remove)",
      tag: "users",
      role: "admin",
      params: SiteCredentialParam,
    },
    ({ actor, params }) =>
      write(actor, params.siteId, (w) => {
        if (!w.state.credentials.has(params.credentialId)) throw notFound("credential");
        return [w.body("credential.remove", params.credentialId, {})];
      }),
  );
  route(
    {
      method: "put",
      path: "/api/v1/sites/{siteId}/locks/{lockId}/mode",
      summary: "Set a lock's OperatingMode (a signed, lock-scoped mode.set)",
      tag: "locks",
      role: "admin",
      params: SiteLockParam,
      body: ModeBody,
    },
    async ({ actor, params, body }) => {
      await siteOf(db, actor, params.siteId);
      const known = await db.query("SELECT 1 FROM locks WHERE site_id = $1 AND lock_id = $2", [
        params.siteId,
        params.lockId,
      ]);
      if (known.rowCount === 0) throw notFound("lock");
      return write(actor, params.siteId, (w) => [
        w.body("mode.set", params.lockId, { mode: body.mode }, { kind: "lock", id: params.lockId }),
      ]);
    },
  );

  // ---------------------------------------------------------------- operations and drift
  const OpCursor = z.tuple([z.string().max(40), z.string().max(64)]);
  route(
    {
      method: "get",
      path: "/api/v1/sites/{siteId}/ops",
      summary: "The site's operations in merge order, with what the merge skipped and what the hub holds",
      tag: "operations",
      params: SiteParam,
      query: PageQuery,
    },
    async ({ actor, params, query }) => {
      const site = await siteOf(db, actor, params.siteId);
      const { state, rows, ops } = await siteState(db, site);
      const limit = query.limit ?? 100;
      const after = query.cursor ? decodeCursor(query.cursor, OpCursor) : null;
      const page: Record<string, unknown>[] = [];
      let next: string | null = null;
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        if (after && (row.hlc < after[0] || (row.hlc === after[0] && row.op_id <= after[1]))) continue;
        if (page.length === limit) {
          const last = rows[i - 1]!;
          next = encodeCursor([last.hlc, last.op_id]);
          break;
        }
        page.push({
          ...opJson(ops[i]!),
          origin: row.origin,
          receivedAt: Number(row.received_at),
          acked: row.acked_at !== null,
          refused: row.refused,
          skipped: state.skipped.get(row.op_id) ?? null,
        });
      }
      return { ops: page, nextCursor: next };
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/sites/{siteId}/drift",
      summary: "Operations made in the cloud that the hub has not acknowledged, by lock and site-wide",
      tag: "operations",
      params: SiteParam,
    },
    async ({ actor, params }) => {
      const site = await siteOf(db, actor, params.siteId);
      const { state, rows, ops } = await siteState(db, site);
      const siteWide: Record<string, unknown>[] = [];
      const byLock: Record<string, Record<string, unknown>[]> = {};
      rows.forEach((row, i) => {
        if (row.origin !== "cloud" || row.acked_at !== null) return;
        const op = ops[i]!;
        const v = {
          ...opJson(op),
          receivedAt: Number(row.received_at),
          refused: row.refused,
          skipped: state.skipped.get(op.id) ?? null,
        };
        if (op.scope.kind !== "lock") siteWide.push(v);
        else {
          const list = byLock[op.scope.id] ?? [];
          list.push(v);
          byLock[op.scope.id] = list;
        }
      });
      const total = siteWide.length + Object.values(byLock).reduce((n, l) => n + l.length, 0);
      return { total, site: siteWide, locks: byLock };
    },
  );

  // ---------------------------------------------------------------- audit
  const AuditCursor = z.tuple([z.number().int().min(0), z.string().max(64), z.number().int().min(0)]);
  route(
    {
      method: "get",
      path: "/api/v1/audit",
      summary: "Search the audit events of the tenant's sites, newest first (keyset pagination)",
      tag: "audit",
      query: AuditQuery,
    },
    async ({ actor, query }) => {
      if (query.site) await siteOf(db, actor, query.site);
      const where: string[] = ["s.tenant_id = $1"];
      const args: unknown[] = [actor.tenantId];
      const add = (sql: string, v: unknown) => {
        args.push(v);
        where.push(sql.replace("?", `$${args.length}`));
      };
      if (query.site) add("e.site_id = ?", query.site);
      if (query.lock) add("e.lock_id = ?", query.lock);
      if (query.kind) add("e.kind = ?", query.kind);
      if (query.from !== undefined) add("e.at >= ?", query.from);
      if (query.to !== undefined) add("e.at < ?", query.to);
      if (query.cursor) {
        const [at, site, seq] = decodeCursor(query.cursor, AuditCursor);
        args.push(at, site, seq);
        where.push(`(e.at, e.site_id, e.seq) < ($${args.length - 2}, $${args.length - 1}, $${args.length})`);
      }
      const limit = query.limit ?? 100;
      args.push(limit + 1);
      const r = await db.query<{
        site_id: string;
        seq: number;
        at: number;
        lock_id: string | null;
        kind: string;
        data: unknown;
        hash: string;
      }>(
        `SELECT e.site_id, e.seq, e.at, e.lock_id, e.kind, e.data, e.hash
           FROM audit_events e JOIN sites s ON s.id = e.site_id
          WHERE ${where.join(" AND ")}
          ORDER BY e.at DESC, e.site_id DESC, e.seq DESC
          LIMIT $${args.length}`,
        args,
      );
      const rows = r.rows.slice(0, limit);
      const last = rows[rows.length - 1];
      return {
        events: rows.map((e) => ({
          siteId: e.site_id,
          seq: Number(e.seq),
          at: Number(e.at),
          lockId: e.lock_id,
          kind: e.kind,
          data: e.data,
          hash: e.hash,
        })),
        nextCursor:
          r.rows.length > limit && last
            ? encodeCursor([Number(last.at), last.site_id, Number(last.seq)])
            : null,
      };
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/sites/{siteId}/chain",
      summary: "The site's audit chain as the cloud verified it: head, last checkpoint, problems",
      tag: "audit",
      params: SiteParam,
    },
    async ({ actor, params }) => {
      const site = await siteOf(db, actor, params.siteId);
      const head = await db.query<{ seq: number; hash: string; checkpoint_seq: number; updated_at: number }>(
        "SELECT seq, hash, checkpoint_seq, updated_at FROM audit_heads WHERE site_id = $1",
        [site.id],
      );
      const cp = await db.query<{ seq: number; hash: string; at: number }>(
        "SELECT seq, hash, at FROM audit_checkpoints WHERE site_id = $1 ORDER BY seq DESC LIMIT 1",
        [site.id],
      );
      const problems = await db.query<{ id: number; seq: number; what: string; detected_at: number }>(
        "SELECT id, seq, what, detected_at FROM chain_problems WHERE site_id = $1 ORDER BY id DESC LIMIT 1000",
        [site.id],
      );
      const h = head.rows[0];
      const c0 = cp.rows[0];
      return {
        head: h ? { seq: Number(h.seq), hash: h.hash, updatedAt: Number(h.updated_at) } : null,
        checkpointSeq: h ? Number(h.checkpoint_seq) : 0,
        lastCheckpoint: c0 ? { seq: Number(c0.seq), hash: c0.hash, at: Number(c0.at) } : null,
        problems: problems.rows.map((p) => ({
          id: Number(p.id),
          seq: Number(p.seq),
          what: p.what,
          detectedAt: Number(p.detected_at),
        })),
      };
    },
  );

  // ---------------------------------------------------------------- notifications and webhooks
  const IdCursor = z.number().int().min(0);
  route(
    {
      method: "get",
      path: "/api/v1/notifications",
      summary: "The tenant's notifications (alarms, hubs going offline), newest first",
      tag: "notifications",
      query: NotificationQuery,
    },
    async ({ actor, query }) => {
      if (query.site) await siteOf(db, actor, query.site);
      const args: unknown[] = [actor.tenantId];
      const where = ["tenant_id = $1"];
      if (query.site) where.push(`site_id = $${args.push(query.site)}`);
      if (query.kind) where.push(`kind = $${args.push(query.kind)}`);
      if (query.cursor) where.push(`id < $${args.push(decodeCursor(query.cursor, IdCursor))}`);
      const limit = query.limit ?? 100;
      const r = await db.query<{
        id: number;
        site_id: string;
        lock_id: string | null;
        kind: string;
        seq: number | null;
        data: unknown;
        created_at: number;
      }>(
        `SELECT id, site_id, lock_id, kind, seq, data, created_at FROM notifications
          WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT $${args.push(limit + 1)}`,
        args,
      );
      const rows = r.rows.slice(0, limit);
      const last = rows[rows.length - 1];
      return {
        notifications: rows.map((n) => ({
          id: Number(n.id),
          siteId: n.site_id,
          lockId: n.lock_id,
          kind: n.kind,
          seq: num(n.seq),
          data: n.data,
          createdAt: Number(n.created_at),
        })),
        nextCursor: r.rows.length > limit && last ? encodeCursor(Number(last.id)) : null,
      };
    },
  );

  interface WebhookRow {
    id: string;
    url: string;
    kinds: string[];
    created_at: number;
    disabled_at: number | null;
  }
  const webhookView = (w: WebhookRow) => ({
    id: w.id,
    url: w.url,
    kinds: w.kinds,
    createdAt: Number(w.created_at),
    disabledAt: num(w.disabled_at),
  });
  route(
    {
      method: "get",
      path: "/api/v1/webhooks",
      summary: "The tenant's webhooks (never their secrets)",
      tag: "webhooks",
    },
    async ({ actor }) => {
      const r = await db.query<WebhookRow>(
        "SELECT id, url, kinds, created_at, disabled_at FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id",
        [actor.tenantId],
      );
      return r.rows.map(webhookView);
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/webhooks",
      summary: "Add a webhook; its signing secret is in this response only",
      tag: "webhooks",
      role: "admin",
      body: NewWebhookBody,
    },
    async ({ actor, body, c }) => {
      const row: WebhookRow = {
        id: newId((n) => crypto.randomBytes(n), "whk"),
        url: body.url,
        kinds: body.kinds,
        created_at: clock(),
        disabled_at: null,
      };
      const secret = `whsec_${Buffer.from(crypto.randomBytes(32)).toString("base64url")}`;
      await db.query(
        "INSERT INTO webhooks (id, tenant_id, url, secret, kinds, created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
        [row.id, actor.tenantId, row.url, secret, JSON.stringify(row.kinds), row.created_at],
      );
      c.header("cache-control", "no-store");
      return { ...webhookView(row), secret };
    },
  );
  route(
    {
      method: "delete",
      path: "/api/v1/webhooks/{webhookId}",
      summary: "Remove a webhook (its pending deliveries go with it)",
      tag: "webhooks",
      role: "admin",
      params: WebhookParam,
    },
    async ({ actor, params }) => {
      const r = await db.query("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2", [
        params.webhookId,
        actor.tenantId,
      ]);
      if (r.rowCount === 0) throw notFound("webhook");
      return { id: params.webhookId, deleted: true };
    },
  );

  return app;
}
