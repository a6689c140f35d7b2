/**
 * Versioned migrations: `migrations/NNN_name.sql`, applied in order inside one transaction each, the
 * applied version recorded in `PRAGMA user_version`. A database newer than this code is refused.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Database } from "better-sqlite3";
import { LatchkeyError } from "../../core/errors.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The migrations shipped with this build, ascending. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f, sql: readFileSync(dir + f, "utf8") }));
}

/** Bring `db` up to the newest schema. Returns the version after migrating. Throws LK_STORE_FAILED if the db is newer. */
export function migrate(db: Database, migrations = loadMigrations()): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  const newest = migrations.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new LatchkeyError(
      "LK_STORE_FAILED",
      `database schema v${current} is newer than this Latchkey (v${newest})`,
    );
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return newest;
}
