/**
 * The cloud API (src/cloud/api.ts) against the embedded database (PGlite, in memory), plus one scenario
 * against a real PostgreSQL in a schema of its own. Scenarios: roles, tenant isolation on every route,
 * signed operations made only once the cloud is delegated, no PIN anywhere in the database, the audit
 * search, webhooks and tokens, and a fuzz of random paths and bodies that must change nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCloudApi } from "../../src/cloud/api.ts";
import { migrateCloud } from "../../src/cloud/db/migrate.ts";
import { openPg } from "../../src/cloud/db/pg.ts";
import { openPglite } from "../../src/cloud/db/pglite.ts";
import type { SqlClient } from "../../src/cloud/db/sql.ts";
import { createTenant, issueToken } from "../../src/cloud/tenants.ts";
import { toHex, utf8 } from "../../src/core/crypto.ts";
import { CoseAlg, type Sign1Signer } from "../../src/core/envelope/cose-sign1.ts";
import { type ErrorCode, ErrorCodes } from "../../src/core/errors.ts";
import { keyId, type PublicKey } from "../../src/core/keys/digital-key.ts";
import { decodeHeldOp } from "../../src/core/ops/admit.ts";
import { hlc, hlcToText } from "../../src/core/ops/hlc.ts";
import { makeOperation, type OperationBody, signOperation } from "../../src/core/ops/operation.ts";
import { openSealed, SealedKind, sealContext } from "../../src/core/ops/seal.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { mulberry32 } from "../support/prng.ts";

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

interface Ed {
  readonly pk: PublicKey;
  readonly kid: string;
  readonly signer: Sign1Signer;
}
function edKey(): Ed {
  const seed = crypto.randomBytes(32);
  const pk: PublicKey = { alg: CoseAlg.EdDSA, key: crypto.ed25519PublicKey(seed) };
  const kidBytes = keyId(crypto, pk);
  return { pk, kid: toHex(kidBytes), signer: { alg: CoseAlg.EdDSA, kid: kidBytes, privateKey: seed } };
}

/** One cloud over one database: the app, its clock, what it published, and helpers to call it. */
async function harness(db: SqlClient) {
  await migrateCloud(db, T0);
  let now = T0 + 60_000;
  const cloudSeed = crypto.randomBytes(32);
  const published: { siteId: string; ops: Uint8Array[] }[] = [];
  const app = createCloudApi({
    db,
    crypto,
    clock: () => now,
    signer: cloudSeed,
    publishOps: async (siteId, ops) => {
      published.push({ siteId, ops });
    },
    log: () => {},
  });
  const cloudPk: PublicKey = { alg: CoseAlg.EdDSA, key: crypto.ed25519PublicKey(cloudSeed) };
  const cloudKid = toHex(keyId(crypto, cloudPk));

  async function call(method: string, path: string, token: string | null, body?: unknown, raw?: string) {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const res = await app.request(path, {
      method,
      headers,
      ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as
      | { ok: true; data: Record<string, unknown> & unknown[] }
      | { ok: false; error: { code: ErrorCode; message: string } };
    return { status: res.status, json, data: json.ok ? json.data : (undefined as never) };
  }
  async function ok(method: string, path: string, token: string, body?: unknown) {
    const r = await call(method, path, token, body);
    if (!r.json.ok) throw new Error(`${method} ${path}: ${r.status} ${r.json.error.message}`);
    return r.json.data as Record<string, unknown> & Record<string, unknown>[];
  }
  async function err(method: string, path: string, token: string | null, body?: unknown) {
    const r = await call(method, path, token, body);
    if (r.json.ok) throw new Error(`${method} ${path}: expected an error, got ${r.status}`);
    expect(r.status).toBe(ErrorCodes[r.json.error.code].http);
    return r.json.error.code;
  }

  /** A tenant with owner, admin and viewer tokens. */
  async function tenant(name: string) {
    const { tenant: t, ownerToken } = await createTenant(db, crypto, name, now);
    const admin = (await issueToken(db, crypto, t.id, "admin", "ops team", now)).token;
    const viewer = (await issueToken(db, crypto, t.id, "viewer", "wall screen", now)).token;
    return { id: t.id, owner: ownerToken, admin, viewer };
  }

  /** Register a site through the API; returns its owner key and its seal private key. */
  async function site(token: string, siteId: string) {
    const owner = edKey();
    const sealPriv = crypto.randomBytes(32);
    const device = edKey();
    const data = await ok("POST", "/api/v1/sites", token, {
      siteId,
      name: `Site ${siteId}`,
      devicePublicKey: toHex(device.pk.key),
      sealPublicKey: toHex(crypto.x25519PublicKey(sealPriv)),
      genesis: [{ alg: -8, publicKey: toHex(owner.pk.key) }],
    });
    expect(data.cloudDelegated).toBe(false);
    let counter = 0;
    /** Store an operation the owner made at the hub (as ingest would). */
    async function ownerOp(kind: OperationBody["kind"], target: string, payload: unknown, at = now - 30_000) {
      const body = {
        hlc: hlc(at, counter++, "00000000000000a1"),
        actor: owner.kid,
        scope: { kind: "site", id: siteId },
        kind,
        target,
        payload,
      } as OperationBody;
      const op = makeOperation(crypto, body);
      await db.query(
        `INSERT INTO ops (site_id, op_id, hlc, kind, target, actor, cose, origin, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'hub', $8)`,
        [
          siteId,
          op.id,
          hlcToText(op.hlc),
          op.kind,
          op.target,
          op.actor,
          signOperation(crypto, owner.signer, body),
          now,
        ],
      );
      return op;
    }
    /** The owner grants the cloud's key the admin role at this site. */
    const delegate = () => ownerOp("role.set", cloudKid, { role: "admin", key: cloudPk });
    await db.query("INSERT INTO locks (site_id, lock_id, state, updated_at) VALUES ($1, $2, $3::jsonb, $4)", [
      siteId,
      "front-door",
      JSON.stringify({ lockState: "locked", battery: 80 }),
      now,
    ]);
    return { siteId, owner, sealPriv, ownerOp, delegate };
  }

  /** Every row of every table of the current schema, as text (bytea as \x hex). */
  async function dumpAll(): Promise<string[]> {
    const tables = await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
        WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`,
    );
    const out: string[] = [];
    for (const { table_name } of tables.rows) {
      const r = await db.query<{ t: string }>(
        `SELECT row_to_json(x)::text AS t FROM "${table_name}" x ORDER BY row_to_json(x)::text`,
      );
      for (const row of r.rows) out.push(`${table_name}: ${row.t}`);
    }
    return out;
  }

  return {
    app,
    db,
    cloudKid,
    published,
    call,
    ok,
    err,
    tenant,
    site,
    dumpAll,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}
type Harness = Awaited<ReturnType<typeof harness>>;

/** The users/credentials lifecycle through the API; shared by the PGlite and the PostgreSQL runs. */
async function lifecycle(h: Harness, prefix: string) {
  const a = await h.tenant(`${prefix} A`);
  const s = await h.site(a.admin, `${prefix}_site_a`);
  const base = `/api/v1/sites/${s.siteId}`;

  // Not delegated yet: every change is refused, and nothing is stored or published.
  expect(await h.err("POST", `${base}/users`, a.admin, { name: "Robin" })).toBe("LK_CLOUD_NOT_DELEGATED");
  expect(h.published.filter((p) => p.siteId === s.siteId)).toHaveLength(0);
  await s.delegate();
  expect((await h.ok("GET", base, a.viewer)).cloudDelegated).toBe(true);

  const user = await h.ok("POST", `${base}/users`, a.admin, {
    name: "Robin",
    userType: "weekDaySchedule",
    weekDaySchedules: [{ daysMask: 62, startHour: 9, startMinute: 0, endHour: 17, endMinute: 0 }],
  });
  const userId = user.userId as string;
  expect(user.published).toBe(true);
  expect(user.ops).toHaveLength(2);
  const pub = h.published.at(-1)!;
  expect(pub.siteId).toBe(s.siteId);
  const sent = pub.ops.map((b) => decodeHeldOp(crypto, b));
  expect(sent.map((o) => o.kind)).toEqual(["user.upsert", "schedule.set"]);
  expect(sent.every((o) => o.actor === h.cloudKid)).toBe(true);
  const stored = await h.db.query<{ origin: string; actor: string }>(
    "SELECT origin, actor FROM ops WHERE site_id = $1 AND kind = 'user.upsert'",
    [s.siteId],
  );
  expect(stored.rows).toEqual([{ origin: "cloud", actor: h.cloudKid }]);

  const users = await h.ok("GET", `${base}/users`, a.viewer);
  expect(users).toHaveLength(1);
  expect(users[0]).toMatchObject({ id: userId, name: "Robin", userType: "weekDaySchedule" });
  expect((users[0]!.weekDaySchedules as unknown[]).length).toBe(1);

  await h.ok("PATCH", `${base}/users/${userId}`, a.admin, {
    name: "Robin B",
    userStatus: "occupiedDisabled",
  });
  await h.ok("PUT", `${base}/users/${userId}/schedules`, a.admin, {
    weekDaySchedules: [],
    yearDaySchedules: [],
  });
  expect((await h.ok("GET", `${base}/users`, a.viewer))[0]).toMatchObject({
    name: "Robin B",
    userStatus: "occupiedDisabled",
    weekDaySchedules: [],
  });

  // Credentials: a PIN is sealed to the site's key; only the site can open it.
  const pin = "4806139275";
  const cred = await h.ok("POST", `${base}/credentials`, a.admin, {
    type: "pin",
    userId,
    pin,
    locks: ["front-door"],
  });
  const credentialId = cred.credentialId as string;
  const pinOp = decodeHeldOp(crypto, h.published.at(-1)!.ops[0]!);
  expect(pinOp.kind).toBe("credential.upsert");
  const sealed = (pinOp.payload as { sealed: Uint8Array }).sealed;
  expect(openSealed(crypto, s.sealPriv, sealed, sealContext(s.siteId, credentialId))).toEqual({
    kind: SealedKind.Pin,
    pin,
  });
  const card = await h.ok("POST", `${base}/credentials`, a.admin, {
    type: "rfid",
    userId,
    cardId: "uid:04a1b2c3",
  });
  await h.ok("POST", `${base}/credentials`, a.admin, {
    type: "fingerprint",
    userId,
    slot: 3,
    label: "left thumb",
  });
  const creds = await h.ok("GET", `${base}/credentials`, a.viewer);
  expect(creds.map((c) => c.type).sort()).toEqual(["fingerprint", "pin", "rfid"]);
  expect(JSON.stringify(creds)).not.toContain("sealed");
  const opsList = await h.ok("GET", `${base}/ops`, a.viewer);
  expect(JSON.stringify(opsList)).not.toContain(toHex(sealed));

  // The database holds no PIN and no PIN digest, in any table.
  const dump = (await h.dumpAll()).join("\n");
  const needles = [
    pin,
    toHex(utf8(pin)),
    toHex(crypto.sha256(utf8(pin))),
    Buffer.from(crypto.sha256(utf8(pin))).toString("base64"),
    Buffer.from(crypto.sha256(utf8(pin))).toString("base64url"),
  ];
  for (const n of needles)
    expect(dump.includes(n), `database holds ${n.length}-char form of the PIN`).toBe(false);
  expect(dump).toContain(toHex(sealed)); // the scan does see bytea columns

  await h.ok("DELETE", `${base}/credentials/${card.credentialId}`, a.admin);
  expect(await h.err("DELETE", `${base}/credentials/${card.credentialId}`, a.admin)).toBe("LK_NOT_FOUND");
  await h.ok("PUT", `${base}/locks/front-door/mode`, a.admin, { mode: "vacation" });
  expect(await h.err("PUT", `${base}/locks/back-door/mode`, a.admin, { mode: "vacation" })).toBe(
    "LK_NOT_FOUND",
  );

  // Drift: the cloud's operations the hub has not acknowledged, the lock-scoped mode.set under its lock.
  let drift = await h.ok("GET", `${base}/drift`, a.viewer);
  const cloudOps = (
    await h.db.query<{ op_id: string }>(
      "SELECT op_id FROM ops WHERE site_id = $1 AND origin = 'cloud' ORDER BY hlc",
      [s.siteId],
    )
  ).rows;
  expect(drift.total).toBe(cloudOps.length);
  expect((drift.locks as Record<string, { kind: string }[]>)["front-door"]!.map((o) => o.kind)).toEqual([
    "mode.set",
  ]);
  for (const { op_id } of cloudOps.slice(0, 3)) {
    await h.db.query("INSERT INTO op_acks (site_id, op_id, acked_at) VALUES ($1, $2, $3)", [
      s.siteId,
      op_id,
      h.now(),
    ]);
  }
  drift = await h.ok("GET", `${base}/drift`, a.viewer);
  expect(drift.total).toBe(cloudOps.length - 3);
  expect((await h.ok("GET", base, a.viewer)).drift).toBe(cloudOps.length - 3);

  // Removing the user removes their credentials; the removed id stays removed.
  await h.ok("DELETE", `${base}/users/${userId}`, a.admin);
  expect(await h.ok("GET", `${base}/users`, a.viewer)).toHaveLength(0);
  expect(await h.ok("GET", `${base}/credentials`, a.viewer)).toHaveLength(0);
  expect(await h.err("PATCH", `${base}/users/${userId}`, a.admin, { name: "Back" })).toBe("LK_NOT_FOUND");
  expect(await h.err("POST", `${base}/credentials`, a.admin, { type: "fingerprint", userId, slot: 4 })).toBe(
    "LK_NOT_FOUND",
  );

  // Stamps keep increasing per site: after an operation stamped an hour ahead, the cloud stamps after it.
  const ahead = await s.ownerOp("mode.set", "front-door", { mode: "normal" }, h.now() + 3_600_000);
  const after = await h.ok("POST", `${base}/users`, a.admin, { name: "Later" });
  expect((after.ops as { hlc: string }[])[0]!.hlc > hlcToText(ahead.hlc)).toBe(true);

  // An operation whose signer has no standing stays in the set, shown as skipped.
  const stranger = edKey();
  const rogueBody = {
    hlc: hlc(h.now(), 0, "00000000000000b2"),
    actor: stranger.kid,
    scope: { kind: "site", id: s.siteId },
    kind: "user.upsert",
    target: "usr_rogue",
    payload: { name: "Rogue" },
  } as OperationBody;
  const rogue = makeOperation(crypto, rogueBody);
  await h.db.query(
    `INSERT INTO ops (site_id, op_id, hlc, kind, target, actor, cose, origin, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'hub', $8)`,
    [
      s.siteId,
      rogue.id,
      hlcToText(rogue.hlc),
      rogue.kind,
      rogue.target,
      rogue.actor,
      signOperation(crypto, stranger.signer, rogueBody),
      h.now(),
    ],
  );
  const listed = (await h.ok("GET", `${base}/ops?limit=1000`, a.viewer)).ops as {
    id: string;
    skipped: string | null;
  }[];
  expect(listed.find((o) => o.id === rogue.id)?.skipped).toBe("unauthorized");
  expect((await h.ok("GET", `${base}/users`, a.viewer)).map((u) => u.name)).toEqual(["Later"]);

  // The op list pages through everything in merge order.
  const all: string[] = [];
  let cursor: string | null = null;
  do {
    const page: Record<string, unknown> = await h.ok(
      "GET",
      `${base}/ops?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
      a.viewer,
    );
    for (const o of page.ops as { id: string }[]) all.push(o.id);
    cursor = page.nextCursor as string | null;
  } while (cursor);
  const expected = (
    await h.db.query<{ op_id: string }>("SELECT op_id FROM ops WHERE site_id = $1 ORDER BY hlc, op_id", [
      s.siteId,
    ])
  ).rows.map((r) => r.op_id);
  expect(all).toEqual(expected);
  return { a, s };
}

describe("cloud API (PGlite)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness(await openPglite(null));
  });
  afterAll(async () => h.db.close());

  it("publishes its identity and its OpenAPI document without a token", async () => {
    const id = await h.ok("GET", "/api/v1/cloud/identity", "");
    expect(id).toMatchObject({ alg: "EdDSA", algId: -8, keyId: h.cloudKid });
    expect(id.publicKey).toMatch(/^[0-9a-f]{64}$/);
    const res = await h.app.request("/api/v1/openapi.json");
    const doc = (await res.json()) as { paths: Record<string, unknown> };
    for (const p of [
      "/api/v1/sites/{siteId}/users/{userId}",
      "/api/v1/sites/{siteId}/credentials",
      "/api/v1/audit",
      "/api/v1/webhooks/{webhookId}",
      "/api/v1/tokens/{tokenId}/revoke",
    ]) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });

  it("refuses requests without a valid token", async () => {
    expect(await h.err("GET", "/api/v1/sites", null)).toBe("LK_UNAUTHENTICATED");
    expect(await h.err("GET", "/api/v1/sites", "lkc_nope")).toBe("LK_UNAUTHENTICATED");
    const r = await h.app.request("/api/v1/sites", { headers: { authorization: "Basic abc" } });
    expect(r.status).toBe(401);
  });

  it("runs the users and credentials lifecycle with signed operations", async () => {
    await lifecycle(h, "lite");
  });

  it("lets viewers read and nothing else; admins change; only owners manage tokens", async () => {
    const t = await h.tenant("Roles");
    const s = await h.site(t.admin, "roles_site");
    await s.delegate();
    const base = `/api/v1/sites/${s.siteId}`;
    const writes: [string, string, unknown][] = [
      [
        "POST",
        "/api/v1/sites",
        { siteId: "x1", name: "X", devicePublicKey: "00", sealPublicKey: "00", genesis: [] },
      ],
      ["POST", `${base}/users`, { name: "V" }],
      ["PATCH", `${base}/users/usr_x`, { name: "V" }],
      ["DELETE", `${base}/users/usr_x`, undefined],
      ["PUT", `${base}/users/usr_x/schedules`, { weekDaySchedules: [], yearDaySchedules: [] }],
      ["POST", `${base}/credentials`, { type: "fingerprint", userId: "usr_x", slot: 1 }],
      ["DELETE", `${base}/credentials/cred_x`, undefined],
      ["PUT", `${base}/locks/front-door/mode`, { mode: "normal" }],
      ["POST", "/api/v1/webhooks", { url: "https://example.com/hook", kinds: ["*"] }],
      ["DELETE", "/api/v1/webhooks/whk_x", undefined],
      ["GET", "/api/v1/tokens", undefined],
      ["POST", "/api/v1/tokens", { role: "viewer", label: "x" }],
      ["POST", "/api/v1/tokens/tok_x/revoke", undefined],
    ];
    const before = await h.dumpAll();
    for (const [m, p, b] of writes) expect(await h.err(m, p, t.viewer, b), `${m} ${p}`).toBe("LK_FORBIDDEN");
    for (const [m, p, b] of writes.slice(-3))
      expect(await h.err(m, p, t.admin, b), `${m} ${p}`).toBe("LK_FORBIDDEN");
    expect(await h.dumpAll()).toEqual(before);
    for (const p of [
      "/api/v1/sites",
      base,
      `${base}/locks`,
      `${base}/users`,
      `${base}/credentials`,
      `${base}/ops`,
      `${base}/drift`,
      `${base}/chain`,
      "/api/v1/audit",
      "/api/v1/notifications",
      "/api/v1/webhooks",
    ]) {
      await h.ok("GET", p, t.viewer);
    }
    const u = await h.ok("POST", `${base}/users`, t.admin, { name: "Admin made" });
    expect(u.userId).toMatch(/^usr_/);
  });

  it("isolates tenants: another tenant's resources are 404 LK_NOT_FOUND on every route, never 403", async () => {
    const a = await h.tenant("Iso A");
    const b = await h.tenant("Iso B");
    const s = await h.site(a.admin, "iso_site_a");
    await s.delegate();
    const base = `/api/v1/sites/${s.siteId}`;
    const user = await h.ok("POST", `${base}/users`, a.admin, { name: "Kim" });
    const cred = await h.ok("POST", `${base}/credentials`, a.admin, {
      type: "fingerprint",
      userId: user.userId,
      slot: 1,
    });
    const hook = await h.ok("POST", "/api/v1/webhooks", a.admin, {
      url: "https://example.com/a",
      kinds: ["*"],
    });
    const tokA = await h.ok("POST", "/api/v1/tokens", a.owner, { role: "viewer", label: "a viewer" });
    await h.db.query(
      `INSERT INTO audit_events (site_id, seq, at, lock_id, kind, data, prev_hash, hash)
       VALUES ($1, 1, $2, 'front-door', 'access.granted', '{}'::jsonb, $3, $3)`,
      [s.siteId, h.now(), "0".repeat(64)],
    );
    await h.db.query(
      `INSERT INTO notifications (tenant_id, site_id, lock_id, kind, seq, data, created_at)
       VALUES ($1, $2, 'front-door', 'alarm.tamper', 1, '{}'::jsonb, $3)`,
      [a.id, s.siteId, h.now()],
    );
    const uid = user.userId as string;
    const routes: [string, string, unknown][] = [
      ["GET", base, undefined],
      ["GET", `${base}/locks`, undefined],
      ["GET", `${base}/users`, undefined],
      ["GET", `${base}/credentials`, undefined],
      ["GET", `${base}/ops`, undefined],
      ["GET", `${base}/drift`, undefined],
      ["GET", `${base}/chain`, undefined],
      ["POST", `${base}/users`, { name: "Intruder" }],
      ["PATCH", `${base}/users/${uid}`, { name: "Intruder" }],
      ["DELETE", `${base}/users/${uid}`, undefined],
      ["PUT", `${base}/users/${uid}/schedules`, { weekDaySchedules: [], yearDaySchedules: [] }],
      ["POST", `${base}/credentials`, { type: "pin", userId: uid, pin: "4806139275" }],
      ["DELETE", `${base}/credentials/${cred.credentialId}`, undefined],
      ["PUT", `${base}/locks/front-door/mode`, { mode: "privacy" }],
      ["GET", `/api/v1/audit?site=${s.siteId}`, undefined],
      ["GET", `/api/v1/notifications?site=${s.siteId}`, undefined],
      ["DELETE", `/api/v1/webhooks/${hook.id}`, undefined],
      ["POST", `/api/v1/tokens/${tokA.id}/revoke`, undefined],
    ];
    const before = await h.dumpAll();
    for (const token of [b.owner, b.admin]) {
      for (const [m, p, body] of routes) {
        if (token === b.admin && p.includes("/tokens")) continue;
        expect(await h.err(m, p, token, body), `${m} ${p}`).toBe("LK_NOT_FOUND");
      }
    }
    for (const [m, p, body] of routes.filter(([m]) => m === "GET")) {
      expect(await h.err(m, p, b.viewer, body), `${m} ${p}`).toBe("LK_NOT_FOUND");
    }
    // Re-registering A's site id from B is refused without revealing anything of it.
    const sealPriv = crypto.randomBytes(32);
    expect(
      await h.err("POST", "/api/v1/sites", b.admin, {
        siteId: s.siteId,
        name: "Mine",
        devicePublicKey: toHex(edKey().pk.key),
        sealPublicKey: toHex(crypto.x25519PublicKey(sealPriv)),
        genesis: [{ alg: -8, publicKey: toHex(edKey().pk.key) }],
      }),
    ).toBe("LK_CONFLICT");
    expect(await h.dumpAll()).toEqual(before);
    // B's lists show nothing of A.
    expect(await h.ok("GET", "/api/v1/sites", b.viewer)).toEqual([]);
    expect((await h.ok("GET", "/api/v1/audit", b.viewer)).events).toEqual([]);
    expect((await h.ok("GET", "/api/v1/notifications", b.viewer)).notifications).toEqual([]);
    expect(await h.ok("GET", "/api/v1/webhooks", b.viewer)).toEqual([]);
    const bTokens = (await h.ok("GET", "/api/v1/tokens", b.owner)).map((t) => t.id);
    expect(bTokens).not.toContain(tokA.id);
    // ...and A still sees its own.
    expect((await h.ok("GET", "/api/v1/audit", a.viewer)).events).toHaveLength(1);
    expect((await h.ok("GET", "/api/v1/notifications", a.viewer)).notifications).toHaveLength(1);
  });

  it("searches the audit log across the tenant's sites with keyset pagination", async () => {
    const a = await h.tenant("Audit A");
    const b = await h.tenant("Audit B");
    const s1 = await h.site(a.admin, "audit_s1");
    const s2 = await h.site(a.admin, "audit_s2");
    const sb = await h.site(b.admin, "audit_sb");
    const kinds = ["access.granted", "access.denied", "alarm.tamper"];
    for (const [site, n] of [
      [s1.siteId, 7],
      [s2.siteId, 6],
      [sb.siteId, 5],
    ] as const) {
      for (let seq = 1; seq <= n; seq++) {
        await h.db.query(
          `INSERT INTO audit_events (site_id, seq, at, lock_id, kind, data, prev_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $7)`,
          [
            site,
            seq,
            T0 + (seq % 4) * 1000, // ties on `at` across sites and seqs
            seq % 2 ? "front-door" : "back-door",
            kinds[seq % 3]!,
            JSON.stringify({ seq }),
            "ab".repeat(32),
          ],
        );
      }
    }
    const walk = async (q: string) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: Record<string, unknown> = await h.ok(
          "GET",
          `/api/v1/audit?limit=3${q}${cursor ? `&cursor=${cursor}` : ""}`,
          a.viewer,
        );
        for (const e of page.events as { siteId: string; seq: number; at: number }[]) {
          seen.push(`${e.siteId}#${e.seq}`);
        }
        cursor = page.nextCursor as string | null;
      } while (cursor);
      return seen;
    };
    const all = await walk("");
    expect(all).toHaveLength(13);
    expect(new Set(all).size).toBe(13);
    expect(all.some((x) => x.startsWith("audit_sb"))).toBe(false);
    const full = (await h.ok("GET", "/api/v1/audit?limit=500", a.viewer)).events as { at: number }[];
    expect(full.map((e) => e.at)).toEqual([...full.map((e) => e.at)].sort((x, y) => y - x));
    expect(await walk(`&site=${s2.siteId}`)).toHaveLength(6);
    expect(await walk("&lock=back-door&kind=access.denied")).toEqual(
      (await walk("")).filter((x) => {
        const seq = Number(x.split("#")[1]);
        return seq % 2 === 0 && seq % 3 === 1;
      }),
    );
    const ranged = (await h.ok("GET", `/api/v1/audit?from=${T0 + 1000}&to=${T0 + 3000}`, a.viewer))
      .events as { at: number }[];
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.every((e) => e.at >= T0 + 1000 && e.at < T0 + 3000)).toBe(true);
    expect(await h.err("GET", "/api/v1/audit?cursor=bm9wZQ", a.viewer)).toBe("LK_INVALID_INPUT");
    expect(await h.err("GET", "/api/v1/audit?limit=0x10", a.viewer)).toBe("LK_INVALID_INPUT");
    expect(await h.err("GET", `/api/v1/audit?site=${sb.siteId}`, a.viewer)).toBe("LK_NOT_FOUND");
  });

  it("shows a site's chain: head, checkpoint and problems", async () => {
    const t = await h.tenant("Chain");
    const s = await h.site(t.admin, "chain_site");
    const base = `/api/v1/sites/${s.siteId}`;
    expect(await h.ok("GET", `${base}/chain`, t.viewer)).toMatchObject({ head: null, problems: [] });
    await h.db.query(
      "INSERT INTO audit_heads (site_id, seq, hash, checkpoint_seq, updated_at) VALUES ($1, 42, $2, 40, $3)",
      [s.siteId, "cd".repeat(32), h.now()],
    );
    await h.db.query(
      "INSERT INTO audit_checkpoints (site_id, seq, hash, at, signature) VALUES ($1, 40, $2, $3, $4)",
      [s.siteId, "ef".repeat(32), h.now(), "00".repeat(64)],
    );
    await h.db.query(
      "INSERT INTO chain_problems (site_id, seq, what, detected_at) VALUES ($1, 43, 'gap', $2)",
      [s.siteId, h.now()],
    );
    const chain = await h.ok("GET", `${base}/chain`, t.viewer);
    expect(chain).toMatchObject({
      head: { seq: 42 },
      checkpointSeq: 40,
      lastCheckpoint: { seq: 40 },
      problems: [{ seq: 43, what: "gap" }],
    });
    const summary = await h.ok("GET", base, t.viewer);
    expect(summary).toMatchObject({
      auditHead: { seq: 42, checkpointSeq: 40 },
      chainProblems: 1,
      online: false,
    });
    const locks = await h.ok("GET", `${base}/locks`, t.viewer);
    expect(locks).toEqual([
      { id: "front-door", state: { lockState: "locked", battery: 80 }, updatedAt: h.now() },
    ]);
  });

  it("manages webhooks and tokens, showing secrets once", async () => {
    const t = await h.tenant("Hooks");
    const hook = await h.ok("POST", "/api/v1/webhooks", t.admin, {
      url: "https://example.com/hook",
      kinds: ["alarm.tamper", "hub.offline"],
    });
    expect(hook.secret).toMatch(/^whsec_/);
    const list = await h.ok("GET", "/api/v1/webhooks", t.viewer);
    expect(list).toEqual([
      {
        id: hook.id,
        url: "https://example.com/hook",
        kinds: ["alarm.tamper", "hub.offline"],
        createdAt: h.now(),
        disabledAt: null,
      },
    ]);
    for (const bad of [
      { url: "ftp://example.com", kinds: ["*"] },
      { url: "not a url", kinds: ["*"] },
      { url: "https://example.com", kinds: [] },
      { url: "https://example.com", kinds: ["*", "*"] },
      { url: "https://example.com", kinds: ["Bad Kind"] },
      { url: "https://example.com", kinds: ["*"], extra: 1 },
    ]) {
      expect(await h.err("POST", "/api/v1/webhooks", t.admin, bad)).toBe("LK_INVALID_INPUT");
    }
    await h.ok("DELETE", `/api/v1/webhooks/${hook.id}`, t.admin);
    expect(await h.err("DELETE", `/api/v1/webhooks/${hook.id}`, t.admin)).toBe("LK_NOT_FOUND");

    const issued = await h.ok("POST", "/api/v1/tokens", t.owner, { role: "admin", label: "ci" });
    expect(issued.token).toMatch(/^lkc_/);
    const listed = await h.ok("GET", "/api/v1/tokens", t.owner);
    expect(JSON.stringify(listed)).not.toContain(issued.token as string);
    await h.ok("GET", "/api/v1/sites", issued.token as string);
    await h.ok("POST", `/api/v1/tokens/${issued.id}/revoke`, t.owner);
    expect(await h.err("GET", "/api/v1/sites", issued.token as string)).toBe("LK_UNAUTHENTICATED");
  });

  it("validates site registration", async () => {
    const t = await h.tenant("Sites");
    const good = {
      siteId: "reg_site",
      name: "Reg",
      devicePublicKey: toHex(edKey().pk.key),
      sealPublicKey: toHex(crypto.x25519PublicKey(crypto.randomBytes(32))),
      genesis: [{ alg: -8, publicKey: toHex(edKey().pk.key) }],
    };
    for (const bad of [
      { ...good, siteId: "has space" },
      { ...good, devicePublicKey: "00".repeat(32) }, // small-order Ed25519 point
      { ...good, sealPublicKey: "00".repeat(32) }, // small-order X25519 point
      { ...good, genesis: [] },
      { ...good, genesis: [{ alg: -8, publicKey: "00".repeat(31) }] },
      { ...good, genesis: [{ alg: -7, publicKey: `04${"00".repeat(64)}` }] }, // not on the curve
      { ...good, name: "" },
    ]) {
      const code = await h.err("POST", "/api/v1/sites", t.admin, bad);
      expect(ErrorCodes[code].http, code).toBe(400);
    }
    const site = await h.ok("POST", "/api/v1/sites", t.admin, good);
    expect(site).toMatchObject({ id: "reg_site", drift: 0, chainProblems: 0, auditHead: null });
    expect(await h.err("POST", "/api/v1/sites", t.admin, good)).toBe("LK_CONFLICT");
    expect(await h.err("POST", "/api/v1/sites", t.admin, null)).toBe("LK_INVALID_INPUT");
    const big = await h.call("POST", "/api/v1/sites", t.admin, undefined, `{"x":"${"a".repeat(70_000)}"}`);
    expect(big.status).toBe(413);
    const notJson = await h.call("POST", "/api/v1/sites", t.admin, undefined, "{nope");
    expect(notJson.status).toBe(400);
  });

  it("refuses weak or malformed PINs before anything is sealed or stored", async () => {
    const t = await h.tenant("Pins");
    const s = await h.site(t.admin, "pin_site");
    await s.delegate();
    const base = `/api/v1/sites/${s.siteId}`;
    const u = await h.ok("POST", `${base}/users`, t.admin, { name: "P" });
    const before = await h.dumpAll();
    for (const [pin, code] of [
      ["123456", "LK_PIN_WEAK"],
      ["12a4", "LK_PIN_FORMAT"],
      ["1111", "LK_PIN_WEAK"],
      ["1234567890123", "LK_PIN_FORMAT"],
    ] as const) {
      expect(
        await h.err("POST", `${base}/credentials`, t.admin, { type: "pin", userId: u.userId, pin }),
      ).toBe(code);
    }
    expect(await h.dumpAll()).toEqual(before);
  });

  it("fuzz: random paths and bodies get coded 4xx answers and change nothing", async () => {
    const t = await h.tenant("Fuzz");
    const s = await h.site(t.admin, "fuzz_site");
    await s.delegate();
    const u = await h.ok("POST", `/api/v1/sites/${s.siteId}/users`, t.admin, { name: "F" });
    const rnd = mulberry32(0x5eed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const junkString = () =>
      pick([
        "",
        "a",
        "../..",
        "%00",
        "usr_x",
        "💥",
        "x".repeat(70),
        "' OR 1=1 --",
        "front-door",
        "<script>",
        String(Math.floor(rnd() * 1e6)),
        "\u0000",
        "%2e%2e",
        "lkc_x",
      ]);
    const junkValue = (depth = 0): unknown => {
      const r = rnd();
      if (depth > 3 || r < 0.3) return pick([null, true, false, 0, -1, 1.5, 1e300, junkString(), "*"]);
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => junkValue(depth + 1));
      const keys = [
        "name",
        "role",
        "type",
        "pin",
        "userId",
        "url",
        "kinds",
        "mode",
        "siteId",
        "genesis",
        "label",
        "slot",
        "cardId",
        "__proto__",
        "locks",
        "weekDaySchedules",
      ];
      return Object.fromEntries(
        Array.from({ length: Math.floor(rnd() * 5) }, () => [pick(keys), junkValue(depth + 1)]),
      );
    };
    const seg = () => encodeURIComponent(pick([junkString(), s.siteId, u.userId as string, "front-door"]));
    const templates = [
      () => `/api/v1/sites/${seg()}`,
      () => `/api/v1/sites/${seg()}/users`,
      () => `/api/v1/sites/${seg()}/users/${seg()}`,
      () => `/api/v1/sites/${seg()}/users/${seg()}/schedules`,
      () => `/api/v1/sites/${seg()}/credentials`,
      () => `/api/v1/sites/${seg()}/credentials/${seg()}`,
      () => `/api/v1/sites/${seg()}/locks/${seg()}/mode`,
      () => `/api/v1/sites/${seg()}/ops?limit=${seg()}&cursor=${seg()}`,
      () =>
        `/api/v1/audit?${pick(["site", "lock", "kind", "from", "to", "limit", "cursor", "bogus"])}=${seg()}`,
      () => `/api/v1/notifications?cursor=${seg()}`,
      () => "/api/v1/sites",
      () => "/api/v1/webhooks",
      () => `/api/v1/webhooks/${seg()}`,
      () => "/api/v1/tokens",
      () => `/api/v1/tokens/${seg()}/revoke`,
      () => `/api/v1/${seg()}`,
      () => `/${seg()}/${seg()}`,
    ];
    const tokens = [t.owner, t.admin, t.viewer, null, "lkc_junk"];
    const before = await h.dumpAll();
    const publishedBefore = h.published.length;
    let n = 0;
    for (let i = 0; i < 2500; i++) {
      const method = pick(["POST", "PUT", "PATCH", "DELETE"]);
      const path = pick(templates)();
      const raw = rnd() < 0.1 ? pick(["", "{", "[]", "null", '"x"', '{"a":}']) : JSON.stringify(junkValue());
      const r = await h.call(method, path, pick(tokens), undefined, raw);
      expect(r.json.ok, `${method} ${path} ${raw}`).toBe(false);
      if (!r.json.ok) {
        expect(r.json.error.code).toMatch(/^LK_[A-Z_]+$/);
        expect(r.status, `${method} ${path} ${raw}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${method} ${path} ${raw}: ${r.json.error.message}`).toBeLessThan(500);
        expect(r.status).toBe(ErrorCodes[r.json.error.code].http);
      }
      n++;
    }
    expect(n).toBe(2500);
    expect(h.published.length).toBe(publishedBefore);
    expect(await h.dumpAll()).toEqual(before);
  });
});

