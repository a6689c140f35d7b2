/**
 * Cloud tenants and their API tokens. A tenant is one customer account (a fleet of sites); its API
 * tokens carry one of three roles:
 *
 * - `owner`: everything, including issuing and revoking tokens;
 * - `admin`: registers sites, changes users, credentials and modes, manages webhooks;
 * - `viewer`: reads.
 *
 * A token is `lkc_` + 43 base64url characters (32 random bytes). Only its SHA-256 is stored
 * (`api_tokens.token_hash`); the token itself is shown once, when it is issued, and is never logged.
 * {@link createTenant} is the only way to get a tenant's first token: there is no default password.
 */
import type { CryptoPort } from "../core/crypto.ts";
import { timingSafeEqual, utf8 } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";
import { assertDisplayName, newId } from "../core/ids.ts";
import type { SqlClient, SqlQueryable } from "./db/sql.ts";

/** What a cloud API token may do (see the module doc). */
export const TokenRole = {
  /** Everything, including tokens. */
  Owner: "owner",
  /** Every change but tokens. */
  Admin: "admin",
  /** Read only. */
  Viewer: "viewer",
} as const;
export type TokenRole = (typeof TokenRole)[keyof typeof TokenRole];

const RANK: Readonly<Record<TokenRole, number>> = { viewer: 0, admin: 1, owner: 2 };

/** Does `role` include everything `min` may do? */
export function roleAtLeast(role: TokenRole, min: TokenRole): boolean {
  return RANK[role] >= RANK[min];
}

/** A tenant as the API shows it. `createdAt` in ms since the Unix epoch. */
export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
}

/** A token as the API lists it: never the token itself nor its hash. Times in ms since the epoch. */
export interface TokenView {
  readonly id: string;
  readonly role: TokenRole;
  readonly label: string;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

/** Who a valid token speaks for. */
export interface TokenActor {
  readonly tenantId: string;
  readonly tokenId: string;
  readonly role: TokenRole;
}

const TOKEN_PREFIX = "lkc_";
/** `lkc_` + base64url of 32 bytes (43 characters, no padding). */
const TOKEN_RE = /^lkc_[A-Za-z0-9_-]{43}$/;

function b64url(b: Uint8Array): string {
  return Buffer.from(b).toString("base64url");
}

function newToken(crypto: CryptoPort): string {
  return `${TOKEN_PREFIX}${b64url(crypto.randomBytes(32))}`;
}

function tokenHash(crypto: CryptoPort, token: string): Uint8Array {
  return crypto.sha256(utf8(token));
}

interface TokenRow {
  id: string;
  role: TokenRole;
  label: string;
  created_at: number;
  revoked_at: number | null;
}

function tokenView(r: TokenRow): TokenView {
  return {
    id: r.id,
    role: r.role,
    label: r.label,
    createdAt: Number(r.created_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  };
}

function checkLabel(label: string, what: string): string {
  assertDisplayName(label, what);
  return label.trim();
}

/**
 * Create a tenant and its first token (role owner). The token is returned here once; only its SHA-256
 * is stored. `now`: ms since the epoch (default: the system clock).
 *
 * @returns `{ tenant, ownerToken }` — show `ownerToken` to the person creating the tenant, once.
 * @throws LatchkeyError `LK_INVALID_INPUT` for a name that is not a display name (1–100 characters, no
 *   control characters); the database's error if it fails.
 */
export async function createTenant(
  db: SqlClient,
  crypto: CryptoPort,
  name: string,
  now: number = Date.now(),
): Promise<{ tenant: Tenant; ownerToken: string }> {
  const tenantName = checkLabel(name, "tenant name");
  const tenant: Tenant = { id: newId((n) => crypto.randomBytes(n), "tnt"), name: tenantName, createdAt: now };
  const ownerToken = await db.transaction(async (tx) => {
    await tx.query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)", [
      tenant.id,
      tenant.name,
      now,
    ]);
    const { token } = await insertToken(tx, crypto, tenant.id, TokenRole.Owner, "first owner token", now);
    return token;
  });
  return { tenant, ownerToken };
}

async function insertToken(
  q: SqlQueryable,
  crypto: CryptoPort,
  tenantId: string,
  role: TokenRole,
  label: string,
  now: number,
): Promise<{ view: TokenView; token: string }> {
  const token = newToken(crypto);
  const id = newId((n) => crypto.randomBytes(n), "tok");
  await q.query(
    "INSERT INTO api_tokens (id, tenant_id, role, label, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    [id, tenantId, role, label, tokenHash(crypto, token), now],
  );
  return { view: { id, role, label, createdAt: now, revokedAt: null }, token };
}

