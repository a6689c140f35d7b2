/**
 * The one acceptance suite of the SqlClient port (src/cloud/db/sql.ts) and the migrations on it, run
 * against both adapters: real PostgreSQL (a throwaway schema) and PGlite in memory.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CloudMigration, loadCloudMigrations, migrateCloud } from "../../src/cloud/db/migrate.ts";
import { openPg } from "../../src/cloud/db/pg.ts";
import type { SqlClient } from "../../src/cloud/db/sql.ts";
import { freshPg, freshPglite, PG_URL, serviceAvailable, T0, type TestDb } from "./cloud-fixtures.ts";

const pgUp = await serviceAvailable("PostgreSQL", PG_URL);

function runSqlClientTests(name: string, open: (migrate: boolean) => Promise<TestDb>): void {
  describe(`SqlClient acceptance: ${name}`, () => {
    let t: TestDb;
    let db: SqlClient;
    beforeAll(async () => {
      t = await open(false);
      db = t.db;
      await db.query(
        "CREATE TABLE kv (k text PRIMARY KEY, n bigint, b bytea, j jsonb, arr bigint[], s text, flag boolean)",
      );
    });
    afterAll(async () => t.dispose());

    it("returns bigint as number, bytea as Uint8Array, jsonb parsed, arrays and nulls", async () => {
      const bytes = Uint8Array.of(0, 1, 2, 254, 255);
      const big = 2 ** 53 - 1;
      await db.query("INSERT INTO kv (k, n, b, j, arr, s, flag) VALUES ($1, $2, $3, $4, $5, $6, $7)", [
        "a",
        big,
        bytes,
        JSON.stringify({ x: [1, "ü", null], y: { z: true } }),
        [1, 2, 3],
        "snow ☃ \u{1F512}",
        true,
      ]);
      const r = await db.query<{
        n: number;
        b: Uint8Array;
        j: unknown;
        arr: number[];
        s: string;
        flag: boolean;
      }>("SELECT n, b, j, arr, s, flag FROM kv WHERE k = $1", ["a"]);
      expect(r.rows).toHaveLength(1);
      const row = r.rows[0]!;
      expect(row.n).toBe(big);
      expect(Object.getPrototypeOf(row.b)).toBe(Uint8Array.prototype);
      expect([...row.b]).toEqual([...bytes]);
      expect(row.j).toEqual({ x: [1, "ü", null], y: { z: true } });
      expect(row.arr).toEqual([1, 2, 3]);
      expect(row.s).toBe("snow ☃ \u{1F512}");
      expect(row.flag).toBe(true);
      const agg = await db.query<{ c: number; s: number | null }>(
        "SELECT count(*) AS c, sum(n) AS s FROM kv WHERE k = 'zz'",
      );
      expect(agg.rows[0]).toEqual({ c: 0, s: null });
      await db.query("INSERT INTO kv (k) VALUES ($1)", ["nulls"]);
      const nulls = await db.query("SELECT n, b, j, arr FROM kv WHERE k = $1", ["nulls"]);
      expect(nulls.rows[0]).toEqual({ n: null, b: null, j: null, arr: null });
    });

    it("reports rowCount for writes and reads", async () => {
      const ins = await db.query("INSERT INTO kv (k, n) SELECT 'r' || g, g FROM generate_series(1, 5) g");
      expect(ins.rowCount).toBe(5);
      const upd = await db.query("UPDATE kv SET n = n + 1 WHERE k LIKE 'r%'");
      expect(upd.rowCount).toBe(5);
      const sel = await db.query("SELECT k FROM kv WHERE k LIKE 'r%' ORDER BY k");
      expect(sel.rowCount).toBe(5);
      const del = await db.query("DELETE FROM kv WHERE k LIKE $1", ["r%"]);
      expect(del.rowCount).toBe(5);
      const none = await db.query("UPDATE kv SET n = 0 WHERE k = $1", ["missing"]);
      expect(none.rowCount).toBe(0);
    });

    it("commits a transaction and returns its value", async () => {
      const v = await db.transaction(async (tx) => {
        await tx.query("INSERT INTO kv (k, n) VALUES ($1, $2)", ["tx1", 1]);
        const r = await tx.query<{ n: number }>("SELECT n FROM kv WHERE k = $1", ["tx1"]);
        return r.rows[0]!.n + 41;
      });
      expect(v).toBe(42);
      expect((await db.query("SELECT 1 FROM kv WHERE k = 'tx1'")).rows).toHaveLength(1);
    });

    it("rolls back when the function throws, rethrows the same error, and stays usable", async () => {
      const boom = new Error("boom");
      await expect(
        db.transaction(async (tx) => {
          await tx.query("INSERT INTO kv (k, n) VALUES ($1, $2)", ["tx2", 1]);
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect((await db.query("SELECT 1 FROM kv WHERE k = 'tx2'")).rows).toHaveLength(0);
      // A failing statement inside: the driver's error (SQLSTATE code), rolled back, client still fine.
      const err = await db
        .transaction(async (tx) => {
          await tx.query("INSERT INTO kv (k, n) VALUES ($1, $2)", ["tx3", 1]);
          await tx.query("INSERT INTO kv (k, n) VALUES ($1, $2)", ["tx3", 2]);
        })
        .catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe("23505");
      expect((await db.query("SELECT 1 FROM kv WHERE k = 'tx3'")).rows).toHaveLength(0);
      expect((await db.query<{ x: number }>("SELECT 1 AS x")).rows[0]!.x).toBe(1);
    });

    it("runs a multi-statement script without parameters (as migrations are)", async () => {
      const r = await db.query(
        "CREATE TABLE script_a (x int); INSERT INTO script_a VALUES (1), (2); SELECT count(*) AS c FROM script_a;",
      );
      expect(r.rows).toEqual([{ c: 2 }]);
    });

    it("isolates concurrent transactions (20 read-modify-write increments under a row lock)", async () => {
      await db.query("INSERT INTO kv (k, n) VALUES ('counter', 0)");
      await Promise.all(
        Array.from({ length: 20 }, () =>
          db.transaction(async (tx) => {
            const r = await tx.query<{ n: number }>("SELECT n FROM kv WHERE k = 'counter' FOR UPDATE");
            await new Promise((res) => setTimeout(res, 1));
            await tx.query("UPDATE kv SET n = $1 WHERE k = 'counter'", [r.rows[0]!.n + 1]);
          }),
        ),
      );
      expect((await db.query<{ n: number }>("SELECT n FROM kv WHERE k = 'counter'")).rows[0]!.n).toBe(20);
    });

    it("passes array parameters through unnest (text with quotes, nulls, jsonb)", async () => {
      const ks = ['q"1', "q\\2", "q,3", "q{4}", "q 5"];
      await db.query(
        "INSERT INTO kv (k, n, j, s) SELECT * FROM unnest($1::text[], $2::bigint[], $3::jsonb[], $4::text[])",
        [ks, [1, 2, 3, 4, 5], ks.map((k) => JSON.stringify({ k })), [null, "b", null, "d", "e"]],
      );
      const r = await db.query<{ k: string; j: { k: string }; s: string | null }>(
        "SELECT k, j, s FROM kv WHERE k = ANY($1::text[]) ORDER BY n",
        [ks],
      );
      expect(r.rows.map((x) => x.k)).toEqual(ks);
      expect(r.rows.map((x) => x.j.k)).toEqual(ks);
      expect(r.rows.map((x) => x.s)).toEqual([null, "b", null, "d", "e"]);
    });

    it("bulk-loads with COPY (escapes, nulls, unicode), inside a transaction too", async () => {
      expect(db.copyIn).toBeDefined();
      await db.query("CREATE TABLE copied (k text PRIMARY KEY, n bigint, j jsonb, s text)");
      const text = 'c1\t1\t{"a":"x\\\\\\\\y\\\\tz"}\tsnow ☃\nc2\t2\t[]\t\\N\nc3\t3\tnull\ttab\\there\n';
      expect(await db.copyIn!("COPY copied (k, n, j, s) FROM STDIN", text)).toBe(3);
      const r = await db.query<{ k: string; n: number; j: unknown; s: string | null }>(
        "SELECT k, n, j, s FROM copied ORDER BY k",
      );
      expect(r.rows).toEqual([
        { k: "c1", n: 1, j: { a: "x\\y\tz" }, s: "snow ☃" },
        { k: "c2", n: 2, j: [], s: null },
        { k: "c3", n: 3, j: null, s: "tab\there" },
      ]);
      await expect(
        db.transaction(async (tx) => {
          expect(await tx.copyIn!("COPY copied (k, n) FROM STDIN", "c4\t4\n")).toBe(1);
          await tx.copyIn!("COPY copied (k, n) FROM STDIN", "c1\t9\n");
        }),
      ).rejects.toMatchObject({ code: "23505" });
      expect((await db.query("SELECT 1 FROM copied WHERE k = 'c4'")).rows).toHaveLength(0);
    });

    it("migrates idempotently, records versions, refuses a newer database", async () => {
      const m = await open(false);
      try {
        const first = await migrateCloud(m.db, T0);
        const all = loadCloudMigrations();
        expect(first.from).toBe(0);
        expect(first.applied).toEqual(all.map((x) => x.name));
        const again = await migrateCloud(m.db, T0 + 1);
        expect(again.applied).toEqual([]);
        expect(again.from).toBe(all.at(-1)!.version);
        const rows = await m.db.query<{ version: number; name: string; applied_at: number }>(
          "SELECT version, name, applied_at FROM schema_migrations ORDER BY version",
        );
        expect(rows.rows.map((x) => x.version)).toEqual(all.map((x) => x.version));
        expect(rows.rows[0]!.applied_at).toBe(T0);
        // A migration that fails is rolled back; the earlier ones stay.
        const broken: CloudMigration[] = [
          ...all,
          { version: 900, name: "900_broken.sql", sql: "CREATE TABLE zz (x int); SELECT nope;" },
        ];
        await expect(migrateCloud(m.db, T0, broken)).rejects.toMatchObject({ code: "42703" });
        expect((await m.db.query("SELECT 1 FROM schema_migrations WHERE version = 900")).rows).toHaveLength(
          0,
        );
        // Code older than the database.
        await m.db.query(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '999_future.sql', 0)",
        );
        await expect(migrateCloud(m.db, T0)).rejects.toMatchObject({ code: "LK_STORE_FAILED" });
      } finally {
        await m.dispose();
      }
    });

    it("closes idempotently", async () => {
      const m = await open(false);
      await m.dispose();
      await m.db.close();
    });
  });
}

describe.skipIf(!pgUp)("PostgreSQL", () => {
  runSqlClientTests("pg", (migrate) => freshPg(migrate));

  it("migrates once when several clients start at once (advisory lock)", async () => {
    const schema = `lk_test_race_${process.pid}_${Date.now()}`;
    const clients = await Promise.all(Array.from({ length: 4 }, () => openPg(PG_URL, { schema, max: 2 })));
    try {
      const results = await Promise.all(clients.map((db) => migrateCloud(db, T0)));
      const applied = results.flatMap((r) => r.applied);
      expect(applied.sort()).toEqual(
        loadCloudMigrations()
          .map((m) => m.name)
          .sort(),
      );
    } finally {
      await clients[0]!.query(`DROP SCHEMA ${schema} CASCADE`);
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it("refuses a bad schema name and an unreachable server with coded errors", async () => {
    await expect(openPg(PG_URL, { schema: "x; DROP" })).rejects.toMatchObject({ code: "LK_INVALID_INPUT" });
    await expect(openPg("postgres://root@127.0.0.1:1/test")).rejects.toMatchObject({
      code: "LK_CLOUD_UNAVAILABLE",
    });
  });
});

runSqlClientTests("pglite (memory)", (migrate) => freshPglite(migrate));
