/**
 * The SQLite tables behind the console's health and readiness pages (migration 006): battery samples
 * and readiness-check reports. Both are bounded: samples older than {@link BATTERY_KEEP_MS} and reports
 * beyond {@link REPORTS_KEPT} are deleted as new ones arrive.
 */
import type { Database, Statement } from "better-sqlite3";

/** One battery reading of a lock. `at` in ms since the epoch; `percent` 0–100. */
export interface BatterySample {
  readonly at: number;
  readonly percent: number;
  readonly millivolts: number;
}

/** How long battery samples are kept: 400 days (a pack lasts about a year). */
export const BATTERY_KEEP_MS = 400 * 86_400_000;
/** How many readiness reports are kept. */
export const REPORTS_KEPT = 100;

/** A stored readiness report: its summary columns and the JSON document. */
export interface StoredReport {
  readonly id: string;
  readonly startedAt: number;
  readonly passed: boolean;
  readonly report: string;
}

export class ConsoleTables {
  readonly #addSample: Statement;
  readonly #lastSample: Statement;
  readonly #samples: Statement;
  readonly #pruneSamples: Statement;
  readonly #putReport: Statement;
  readonly #pruneReports: Statement;
  readonly #reports: Statement;
  readonly #report: Statement;
  readonly #lastGrant: Statement;
  readonly #denied: Statement;

  constructor(db: Database) {
    this.#addSample = db.prepare(
      "INSERT OR REPLACE INTO battery_samples (lock_id, at, percent, millivolts) VALUES (?, ?, ?, ?)",
    );
    this.#lastSample = db.prepare(
      "SELECT at, percent, millivolts FROM battery_samples WHERE lock_id = ? ORDER BY at DESC LIMIT 1",
    );
    this.#samples = db.prepare(
      "SELECT at, percent, millivolts FROM battery_samples WHERE lock_id = ? AND at >= ? ORDER BY at",
    );
    this.#pruneSamples = db.prepare("DELETE FROM battery_samples WHERE lock_id = ? AND at < ?");
    this.#putReport = db.prepare(
      "INSERT INTO readiness_reports (id, started_at, passed, report) VALUES (?, ?, ?, ?)",
    );
    this.#pruneReports = db.prepare(
      "DELETE FROM readiness_reports WHERE id NOT IN (SELECT id FROM readiness_reports ORDER BY started_at DESC, id DESC LIMIT ?)",
    );
    this.#reports = db.prepare(
      "SELECT id, started_at, passed, report FROM readiness_reports ORDER BY started_at DESC, id DESC LIMIT ?",
    );
    this.#report = db.prepare("SELECT id, started_at, passed, report FROM readiness_reports WHERE id = ?");
    // The (user_id, seq) index walks one person's events newest first until their last grant.
    this.#lastGrant = db.prepare(
      "SELECT at FROM audit_events WHERE user_id = ? AND kind = 'access.granted' ORDER BY seq DESC LIMIT 1",
    );
    this.#denied = db.prepare(
      "SELECT json_extract(data, '$.credentialId') AS credential, count(*) AS n FROM audit_events " +
        "WHERE kind = 'access.denied' AND at >= ? AND json_extract(data, '$.credentialId') IS NOT NULL GROUP BY credential",
    );
  }

  /** The newest sample of a lock, or null. */
  lastBatterySample(lockId: string): BatterySample | null {
    return (this.#lastSample.get(lockId) as BatterySample | undefined) ?? null;
  }

  /** Record a sample and drop the lock's samples older than {@link BATTERY_KEEP_MS}. */
  addBatterySample(lockId: string, s: BatterySample): void {
    this.#addSample.run(lockId, s.at, s.percent, Math.round(s.millivolts));
    this.#pruneSamples.run(lockId, s.at - BATTERY_KEEP_MS);
  }

  /** Samples of a lock at or after `since` (ms), oldest first. */
  batterySamples(lockId: string, since: number): BatterySample[] {
    return this.#samples.all(lockId, since) as BatterySample[];
  }

  /** When `userId` was last granted access (ms), from the audit log; null if never (or trimmed). */
  lastGrantAt(userId: string): number | null {
    return (this.#lastGrant.get(userId) as { at: number } | undefined)?.at ?? null;
  }

  /** Refusals since `since` (ms) per credential id, from the audit log. */
  refusalsByCredential(since: number): Map<string, number> {
    const rows = this.#denied.all(since) as { credential: string; n: number }[];
    return new Map(rows.map((r) => [r.credential, r.n]));
  }

  /** Store a report and keep only the newest {@link REPORTS_KEPT}. */
  putReport(r: StoredReport): void {
    this.#putReport.run(r.id, r.startedAt, r.passed ? 1 : 0, r.report);
    this.#pruneReports.run(REPORTS_KEPT);
  }

  /** The newest reports first. */
  reports(limit = REPORTS_KEPT): StoredReport[] {
    return (this.#reports.all(limit) as Record<string, unknown>[]).map(rowToReport);
  }

  report(id: string): StoredReport | null {
    const r = this.#report.get(id) as Record<string, unknown> | undefined;
    return r ? rowToReport(r) : null;
  }
}

function rowToReport(r: Record<string, unknown>): StoredReport {
  return {
    id: r.id as string,
    startedAt: r.started_at as number,
    passed: r.passed === 1,
    report: r.report as string,
  };
}
