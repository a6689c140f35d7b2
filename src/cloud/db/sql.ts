/**
 * The cloud's database port: the little of SQL the cloud needs, with two adapters that run the same SQL
 * (PostgreSQL through `pg`, and the embedded default PGlite). Every adapter passes the shared acceptance
 * suite (test/cloud/sql-acceptance.test.ts).
 *
 * Parameters are positional (`$1`, `$2`, …) as PostgreSQL writes them. bigint columns come back as
 * JavaScript numbers (every value the cloud stores is below 2^53), bytea as Uint8Array, jsonb parsed.
 */

/** The rows of a query and how many rows it touched. */
export interface SqlResult<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

/** A connection (or a transaction on one). */
export interface SqlQueryable {
  /** Run one statement. Throws the driver's error on failure (the caller maps it to a coded error). */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>>;
  /**
   * Bulk-load rows with `sql`, a `COPY <table> (<columns>) FROM STDIN` statement, from `text` in
   * PostgreSQL's text format (one row per line, tab-separated fields, `\N` for null, backslash escapes).
   * Returns the number of rows loaded; throws the driver's error (e.g. `23505`) like `query`. Optional:
   * callers fall back to INSERT where an adapter does not offer it.
   */
  copyIn?(sql: string, text: string): Promise<number>;
}

/** A database: queries, transactions, close. */
export interface SqlClient extends SqlQueryable {
  /** "pg" for PostgreSQL through `pg`, "pglite" for the embedded database. */
  readonly kind: "pg" | "pglite";
  /**
   * Run `fn` in one transaction (BEGIN … COMMIT, ROLLBACK if it throws, then rethrow). Statements inside
   * go through the `tx` it is given, never through the client itself.
   */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** Close every connection. Idempotent. */
  close(): Promise<void>;
}
