/**
 * The edge store: one SQLite database (better-sqlite3, WAL, synchronous=FULL) holding the hub's locks,
 * users, credentials, lockout counters, API tokens and the audit log. One transaction can cover a
 * decision's audit events and its state effects, so "the grant is durable before the bolt moves" and
 * "a counter never goes back" hold together.
 */

import BetterSqlite3, { type Database, type Statement } from "better-sqlite3";
import { canonicalJson } from "../../core/audit/canonical.ts";
import {
  type AuditAnchor,
  type AuditCheckpoint,
  type AuditEvent,
  type AuditEventInput,
  type AuditKind,
  chainEvent,
  GENESIS_HASH,
} from "../../core/audit/chain.ts";
import type { GuestCodeUsage } from "../../core/credentials/guest-code.ts";
import type { CryptoPort, HmacAlgorithm } from "../../core/crypto.ts";
import { isLatchkeyError, LatchkeyError } from "../../core/errors.ts";
import type { InputLockoutState, LockoutInput } from "../../core/lockout.ts";
import type {
  Credential,
  LockScope,
  OperatingMode,
  Role,
  User,
  UserStatus,
  UserType,
} from "../../core/model.ts";
import { EpochMs, Seconds } from "../../core/units.ts";
import type { AuditQuery, AuditStore } from "../audit-store.ts";
import type { SecretSealer } from "../secret-seal.ts";
import { ConsoleTables } from "./console-store.ts";
import { migrate } from "./migrate.ts";
import { PhoneKeyTables } from "./phone-key-store.ts";
import { OpTables } from "./sync-store.ts";

/** A lock (door) driven by this hub. */
export interface LockRecord {
  readonly id: string;
  readonly name: string;
  readonly timeZone: string;
  readonly operatingMode: OperatingMode;
  readonly settings: LockSettings;
  readonly createdAt: EpochMs;
}

/** Per-lock settings, with Matter names where one exists. */
export interface LockSettings {
  /** Matter AutoRelockTime (§ 5.2.9.11): relock this long after unlocking; 0 disables. */
  readonly autoRelockTime: Seconds;
  /** Matter WrongCodeEntryLimit (§ 5.2.9.32). */
  readonly wrongCodeEntryLimit: number;
  /** Matter UserCodeTemporaryDisableTime (§ 5.2.9.33). */
  readonly userCodeTemporaryDisableTime: Seconds;
  /** Cap for the doubled disable time. */
  readonly maxDisableTime: Seconds;
  /** Door open longer than this raises a door-ajar alarm. */
  readonly doorAjarTime: Seconds;
  /** Battery percentage at or below which a low-battery alarm is raised. */
  readonly batteryLowPercent: number;
  /** Battery percentage at or below which only owners may unlock (the reserve). */
  readonly batteryCriticalPercent: number;
  /** Configured minimum PIN length (4–12); raised automatically with the number of codes. */
  readonly pinMinLength: number;
  /** Guest-code length ℓ, 10–15 digits (docs/protocol/guest-codes.md § 4). Default 12. */
  readonly guestCodeDigits: number;
  /** Guest-code drift tolerance δ at window edges, 0–15 minutes. Default 2. */
  readonly guestCodeDriftMinutes: number;
}

/** A code in the hub's guest-code ledger (never its digits). Times are local `YYYY-MM-DDTHH:MM`. */
export interface GuestCodeLedgerRecord {
  readonly lockId: string;
  readonly issuerId: string;
  readonly epoch: number;
  readonly codeId: string;
  readonly name: string;
  readonly kind: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly dropAfter: number;
  readonly issuedAt: EpochMs;
}

/** A guest-code issuer of a lock (docs/protocol/guest-codes.md § 1). Its key is derived, never stored. */
export interface GuestCodeIssuerRecord {
  readonly lockId: string;
  readonly issuerId: string;
  readonly userId: string;
  readonly name: string;
  readonly epoch: number;
  readonly createdAt: EpochMs;
}

export interface ApiTokenRecord {
  readonly id: string;
  readonly userId: string;
  readonly label: string;
  readonly createdAt: EpochMs;
}

type Row = Record<string, unknown>;

