/**
 * The embedded adapter of the {@link SqlClient} port: PGlite (PostgreSQL compiled to WebAssembly, the
 * same SQL as the server), the zero-setup default of `latchkey cloud`.
 *
 * PGlite is one connection: transactions are run one at a time, in the order they were asked for, and a
 * statement outside a transaction waits for the running transaction to end. bigint (int8) comes back as
 * a JavaScript number, bytea as Uint8Array, jsonb parsed.
 */
import { mkdirSync } from "node:fs";
import { PGlite, types } from "@electric-sql/pglite";
import { LatchkeyError } from "../../core/errors.ts";
import type { SqlClient, SqlQueryable, SqlResult } from "./sql.ts";

function int8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new LatchkeyError("LK_INTERNAL", `int8 value ${text} is beyond 2^53`);
  return n;
}

interface Queryable {
  query<R>(
    sql: string,
    params?: unknown[],
    options?: { blob?: Blob },
  ): Promise<{ rows: R[]; affectedRows?: number }>;
  exec(sql: string): Promise<{ rows: unknown[]; affectedRows?: number }[]>;
}

/**
 * A statement without parameters may be a script of several statements (a migration): PGlite's `query`
 * takes one statement only, so those go through `exec`, and the last statement's result is returned,
 * as `pg` does for a simple-protocol script.
 */
async function run<R>(q: Queryable, sql: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
  if (params === undefined || params.length === 0) {
    const results = await q.exec(sql);
    const last = results[results.length - 1];
    return { rows: (last?.rows ?? []) as R[], rowCount: last?.affectedRows || last?.rows.length || 0 };
  }
  const r = await q.query<R>(sql, params as unknown[]);
  return { rows: r.rows, rowCount: r.affectedRows || r.rows.length };
}

/** COPY FROM STDIN through PGlite's virtual `/dev/blob` file, which it reads `text` from. */
async function copyIn(q: Queryable, sql: string, text: string): Promise<number> {
  const m = /^\s*(COPY\s+[\s\S]*?)\s+FROM\s+STDIN\s*;?\s*$/i.exec(sql);
  if (!m) throw new LatchkeyError("LK_INTERNAL", "copyIn takes a COPY … FROM STDIN statement");
  const r = await q.query(`${m[1]} FROM '/dev/blob'`, [], { blob: new Blob([text]) });
  return r.affectedRows ?? 0;
}

/**
 * Open (creating if missing) a PGlite database in directory `dir`, or in memory when `dir` is null.
 * Opening takes a few seconds (the WebAssembly module starts).
 *
 * @throws LatchkeyError `LK_CLOUD_UNAVAILABLE` when the directory cannot be created or opened.
 */
export async function openPglite(dir: string | null): Promise<SqlClient> {
  let db: PGlite;
  try {
    if (dir !== null) mkdirSync(dir, { recursive: true, mode: 0o700 });
    db = await PGlite.create({
      ...(dir !== null ? { dataDir: dir } : {}),
      parsers: { [types.INT8]: int8 },
    });
  } catch (e) {
    throw new LatchkeyError(
      "LK_CLOUD_UNAVAILABLE",
      `cannot open the embedded database: ${(e as Error).message}`,
    );
  }
  // One connection: a FIFO of work, so transactions never interleave with anything else.
  let tail: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(f: () => Promise<T>): Promise<T> => {
    const next = tail.then(f, f);
    tail = next.catch(() => {});
    return next;
  };
  let closed: Promise<void> | null = null;
  return {
    kind: "pglite",
    query<R>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
      return exclusive(() => run<R>(db as unknown as Queryable, sql, params));
    },
    copyIn(sql: string, text: string): Promise<number> {
      return exclusive(() => copyIn(db as unknown as Queryable, sql, text));
    },
    transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      return exclusive(() =>
        db.transaction(async (t) => {
          const tx: SqlQueryable = {
            query: <R>(sql: string, params?: readonly unknown[]) =>
              run<R>(t as unknown as Queryable, sql, params),
            copyIn: (sql, text) => copyIn(t as unknown as Queryable, sql, text),
          };
          return fn(tx);
        }),
      );
    },
    close(): Promise<void> {
      closed ??= exclusive(() => db.close());
      return closed;
    },
  };
}
