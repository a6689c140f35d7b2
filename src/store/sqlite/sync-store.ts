/**
 * The SQLite tables of management operations (migration 005): the signed operations a hub holds and
 * which of them the cloud has acknowledged. The sync cursors live in `meta` (keys `sync.*`, `ops.*`).
 */
import type { Database, Statement } from "better-sqlite3";
import { hlcToText } from "../../core/ops/hlc.ts";
import type { Operation } from "../../core/ops/operation.ts";

/** A stored operation row. */
export interface OpRow {
  readonly opId: string;
  readonly cose: Uint8Array;
  readonly origin: "local" | "remote";
  readonly cloudAcked: boolean;
}

type Row = Record<string, unknown>;

function fromRow(r: Row): OpRow {
  return {
    opId: r.op_id as string,
    cose: new Uint8Array(r.cose as Buffer),
    origin: r.origin as "local" | "remote",
    cloudAcked: (r.cloud_acked as number) === 1,
  };
}

/** Operations held by the hub. Writes join the caller's transaction when there is one. */
export class OpTables {
  readonly #insert: Statement;
  readonly #ack: Statement;
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
    this.#insert = db.prepare(
      "INSERT OR IGNORE INTO ops (op_id, hlc, kind, target, actor, cose, origin, cloud_acked, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#ack = db.prepare("UPDATE ops SET cloud_acked = 1 WHERE op_id = ? AND cloud_acked = 0");
  }

  /** Store an operation (ignored when its id is held). Returns true when it was new. */
  insert(
    op: Operation,
    cose: Uint8Array,
    origin: "local" | "remote",
    cloudAcked: boolean,
    at: number,
  ): boolean {
    return (
      this.#insert.run(
        op.id,
        hlcToText(op.hlc),
        op.kind,
        op.target,
        op.actor,
        Buffer.from(cose),
        origin,
        cloudAcked ? 1 : 0,
        at,
      ).changes === 1
    );
  }

  /** Every operation in merge order of their stamps. */
  all(): OpRow[] {
    return (
      this.#db.prepare("SELECT op_id, cose, origin, cloud_acked FROM ops ORDER BY hlc, op_id").all() as Row[]
    ).map(fromRow);
  }

  /** Operations the cloud has not acknowledged, oldest stamp first. */
  unacked(limit: number): OpRow[] {
    return (
      this.#db
        .prepare(
          "SELECT op_id, cose, origin, cloud_acked FROM ops WHERE cloud_acked = 0 ORDER BY hlc, op_id LIMIT ?",
        )
        .all(limit) as Row[]
    ).map(fromRow);
  }

  /** Mark operations as held by the cloud; returns how many changed. */
  markAcked(ids: readonly string[]): number {
    let n = 0;
    const run = this.#db.transaction(() => {
      for (const id of ids) n += this.#ack.run(id).changes;
    });
    run();
    return n;
  }

  /** How many operations are held, and how many the cloud has not acknowledged. */
  counts(): { total: number; unacked: number } {
    const r = this.#db
      .prepare("SELECT count(*) AS total, coalesce(sum(1 - cloud_acked), 0) AS unacked FROM ops")
      .get() as { total: number; unacked: number };
    return { total: r.total, unacked: r.unacked };
  }

  /** Forget every operation (a new owner root: a new genesis). */
  clear(): void {
    this.#db.prepare("DELETE FROM ops").run();
  }
}
