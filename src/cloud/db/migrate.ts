/**
 * Versioned migrations of the cloud database: `src/cloud/migrations/NNN_name.sql`, applied in order, one
 * transaction each, every applied version recorded in `schema_migrations` (version, name, applied_at).
 * Running it again does nothing; a database with a version this code does not have is refused.
 *
 * On PostgreSQL several workers may start at once: each migration step holds a transaction-scoped
 * advisory lock keyed on the current schema, so exactly one of them applies it and the others then see it
 * applied. PGlite is a single connection and needs no lock.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LatchkeyError } from "../../core/errors.ts";
import type { SqlClient, SqlQueryable } from "./sql.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations/", import.meta.url));

/** One migration file. */
export interface CloudMigration {
  /** NNN of the file name, from 1, ascending without repeats. */
  readonly version: number;
  /** The file name, e.g. `001_init.sql`. */
  readonly name: string;
  readonly sql: string;
}

/**
 * The migrations shipped with this build (or those in `dir`), ascending by version.
 * @throws LatchkeyError `LK_INTERNAL` when two files share a version.
 */
export function loadCloudMigrations(dir = MIGRATIONS_DIR): CloudMigration[] {
  const list = readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f, sql: readFileSync(dir + f, "utf8") }));
  for (let i = 1; i < list.length; i++) {
    if (list[i]!.version === list[i - 1]!.version) {
      throw new LatchkeyError("LK_INTERNAL", `two cloud migrations have version ${list[i]!.version}`);
    }
  }
  return list;
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version     int PRIMARY KEY,
  name        text NOT NULL,
  applied_at  bigint NOT NULL
)`;

/** Result of {@link migrateCloud}: the version before and after, and the files applied now. */
export interface MigrationResult {
  readonly from: number;
  readonly to: number;
  readonly applied: readonly string[];
}

async function lockAndRead(db: SqlClient, tx: SqlQueryable): Promise<Set<number>> {
  if (db.kind === "pg") {
    await tx.query("SELECT pg_advisory_xact_lock(hashtext('latchkey.migrate.' || current_schema()))");
  }
  await tx.query(CREATE_TABLE);
  const r = await tx.query<{ version: number }>("SELECT version FROM schema_migrations");
  return new Set(r.rows.map((x) => x.version));
}

/**
 * Bring the database up to the newest migration. Idempotent and safe to run from several processes at
 * once on PostgreSQL.
 *
 * @param nowMs stamp recorded in `applied_at` (ms since the Unix epoch; default the system clock)
 * @throws LatchkeyError `LK_STORE_FAILED` when the database holds a migration newer than this code (a
 *   newer Latchkey ran on it); the driver's error when a migration's SQL fails (that migration is rolled
 *   back, the earlier ones stay).
 */
export async function migrateCloud(
  db: SqlClient,
  nowMs: number = Date.now(),
  migrations: readonly CloudMigration[] = loadCloudMigrations(),
): Promise<MigrationResult> {
  const newest = migrations.at(-1)?.version ?? 0;
  const applied: string[] = [];
  let from = -1;
  for (;;) {
    const done = await db.transaction(async (tx) => {
      const have = await lockAndRead(db, tx);
      const current = Math.max(0, ...have);
      if (from < 0) from = current;
      if (current > newest) {
        throw new LatchkeyError(
          "LK_STORE_FAILED",
          `cloud database schema v${current} is newer than this Latchkey (v${newest})`,
        );
      }
      const next = migrations.find((m) => !have.has(m.version));
      if (!next) return true;
      await tx.query(next.sql);
      await tx.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [
        next.version,
        next.name,
        nowMs,
      ]);
      applied.push(next.name);
      return false;
    });
    if (done) return { from, to: newest, applied };
  }
}