// ---------------------------------------------------------------------------- real PostgreSQL

const PG_URL = process.env.LATCHKEY_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test";

describe("cloud API (PostgreSQL)", () => {
  const schema = `lk_cloud_api_${process.pid}_${Date.now().toString(36)}`;
  let db: SqlClient | null = null;
  beforeAll(async () => {
    try {
      db = await openPg(PG_URL, { schema });
    } catch (e) {
      // In CI a missing PostgreSQL is a failure, never a skip.
      if (process.env.CI) throw e;
      db = null;
    }
  });
  afterAll(async () => {
    if (!db) return;
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.close();
  });

  it("runs the lifecycle, the no-PIN scan and tenant isolation against PostgreSQL", async (ctx) => {
    if (!db) {
      // Only outside CI (beforeAll rethrows there): this machine has no PostgreSQL.
      ctx.skip();
      return;
    }
    const h = await harness(db);
    const { s } = await lifecycle(h, "pg");
    const other = await h.tenant("pg B");
    expect(await h.err("GET", `/api/v1/sites/${s.siteId}`, other.owner)).toBe("LK_NOT_FOUND");
    expect(await h.err("GET", `/api/v1/sites/${s.siteId}/users`, other.owner)).toBe("LK_NOT_FOUND");
    expect(await h.err("POST", `/api/v1/sites/${s.siteId}/users`, other.admin, { name: "X" })).toBe(
      "LK_NOT_FOUND",
    );
    expect(await h.ok("GET", "/api/v1/sites", other.viewer)).toEqual([]);
  });
});
