/**
 * The hub's local HTTP API (JSON over HTTP, 127.0.0.1 by default). Every route is declared once with
 * its zod schemas: the same schemas validate the request and document it in the OpenAPI document served
 * at `/api/v1/openapi.json`. Responses use one envelope: `{ ok: true, data }` or
 * `{ ok: false, error: { code, message } }` with the code's HTTP status. A rejected request changes nothing.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveStatic } from "@hono/node-server/serve-static";
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { streamSSE } from "hono/streaming";
import QRCode from "qrcode";
import type { CoseAlg } from "../core/envelope/cose-sign1.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import type { PublicKey } from "../core/keys/digital-key.ts";
import { Role } from "../core/model.ts";
import { decodeHeldOp } from "../core/ops/admit.ts";
import { operationToJson } from "../core/ops/operation.ts";
import { EpochMs } from "../core/units.ts";
import type { AttemptResult } from "../device/lock-runtime.ts";
import { capabilities } from "./capabilities.ts";
import { exportWithSecrets } from "./export.ts";
import { exportAuditSealed } from "./export-audit.ts";
import type { Actor, Hub } from "./hub.ts";
import { applyImport, planCsvImport, planImport, planImportWithPassphrase, planView } from "./import.ts";
import { type ReadinessReport, renderReportHtml, runReadinessCheck } from "./readiness.ts";
import { accessReview, lockHealth } from "./review.ts";
import * as S from "./schemas.ts";

type Method = "get" | "post" | "put" | "patch" | "delete";
type AnyObject = z.ZodObject<z.ZodRawShape>;

interface RouteSpec<
  P extends AnyObject | undefined,
  Q extends AnyObject | undefined,
  B extends z.ZodType | undefined,
> {
  readonly method: Method;
  /** OpenAPI-style path, e.g. `/api/v1/users/{userId}`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  /** Minimum role; `null` for unauthenticated routes. Default: any authenticated user. */
  readonly role?: Role | null;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  /** The body may be left out entirely; it is then parsed as `{}`. Default: a JSON body is required. */
  readonly bodyOptional?: boolean;
}

type Infer<T> = T extends z.ZodType ? z.infer<T> : undefined;

interface HandlerArgs<P, Q, B, A = Actor> {
  readonly params: Infer<P>;
  readonly query: Infer<Q>;
  readonly body: Infer<B>;
  readonly actor: A;
  readonly c: Context;
}

/**
 * How a route authenticates: `token` (an API token is required, then `role` applies), `optional` (a token
 * when one is sent, and it must then be valid; without one the handler gets actor `null` and must
 * authenticate the request itself, e.g. by a MAC), or `none`.
 */
type AuthMode = "token" | "optional" | "none";

/** Parse `value` with `schema` or throw LK_INVALID_INPUT naming the offending fields (never echoing values). */
export function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
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

const MAX_BODY = 64 * 1024;
/** `POST /api/v1/import` only: an export or CSV of a large site (10,000 users fit). */
const MAX_IMPORT_BODY = 8 * 1024 * 1024;

/** What the simulated input reports: the lock's feedback and the seq of the audit event it wrote. */
function attemptView(r: AttemptResult): { feedback: string; seq: number | null } {
  return { feedback: r.feedback, seq: r.seq };
}

