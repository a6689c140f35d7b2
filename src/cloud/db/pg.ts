/**
 * The PostgreSQL adapter of the {@link SqlClient} port, through a `pg` connection pool.
 *
 * Values come back as the port promises: bigint (int8) and int8[] as JavaScript numbers (every value the
 * cloud stores is below 2^53; a larger one throws rather than lose precision), bytea as a plain
 * Uint8Array, jsonb parsed. The type parsers are set on this pool only, never on `pg`'s global registry.
 */
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { LatchkeyError } from "../../core/errors.ts";
import type { SqlClient, SqlQueryable, SqlResult } from "./sql.ts";

const INT8 = 20;
const INT8_ARRAY = 1016;
const BYTEA = 17;
const BYTEA_ARRAY = 1001;

/** A schema name we accept for `opts.schema`: a plain lowercase identifier, so it needs no quoting. */
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

function int8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new LatchkeyError("LK_INTERNAL", `int8 value ${text} is beyond 2^53`);
  return n;
}

function plainBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const builtin = pg.types.getTypeParser as (oid: number, format: "text") => unknown;
const byteaText = builtin(BYTEA, "text") as (s: string) => Buffer;
const byteaArrayText = builtin(BYTEA_ARRAY, "text") as (s: string) => (Buffer | null)[];
const int8ArrayText = builtin(INT8_ARRAY, "text") as (s: string) => (string | null)[];

/** Per-pool type parsers: int8 → number, bytea → Uint8Array; everything else as `pg` parses it. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (format === "binary") return pg.types.getTypeParser(oid, format);
    switch (oid) {
      case INT8:
        return int8;
      case INT8_ARRAY:
        return (s: string) => int8ArrayText(s).map((x) => (x === null ? null : int8(x)));
      case BYTEA:
        return (s: string) => plainBytes(byteaText(s));
      case BYTEA_ARRAY:
        return (s: string) => byteaArrayText(s).map((x) => (x === null ? null : plainBytes(x)));
      default:
        return pg.types.getTypeParser(oid, "text");
    }
  }) as pg.CustomTypesConfig["getTypeParser"],
};

/** pg returns an array of results for a multi-statement script: keep the last, as PGlite's adapter does. */
function toResult<R>(r: pg.QueryResult | pg.QueryResult[]): SqlResult<R> {
  const last = Array.isArray(r) ? r[r.length - 1] : r;
  return { rows: (last?.rows ?? []) as R[], rowCount: last?.rowCount ?? 0 };
}

/** `COPY … FROM STDIN` of `text` on one connection (pg-copy-streams); resolves with the rows loaded. */
function copyIn(conn: pg.PoolClient, sql: string, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = conn.query(copyFrom(sql));
    // `on`, not `once`: a connection that dies mid-COPY can report more than one error on the stream.
    stream.on("error", reject);
    stream.once("finish", () => resolve(stream.rowCount));
    stream.end(text, "utf8");
  });
}

/** Options of {@link openPg}. */
export interface PgOptions {
  /**
   * Work in this schema: it is created if missing and every connection's `search_path` is set to it
   * (so tests and benchmarks isolate in their own schema). A lowercase identifier, `[a-z_][a-z0-9_]*`.
   */
  readonly schema?: string;
  /** Most connections in the pool (default 10). */
  readonly max?: number;
}

/**
 * Open a pooled PostgreSQL client for `url` (e.g. `postgres://root@127.0.0.1:5432/test`). Connects once
 * before returning, so a wrong URL or a server that is down fails here.
 *
 * @throws LatchkeyError `LK_INVALID_INPUT` for a bad schema name; `LK_CLOUD_UNAVAILABLE` when the server
 *   cannot be reached or refuses the connection.
 */
export async function openPg(url: string, opts: PgOptions = {}): Promise<SqlClient> {
  const { schema } = opts;
  if (schema !== undefined && !SCHEMA_RE.test(schema)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "schema must be a lowercase identifier");
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    types: TYPES,
    // Set at connection start-up, so the search_path holds for every connection the pool ever opens.
    ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that would crash.
  pool.on("error", () => {});
  try {
    if (schema !== undefined) {
      try {
        await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (e) {
        // Two processes creating it at once: one wins, the other sees a duplicate; the schema exists.
        const code = (e as { code?: string }).code;
        if (code !== "23505" && code !== "42P06") throw e;
      }
    } else {
      await pool.query("SELECT 1");
    }
  } catch (e) {
    await pool.end().catch(() => {});
    throw new LatchkeyError("LK_CLOUD_UNAVAILABLE", `cannot open PostgreSQL: ${(e as Error).message}`);
  }

  /**
   * A connection out of the pool, with an 'error' listener for as long as it is out: the pool removes
   * its own at checkout, and a server that dies mid-transaction would otherwise raise an unhandled
   * error and end the process. A connection that failed is destroyed, not returned.
   */
  const borrow = async () => {
    const conn = await pool.connect();
    let lost = false;
    const onError = () => {
      lost = true;
    };
    conn.on("error", onError);
    return {
      conn,
      release(failed: boolean) {
        if (lost || failed) {
          // Destroyed: the listener stays, so an error emitted while it closes is not unhandled.
          conn.release(true);
          return;
        }
        conn.off("error", onError);
        conn.release();
      },
    };
  };
  let closed: Promise<void> | null = null;
  const client: SqlClient = {
    kind: "pg",
    async query<R>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
      return toResult<R>(await pool.query(sql, params as unknown[] | undefined));
    },
    async copyIn(sql: string, text: string): Promise<number> {
      const { conn, release } = await borrow();
      try {
        return await copyIn(conn, sql, text);
      } finally {
        release(false);
      }
    },
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      const { conn, release } = await borrow();
      let broken = false;
      try {
        await conn.query("BEGIN");
        const tx: SqlQueryable = {
          async query<R>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
            return toResult<R>(await conn.query(sql, params as unknown[] | undefined));
          },
          copyIn: (sql, text) => copyIn(conn, sql, text),
        };
        const out = await fn(tx);
        await conn.query("COMMIT");
        return out;
      } catch (e) {
        try {
          await conn.query("ROLLBACK");
        } catch {
          broken = true; // the connection is gone or unusable: do not return it to the pool
        }
        throw e;
      } finally {
        release(broken);
      }
    },
    close(): Promise<void> {
      closed ??= pool.end();
      return closed;
    },
  };
  return client;
}
