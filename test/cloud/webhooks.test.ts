/**
 * Webhook delivery (src/cloud/webhooks.ts) to a real HTTP receiver on 127.0.0.1 that fails on demand,
 * with a fake clock driving the backoff. Signatures are checked as a receiver would.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { migrateCloud } from "../../src/cloud/db/migrate.ts";
import { openPg } from "../../src/cloud/db/pg.ts";
import { openPglite } from "../../src/cloud/db/pglite.ts";
import type { SqlClient } from "../../src/cloud/db/sql.ts";
import { createTenant } from "../../src/cloud/tenants.ts";
import {
  DEFAULT_BACKOFF,
  deliveryId,
  LEASE_MS,
  MAX_ATTEMPTS,
  startWebhookDispatcher,
  type WebhookDispatcher,
} from "../../src/cloud/webhooks.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";

const T0 = 1_767_225_600_000;

interface Received {
  readonly delivery: string;
  readonly signature: string;
  readonly body: string;
  readonly status: number;
}

/** An HTTP receiver: answers `plan(n)` (status, or "hang") to its n-th request (from 0). */
async function receiver(plan: (n: number) => number | "hang") {
  const got: Received[] = [];
  let n = 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const answer = plan(n++);
      if (answer === "hang") return;
      got.push({
        delivery: String(req.headers["latchkey-delivery"]),
        signature: String(req.headers["latchkey-signature"]),
        body: Buffer.concat(chunks).toString("utf8"),
        status: answer,
      });
      res.writeHead(answer, { "content-type": "text/plain" }).end("body the dispatcher must not log");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?k=v`;
  return {
    url,
    got,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Check a signature as a receiver would: t=<s>,v1=<hex HMAC-SHA-256(secret, "<t>.<body>")>. */
function verify(secret: string, header: string, body: string, nowS: number): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  if (Math.abs(nowS - Number(m[1])) > 300) return false;
  const want = createHmac("sha256", secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(want, Buffer.from(m[2]!, "hex"));
}

async function setup(db: SqlClient, now: number) {
  const { tenant } = await createTenant(db, crypto, `Hooks ${Math.random()}`, now);
  const addHook = async (url: string, kinds: string[], at = now) => {
    const id = `whk_${Math.random().toString(36).slice(2, 10)}`;
    const secret = `whsec_${Buffer.from(crypto.randomBytes(32)).toString("base64url")}`;
    await db.query(
      "INSERT INTO webhooks (id, tenant_id, url, secret, kinds, created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
      [id, tenant.id, url, secret, JSON.stringify(kinds), at],
    );
    return { id, secret };
  };
  const siteId = `hub_${tenant.id.slice(4)}`;
  let seq = 0;
  const notify = async (kind: string, at: number) => {
    const r = await db.query<{ id: number }>(
      `INSERT INTO notifications (tenant_id, site_id, lock_id, kind, seq, data, created_at)
       VALUES ($1, $6, 'front-door', $2, $3, $4::jsonb, $5) RETURNING id`,
      [tenant.id, kind, ++seq, JSON.stringify({ reason: kind }), at, siteId],
    );
    return Number(r.rows[0]!.id);
  };
  return { tenant, siteId, addHook, notify };
}

describe("webhook dispatcher (PGlite)", () => {
  let db: SqlClient;
  let now = T0;
  const logs: string[] = [];
  const dispatchers: WebhookDispatcher[] = [];
  const closers: (() => Promise<void>)[] = [];
  const start = (extra: Partial<Parameters<typeof startWebhookDispatcher>[0]> = {}) => {
    const d = startWebhookDispatcher({
      db,
      clock: () => now,
      intervalMs: 0,
      log: (m) => logs.push(m),
      ...extra,
    });
    dispatchers.push(d);
    return d;
  };
  beforeAll(async () => {
    db = await openPglite(null);
    await migrateCloud(db, T0);
  });
  afterEach(async () => {
    for (const d of dispatchers.splice(0)) await d.close();
    for (const c of closers.splice(0)) await c();
  });
  afterAll(async () => db.close());

  it("delivers matching notifications, signed, retrying with backoff until the receiver answers 2xx", async () => {
    now = T0 + 1_000_000;
    const rx = await receiver((n) => (n < 3 ? 503 : 204));
    closers.push(rx.close);
    const { addHook, notify, siteId } = await setup(db, now);
    const hook = await addHook(rx.url, ["alarm.tamper"]);
    const other = await addHook(rx.url, ["hub.offline"]);
    const nid = await notify("alarm.tamper", now);
    await notify("alarm.battery_low", now);
    const d = start();

    expect(await d.runOnce()).toBe(1); // attempt 1: 503
    now += 500;
    expect(await d.runOnce()).toBe(0); // not due before 1 s
    now += 500;
    expect(await d.runOnce()).toBe(1); // attempt 2 at +1 s: 503
    now += 1_999;
    expect(await d.runOnce()).toBe(0);
    now += 1;
    expect(await d.runOnce()).toBe(1); // attempt 3 at +2 s: 503
    now += 4_000;
    expect(await d.runOnce()).toBe(1); // attempt 4 at +4 s: 204
    now += 60_000;
    expect(await d.runOnce()).toBe(0);

    expect(rx.got.map((g) => g.status)).toEqual([503, 503, 503, 204]);
    const id = deliveryId(hook.id, nid);
    for (const g of rx.got) {
      expect(g.delivery).toBe(id);
      expect(verify(hook.secret, g.signature, g.body, Math.floor(now / 1000))).toBe(true);
      expect(verify(other.secret, g.signature, g.body, Math.floor(now / 1000))).toBe(false);
      expect(JSON.parse(g.body)).toMatchObject({
        deliveryId: id,
        notificationId: nid,
        kind: "alarm.tamper",
        siteId,
        lockId: "front-door",
        data: { reason: "alarm.tamper" },
      });
    }
    // A tampered body does not verify.
    const g = rx.got[3]!;
    expect(verify(hook.secret, g.signature, g.body.replace("tamper", "tampeR"), Math.floor(now / 1000))).toBe(
      false,
    );
    const row = await db.query<{ status: string; attempts: number; response_status: number }>(
      "SELECT status, attempts, response_status FROM webhook_deliveries WHERE webhook_id = $1",
      [hook.id],
    );
    expect(row.rows).toEqual([{ status: "delivered", attempts: 4, response_status: 204 }]);
    expect(
      (await db.query("SELECT 1 FROM webhook_deliveries WHERE webhook_id = $1", [other.id])).rowCount,
    ).toBe(0);
    const text = logs.join("\n");
    expect(text).not.toContain(hook.secret);
    expect(text).not.toContain("must not log");
    expect(text).not.toContain("k=v");
  });

  it(`gives up after ${MAX_ATTEMPTS} attempts, with the backoff capped`, async () => {
    now = T0 + 2_000_000;
    const rx = await receiver(() => 500);
    closers.push(rx.close);
    const { addHook, notify } = await setup(db, now);
    const hook = await addHook(rx.url, ["*"]);
    await notify("hub.offline", now);
    const d = start({ backoff: { baseMs: 1_000, capMs: 10_000 } });
    const gaps: number[] = [];
    let last = now;
    for (let i = 0; i < 100 && rx.got.length < MAX_ATTEMPTS + 1; i++) {
      const before = rx.got.length;
      await d.runOnce();
      if (rx.got.length > before) {
        gaps.push(now - last);
        last = now;
      }
      now += 1_000;
    }
    expect(rx.got).toHaveLength(MAX_ATTEMPTS);
    expect(gaps.slice(1)).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
    const row = await db.query<{ status: string; attempts: number; last_error: string }>(
      "SELECT status, attempts, last_error FROM webhook_deliveries WHERE webhook_id = $1",
      [hook.id],
    );
    expect(row.rows).toEqual([{ status: "failed", attempts: MAX_ATTEMPTS, last_error: "HTTP 500" }]);
    now += 3_600_000;
    await d.runOnce();
    expect(rx.got).toHaveLength(MAX_ATTEMPTS);
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 1_000, capMs: 300_000 });
  });

  it("times out a receiver that does not answer, and retries", async () => {
    now = T0 + 3_000_000;
    const rx = await receiver((n) => (n === 0 ? "hang" : 200));
    closers.push(rx.close);
    const { addHook, notify } = await setup(db, now);
    const hook = await addHook(rx.url, ["*"]);
    await notify("alarm.forced_open", now);
    const d = start({ timeoutMs: 200 });
    await d.runOnce();
    const row = await db.query<{ status: string; last_error: string }>(
      "SELECT status, last_error FROM webhook_deliveries WHERE webhook_id = $1",
      [hook.id],
    );
    expect(row.rows).toEqual([{ status: "pending", last_error: "timeout after 200 ms" }]);
    now += 1_000;
    await d.runOnce();
    expect(rx.got.map((g) => g.status)).toEqual([200]);
  });

  it("delivers each notification once across several dispatchers and a restart", async () => {
    now = T0 + 4_000_000;
    const rx = await receiver(() => 200);
    closers.push(rx.close);
    const { addHook, notify } = await setup(db, now);
    const old = await notify("alarm.tamper", now - 1); // before the webhook existed: not delivered
    const hook = await addHook(rx.url, ["*"]);
    const ids: number[] = [];
    for (let i = 0; i < 30; i++) ids.push(await notify(i % 2 ? "alarm.tamper" : "hub.offline", now));
    const a = start({ batch: 7 });
    const b = start({ batch: 5 });
    for (let round = 0; round < 6; round++) await Promise.all([a.runOnce(), b.runOnce(), a.runOnce()]);
    expect(rx.got).toHaveLength(30);
    expect(new Set(rx.got.map((g) => g.delivery))).toEqual(new Set(ids.map((n) => deliveryId(hook.id, n))));
    expect(rx.got.some((g) => g.delivery === deliveryId(hook.id, old))).toBe(false);

    // A dispatcher that died after claiming: the delivery is taken again only once its lease ran out.
    const late = await notify("alarm.duress", now);
    await a.close();
    await db.query(
      `INSERT INTO webhook_deliveries (webhook_id, notification_id, status, attempts, next_at, updated_at)
       VALUES ($1, $2, 'pending', 1, $3, $4)`,
      [hook.id, late, now + LEASE_MS, now],
    );
    const c = start();
    await c.runOnce();
    expect(rx.got).toHaveLength(30);
    now += LEASE_MS;
    await c.runOnce();
    await b.runOnce();
    expect(rx.got).toHaveLength(31);
    expect(rx.got[30]!.delivery).toBe(deliveryId(hook.id, late));
    const rows = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'delivered'",
      [hook.id],
    );
    expect(rows.rows[0]!.n).toBe(31);
  });

  it("ticks on its own timer and stops on close", async () => {
    now = T0 + 5_000_000;
    const rx = await receiver(() => 200);
    closers.push(rx.close);
    const { addHook, notify } = await setup(db, now);
    await addHook(rx.url, ["*"]);
    await notify("alarm.tamper", now);
    const d = start({ intervalMs: 20 });
    for (let i = 0; i < 100 && rx.got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(rx.got).toHaveLength(1);
    await d.close();
    await notify("alarm.tamper", now);
    await new Promise((r) => setTimeout(r, 100));
    expect(rx.got).toHaveLength(1);
  });
});

const PG_URL = process.env.LATCHKEY_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test";

describe("webhook dispatcher (PostgreSQL, concurrent dispatchers)", () => {
  const schema = `lk_cloud_hooks_${process.pid}_${Date.now().toString(36)}`;
  let db: SqlClient | null = null;
  beforeAll(async () => {
    try {
      db = await openPg(PG_URL, { schema });
      await migrateCloud(db, T0);
    } catch (e) {
      if (process.env.CI) throw e;
      db = null;
    }
  });
  afterAll(async () => {
    if (!db) return;
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.close();
  });

  it("claims with SKIP LOCKED: four dispatchers deliver each notification exactly once", async (ctx) => {
    if (!db) {
      // Only outside CI (beforeAll rethrows there): this machine has no PostgreSQL.
      ctx.skip();
      return;
    }
    const pg = db;
    const now = T0 + 1_000;
    const rx = await receiver(() => 200);
    try {
      const { addHook, notify } = await setup(pg, now);
      const hook = await addHook(rx.url, ["*"]);
      const ids: number[] = [];
      for (let i = 0; i < 60; i++) ids.push(await notify("alarm.tamper", now));
      const ds = Array.from({ length: 4 }, () =>
        startWebhookDispatcher({ db: pg, clock: () => now, intervalMs: 0, log: () => {}, batch: 6 }),
      );
      for (let round = 0; round < 8; round++) await Promise.all(ds.map((d) => d.runOnce()));
      for (const d of ds) await d.close();
      expect(rx.got).toHaveLength(60);
      expect(new Set(rx.got.map((g) => g.delivery))).toEqual(new Set(ids.map((n) => deliveryId(hook.id, n))));
    } finally {
      await rx.close();
    }
  });
});
