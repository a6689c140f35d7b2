/**
 * The audit store port: an append-only, hash-chained event log with signed checkpoints and a signed
 * trim anchor. Adapters: SQLite (`sqlite/edge-store.ts`, durable, the lock's own log) and in-memory
 * (`memory/memory-audit-store.ts`, tests and tools). Both pass `test/store/audit-store.acceptance.ts`.
 */
import type {
  AuditAnchor,
  AuditCheckpoint,
  AuditEvent,
  AuditEventInput,
  AuditKind,
} from "../core/audit/chain.ts";

/** Filters for {@link AuditStore.query}. Times in ms since epoch, `from` inclusive, `to` exclusive. */
export interface AuditQuery {
  readonly afterSeq?: number;
  readonly beforeSeq?: number;
  readonly limit: number;
  readonly lockId?: string;
  readonly userId?: string;
  readonly kinds?: readonly AuditKind[];
  readonly from?: number;
  readonly to?: number;
  /** Newest first when true (default false: ascending seq). */
  readonly descending?: boolean;
}

export interface AuditStore {
  /** The chain head: `{ seq: 0, hash: GENESIS_HASH }` (or the trim anchor) when empty. */
  head(): { seq: number; hash: string };
  /**
   * Chain and append events atomically; durable when this returns (SQLite: WAL, synchronous=FULL).
   * Throws LK_AUDIT_NOT_DURABLE if the write or sync failed; the caller must treat that as fatal.
   */
  append(events: readonly AuditEventInput[]): AuditEvent[];
  /** Events matching `q`, at most `q.limit`. */
  query(q: AuditQuery): AuditEvent[];
  /** All events from `fromSeq` on, ascending, streamed. */
  iterate(fromSeq?: number): Iterable<AuditEvent>;
  /** Number of stored events. */
  count(): number;
  putCheckpoint(cp: AuditCheckpoint): void;
  checkpoints(): Map<number, AuditCheckpoint>;
  latestCheckpoint(): AuditCheckpoint | null;
  anchor(): AuditAnchor | null;
  /**
   * Remove every event with seq ≤ `anchor.throughSeq` (and their checkpoints) and store the anchor,
   * atomically. The caller appends an `audit.trimmed` event first, so the trim itself is in the chain.
   */
  trim(anchor: AuditAnchor): void;
}