/**
 * Issue a new token for a tenant. The token is in the result once; only its SHA-256 is stored.
 * `now`: ms since the epoch.
 *
 * @returns `{ view, token }`: the listed form and the token itself (show it once, never log it).
 * @throws LatchkeyError `LK_NOT_FOUND` for an unknown tenant; `LK_INVALID_INPUT` for a bad label or role.
 */
export async function issueToken(
  db: SqlClient,
  crypto: CryptoPort,
  tenantId: string,
  role: TokenRole,
  label: string,
  now: number,
): Promise<{ view: TokenView; token: string }> {
  if (!(role in RANK)) throw new LatchkeyError("LK_INVALID_INPUT", "role must be owner, admin or viewer");
  const l = checkLabel(label, "token label");
  return db.transaction(async (tx) => {
    const t = await tx.query("SELECT 1 FROM tenants WHERE id = $1", [tenantId]);
    if (t.rowCount === 0) throw new LatchkeyError("LK_NOT_FOUND", "no such tenant");
    return insertToken(tx, crypto, tenantId, role, l, now);
  });
}

/** A tenant's tokens, newest first (revoked ones included, with `revokedAt`). */
export async function listTokens(db: SqlQueryable, tenantId: string): Promise<TokenView[]> {
  const r = await db.query<TokenRow>(
    "SELECT id, role, label, created_at, revoked_at FROM api_tokens WHERE tenant_id = $1 ORDER BY created_at DESC, id",
    [tenantId],
  );
  return r.rows.map(tokenView);
}

/**
 * Revoke a tenant's token (idempotent: revoking a revoked token returns it unchanged). A token of another
 * tenant is `LK_NOT_FOUND`, exactly like a token that does not exist. `now`: ms since the epoch.
 *
 * @throws LatchkeyError `LK_NOT_FOUND`; `LK_CONFLICT` when it is the tenant's last live owner token
 *   (revoking it would leave nobody able to issue tokens, and there is no other way in).
 */
export async function revokeToken(
  db: SqlClient,
  tenantId: string,
  tokenId: string,
  now: number,
): Promise<TokenView> {
  return db.transaction(async (tx) => {
    // Lock the tenant's row so two concurrent revocations cannot both pass the last-owner check.
    await tx.query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE", [tenantId]);
    const r = await tx.query<TokenRow>(
      "SELECT id, role, label, created_at, revoked_at FROM api_tokens WHERE id = $1 AND tenant_id = $2",
      [tokenId, tenantId],
    );
    const row = r.rows[0];
    if (!row) throw new LatchkeyError("LK_NOT_FOUND", "no such token");
    if (row.revoked_at !== null) return tokenView(row);
    if (row.role === TokenRole.Owner) {
      const owners = await tx.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM api_tokens WHERE tenant_id = $1 AND role = 'owner' AND revoked_at IS NULL",
        [tenantId],
      );
      if (Number(owners.rows[0]?.n ?? 0) <= 1) {
        throw new LatchkeyError(
          "LK_CONFLICT",
          "this is the tenant's last owner token: issue another owner token before revoking it",
        );
      }
    }
    await tx.query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3", [
      now,
      tokenId,
      tenantId,
    ]);
    return tokenView({ ...row, revoked_at: now });
  });
}

/**
 * Who `token` speaks for. The lookup is by SHA-256 of the token (the table's unique index), and the
 * stored hash is then compared in constant time. Malformed, unknown and revoked tokens are all refused
 * with the same error; the detail never echoes the token.
 *
 * @throws LatchkeyError `LK_UNAUTHENTICATED`.
 */
export async function authenticateToken(
  db: SqlQueryable,
  crypto: CryptoPort,
  token: string,
): Promise<TokenActor> {
  const refused = () => new LatchkeyError("LK_UNAUTHENTICATED", "the API token is unknown or revoked");
  if (typeof token !== "string" || !TOKEN_RE.test(token)) throw refused();
  const h = tokenHash(crypto, token);
  const r = await db.query<{
    id: string;
    tenant_id: string;
    role: TokenRole;
    token_hash: Uint8Array;
    revoked_at: number | null;
  }>("SELECT id, tenant_id, role, token_hash, revoked_at FROM api_tokens WHERE token_hash = $1", [h]);
  const row = r.rows[0];
  if (!row || !timingSafeEqual(new Uint8Array(row.token_hash), h) || row.revoked_at !== null) throw refused();
  return { tenantId: row.tenant_id, tokenId: row.id, role: row.role };
}
