import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateCloud } from "../../src/cloud/db/migrate.ts";
import { openPglite } from "../../src/cloud/db/pglite.ts";
import type { SqlClient } from "../../src/cloud/db/sql.ts";
import {
  authenticateToken,
  createTenant,
  issueToken,
  listTokens,
  revokeToken,
  roleAtLeast,
} from "../../src/cloud/tenants.ts";
import { toHex, utf8 } from "../../src/core/crypto.ts";
import { isLatchkeyError } from "../../src/core/errors.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";

let db: SqlClient;
beforeAll(async () => {
  db = await openPglite(null);
  await migrateCloud(db, 1_767_225_600_000);
});
afterAll(async () => db.close());

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isLatchkeyError(e)) return e.code;
    throw e;
  }
  return "none";
}

describe("tenants and tokens", () => {
  it("creates a tenant with one owner token, stored only as its SHA-256", async () => {
    const { tenant, ownerToken } = await createTenant(db, crypto, "Acme Flats", 1000);
    expect(tenant).toMatchObject({ name: "Acme Flats", createdAt: 1000 });
    expect(ownerToken).toMatch(/^lkc_[A-Za-z0-9_-]{43}$/);
    const rows = await db.query<{ token_hash: Uint8Array; role: string }>(
      "SELECT token_hash, role FROM api_tokens WHERE tenant_id = $1",
      [tenant.id],
    );
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0]!.role).toBe("owner");
    expect(toHex(rows.rows[0]!.token_hash)).toBe(toHex(crypto.sha256(utf8(ownerToken))));
    const dump = await db.query<{ t: string }>("SELECT row_to_json(a)::text AS t FROM api_tokens a");
    for (const r of dump.rows) expect(r.t).not.toContain(ownerToken.slice(4));
    expect(await authenticateToken(db, crypto, ownerToken)).toMatchObject({
      tenantId: tenant.id,
      role: "owner",
    });
  });

  it("refuses malformed, unknown and revoked tokens alike", async () => {
    const { tenant, ownerToken } = await createTenant(db, crypto, "Beta", 1000);
    const { token, view } = await issueToken(db, crypto, tenant.id, "viewer", "dashboard", 2000);
    expect(view).toMatchObject({ role: "viewer", label: "dashboard", revokedAt: null });
    expect((await authenticateToken(db, crypto, token)).role).toBe("viewer");
    for (const bad of ["", "x", "lkc_", `${token}x`, `lkc_${"A".repeat(43)}`, token.toUpperCase()]) {
      expect(await codeOf(authenticateToken(db, crypto, bad))).toBe("LK_UNAUTHENTICATED");
    }
    await revokeToken(db, tenant.id, view.id, 3000);
    expect(await codeOf(authenticateToken(db, crypto, token))).toBe("LK_UNAUTHENTICATED");
    // Idempotent.
    expect((await revokeToken(db, tenant.id, view.id, 4000)).revokedAt).toBe(3000);
    expect(await codeOf(authenticateToken(db, crypto, ownerToken))).toBe("none");
  });

  it("never revokes the last owner token, and never another tenant's token", async () => {
    const a = await createTenant(db, crypto, "Gamma", 1000);
    const b = await createTenant(db, crypto, "Delta", 1000);
    const [ownerA] = await listTokens(db, a.tenant.id);
    expect(await codeOf(revokeToken(db, a.tenant.id, ownerA!.id, 2000))).toBe("LK_CONFLICT");
    expect(await codeOf(revokeToken(db, b.tenant.id, ownerA!.id, 2000))).toBe("LK_NOT_FOUND");
    const second = await issueToken(db, crypto, a.tenant.id, "owner", "backup owner", 2000);
    await revokeToken(db, a.tenant.id, ownerA!.id, 3000);
    expect(await codeOf(authenticateToken(db, crypto, a.ownerToken))).toBe("LK_UNAUTHENTICATED");
    expect(await codeOf(revokeToken(db, a.tenant.id, second.view.id, 4000))).toBe("LK_CONFLICT");
    expect((await listTokens(db, b.tenant.id)).map((t) => t.id)).not.toContain(ownerA!.id);
  });

  it("validates names, labels and roles", async () => {
    expect(await codeOf(createTenant(db, crypto, "", 1))).toBe("LK_INVALID_INPUT");
    expect(await codeOf(createTenant(db, crypto, "bad\u0007name", 1))).toBe("LK_INVALID_INPUT");
    const { tenant } = await createTenant(db, crypto, "Epsilon", 1);
    expect(await codeOf(issueToken(db, crypto, tenant.id, "root" as "owner", "x", 1))).toBe(
      "LK_INVALID_INPUT",
    );
    expect(await codeOf(issueToken(db, crypto, "tnt_nope", "viewer", "x", 1))).toBe("LK_NOT_FOUND");
  });

  it("orders roles owner > admin > viewer", () => {
    expect(roleAtLeast("owner", "admin")).toBe(true);
    expect(roleAtLeast("admin", "admin")).toBe(true);
    expect(roleAtLeast("viewer", "admin")).toBe(false);
    expect(roleAtLeast("admin", "owner")).toBe(false);
  });
});