function userFromRow(r: Row): User {
  return {
    id: r.id as string,
    name: r.name as string,
    role: r.role as Role,
    userType: r.user_type as UserType,
    userStatus: r.user_status as UserStatus,
    weekDaySchedules: JSON.parse(r.week_day_schedules as string),
    yearDaySchedules: JSON.parse(r.year_day_schedules as string),
    expiringTimeout: r.expiring_timeout === null ? null : Seconds(r.expiring_timeout as number),
    firstUsedAt: r.first_used_at === null ? null : EpochMs(r.first_used_at as number),
    createdAt: EpochMs(r.created_at as number),
  };
}

function credentialFromRow(r: Row, sealer: SecretSealer | undefined): Credential {
  const base = {
    id: r.id as string,
    userId: r.user_id as string,
    locks: JSON.parse(r.locks as string) as LockScope,
    label: (r.label as string | null) ?? null,
    createdAt: EpochMs(r.created_at as number),
  };
  switch (r.type) {
    case "pin":
      return {
        ...base,
        type: "pin",
        pinDigest: r.match_key as string,
        pinLength: r.pin_length as number,
        duress: r.duress === 1,
      };
    case "rfid":
      return { ...base, type: "rfid", cardId: r.match_key as string };
    case "fingerprint":
      return { ...base, type: "fingerprint", slot: Number(r.match_key) };
    case "totp": {
      if (!sealer) {
        throw new LatchkeyError("LK_STORE_FAILED", "this store was opened without the TOTP seal key");
      }
      return {
        ...base,
        type: "totp",
        secret: sealer.open(r.totp_sealed as Uint8Array, base.id),
        algorithm: r.totp_algorithm as HmacAlgorithm,
        digits: r.totp_digits as number,
        step: Seconds(r.totp_step as number),
        requirePin: r.require_pin === 1,
        lastStep: (r.last_step as number | null) ?? null,
      };
    }
    default:
      throw new LatchkeyError("LK_STORE_FAILED", `unknown credential type in database: ${String(r.type)}`);
  }
}

function matchKeyOf(c: Credential): string {
  switch (c.type) {
    case "pin":
      return c.pinDigest;
    case "rfid":
      return c.cardId;
    case "fingerprint":
      return String(c.slot);
    case "totp":
      return c.id;
  }
}

function tokenFromRow(r: Row): ApiTokenRecord {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    label: r.label as string,
    createdAt: EpochMs(r.created_at as number),
  };
}

function eventFromRow(r: Row): AuditEvent {
  return {
    seq: r.seq as number,
    at: EpochMs(r.at as number),
    lockId: (r.lock_id as string | null) ?? null,
    kind: r.kind as AuditKind,
    data: JSON.parse(r.data as string),
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  };
}

/** Open options. */
export interface EdgeStoreOptions {
  /** Path of the database file, or ":memory:" for tests. */
  readonly path: string;
  readonly crypto: CryptoPort;
  /** Open an existing database read-only (no migrations, no writes): for verification tools. */
  readonly readonly?: boolean;
  /**
   * Seals TOTP secrets at rest (AES-256-GCM under `secrets/totp-seal-key`). Without it, storing or
   * reading a TOTP credential fails with LK_STORE_FAILED.
   */
  readonly sealer?: SecretSealer;
}

/**
 * The SQLite edge store. Single-writer: the hub holds the data-directory lock, so the chain head can be
 * cached in memory.
 */
export class SqliteEdgeStore implements AuditStore {
  readonly db: Database;
  /** Phone keys, revocation lists and wallet events (migration 004). */
  readonly phoneKeys: PhoneKeyTables;
  /** Management operations held by the hub (migration 005). */
  readonly ops: OpTables;
  /** Battery samples and readiness reports (migration 006). */
  readonly console: ConsoleTables;
  private readonly crypto: CryptoPort;
  private readonly sealer: SecretSealer | undefined;
  private headCache: { seq: number; hash: string };
  private readonly st: Record<string, Statement>;