/** Build the API app for `hub`. */
export function createApi(hub: Hub): OpenAPIHono {
  const app = new OpenAPIHono();

  // An import document or CSV of a whole site may be large; every other body is small.
  const limit = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: () => {
        throw new LatchkeyError("LK_PAYLOAD_TOO_LARGE", `request body over ${maxSize} bytes`);
      },
    });
  const smallBody = limit(MAX_BODY);
  const importBody = limit(MAX_IMPORT_BODY);
  app.use("*", (c, next) => (c.req.path === "/api/v1/import" ? importBody : smallBody)(c, next));
  app.onError((err, c) => {
    if (isLatchkeyError(err)) return errorResponse(c, err);
    if (err instanceof HTTPException) {
      return errorResponse(
        c,
        new LatchkeyError(err.status === 413 ? "LK_PAYLOAD_TOO_LARGE" : "LK_INVALID_INPUT", err.message),
      );
    }
    console.error("latchkey: internal error in API:", err);
    return errorResponse(c, new LatchkeyError("LK_INTERNAL", "internal error (see the hub's log)"));
  });
  app.notFound((c) =>
    errorResponse(c, new LatchkeyError("LK_NOT_FOUND", `no route ${c.req.method} ${c.req.path}`)),
  );

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });

  /** Declare a route: its schemas validate the request and document it. See {@link RouteSpec.role}. */
  function route<
    P extends AnyObject | undefined,
    Q extends AnyObject | undefined,
    B extends z.ZodType | undefined,
  >(spec: RouteSpec<P, Q, B>, handler: (a: HandlerArgs<P, Q, B>) => unknown): void {
    register(
      spec,
      spec.role === null ? "none" : "token",
      handler as (a: HandlerArgs<P, Q, B, Actor | null>) => unknown,
    );
  }

  /**
   * Declare a route that an API token authenticates when one is sent (an invalid one is refused), and
   * that also answers without one: the handler then gets actor `null` and must authenticate the request
   * itself (e.g. an issuer's MAC over a guest-code revocation). No minimum role: the handler decides.
   */
  function routeOptionalAuth<
    P extends AnyObject | undefined,
    Q extends AnyObject | undefined,
    B extends z.ZodType | undefined,
  >(
    spec: Omit<RouteSpec<P, Q, B>, "role">,
    handler: (a: HandlerArgs<P, Q, B, Actor | null>) => unknown,
  ): void {
    register(spec, "optional", handler);
  }

  function register<
    P extends AnyObject | undefined,
    Q extends AnyObject | undefined,
    B extends z.ZodType | undefined,
  >(
    spec: RouteSpec<P, Q, B>,
    auth: AuthMode,
    handler: (a: HandlerArgs<P, Q, B, Actor | null>) => unknown,
  ): void {
    app.openAPIRegistry.registerPath({
      method: spec.method,
      path: spec.path,
      summary: spec.summary,
      tags: [spec.tag],
      // OpenAPI: an empty requirement object makes the bearer token optional.
      ...(auth === "token" ? { security: [{ bearer: [] }] } : {}),
      ...(auth === "optional" ? { security: [{ bearer: [] }, {}] } : {}),
      request: {
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.query ? { query: spec.query } : {}),
        ...(spec.body
          ? {
              body: {
                content: { "application/json": { schema: spec.body } },
                required: !spec.bodyOptional,
              },
            }
          : {}),
      },
      responses: {
        200: { description: "OK", content: { "application/json": { schema: S.OkEnvelope } } },
        default: {
          description: "Error (see error.code)",
          content: { "application/json": { schema: S.ErrorEnvelope } },
        },
      },
    });
    const honoPath = spec.path.replace(/\{(\w+)\}/g, ":$1");
    app.on(spec.method.toUpperCase(), honoPath, async (c) => {
      let actor: Actor | null;
      if (auth === "token") actor = authenticate(c);
      else if (auth === "optional")
        actor = c.req.header("authorization") === undefined ? null : authenticate(c);
      else actor = { userId: "", role: Role.Guest };
      if (auth === "token" && spec.role && actor) hub.requireRole(actor, spec.role);
      const params = spec.params ? parse(spec.params, c.req.param(), "path") : undefined;
      const query = spec.query ? parse(spec.query, c.req.query(), "query") : undefined;
      let body: unknown;
      if (spec.body) {
        let raw: unknown;
        try {
          if (spec.bodyOptional) {
            const text = await c.req.text();
            raw = text.trim() === "" ? {} : JSON.parse(text);
          } else {
            raw = await c.req.json();
          }
        } catch (e) {
          if (isLatchkeyError(e)) throw e;
          throw new LatchkeyError("LK_INVALID_INPUT", "request body is not valid JSON");
        }
        body = parse(spec.body, raw, "body");
      }
      const result = await handler({ params, query, body, actor, c } as HandlerArgs<P, Q, B, Actor | null>);
      if (result instanceof Response) return result;
      return c.json({ ok: true, data: result ?? null });
    });
  }

  function authenticate(c: Context): Actor {
    const h = c.req.header("authorization") ?? "";
    const m = /^Bearer (\S+)$/.exec(h);
    if (!m?.[1])
      throw new LatchkeyError(
        "LK_UNAUTHENTICATED",
        "send Authorization: Bearer <token> (claim the hub to get one)",
      );
    return hub.authenticate(m[1]);
  }

  // ---------------------------------------------------------------- hub
  app.get("/healthz", (c) => c.json({ ok: true, data: { status: "ready" } }));
  app.get("/api/v1/openapi.json", (c) =>
    c.json(
      app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: {
          title: "Latchkey hub API",
          version: "1",
          description: "Local API of a Latchkey hub. Works with no internet.",
        },
      }),
    ),
  );

  route(
    {
      method: "get",
      path: "/api/v1/capabilities",
      summary:
        "What this hub and its locks actually support (credential kinds, limits, events, offline guarantees)",
      tag: "hub",
      role: null,
    },
    () => capabilities(hub, "0.1.0"),
  );
  app.get("/capabilities", (c) => c.json({ ok: true, data: capabilities(hub, "0.1.0") }));
  route(
    { method: "get", path: "/api/v1/hub", summary: "Hub identity and claim state", tag: "hub", role: null },
    () => ({
      deviceId: hub.deviceId,
      claimed: hub.isClaimed(),
      locks: hub.locks().map((l) => ({ id: l.id, name: l.name })),
      // What an owner's root key signs its hub link for (docs/protocol/digital-keys.md).
      keySigner: { alg: hub.keys.signerKey.alg, key: b64(hub.keys.signerKey.key) },
      keysReady: hub.keys.authority() !== null,
    }),
  );

  route(
    {
      method: "post",
      path: "/api/v1/claim",
      summary: "Claim the hub with the one-time setup code (creates the first owner)",
      tag: "hub",
      role: null,
      body: S.ClaimWithKeysBody,
    },
    ({ body }) => {
      const ka = body.keyAuthority;
      const { user, token, recoveryCode } = hub.claim(
        body.setupCode,
        body.ownerName,
        ka ? { root: publicKeyOf(ka.root), hubLink: fromB64(ka.hubLink) } : undefined,
      );
      return { user, token, recoveryCode };
    },
  );

  route({ method: "get", path: "/api/v1/me", summary: "The caller's user", tag: "hub" }, ({ actor }) =>
    hub.user(actor.userId),
  );

  // ---------------------------------------------------------------- locks
  route({ method: "get", path: "/api/v1/locks", summary: "List locks with their status", tag: "locks" }, () =>
    hub.locks().map((l) => ({ ...l, status: hub.status(l.id) })),
  );
  route(
    {
      method: "post",
      path: "/api/v1/locks",
      summary: "Add a (simulated) lock to the site",
      tag: "locks",
      role: Role.Admin,
      body: S.NewLockBody,
    },
    ({ actor, body }) => hub.addLock(actor, body as { id: string; name?: string; timeZone?: string }),
  );
  route(
    {
      method: "get",
      path: "/api/v1/locks/{lockId}",
      summary: "Lock status: bolt, door, battery, alarms, clock",
      tag: "locks",
      params: S.LockIdParam,
    },
    ({ params }) => ({
      ...hub.lock(params.lockId).record,
      status: hub.status(params.lockId),
    }),
  );
  route(
    {
      method: "patch",
      path: "/api/v1/locks/{lockId}",
      summary: "Change lock settings (AutoRelockTime, WrongCodeEntryLimit, ...)",
      tag: "locks",
      role: Role.Admin,
      params: S.LockIdParam,
      body: S.LockPatchBody,
    },
    ({ actor, params, body }) => hub.updateLockSettings(actor, params.lockId, body as never),
  );
  route(
    {
      method: "put",
      path: "/api/v1/locks/{lockId}/mode",
      summary: "Set the OperatingMode",
      tag: "locks",
      role: Role.Admin,
      params: S.LockIdParam,
      body: S.ModeBody,
    },
    ({ actor, params, body }) => hub.setOperatingMode(actor, params.lockId, body.mode),
  );
  route(
    {
      method: "post",
      path: "/api/v1/locks/{lockId}/unlock",
      summary: "Unlock (decided like any attempt; audited)",
      tag: "locks",
      params: S.LockIdParam,
    },
    async ({ actor, params }) => {
      const r = await hub.remoteUnlock(actor, params.lockId);
      if (r.decision?.outcome === "deny") {
        throw new LatchkeyError("LK_FORBIDDEN", `unlock refused: ${r.decision.reason}`, {
          reason: r.decision.reason,
        });
      }
      return { result: r.feedback, seq: r.seq, status: hub.status(params.lockId) };
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/locks/{lockId}/lock",
      summary: "Lock",
      tag: "locks",
      params: S.LockIdParam,
    },
    async ({ actor, params }) => {
      const r = await hub.remoteLock(actor, params.lockId);
      if ("refused" in r) {
        if (r.refused === "mode_forbids") {
          throw new LatchkeyError("LK_MODE_FORBIDS", "the lock's OperatingMode forbids remote locking");
        }
        throw new LatchkeyError("LK_FORBIDDEN", `lock refused: ${r.refused}`, { reason: r.refused });
      }
      return { result: r.result, status: hub.status(params.lockId) };
    },
  );
  route(
    {
      method: "put",
      path: "/api/v1/locks/{lockId}/clock",
      summary: "Set the lock's clock from a trusted source (owner)",
      tag: "locks",
      role: Role.Owner,
      params: S.LockIdParam,
      body: S.ClockBody,
    },
    ({ actor, params, body }) => {
      hub.lock(params.lockId).setClock(EpochMs(Date.parse(body.time)), actor.userId, body.force ?? false);
      return hub.status(params.lockId);
    },
  );

  // ---------------------------------------------------------------- guest codes (docs/protocol/guest-codes.md)
  const gc = "/api/v1/locks/{lockId}/guest-codes";
  route(
    {
      method: "post",
      path: `${gc}/issuers`,
      summary:
        "Enrol a guest-code issuer (or fetch its current key): returns the issuer file with its key, once",
      tag: "guest codes",
      role: Role.Admin,
      params: S.LockIdParam,
      body: S.EnrolIssuerBody,
      bodyOptional: true,
    },
    ({ actor, params, body, c }) => {
      const file = hub.enrolIssuer(actor, params.lockId, body.userId);
      // The issuer key is in this response only: keep it out of every cache.
      c.header("cache-control", "no-store");
      return file;
    },
  );
  route(
    {
      method: "get",
      path: `${gc}/issuers`,
      summary: "A lock's guest-code issuers with their epochs (never their keys)",
      tag: "guest codes",
      role: Role.Admin,
      params: S.LockIdParam,
    },
    ({ actor, params }) => hub.guestCodeIssuers(actor, params.lockId),
  );
  route(
    {
      method: "post",
      path: `${gc}/issuers/{issuerId}/epoch`,
      summary: "Revoke every code an issuer has issued so far (raise its epoch; it re-enrols to issue again)",
      tag: "guest codes",
      role: Role.Admin,
      params: S.IssuerIdParam,
    },
    ({ actor, params }) => hub.raiseIssuerEpoch(actor, params.lockId, params.issuerId),
  );
  route(
    {
      method: "delete",
      path: `${gc}/issuers/{issuerId}`,
      summary: "Remove an issuer: none of its codes opens any more",
      tag: "guest codes",
      role: Role.Admin,
      params: S.IssuerIdParam,
    },
    ({ actor, params }) => {
      hub.removeIssuer(actor, params.lockId, params.issuerId);
      return { removed: params.issuerId };
    },
  );
  route(
    {
      method: "post",
      path: `${gc}/revoke-all`,
      summary: "Revoke every guest code issued on the lock so far, by every issuer (raise every epoch)",
      tag: "guest codes",
      role: Role.Admin,
      params: S.LockIdParam,
    },
    ({ actor, params }) => hub.revokeAllGuestCodes(actor, params.lockId),
  );
  routeOptionalAuth(
    {
      method: "post",
      path: `${gc}/revocations`,
      summary:
        "Revoke one guest code: with an owner's or admin's API token, or with no token and the issuer's MAC",
      tag: "guest codes",
      params: S.LockIdParam,
      body: S.GuestCodeRevocationBody,
    },
    ({ actor, params, body }) => {
      // A token decides who is revoking: members, guests and service users are refused before anything else.
      if (actor !== null) hub.requireRole(actor, Role.Admin);
      else if (body.mac === undefined) {
        throw new LatchkeyError(
          "LK_UNAUTHENTICATED",
          "send Authorization: Bearer <token>, or the issuer's mac over the revocation",
        );
      }
      return hub.revokeGuestCode(actor, params.lockId, body);
    },
  );
  route(
    {
      method: "post",
      path: gc,
      summary: "Issue a guest code through the hub (the caller's issuer): returns the digits, once",
      tag: "guest codes",
      role: Role.Admin,
      params: S.LockIdParam,
      body: S.IssueGuestCodeBody,
    },
    ({ actor, params, body, c }) => {
      const { name, ...req } = body;
      // Checked first: issuing enrols the caller's issuer (audited), and a rejected request changes nothing.
      hub.checkGuestCodeRequest(params.lockId, req, name);
      const issued = hub.issueGuestCode(actor, params.lockId, req, name);
      // The digits are in this response only.
      c.header("cache-control", "no-store");
      return issued;
    },
  );
  route(
    {
      method: "get",
      path: gc,
      summary: "The hub's ledger of guest codes issued through it, with uses and revocation (never digits)",
      tag: "guest codes",
      role: Role.Admin,
      params: S.LockIdParam,
    },
    ({ actor, params }) => hub.guestCodes(actor, params.lockId),
  );

  // ---------------------------------------------------------------- users and credentials
  route({ method: "get", path: "/api/v1/users", summary: "List users", tag: "users", role: Role.Admin }, () =>
    hub.users(),
  );
  route(
    {
      method: "post",
      path: "/api/v1/users",
      summary: "Add a user",
      tag: "users",
      role: Role.Admin,
      body: S.NewUserBody,
    },
    ({ actor, body }) => hub.addUser(actor, body),
  );
  route(
    {
      method: "get",
      path: "/api/v1/users/{userId}",
      summary: "A user with their credentials",
      tag: "users",
      params: S.UserIdParam,
    },
    ({ actor, params }) => {
      if (actor.userId !== params.userId) hub.requireRole(actor, Role.Admin);
      return { ...hub.user(params.userId), credentials: hub.credentialViews(params.userId) };
    },
  );
  route(
    {
      method: "patch",
      path: "/api/v1/users/{userId}",
      summary: "Change a user (name, role, type, schedules, status)",
      tag: "users",
      role: Role.Admin,
      params: S.UserIdParam,
      body: S.UserPatchBody,
    },
    ({ actor, params, body }) => hub.updateUser(actor, params.userId, body),
  );
  route(
    {
      method: "delete",
      path: "/api/v1/users/{userId}",
      summary: "Remove a user and all their credentials",
      tag: "users",
      role: Role.Admin,
      params: S.UserIdParam,
    },
    ({ actor, params }) => {
      hub.removeUser(actor, params.userId);
      return { removed: params.userId };
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/users/{userId}/credentials",
      summary: "A user's credentials (never PIN digits or digests)",
      tag: "credentials",
      params: S.UserIdParam,
    },
    ({ actor, params }) => {
      if (actor.userId !== params.userId) hub.requireRole(actor, Role.Admin);
      return hub.credentialViews(params.userId);
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/users/{userId}/pin",
      summary: "Set a PIN (weak and shared PINs refused)",
      tag: "credentials",
      params: S.UserIdParam,
      body: S.PinBody,
    },
    ({ actor, params, body }) => hub.setPin(actor, params.userId, body.pin, body as never),
  );
  route(
    {
      method: "post",
      path: "/api/v1/users/{userId}/totp",
      summary:
        "Enrol an authenticator app (RFC 6238 TOTP): returns the otpauth:// URI and its QR code as SVG, shown once",
      tag: "credentials",
      params: S.UserIdParam,
      body: S.TotpBody,
    },
    async ({ actor, params, body, c }) => {
      const { credential, otpauthUri } = hub.addTotp(actor, params.userId, body as never);
      const qrSvg = await QRCode.toString(otpauthUri, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
      // The secret is in this response only: keep it out of every cache.
      c.header("cache-control", "no-store");
      return { credential, otpauthUri, qrSvg };
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/users/{userId}/cards",
      summary: "Enrol an RFID card (UID or Wiegand card id)",
      tag: "credentials",
      role: Role.Admin,
      params: S.UserIdParam,
      body: S.CardBody,
    },
    ({ actor, params, body }) => hub.addCard(actor, params.userId, body as never, body as never),
  );
  route(
    {
      method: "post",
      path: "/api/v1/users/{userId}/fingerprints",
      summary: "Enrol a fingerprint by sensor slot",
      tag: "credentials",
      role: Role.Admin,
      params: S.UserIdParam,
      body: S.FingerprintBody,
    },
    ({ actor, params, body }) => hub.addFingerprint(actor, params.userId, body.slot, body as never),
  );
  route(
    {
      method: "delete",
      path: "/api/v1/credentials/{credentialId}",
      summary: "Remove a credential",
      tag: "credentials",
      params: S.CredentialIdParam,
    },
    ({ actor, params }) => {
      hub.removeCredential(actor, params.credentialId);
      return { removed: params.credentialId };
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/users/{userId}/tokens",
      summary: "Issue an API token (shown once, stored hashed)",
      tag: "users",
      params: S.UserIdParam,
      body: S.TokenBody,
    },
    ({ actor, params, body }) => {
      const { token, record } = hub.issueToken(actor, params.userId, body.label);
      return { token, id: record.id, label: record.label, createdAt: record.createdAt };
    },
  );

  route(
    {
      method: "get",
      path: "/api/v1/users/{userId}/tokens",
      summary: "List a user's API tokens (ids and labels only)",
      tag: "users",
      params: S.UserIdParam,
    },
    ({ actor, params }) => hub.tokens(actor, params.userId),
  );
  route(
    {
      method: "delete",
      path: "/api/v1/tokens/{tokenId}",
      summary: "Revoke an API token (its user or an owner)",
      tag: "users",
      params: S.TokenIdParam,
    },
    ({ actor, params }) => {
      hub.revokeToken(actor, params.tokenId);
      return { revoked: params.tokenId };
    },
  );

  // ---------------------------------------------------------------- audit
  route(
    {
      method: "get",
      path: "/api/v1/audit",
      summary: "Query the audit log (paginated by seq)",
      tag: "audit",
      query: S.AuditQueryParams,
    },
    ({ actor, query }) => {
      const events = hub.queryAudit(actor, {
        limit: query.limit,
        descending: query.order === "desc",
        ...(query.after !== undefined ? { afterSeq: query.after } : {}),
        ...(query.before !== undefined ? { beforeSeq: query.before } : {}),
        ...(query.lockId !== undefined ? { lockId: query.lockId } : {}),
        ...(query.userId !== undefined ? { userId: query.userId } : {}),
        ...(query.kind !== undefined ? { kinds: [query.kind] } : {}),
        ...(query.from !== undefined ? { from: Date.parse(query.from) } : {}),
        ...(query.to !== undefined ? { to: Date.parse(query.to) } : {}),
      });
      const last = events.at(-1);
      return { events, next: events.length === query.limit && last ? last.seq : null };
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/audit/verify",
      summary: "Verify the hash chain and checkpoint signatures",
      tag: "audit",
      role: Role.Admin,
    },
    () => ({
      ...hub.verifyAudit(),
      deviceId: hub.deviceId,
      publicKey: Buffer.from(hub.publicKey).toString("hex"),
    }),
  );
  route(
    {
      method: "post",
      path: "/api/v1/audit/export",
      summary:
        "Audit events (with checkpoints and the chain verification) sealed to a passphrase: a latchkey-audit-export document",
      tag: "audit",
      role: Role.Admin,
      body: S.AuditExportBody,
    },
    async ({ actor, body, c }) => {
      const doc = await exportAuditSealed(hub, actor, body.passphrase, {
        fromSeq: body.fromSeq,
        toSeq: body.toSeq,
      });
      // A browser saves the answer as a file; `latchkey audit open` reads it (envelope or document).
      c.header(
        "content-disposition",
        `attachment; filename="latchkey-audit-${hub.deviceId}-${doc.exportedAt.slice(0, 10)}.json"`,
      );
      c.header("cache-control", "no-store");
      return doc;
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/audit/stream",
      summary: "Live audit events (server-sent events)",
      tag: "audit",
      role: Role.Admin,
    },
    ({ c }) =>
      streamSSE(c, async (stream) => {
        const queue: string[] = [];
        let wake: (() => void) | null = null;
        const unsubscribe = hub.audit.subscribe((events) => {
          for (const e of events) queue.push(JSON.stringify(e));
          wake?.();
        });
        stream.onAbort(() => {
          unsubscribe();
          wake?.();
        });
        while (!stream.aborted) {
          const next = queue.shift();
          if (next) await stream.writeSSE({ event: "audit", data: next });
          else await new Promise<void>((r) => (wake = r));
        }
        unsubscribe();
      }),
  );
  route(
    {
      method: "get",
      path: "/api/v1/export",
      summary: "Export users, credentials and rules (no secrets)",
      tag: "hub",
      role: Role.Admin,
    },
    ({ actor }) => hub.exportData(actor),
  );
  route(
    {
      method: "post",
      path: "/api/v1/export",
      summary:
        "Export version 2: as GET, plus PINs, authenticator and guest-code secrets sealed to a passphrase (owner)",
      tag: "hub",
      role: Role.Owner,
      body: S.ExportSecretsBody,
    },
    ({ actor, body, c }) => {
      c.header("cache-control", "no-store");
      return exportWithSecrets(hub, actor, body.passphrase);
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/import",
      summary: "Import an export document or a CSV file of users (dryRun: the plan only)",
      tag: "hub",
      role: Role.Admin,
      body: S.ImportBody,
    },
    async ({ actor, body }) => {
      const opts = { actor, mode: body.mode ?? "strict" } as const;
      const plan =
        body.csv !== undefined
          ? planCsvImport(hub, body.csv, opts)
          : body.passphrase !== undefined
            ? await planImportWithPassphrase(hub, body.document, body.passphrase, opts)
            : planImport(hub, body.document, opts);
      if (body.dryRun) return { dryRun: true, plan: planView(plan) };
      const result = applyImport(hub, actor, plan);
      return { dryRun: false, plan: planView(plan), result };
    },
  );

  // ---------------------------------------------------------------- simulator inputs (simulated hardware only)
  const sim = (path: string, summary: string) => ({
    path: `/api/v1/locks/{lockId}/simulator/${path}`,
    summary: `Simulator: ${summary}`,
    tag: "simulator",
    role: Role.Owner,
    params: S.LockIdParam,
  });
  route(
    { method: "post", ...sim("keypad", "type digits then # on the keypad"), body: S.SimKeypadBody },
    async ({ params, body }) => ({
      ...attemptView(await hub.lock(params.lockId).keypadEntry(body.digits.replace(/#$/, ""))),
    }),
  );
  route(
    { method: "post", ...sim("card", "present an ISO 14443 card"), body: S.SimCardBody },
    async ({ params, body }) => ({
      ...attemptView(await hub.lock(params.lockId).cardTap(body.uid)),
    }),
  );
  route(
    { method: "post", ...sim("wiegand", "a Wiegand reader sends a frame"), body: S.SimWiegandBody },
    async ({ params, body }) => ({
      ...attemptView(await hub.lock(params.lockId).wiegandFrame(body.frame)),
    }),
  );
  route(
    {
      method: "post",
      ...sim("fingerprint", "a finger matches a sensor slot (null: no match)"),
      body: S.SimFingerBody,
    },
    async ({ params, body }) => ({
      ...attemptView(await hub.lock(params.lockId).fingerMatch(body.slot)),
    }),
  );
  route(
    { method: "post", ...sim("door", "open or close the door"), body: S.SimDoorBody },
    ({ params, body }) => {
      const s = hub.simulator(params.lockId);
      if (body.open) s.openDoor();
      else s.closeDoor();
      return hub.status(params.lockId);
    },
  );
  route(
    { method: "post", ...sim("manual-key", "turn the mechanical key"), body: S.SimManualBody },
    ({ params, body }) => {
      hub.simulator(params.lockId).turnKey(body.to);
      return hub.status(params.lockId);
    },
  );
  route(
    { method: "post", ...sim("exit-button", "press the request-to-exit button") },
    async ({ params }) => ({
      feedback: await hub.simulator(params.lockId).pressExit(),
    }),
  );
  route(
    { method: "post", ...sim("battery", "set the battery level"), body: S.SimBatteryBody },
    ({ params, body }) => {
      hub.simulator(params.lockId).setBattery(body.percent);
      hub.lock(params.lockId).checkBattery();
      return hub.status(params.lockId);
    },
  );
  route(
    { method: "post", ...sim("tamper", "open or close the tamper switch"), body: S.SimTamperBody },
    ({ params, body }) => {
      hub.simulator(params.lockId).setTamper(body.tampered);
      return hub.status(params.lockId);
    },
  );
  route({ method: "post", ...sim("jam", "make the next motor drive stall") }, ({ params }) => {
    hub.simulator(params.lockId).jamNextDrive();
    return hub.status(params.lockId);
  });
  route(
    { method: "post", ...sim("rtc", "set the RTC (e.g. back in time) or cut its power"), body: S.SimRtcBody },
    ({ params, body }) => {
      const s = hub.simulator(params.lockId);
      if (body.powerLost) s.cutRtcPower();
      if (body.time) s.setRtc(EpochMs(Date.parse(body.time)));
      return hub.status(params.lockId);
    },
  );

  // ---------------------------------------------------------------- phone keys (docs/protocol/digital-keys.md)
  // ---------------------------------------------------------------- operations and the cloud sync
  route(
    {
      method: "get",
      path: "/api/v1/sync",
      summary: "The operation log and the cloud sync: connection, pending events and operations (drift)",
      tag: "sync",
      role: Role.Admin,
    },
    () => ({
      siteId: hub.deviceId,
      ops: hub.opsStatus(),
      cloud: hub.cloud?.status() ?? null,
    }),
  );
  route(
    {
      method: "get",
      path: "/api/v1/sync/identity",
      summary:
        "What a cloud registers for this site: device key (audit checkpoints), seal key (PINs), owner roots, hub key",
      tag: "sync",
      role: Role.Admin,
    },
    () => {
      const g = hub.replica.genesis();
      return {
        siteId: hub.deviceId,
        devicePublicKey: Buffer.from(hub.publicKey).toString("hex"),
        sealPublicKey: Buffer.from(hub.sealPublicKey).toString("hex"),
        genesis: g
          ? [...g.owners.values()].map((k) => ({ alg: k.alg, publicKey: Buffer.from(k.key).toString("hex") }))
          : [],
        hubKey: {
          alg: hub.replica.hubKey.alg,
          key: b64(hub.replica.hubKey.key),
          keyId: hub.replica.hubKeyId,
        },
      };
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/ops",
      summary: "Signed management operations held by the hub, in merge order, with the merge's verdict",
      tag: "sync",
      role: Role.Admin,
      query: S.OpsQuery,
    },
    ({ query }) => {
      const st = hub.replica.state();
      const rows = hub.store.ops.all();
      const out = [];
      for (const r of rows) {
        const op = decodeHeldOp(hub.crypto, r.cose);
        const j = operationToJson(op);
        if (query.after !== undefined && (j.hlc as string) <= query.after) continue;
        out.push({
          ...j,
          origin: r.origin,
          cloudAcked: r.cloudAcked,
          skipped: st?.skipped.get(op.id) ?? null,
          // Sealed secrets stay out of the listing.
          payload: redactSealed(j.payload),
        });
        if (out.length >= (query.limit ?? 200)) break;
      }
      return { ops: out };
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/ops",
      summary: "Submit operations signed by an owner's or admin's own key (verified, merged, applied)",
      tag: "sync",
      role: Role.Admin,
      body: S.SubmitOpsBody,
    },
    ({ actor, body }) => {
      const r = hub.applyOps(actor, body.ops.map(fromB64), false);
      hub.onOpsRecorded?.();
      return { accepted: r.accepted, refused: r.refused, fresh: r.fresh, changed: r.changed };
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/keys/authority",
      summary: "The site id, the hub's signing key and the registered owner root key (public keys only)",
      tag: "phone keys",
    },
    () => {
      const a = hub.keys.authority();
      return {
        siteId: hub.deviceId,
        keySigner: { alg: hub.keys.signerKey.alg, key: b64(hub.keys.signerKey.key) },
        registered: a !== null,
        root: a ? { alg: a.root.alg, key: b64(a.root.key) } : null,
        registeredAt: a?.registeredAt ?? null,
      };
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/keys/authority",
      summary:
        "Register the owner's root key and the link it signed for this hub (replace revokes every key)",
      tag: "phone keys",
      role: Role.Owner,
      body: S.RegisterAuthorityBody,
    },
    ({ actor, body }) => {
      hub.keys.register(actor, publicKeyOf(body.root), fromB64(body.hubLink), body.replace ?? false);
      return { registered: true };
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/keys",
      summary: "Issue a phone key to a holder public key (signed by the hub under the owner's root)",
      tag: "phone keys",
      role: Role.Admin,
      body: S.IssueKeyBody,
    },
    ({ actor, body }) => {
      const { record, view } = hub.keys.issue(actor, {
        holder: publicKeyOf(body.holder),
        name: body.name,
        userId: body.userId,
        lockId: body.lockId,
        rights: body.rights,
        from: body.from,
        until: body.until,
        leaseSeconds: body.leaseSeconds,
        schedule: body.schedule,
      });
      return { key: view, chain: record.chain.map(b64) };
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/keys",
      summary: "Phone keys issued by this hub",
      tag: "phone keys",
      role: Role.Admin,
    },
    ({ actor }) => hub.keys.keys(actor),
  );
  route(
    {
      method: "post",
      path: "/api/v1/keys/{serial}/revoke",
      summary: "Revoke a phone key: a new signed revocation list, applied here now and carried by wallets",
      tag: "phone keys",
      role: Role.Admin,
      params: S.SerialParam,
    },
    ({ actor, params }) => hub.keys.revoke(actor, params.serial),
  );
  route(
    {
      method: "get",
      path: "/api/v1/keys/events",
      summary: "What wallets did offline, as they synced it (newest first)",
      tag: "phone keys",
      role: Role.Admin,
    },
    ({ actor }) => hub.keys.walletEvents(actor),
  );
  route(
    {
      method: "post",
      path: "/api/v1/phone/sync",
      summary:
        "A wallet's sync, signed by its holder key: its keys, revocation lists and tickets; uploads its queued events",
      tag: "phone keys",
      role: null,
      body: S.SyncBody,
    },
    ({ body, c }) => {
      const requestBytes = fromB64(body.request);
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(requestBytes));
      } catch {
        throw new LatchkeyError("LK_INVALID_INPUT", "the sync request is not UTF-8 JSON");
      }
      const req = parse(S.SyncRequestJson, json, "sync request");
      c.header("cache-control", "no-store");
      return hub.keys.sync(requestBytes, fromB64(body.signature), req);
    },
  );

  // ---------------------------------------------------------------- console (issue 7)
  route(
    {
      method: "post",
      path: "/api/v1/signout",
      summary: "Sign out: revoke the token this request presents",
      tag: "hub",
    },
    ({ c }) => hub.signOut(/^Bearer (\S+)$/.exec(c.req.header("authorization") ?? "")?.[1] ?? ""),
  );
  route(
    {
      method: "post",
      path: "/api/v1/recover",
      summary:
        "Exchange the owner's recovery code for a new owner token (the code is spent; a new one is returned)",
      tag: "hub",
      role: null,
      body: S.RecoverBody,
    },
    ({ body, c }) => {
      c.header("cache-control", "no-store");
      return hub.recover(body.recoveryCode, body.label ?? "recovery");
    },
  );
  route(
    {
      method: "post",
      path: "/api/v1/recovery/rotate",
      summary: "A new recovery code for the calling owner (the old one stops working)",
      tag: "hub",
      role: Role.Owner,
    },
    ({ actor, c }) => {
      c.header("cache-control", "no-store");
      return hub.rotateRecoveryCode(actor);
    },
  );
  route(
    {
      method: "get",
      path: "/api/v1/recovery/policy",
      summary: "The emergency access policy printed in the recovery kit",
      tag: "hub",
    },
    () => ({ lines: recoveryPolicy(hub) }),
  );
  route(
    {
      method: "post",
      path: "/api/v1/users/{userId}/offboard",
      summary:
        "Revoke everything this person has (credentials, tokens, phone keys, guest-code issuers) in one step",
      tag: "users",
      role: Role.Admin,
      params: S.UserIdParam,
      body: S.OffboardBody,
      bodyOptional: true,
    },
    ({ actor, params, body }) => hub.offboardUser(actor, params.userId, { remove: body.remove ?? false }),
  );
  route(
    {
      method: "get",
      path: "/api/v1/review",
      summary:
        "Access review: ghost users, credentials that never worked, shared codes, keys near expiry, admins",
      tag: "users",
      role: Role.Admin,
      query: S.ReviewQuery,
    },
    ({ actor, query }) => accessReview(hub, actor, query.days ?? 30),
  );
  route(
    {
      method: "get",
      path: "/api/v1/locks/{lockId}/health",
      summary:
        "Lock health: state, battery history and replacement forecast, alarms, clock, sync, revocation horizon",
      tag: "locks",
      role: Role.Admin,
      params: S.LockIdParam,
    },
    ({ actor, params }) => lockHealth(hub, actor, params.lockId),
  );
  route(
    {
      method: "post",
      path: "/api/v1/check",
      summary:
        "Readiness check (the router-unplugged test on demand): cut the uplink, decide each credential kind locally, add and remove a person, verify the audit log, restore the uplink",
      tag: "hub",
      role: Role.Admin,
      body: S.CheckBody,
      bodyOptional: true,
    },
    ({ actor, body }) =>
      runReadinessCheck(hub, actor, body.lockId === undefined ? {} : { lockId: body.lockId }),
  );
  route(
    {
      method: "get",
      path: "/api/v1/checks",
      summary: "Past readiness reports, newest first",
      tag: "hub",
      role: Role.Admin,
    },
    () =>
      hub.store.console.reports(100).map((r) => {
        const rep = JSON.parse(r.report) as ReadinessReport;
        return { id: r.id, startedAt: rep.startedAt, finishedAt: rep.finishedAt, passed: r.passed };
      }),
  );
  route(
    {
      method: "get",
      path: "/api/v1/checks/{checkId}",
      summary: "One readiness report",
      tag: "hub",
      role: Role.Admin,
      params: S.CheckIdParam,
    },
    ({ params }) => storedReport(hub, params.checkId),
  );
  route(
    {
      method: "get",
      path: "/api/v1/checks/{checkId}/report.html",
      summary: "One readiness report as a printable HTML page",
      tag: "hub",
      role: Role.Admin,
      params: S.CheckIdParam,
    },
    ({ params, c }) => c.html(renderReportHtml(storedReport(hub, params.checkId))),
  );

  // The console's files (built by `npm run build:console`), same origin as the API: nothing else is
  // fetched, and the Content-Security-Policy says so to the browser too.
  const consoleRoot = fileURLToPath(new URL("../../dist/console/", import.meta.url));
  app.use("*", async (c, next) => {
    await next();
    if (!c.req.path.startsWith("/api/")) {
      c.header(
        "content-security-policy",
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      );
      c.header("x-content-type-options", "nosniff");
      c.header("referrer-policy", "no-referrer");
    }
  });
  if (existsSync(join(consoleRoot, "index.html"))) {
    app.get("/assets/*", serveStatic({ root: consoleRoot }));
    app.get("/", serveStatic({ root: consoleRoot, path: "index.html" }));
  } else {
    app.get("/", (c) =>
      c.html(
        "<!doctype html><title>Latchkey</title><p>The console is not built: run <code>npm run build:console</code> (npm install does it).</p>",
        503,
      ),
    );
  }

  return app;
}

/** A stored readiness report. Throws LK_NOT_FOUND. */
function storedReport(hub: Hub, id: string): ReadinessReport {
  const r = hub.store.console.report(id);
  if (!r) throw new LatchkeyError("LK_NOT_FOUND", `no readiness report ${id}`);
  return JSON.parse(r.report) as ReadinessReport;
}

/** The emergency access policy of the recovery kit, from what this hub has. */
function recoveryPolicy(hub: Hub): string[] {
  const owners = hub.users().filter((u) => u.role === Role.Owner);
  return [
    "The lock decides on its own: a power cut of the router or the internet changes nothing at the door.",
    "Mechanical key: the lock's key cylinder always opens the door, and its use is written to the audit log. Keep one key off-site with someone you trust.",
    `Owners (${owners.map((o) => o.name).join(", ") || "none"}): keep a second kind of credential (a card or a fingerprint besides your PIN).`,
    "Lost your API token or phone: use the recovery code on this page at the hub's console (sign in with the recovery code) or with the command latchkey recover; it gives a new owner token and a new recovery code.",
    "Lost the hub itself: the lock keeps working with the credentials it holds; restore the hub from a backup of its data directory, or from an encrypted export (latchkey export --secrets).",
    "A code or card was lost or shared: revoke it at once in the console (People) — it stops working at the door immediately.",
    "Someone moved out: People → Offboard revokes everything they had in one step.",
  ];
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
/** An operation payload as JSON with any sealed box replaced by its size. */
const redactSealed = (p: unknown): unknown =>
  typeof p === "object" && p !== null && "sealed" in p
    ? {
        ...(p as Record<string, unknown>),
        sealed: `<sealed ${String((p as { sealed: string }).sealed).length / 2} bytes>`,
      }
    : p;
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, "base64url"));
const publicKeyOf = (k: { alg: -7 | -8; key: string }): PublicKey => ({
  alg: k.alg as CoseAlg,
  key: fromB64(k.key),
});
