/**
 * Cloud ingest of audit batches (src/cloud/ingest.ts), against both database adapters: exactly once,
 * in any order, every kind of tampering flagged with nothing after it stored, gaps, trim anchors, and
 * alarms turned into notifications in the same transaction.
 */

import { createHash } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SqlClient } from "../../src/cloud/db/sql.ts";
import { canonicalDataJson, ingestAuditBatch } from "../../src/cloud/ingest.ts";
import { canonicalJson } from "../../src/core/audit/canonical.ts";
import { AuditKind, eventPreimage, hashEvent, verifyChain } from "../../src/core/audit/chain.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto as c } from "../../src/platform/node-crypto.ts";
import {
  freshPg,
  freshPglite,
  newHub,
  PG_URL,
  registerSite,
  serviceAvailable,
  T0,
  TestChain,
  type TestDb,
} from "./cloud-fixtures.ts";

const pgUp = await serviceAvailable("PostgreSQL", PG_URL);
const NOW = T0 + 86_400_000;

async function count(db: SqlClient, table: string, siteId: string): Promise<number> {
  const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE site_id = $1`, [
    siteId,
  ]);
  return r.rows[0]!.n;
}
async function head(db: SqlClient, siteId: string) {
  return (
    await db.query<{ seq: number; hash: string; checkpoint_seq: number }>(
      "SELECT seq, hash, checkpoint_seq FROM audit_heads WHERE site_id = $1",
      [siteId],
    )
  ).rows[0];
}
async function problems(db: SqlClient, siteId: string) {
  return (
    await db.query<{ seq: number; what: string }>(
      "SELECT seq, what FROM chain_problems WHERE site_id = $1 ORDER BY id",
      [siteId],
    )
  ).rows;
}

function runIngestTests(name: string, open: () => Promise<TestDb>): void {
  describe(`ingestAuditBatch: ${name}`, () => {
    let t: TestDb;
    let db: SqlClient;
    beforeAll(async () => {
      t = await open();
      db = t.db;
    });
    afterAll(async () => t.dispose());

    async function site(every = 100) {
      const hub = newHub();
      await registerSite(db, hub);
      return new TestChain(hub, { every });
    }

    it("stores a batch once: the same batch again is all duplicates", async () => {
      const ch = (await site()).add(500);
      const b = ch.batch(1, 500);
      const r1 = await ingestAuditBatch(db, c, ch.hub.siteId, b, NOW);
      expect(r1).toEqual({ through: 500, stored: 500, duplicates: 0, problem: null });
      const r2 = await ingestAuditBatch(db, c, ch.hub.siteId, b, NOW);
      expect(r2).toEqual({ through: 500, stored: 0, duplicates: 500, problem: null });
      expect(await count(db, "audit_events", ch.hub.siteId)).toBe(500);
      expect(await count(db, "audit_checkpoints", ch.hub.siteId)).toBe(5);
      expect(await head(db, ch.hub.siteId)).toEqual({
        seq: 500,
        hash: ch.events[499]!.hash,
        checkpoint_seq: 500,
      });
      // What is stored verifies as the hub's chain.
      const rows = await db.query<{
        seq: number;
        at: number;
        lock_id: string | null;
        kind: AuditKind;
        data: Record<string, never>;
        prev_hash: string;
        hash: string;
      }>(
        "SELECT seq, at, lock_id, kind, data, prev_hash, hash FROM audit_events WHERE site_id = $1 ORDER BY seq",
        [ch.hub.siteId],
      );
      const events = rows.rows.map((r) => ({
        seq: r.seq,
        at: EpochMs(r.at),
        lockId: r.lock_id,
        kind: r.kind,
        data: r.data,
        prevHash: r.prev_hash,
        hash: r.hash,
      }));
      const v = verifyChain(c, ch.hub.siteId, ch.hub.publicKey, null, events, ch.checkpoints);
      expect(v.ok).toBe(true);
      expect(v.checkpointsChecked).toBe(5);
    });

    it("handles out-of-order and overlapping batches: a gap stores nothing and asks from the head", async () => {
      const ch = (await site()).add(300);
      const s = ch.hub.siteId;
      expect(await ingestAuditBatch(db, c, s, ch.batch(101, 200), NOW)).toEqual({
        through: 0,
        stored: 0,
        duplicates: 0,
        problem: null,
      });
      expect(await count(db, "audit_events", s)).toBe(0);
      expect(await ingestAuditBatch(db, c, s, ch.batch(1, 100), NOW)).toMatchObject({
        through: 100,
        stored: 100,
      });
      expect(await ingestAuditBatch(db, c, s, ch.batch(201, 300), NOW)).toMatchObject({
        through: 100,
        stored: 0,
      });
      expect(await ingestAuditBatch(db, c, s, ch.batch(51, 250), NOW)).toEqual({
        through: 250,
        stored: 150,
        duplicates: 50,
        problem: null,
      });
      expect(await ingestAuditBatch(db, c, s, ch.batch(201, 300), NOW)).toEqual({
        through: 300,
        stored: 50,
        duplicates: 50,
        problem: null,
      });
      expect(await count(db, "audit_events", s)).toBe(300);
      expect(await problems(db, s)).toEqual([]);
    });

    it("stores exactly once when the same batches race (concurrent workers)", async () => {
      const ch = (await site()).add(400);
      const s = ch.hub.siteId;
      const batches = [ch.batch(1, 100), ch.batch(101, 200), ch.batch(201, 300), ch.batch(301, 400)];
      // Each "worker" sends every batch in order, retrying from the acknowledged head like a hub.
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let k = 0; k < 20; k++) {
            const h = (await head(db, s))?.seq ?? 0;
            if (h === 400) return;
            await ingestAuditBatch(db, c, s, batches[Math.floor(h / 100)]!, NOW);
          }
        }),
      );
      expect(await count(db, "audit_events", s)).toBe(400);
      expect((await head(db, s))!.seq).toBe(400);
    });

    it("recovers when rows above the head exist (head reset by hand): COPY conflicts, INSERT skips them", async () => {
      const ch = (await site()).add(100);
      const s = ch.hub.siteId;
      await ingestAuditBatch(db, c, s, ch.batch(1, 60), NOW);
      await db.query("UPDATE audit_heads SET seq = 0, hash = $2 WHERE site_id = $1", [s, "0".repeat(64)]);
      expect(await ingestAuditBatch(db, c, s, ch.batch(1, 100), NOW)).toEqual({
        through: 100,
        stored: 40,
        duplicates: 0,
        problem: null,
      });
      expect(await count(db, "audit_events", s)).toBe(100);
    });

    it("flags a tampered event (content changed) and stores only the prefix before it", async () => {
      const ch = (await site()).add(200);
      const s = ch.hub.siteId;
      const b = ch.batch(1, 200);
      (b.events[119]!.data as Record<string, unknown>).userId = "usr_mallory";
      const r = await ingestAuditBatch(db, c, s, b, NOW);
      expect(r).toEqual({
        through: 119,
        stored: 119,
        duplicates: 0,
        problem: { seq: 120, what: "event hash does not match its content" },
      });
      expect(await count(db, "audit_events", s)).toBe(119);
      expect(await count(db, "audit_checkpoints", s)).toBe(1);
      // The hub resends: no second problem row.
      await ingestAuditBatch(db, c, s, { ...b, events: b.events.slice(119) }, NOW);
      expect(await problems(db, s)).toEqual([{ seq: 120, what: "event hash does not match its content" }]);
      // The true events go on from the head.
      expect(await ingestAuditBatch(db, c, s, ch.batch(120, 200), NOW)).toMatchObject({
        through: 200,
        problem: null,
      });
    });

    it("flags a rehashed event by its broken link, and a replaced prevHash", async () => {
      const ch = (await site()).add(50);
      const s = ch.hub.siteId;
      const b = ch.batch(1, 50);
      const e = b.events[9]!;
      const data = { ...e.data, userId: "usr_mallory" };
      b.events[9] = {
        ...e,
        data,
        hash: hashEvent(c, e.seq, e.prevHash, { ...e, at: EpochMs(e.at), data } as never),
      };
      expect((await ingestAuditBatch(db, c, s, b, NOW)).problem).toEqual({
        seq: 11,
        what: "prevHash does not link to the previous event",
      });
      expect(await count(db, "audit_events", s)).toBe(10);

      const ch2 = (await site()).add(20);
      const b2 = ch2.batch(1, 20);
      b2.events[4] = { ...b2.events[4]!, prevHash: "f".repeat(64) };
      expect(await ingestAuditBatch(db, c, ch2.hub.siteId, b2, NOW)).toMatchObject({
        through: 4,
        stored: 4,
        problem: { seq: 5 },
      });
    });

    it("flags a bad checkpoint signature or hash and keeps nothing from its event on", async () => {
      const ch = (await site(10)).add(40);
      const s = ch.hub.siteId;
      const b = ch.batch(1, 40);
      b.checkpoints[1] = { ...b.checkpoints[1]!, signature: `00${b.checkpoints[1]!.signature.slice(2)}` };
      expect(await ingestAuditBatch(db, c, s, b, NOW)).toEqual({
        through: 19,
        stored: 19,
        duplicates: 0,
        problem: { seq: 20, what: "checkpoint signature does not verify" },
      });
      expect(await count(db, "audit_checkpoints", s)).toBe(1);
      expect((await head(db, s))!.checkpoint_seq).toBe(10);
      const b2 = ch.batch(20, 40);
      b2.checkpoints[1] = { ...b2.checkpoints[1]!, hash: ch.events[0]!.hash };
      expect((await ingestAuditBatch(db, c, s, b2, NOW)).problem).toEqual({
        seq: 30,
        what: "checkpoint hash differs from the event's",
      });
      // A checkpoint from another device key.
      const other = newHub();
      const forged = new TestChain({ ...ch.hub, seed: other.seed }, { every: 10 }).add(40);
      const b3 = ch.batch(20, 40);
      b3.checkpoints = b3.checkpoints.map((cp) => ({
        ...cp,
        signature: forged.checkpoints.get(cp.seq)?.signature ?? cp.signature,
      }));
      expect((await ingestAuditBatch(db, c, s, b3, NOW)).problem).toMatchObject({ seq: 30 });
      expect(await count(db, "audit_events", s)).toBe(29);
    });

    it("flags a held event that comes back different, storing nothing", async () => {
      const ch = (await site()).add(30);
      const s = ch.hub.siteId;
      await ingestAuditBatch(db, c, s, ch.batch(1, 20), NOW);
      const b = ch.batch(10, 30);
      b.events[2] = { ...b.events[2]!, hash: "e".repeat(64) };
      expect(await ingestAuditBatch(db, c, s, b, NOW)).toEqual({
        through: 20,
        stored: 0,
        duplicates: 0,
        problem: { seq: 12, what: "event differs from the one already held (hash mismatch)" },
      });
      expect(await count(db, "audit_events", s)).toBe(20);
    });

    it("accepts a trim anchor at the start only when its signature verifies", async () => {
      const hub = newHub();
      await registerSite(db, hub);
      const ch = new TestChain(hub, { startAfter: { seq: 1000, hash: "a".repeat(64) } }).add(100);
      const s = hub.siteId;
      // Without the anchor, seq 1001 at head 0 is a gap.
      expect(await ingestAuditBatch(db, c, s, ch.batch(1001, 1050), NOW)).toMatchObject({
        through: 0,
        stored: 0,
        problem: null,
      });
      // A forged anchor.
      const bad = ch.batch(1001, 1050, true);
      bad.anchor = { ...bad.anchor!, hash: "b".repeat(64) };
      expect(await ingestAuditBatch(db, c, s, bad, NOW)).toMatchObject({
        through: 0,
        stored: 0,
        problem: { seq: 1000, what: "trim anchor signature does not verify" },
      });
      expect(await count(db, "audit_events", s)).toBe(0);
      expect(await ingestAuditBatch(db, c, s, ch.batch(1001, 1050, true), NOW)).toEqual({
        through: 1050,
        stored: 50,
        duplicates: 0,
        problem: null,
      });
      const anchors = await db.query<{ through_seq: number }>(
        "SELECT through_seq FROM audit_anchors WHERE site_id = $1",
        [s],
      );
      expect(anchors.rows).toEqual([{ through_seq: 1000 }]);
      // Later, an anchor is ignored (even a forged one) and the chain goes on.
      const later = ch.batch(1051, 1100, true);
      later.anchor = { ...later.anchor!, signature: "0".repeat(128) };
      expect(await ingestAuditBatch(db, c, s, later, NOW)).toMatchObject({
        through: 1100,
        stored: 50,
        problem: null,
      });
    });

    it("writes a notification per alarm, in the same transaction, once", async () => {
      const alarms: Record<number, AuditKind> = {
        3: AuditKind.AlarmForcedOpen,
        5: AuditKind.AlarmTamper,
        7: AuditKind.AlarmDuress,
        9: AuditKind.AlarmBatteryLow,
        11: AuditKind.AlarmBatteryCritical,
        13: AuditKind.AlarmLockout,
        15: AuditKind.AlarmJam,
        17: AuditKind.AlarmDoorAjar, // not notified
      };
      const ch = (await site()).add(20, (seq) => alarms[seq] ?? AuditKind.AccessDenied);
      const s = ch.hub.siteId;
      await ingestAuditBatch(db, c, s, ch.batch(1, 20), NOW);
      await ingestAuditBatch(db, c, s, ch.batch(1, 20), NOW);
      const n = await db.query<{
        tenant_id: string;
        kind: string;
        seq: number;
        lock_id: string;
        data: { at: number; data: unknown };
        created_at: number;
      }>(
        "SELECT tenant_id, kind, seq, lock_id, data, created_at FROM notifications WHERE site_id = $1 ORDER BY seq",
        [s],
      );
      expect(n.rows.map((r) => [r.seq, r.kind])).toEqual(
        Object.entries(alarms)
          .slice(0, 7)
          .map(([k, v]) => [Number(k), v]),
      );
      expect(n.rows[0]).toMatchObject({ tenant_id: ch.hub.tenantId, lock_id: "front-door", created_at: NOW });
      expect(n.rows[0]!.data).toEqual({ at: ch.events[2]!.at, data: ch.events[2]!.data });
      // An alarm after a tampered event is not stored, so not notified.
      const ch2 = (await site()).add(5, (seq) =>
        seq === 5 ? AuditKind.AlarmTamper : AuditKind.AccessGranted,
      );
      const b = ch2.batch(1, 5);
      b.events[3] = { ...b.events[3]!, at: b.events[3]!.at + 1 };
      await ingestAuditBatch(db, c, ch2.hub.siteId, b, NOW);
      expect(await count(db, "notifications", ch2.hub.siteId)).toBe(0);
    });

    it("refuses an unknown site and a deviceId that is not the topic's, storing nothing", async () => {
      const hub = newHub();
      const ch = new TestChain(hub).add(5);
      await expect(ingestAuditBatch(db, c, hub.siteId, ch.batch(1, 5), NOW)).rejects.toMatchObject({
        code: "LK_SITE_UNKNOWN",
      });
      expect(await count(db, "audit_heads", hub.siteId)).toBe(0);
      expect(await count(db, "audit_events", hub.siteId)).toBe(0);
      const known = await site();
      await expect(ingestAuditBatch(db, c, known.hub.siteId, ch.batch(1, 5), NOW)).rejects.toMatchObject({
        code: "LK_SYNC_MALFORMED",
      });
    });

    it("flags an event the database cannot hold (NUL) instead of failing the batch", async () => {
      const hub = newHub();
      await registerSite(db, hub);
      const ch = new TestChain(hub);
      ch.add(3);
      // Rebuild event 3 with a NUL in its data, correctly hashed and linked.
      const e = ch.events[2]!;
      const data = { note: "a\u0000b" };
      const bad = { ...e, data, hash: hashEvent(c, e.seq, e.prevHash, { ...e, data }) };
      const b = ch.batch(1, 3);
      b.events[2] = bad as never;
      expect(await ingestAuditBatch(db, c, hub.siteId, b, NOW)).toMatchObject({
        through: 2,
        stored: 2,
        problem: { seq: 3 },
      });
    });

    it("flags a lone surrogate, but stores the literal text \\u0000 and paired surrogates", async () => {
      const hub = newHub();
      await registerSite(db, hub);
      const ch = new TestChain(hub).add(1);
      const rebuilt = (seq: number, prev: string, data: Record<string, string>) => {
        const e = {
          seq,
          at: EpochMs(T0 + seq),
          lockId: "front-door",
          kind: AuditKind.Admin,
          data,
          prevHash: prev,
        };
        return { ...e, hash: hashEvent(c, seq, prev, e) };
      };
      const e2 = rebuilt(2, ch.events[0]!.hash, { note: "\\u0000 and \\ud800 as text, \u{1F512}" });
      const e3 = rebuilt(3, e2.hash, { note: "x\ud800y" });
      const b = { ...ch.batch(1, 1), events: [...ch.batch(1, 1).events, e2, e3] as never };
      expect(await ingestAuditBatch(db, c, hub.siteId, b, NOW)).toMatchObject({
        through: 2,
        stored: 2,
        problem: { seq: 3 },
      });
      const row = await db.query<{ data: { note: string } }>(
        "SELECT data FROM audit_events WHERE site_id = $1 AND seq = 2",
        [hub.siteId],
      );
      expect(row.rows[0]!.data.note).toBe(e2.data.note);
    });
  });
}

describe("canonicalDataJson", () => {
  it("equals canonicalJson for any parsed JSON object, in canonical key order or not", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: "binary" }), fc.jsonValue()), (o) => {
        const parsed = JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
        const canonical = JSON.parse(canonicalJson(parsed)) as Record<string, unknown>;
        expect(canonicalDataJson(parsed)).toBe(canonicalJson(parsed));
        expect(canonicalDataJson(canonical)).toBe(canonicalJson(parsed));
      }),
      { numRuns: 500 },
    );
    const numeric = JSON.parse('{"10":1,"9":2,"a":{"b":1,"a":2}}') as Record<string, unknown>;
    expect(canonicalDataJson(numeric)).toBe(canonicalJson(numeric));
  });
});

describe("eventPreimage hashed natively", () => {
  it("equals hashEvent for any data (unicode, lone surrogates, nesting)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string({ unit: "binary" }), (v, s) => {
        const e = { at: EpochMs(T0), lockId: s, kind: AuditKind.Admin, data: { v: v as never, s } };
        const native = createHash("sha256")
          .update(eventPreimage(7, "0".repeat(64), e, canonicalJson(e.data)))
          .digest("hex");
        expect(native).toBe(hashEvent(c, 7, "0".repeat(64), e));
      }),
      { numRuns: 300 },
    );
  });
});

describe.skipIf(!pgUp)("PostgreSQL", () => runIngestTests("pg", () => freshPg()));
runIngestTests("pglite (memory)", () => freshPglite());