  constructor(opts: EdgeStoreOptions) {
    this.crypto = opts.crypto;
    this.sealer = opts.sealer;
    try {
      if (opts.readonly) {
        this.db = new BetterSqlite3(opts.path, { readonly: true, fileMustExist: true });
      } else {
        this.db = new BetterSqlite3(opts.path);
        this.db.pragma("journal_mode = WAL");
        this.db.pragma("synchronous = FULL");
        this.db.pragma("foreign_keys = ON");
        this.db.pragma("busy_timeout = 5000");
        // Safety net only: the hub runs compact() off the unlock path long before this many pages.
        this.db.pragma("wal_autocheckpoint = 20000");
        migrate(this.db);
      }
    } catch (e) {
      if (isLatchkeyError(e)) throw e;
      throw new LatchkeyError(
        "LK_STORE_FAILED",
        `cannot open database ${opts.path}: ${(e as Error).message}`,
      );
    }
    const db = this.db;
    this.phoneKeys = new PhoneKeyTables(db);
    this.ops = new OpTables(db);
    this.console = new ConsoleTables(db);
    this.st = {
      insertEvent: db.prepare(
        "INSERT INTO audit_events (seq, at, lock_id, kind, user_id, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      lastEvent: db.prepare("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"),
      setLockout: db.prepare(
        "INSERT INTO lockouts (lock_id, input, failures, strikes, disabled_until) VALUES (?, ?, ?, ?, ?) " +
          "ON CONFLICT (lock_id, input) DO UPDATE SET failures = excluded.failures, strikes = excluded.strikes, disabled_until = excluded.disabled_until",
      ),
      setMeta: db.prepare(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
      getMeta: db.prepare("SELECT value FROM meta WHERE key = ?"),
      credentialUsed: db.prepare("UPDATE credentials SET last_used_at = ? WHERE id = ?"),
      // Accept once: the step only moves forward, whatever the caller passes.
      totpLastStep: db.prepare(
        "UPDATE credentials SET last_step = ? WHERE id = ? AND type = 'totp' AND (last_step IS NULL OR last_step < ?)",
      ),
      putGuestCode: db.prepare(
        `INSERT OR REPLACE INTO guest_code_state
           (lock_id, issuer_id, epoch, code_id, revoked, uses, first_used_at, drop_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      begin: db.prepare("BEGIN"),
      commit: db.prepare("COMMIT"),
      rollback: db.prepare("ROLLBACK"),
    };
    this.headCache = this.readHead();
  }

  /**
   * Run `fn` in one transaction (nested calls join the outer one as a savepoint). If the outermost
   * transaction fails, the cached chain head is re-read so it never points at a rolled-back event.
   */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) {
      try {
        return this.db.transaction(fn)(); // nested: a savepoint
      } catch (e) {
        this.#dropUserCaches(); // the savepoint rolled back; the outer transaction may still commit
        throw e;
      }
    }
    this.st.begin!.run();
    try {
      const result = fn();
      this.st.commit!.run();
      this.#cacheStale = false; // its touched rows are patched in at the next read, off this path
      return result;
    } catch (e) {
      if (this.db.inTransaction) this.st.rollback!.run();
      this.#dropUserCaches();
      this.reloadHead();
      throw e;
    }
  }

  /**
   * Fold the WAL back into the database file (PASSIVE: never blocks). SQLite would otherwise do this
   * inside whichever commit crosses the threshold, adding an fsync to that unlock; the hub calls it
   * off the hot path instead (after checkpoints and on its 60 s tick).
   */
  compact(): void {
    this.db.pragma("wal_checkpoint(PASSIVE)");
  }

  /** True while a transaction is open on this connection. */
  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---------------------------------------------------------------- audit (AuditStore port)

  private readHead(): { seq: number; hash: string } {
    const r = this.st.lastEvent!.get() as Row | undefined;
    if (r) return { seq: r.seq as number, hash: r.hash as string };
    const a = this.anchor();
    return a ? { seq: a.throughSeq, hash: a.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  head(): { seq: number; hash: string } {
    return { ...this.headCache };
  }

  append(inputs: readonly AuditEventInput[]): AuditEvent[] {
    try {
      return this.transaction(() => this.appendInTransaction(inputs));
    } catch (e) {
      if (isLatchkeyError(e)) throw e;
      throw new LatchkeyError("LK_AUDIT_NOT_DURABLE", `audit append failed: ${(e as Error).message}`);
    }
  }

  /** Append inside the caller's transaction. The head cache is advanced; on rollback call {@link reloadHead}. */
  appendInTransaction(inputs: readonly AuditEventInput[]): AuditEvent[] {
    let { seq, hash } = this.headCache;
    const out: AuditEvent[] = [];
    for (const input of inputs) {
      const dataJson = canonicalJson(input.data);
      const e = chainEvent(this.crypto, seq, hash, input, dataJson);
      const userId = typeof e.data.userId === "string" ? e.data.userId : null;
      this.st.insertEvent!.run(e.seq, e.at, e.lockId, e.kind, userId, dataJson, e.prevHash, e.hash);
      out.push(e);
      seq = e.seq;
      hash = e.hash;
    }
    this.headCache = { seq, hash };
    return out;
  }

  /** Re-read the chain head from disk (after a rolled-back transaction). */
  reloadHead(): void {
    this.headCache = this.readHead();
  }

  query(q: AuditQuery): AuditEvent[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.afterSeq !== undefined) {
      where.push("seq > ?");
      args.push(q.afterSeq);
    }
    if (q.beforeSeq !== undefined) {
      where.push("seq < ?");
      args.push(q.beforeSeq);
    }
    if (q.lockId !== undefined) {
      where.push("lock_id = ?");
      args.push(q.lockId);
    }
    if (q.userId !== undefined) {
      where.push("user_id = ?");
      args.push(q.userId);
    }
    if (q.kinds !== undefined) {
      where.push(`kind IN (${q.kinds.map(() => "?").join(",") || "NULL"})`);
      args.push(...q.kinds);
    }
    if (q.from !== undefined) {
      where.push("at >= ?");
      args.push(q.from);
    }
    if (q.to !== undefined) {
      where.push("at < ?");
      args.push(q.to);
    }
    const sql = `SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq ${
      q.descending ? "DESC" : "ASC"
    } LIMIT ?`;
    return (this.db.prepare(sql).all(...args, q.limit) as Row[]).map(eventFromRow);
  }

  *iterate(fromSeq = 0): Iterable<AuditEvent> {
    // Page through in batches: better-sqlite3 iterators block other statements on this connection.
    let after = fromSeq - 1;
    const page = this.db.prepare("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT 1000");
    for (;;) {
      const rows = page.all(after) as Row[];
      if (rows.length === 0) return;
      for (const r of rows) yield eventFromRow(r);
      after = rows.at(-1)!.seq as number;
    }
  }

  count(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n;
  }

  putCheckpoint(cp: AuditCheckpoint): void {
    this.db
      .prepare("INSERT OR REPLACE INTO audit_checkpoints (seq, hash, at, signature) VALUES (?, ?, ?, ?)")
      .run(cp.seq, cp.hash, cp.at, cp.signature);
  }

  checkpoints(): Map<number, AuditCheckpoint> {
    const rows = this.db.prepare("SELECT * FROM audit_checkpoints ORDER BY seq").all() as Row[];
    return new Map(rows.map((r) => [r.seq as number, this.cpFromRow(r)]));
  }

  /** Checkpoints with first ≤ seq ≤ last, ascending. */
  checkpointsBetween(first: number, last: number): AuditCheckpoint[] {
    const rows = this.db
      .prepare("SELECT * FROM audit_checkpoints WHERE seq >= ? AND seq <= ? ORDER BY seq")
      .all(first, last) as Row[];
    return rows.map((r) => this.cpFromRow(r));
  }

  latestCheckpoint(): AuditCheckpoint | null {
    const r = this.db.prepare("SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").get() as
      | Row
      | undefined;
    return r ? this.cpFromRow(r) : null;
  }

  private cpFromRow(r: Row): AuditCheckpoint {
    return {
      seq: r.seq as number,
      hash: r.hash as string,
      at: EpochMs(r.at as number),
      signature: r.signature as string,
    };
  }

  anchor(): AuditAnchor | null {
    const r = this.db.prepare("SELECT * FROM audit_anchor WHERE id = 1").get() as Row | undefined;
    return r
      ? {
          throughSeq: r.through_seq as number,
          hash: r.hash as string,
          at: EpochMs(r.at as number),
          signature: r.signature as string,
        }
      : null;
  }

  trim(anchor: AuditAnchor): void {
    this.transaction(() => {
      this.db.prepare("DELETE FROM audit_events WHERE seq <= ?").run(anchor.throughSeq);
      this.db.prepare("DELETE FROM audit_checkpoints WHERE seq <= ?").run(anchor.throughSeq);
      this.db
        .prepare(
          "INSERT OR REPLACE INTO audit_anchor (id, through_seq, hash, at, signature) VALUES (1, ?, ?, ?, ?)",
        )
        .run(anchor.throughSeq, anchor.hash, anchor.at, anchor.signature);
    });
  }

  // ---------------------------------------------------------------- meta

  getMeta(key: string): string | null {
    const r = this.st.getMeta!.get(key) as { value: string } | undefined;
    return r?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.st.setMeta!.run(key, value);
  }

  deleteMeta(key: string): void {
    this.db.prepare("DELETE FROM meta WHERE key = ?").run(key);
  }

  // ---------------------------------------------------------------- locks

  insertLock(l: LockRecord): void {
    this.db
      .prepare(
        "INSERT INTO locks (id, name, time_zone, operating_mode, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(l.id, l.name, l.timeZone, l.operatingMode, JSON.stringify(l.settings), l.createdAt);
  }

  updateLock(l: LockRecord): void {
    this.db
      .prepare("UPDATE locks SET name = ?, time_zone = ?, operating_mode = ?, settings = ? WHERE id = ?")
      .run(l.name, l.timeZone, l.operatingMode, JSON.stringify(l.settings), l.id);
  }

  locks(): LockRecord[] {
    return (this.db.prepare("SELECT * FROM locks ORDER BY created_at, id").all() as Row[]).map((r) => ({
      id: r.id as string,
      name: r.name as string,
      timeZone: r.time_zone as string,
      operatingMode: r.operating_mode as OperatingMode,
      settings: JSON.parse(r.settings as string),
      createdAt: EpochMs(r.created_at as number),
    }));
  }

  // ---------------------------------------------------------------- users and credentials

  /**
   * Users and credentials as committed, kept in memory: management calls read both lists several times
   * each, and re-reading every row per change made a bulk import quadratic. The lists are served only
   * outside a transaction. A write records the ids it touched; at the next read after the outermost
   * {@link transaction} committed (or after a write outside any transaction) those rows are re-read one by
   * one and patched in — never on the commit itself, which may be an unlock's. A rollback, or a commit
   * this store did not see, drops the lists (they are re-read).
   */
  #usersCache: User[] | null = null;
  #credentialsCache: Credential[] | null = null;
  readonly #touchedUsers = new Set<string>();
  readonly #touchedCredentials = new Set<string>();
  /** Set by a write inside a transaction; cleared when that transaction's commit patched the lists. */
  #cacheStale = false;

  #dropUserCaches(): void {
    this.#usersCache = null;
    this.#credentialsCache = null;
    this.#touchedUsers.clear();
    this.#touchedCredentials.clear();
    this.#cacheStale = false;
  }

  #touched(users: readonly string[], credentials: readonly string[]): void {
    for (const id of users) this.#touchedUsers.add(id);
    for (const id of credentials) this.#touchedCredentials.add(id);
    if (this.db.inTransaction) this.#cacheStale = true;
  }

  /** Before serving the lists: drop them after a commit this store did not see, else patch touched rows in. */
  #freshenUserCaches(): void {
    if (this.#cacheStale) this.#dropUserCaches();
    else if (this.#touchedUsers.size > 0 || this.#touchedCredentials.size > 0) this.#patchUserCaches();
  }

  /** Re-read the touched rows (committed now) into the lists, in ORDER BY created_at, id. */
  #patchUserCaches(): void {
    const byAge = (a: { createdAt: number; id: string }, b: { createdAt: number; id: string }) =>
      a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const put = <T extends { id: string; createdAt: number }>(list: T[], id: string, row: T | null) => {
      const i = list.findIndex((x) => x.id === id);
      if (i >= 0) list.splice(i, 1);
      if (!row) return;
      let j = list.length;
      while (j > 0 && byAge(list[j - 1]!, row) > 0) j--;
      list.splice(j, 0, row);
    };
    if (this.#usersCache) {
      for (const id of this.#touchedUsers) {
        const r = this.db.prepare("SELECT * FROM users WHERE id = ?").get(id) as Row | undefined;
        put(this.#usersCache, id, r ? userFromRow(r) : null);
        // A removed user's credentials went with it (ON DELETE CASCADE).
        if (!r && this.#credentialsCache)
          this.#credentialsCache = this.#credentialsCache.filter((c) => c.userId !== id);
      }
    }
    if (this.#credentialsCache) {
      for (const id of this.#touchedCredentials) {
        const r = this.db.prepare("SELECT * FROM credentials WHERE id = ?").get(id) as Row | undefined;
        put(this.#credentialsCache, id, r ? credentialFromRow(r, this.sealer) : null);
      }
    }
    if (!this.#usersCache && this.#touchedUsers.size > 0) this.#credentialsCache = null;
    this.#touchedUsers.clear();
    this.#touchedCredentials.clear();
    this.#cacheStale = false;
  }

  upsertUser(u: User): void {
    this.db
      .prepare(
        `INSERT INTO users (id, name, role, user_type, user_status, week_day_schedules, year_day_schedules, expiring_timeout, first_used_at, created_at)
         VALUES (@id, @name, @role, @userType, @userStatus, @week, @year, @expiringTimeout, @firstUsedAt, @createdAt)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, user_type = excluded.user_type,
           user_status = excluded.user_status, week_day_schedules = excluded.week_day_schedules,
           year_day_schedules = excluded.year_day_schedules, expiring_timeout = excluded.expiring_timeout,
           first_used_at = excluded.first_used_at`,
      )
      .run({
        id: u.id,
        name: u.name,
        role: u.role,
        userType: u.userType,
        userStatus: u.userStatus,
        week: JSON.stringify(u.weekDaySchedules),
        year: JSON.stringify(u.yearDaySchedules),
        expiringTimeout: u.expiringTimeout,
        firstUsedAt: u.firstUsedAt,
        createdAt: u.createdAt,
      });
    this.#touched([u.id], []);
  }

  deleteUser(id: string): void {
    // Its credentials go with it (ON DELETE CASCADE): they are touched too, even if the id comes back.
    const creds = (this.db.prepare("SELECT id FROM credentials WHERE user_id = ?").all(id) as Row[]).map(
      (r) => r.id as string,
    );
    this.db.prepare("DELETE FROM users WHERE id = ?").run(id);
    this.#touched([id], creds);
  }

  users(): User[] {
    if (this.db.inTransaction)
      return (this.db.prepare("SELECT * FROM users ORDER BY created_at, id").all() as Row[]).map(userFromRow);
    this.#freshenUserCaches();
    this.#usersCache ??= (this.db.prepare("SELECT * FROM users ORDER BY created_at, id").all() as Row[]).map(
      userFromRow,
    );
    return this.#usersCache.slice();
  }

  insertCredential(c: Credential): void {
    let totp: {
      sealed: Uint8Array;
      algorithm: string;
      digits: number;
      step: number;
      requirePin: number;
    } | null = null;
    if (c.type === "totp") {
      if (!this.sealer) {
        throw new LatchkeyError("LK_STORE_FAILED", "this store was opened without the TOTP seal key");
      }
      totp = {
        sealed: this.sealer.seal(c.secret, c.id),
        algorithm: c.algorithm,
        digits: c.digits,
        step: c.step,
        requirePin: c.requirePin ? 1 : 0,
      };
    }
    this.db
      .prepare(
        `INSERT INTO credentials (id, user_id, type, match_key, locks, label, pin_length, duress, created_at,
           totp_sealed, totp_algorithm, totp_digits, totp_step, require_pin, last_step)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        c.id,
        c.userId,
        c.type,
        matchKeyOf(c),
        JSON.stringify(c.locks),
        c.label,
        c.type === "pin" ? c.pinLength : null,
        c.type === "pin" && c.duress ? 1 : 0,
        c.createdAt,
        totp?.sealed ?? null,
        totp?.algorithm ?? null,
        totp?.digits ?? null,
        totp?.step ?? null,
        totp?.requirePin ?? null,
        c.type === "totp" ? c.lastStep : null,
      );
    this.#touched([], [c.id]);
  }

  deleteCredential(id: string): void {
    this.db.prepare("DELETE FROM credentials WHERE id = ?").run(id);
    this.#touched([], [id]);
  }

  /** Every credential; TOTP secrets are unsealed into memory here (and kept there, like the index does). */
  credentials(): Credential[] {
    const read = () =>
      (this.db.prepare("SELECT * FROM credentials ORDER BY created_at, id").all() as Row[]).map((r) =>
        credentialFromRow(r, this.sealer),
      );
    if (this.db.inTransaction) return read();
    this.#freshenUserCaches();
    this.#credentialsCache ??= read();
    return this.#credentialsCache.slice();
  }

  /**
   * Record the time step of a TOTP code just accepted (RFC 6238 § 5.2 accept once). Never moves the
   * step back. Call inside the transaction that commits the grant's audit event.
   */
  setTotpLastStep(credentialId: string, step: number): void {
    this.st.totpLastStep!.run(step, credentialId, step);
    this.#touched([], [credentialId]);
  }

  markCredentialUsed(id: string, at: EpochMs): void {
    this.st.credentialUsed!.run(at, id);
    this.#touched([], [id]);
  }

  credentialLastUsed(): Map<string, EpochMs> {
    const rows = this.db
      .prepare("SELECT id, last_used_at FROM credentials WHERE last_used_at IS NOT NULL")
      .all() as Row[];
    return new Map(rows.map((r) => [r.id as string, EpochMs(r.last_used_at as number)]));
  }

  // ---------------------------------------------------------------- guest codes

  guestCodeIssuers(lockId?: string): GuestCodeIssuerRecord[] {
    const rows = (
      lockId === undefined
        ? this.db.prepare("SELECT * FROM guest_code_issuers ORDER BY created_at, issuer_id").all()
        : this.db
            .prepare("SELECT * FROM guest_code_issuers WHERE lock_id = ? ORDER BY created_at, issuer_id")
            .all(lockId)
    ) as Row[];
    return rows.map((r) => ({
      lockId: r.lock_id as string,
      issuerId: r.issuer_id as string,
      userId: r.user_id as string,
      name: r.name as string,
      epoch: r.epoch as number,
      createdAt: EpochMs(r.created_at as number),
    }));
  }

  upsertGuestCodeIssuer(i: GuestCodeIssuerRecord): void {
    this.db
      .prepare(
        `INSERT INTO guest_code_issuers (lock_id, issuer_id, user_id, name, epoch, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (lock_id, issuer_id) DO UPDATE SET name = excluded.name, epoch = excluded.epoch`,
      )
      .run(i.lockId, i.issuerId, i.userId, i.name, i.epoch, i.createdAt);
  }

  /** Remove an issuer and its per-code rows. */
  deleteGuestCodeIssuer(lockId: string, issuerId: string): void {
    this.db
      .prepare("DELETE FROM guest_code_issuers WHERE lock_id = ? AND issuer_id = ?")
      .run(lockId, issuerId);
    this.db.prepare("DELETE FROM guest_code_state WHERE lock_id = ? AND issuer_id = ?").run(lockId, issuerId);
  }

  /** Drop an issuer's rows of epochs below `minEpoch` (their codes no longer decode). */
  deleteGuestCodeStateBelowEpoch(lockId: string, issuerId: string, minEpoch: number): void {
    this.db
      .prepare("DELETE FROM guest_code_state WHERE lock_id = ? AND issuer_id = ? AND epoch < ?")
      .run(lockId, issuerId, minEpoch);
  }

  guestCodeStates(lockId: string): GuestCodeUsage[] {
    const rows = this.db.prepare("SELECT * FROM guest_code_state WHERE lock_id = ?").all(lockId) as Row[];
    return rows.map((r) => ({
      issuerId: r.issuer_id as string,
      epoch: r.epoch as number,
      codeId: r.code_id as string,
      revoked: r.revoked === 1,
      uses: r.uses as number,
      firstUsedAt: r.first_used_at === null ? null : EpochMs(r.first_used_at as number),
      dropAfter: r.drop_after as number,
    }));
  }

  /** Write one code's state. Call inside the transaction that commits the grant or revocation event. */
  putGuestCodeState(lockId: string, u: GuestCodeUsage): void {
    this.st.putGuestCode!.run(
      lockId,
      u.issuerId,
      u.epoch,
      u.codeId,
      u.revoked ? 1 : 0,
      u.uses,
      u.firstUsedAt,
      u.dropAfter,
    );
  }

  /** Delete the rows of `lockId` with drop_after ≤ `through` (a local minute). Returns how many. */
  pruneGuestCodeState(lockId: string, through: number): number {
    return this.db
      .prepare("DELETE FROM guest_code_state WHERE lock_id = ? AND drop_after <= ?")
      .run(lockId, through).changes;
  }

  guestCodeLedger(lockId: string): GuestCodeLedgerRecord[] {
    const rows = this.db
      .prepare("SELECT * FROM guest_code_ledger WHERE lock_id = ? ORDER BY issued_at, code_id")
      .all(lockId) as Row[];
    return rows.map((r) => ({
      lockId: r.lock_id as string,
      issuerId: r.issuer_id as string,
      epoch: r.epoch as number,
      codeId: r.code_id as string,
      name: r.name as string,
      kind: r.kind as string,
      validFrom: r.valid_from as string,
      validTo: r.valid_to as string,
      dropAfter: r.drop_after as number,
      issuedAt: EpochMs(r.issued_at as number),
    }));
  }

  putGuestCodeLedger(e: GuestCodeLedgerRecord): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO guest_code_ledger
           (lock_id, issuer_id, epoch, code_id, name, kind, valid_from, valid_to, drop_after, issued_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        e.lockId,
        e.issuerId,
        e.epoch,
        e.codeId,
        e.name,
        e.kind,
        e.validFrom,
        e.validTo,
        e.dropAfter,
        e.issuedAt,
      );
  }

  /** Delete ledger entries of `lockId` with drop_after ≤ `through` (local minute). */
  pruneGuestCodeLedger(lockId: string, through: number): number {
    return this.db
      .prepare("DELETE FROM guest_code_ledger WHERE lock_id = ? AND drop_after <= ?")
      .run(lockId, through).changes;
  }

  // ---------------------------------------------------------------- lockouts

  lockouts(): Map<string, Map<LockoutInput, InputLockoutState>> {
    const out = new Map<string, Map<LockoutInput, InputLockoutState>>();
    for (const r of this.db.prepare("SELECT * FROM lockouts").all() as Row[]) {
      const lockId = r.lock_id as string;
      let m = out.get(lockId);
      if (!m) {
        m = new Map();
        out.set(lockId, m);
      }
      m.set(r.input as LockoutInput, {
        failures: r.failures as number,
        strikes: r.strikes as number,
        disabledUntil: r.disabled_until === null ? null : EpochMs(r.disabled_until as number),
      });
    }
    return out;
  }

  setLockout(lockId: string, input: LockoutInput, s: InputLockoutState): void {
    this.st.setLockout!.run(lockId, input, s.failures, s.strikes, s.disabledUntil);
  }

  // ---------------------------------------------------------------- device state

  deviceState(lockId: string): unknown {
    const r = this.db.prepare("SELECT state FROM device_state WHERE lock_id = ?").get(lockId) as
      | Row
      | undefined;
    return r ? JSON.parse(r.state as string) : null;
  }

  #putDeviceState: Statement | null = null;

  /**
   * Persist the simulated hardware's own state (bolt, door, battery, RTC) so a restarted hub finds the
   * simulated lock as it left it. This is not audit data, and it is written without an fsync of its own
   * (synchronous=NORMAL for this one commit; WAL mode keeps it consistent). The durable commit that follows
   * every bolt movement (its `lock.state` event) makes it durable too; a power cut in between loses only the
   * simulator's newest reading. Inside a transaction it simply joins it.
   */
  setDeviceState(lockId: string, state: unknown): void {
    this.#putDeviceState ??= this.db.prepare(
      "INSERT INTO device_state (lock_id, state) VALUES (?, ?) ON CONFLICT (lock_id) DO UPDATE SET state = excluded.state",
    );
    if (this.db.inTransaction) {
      this.#putDeviceState.run(lockId, JSON.stringify(state));
      return;
    }
    this.db.pragma("synchronous = NORMAL");
    try {
      this.#putDeviceState.run(lockId, JSON.stringify(state));
    } finally {
      this.db.pragma("synchronous = FULL");
    }
  }

  // ---------------------------------------------------------------- API tokens

  insertToken(t: ApiTokenRecord, tokenHash: string): void {
    this.db
      .prepare("INSERT INTO api_tokens (id, token_hash, user_id, label, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(t.id, tokenHash, t.userId, t.label, t.createdAt);
  }

  tokensOf(userId: string): ApiTokenRecord[] {
    return (
      this.db.prepare("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at").all(userId) as Row[]
    ).map(tokenFromRow);
  }

  tokenById(id: string): ApiTokenRecord | null {
    const r = this.db.prepare("SELECT * FROM api_tokens WHERE id = ?").get(id) as Row | undefined;
    return r ? tokenFromRow(r) : null;
  }

  deleteToken(id: string): void {
    this.db.prepare("DELETE FROM api_tokens WHERE id = ?").run(id);
  }

  tokenByHash(tokenHash: string): ApiTokenRecord | null {
    const r = this.db.prepare("SELECT * FROM api_tokens WHERE token_hash = ?").get(tokenHash) as
      | Row
      | undefined;
    return r
      ? {
          id: r.id as string,
          userId: r.user_id as string,
          label: r.label as string,
          createdAt: EpochMs(r.created_at as number),
        }
      : null;
  }
}
