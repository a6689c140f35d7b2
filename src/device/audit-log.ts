/**
 * The lock's durable audit log: appends events through the store's transaction (so a decision and its
 * effects commit together, synchronously, before the bolt moves), signs checkpoints off the hot path,
 * and trims to a size bound with a signed anchor — never silently.
 */
import {
  type AuditEvent,
  type AuditEventInput,
  AuditKind,
  type ChainVerification,
  signAnchor,
  signCheckpoint,
  verifyChain,
} from "../core/audit/chain.ts";
import type { Clock } from "../core/clock.ts";
import type { CryptoPort } from "../core/crypto.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import type { TransactionalAuditStore } from "../store/edge-ports.ts";

export interface AuditLogOptions {
  readonly store: TransactionalAuditStore;
  readonly crypto: CryptoPort;
  readonly clock: Clock;
  /** Identifies the signer in checkpoint messages (the hub's device id). */
  readonly deviceId: string;
  /** The device's 32-byte Ed25519 seed. */
  readonly deviceKey: Uint8Array;
  /** Sign a checkpoint every this many events. Default 256. */
  readonly checkpointEvery?: number;
  /** Keep at most this many events; older ones are trimmed behind a signed anchor. Default 1,000,000. */
  readonly maxEvents?: number;
  /**
   * Called when the log cannot be made durable. Must not return normally into the decision path:
   * the hub stops (a supervisor restarts it) rather than retry and believe a write it cannot prove.
   */
  readonly onFatal: (e: LatchkeyError) => void;
  /** Defers work off the hot path (the hub passes its scheduler; default a 0 ms timer). */
  readonly defer?: (fn: () => void) => void;
}

export type AuditListener = (events: readonly AuditEvent[]) => void;

export class AuditLog {
  private readonly o: Required<Omit<AuditLogOptions, "defer">> & { defer: (fn: () => void) => void };
  private sinceCheckpoint: number;
  private checkpointQueued = false;
  private readonly listeners = new Set<AuditListener>();

  constructor(opts: AuditLogOptions) {
    this.o = {
      checkpointEvery: 256,
      maxEvents: 1_000_000,
      defer: (fn) => setTimeout(fn, 0),
      ...opts,
    };
    const last = this.o.store.latestCheckpoint();
    this.sinceCheckpoint = this.o.store.head().seq - (last?.seq ?? this.o.store.anchor()?.throughSeq ?? 0);
  }

  /**
   * Append `events` and run `alsoInTransaction` (state effects) in the same durable transaction.
   * Returns the committed events. On a storage failure calls `onFatal` and rethrows LK_AUDIT_NOT_DURABLE.
   * `events` may be a function: it runs inside the transaction after `alsoInTransaction`, for events that
   * describe what the state effects did.
   */
  commit(
    events: readonly AuditEventInput[] | (() => readonly AuditEventInput[]),
    alsoInTransaction?: () => void,
  ): AuditEvent[] {
    if (this.o.store.inTransaction) {
      // Listeners would hear of events an outer rollback could still undo.
      throw new LatchkeyError("LK_INTERNAL", "audit commit inside another transaction");
    }
    let committed: AuditEvent[];
    try {
      committed = this.o.store.transaction(() => {
        alsoInTransaction?.();
        return this.o.store.appendInTransaction(typeof events === "function" ? events() : events);
      });
    } catch (e) {
      this.o.store.reloadHead();
      const err = isLatchkeyError(e)
        ? e
        : new LatchkeyError("LK_AUDIT_NOT_DURABLE", `audit commit failed: ${(e as Error).message}`);
      if (err.code === "LK_AUDIT_NOT_DURABLE" || !isLatchkeyError(e)) this.o.onFatal(err);
      throw err;
    }
    this.sinceCheckpoint += committed.length;
    if (this.sinceCheckpoint >= this.o.checkpointEvery && !this.checkpointQueued) {
      this.checkpointQueued = true;
      this.o.defer(() => {
        this.checkpointQueued = false;
        // The owner closed the log (and its store) before this ran: nothing to sign any more.
        if (this.closed) return;
        this.safely(() => {
          this.checkpoint();
          this.trimIfNeeded();
          this.o.store.compact?.();
        });
      });
    }
    for (const l of this.listeners) {
      try {
        l(committed);
      } catch (e) {
        // A listener (live feed) must never undo what follows a durable commit (moving the bolt).
        console.error("latchkey: audit listener failed:", e);
      }
    }
    return committed;
  }

  /** Append events with no other state change. */
  append(...events: AuditEventInput[]): AuditEvent[] {
    return this.commit(events);
  }

  private closed = false;

  /** Stop deferred work (a queued checkpoint or trim); call before closing the store. Idempotent. */
  close(): void {
    this.closed = true;
  }

  /** Sign the current head (no-op when already signed). Called periodically and at shutdown. */
  checkpoint(): void {
    const head = this.o.store.head();
    if (head.seq === 0 || this.o.store.latestCheckpoint()?.seq === head.seq) return;
    this.o.store.putCheckpoint(
      signCheckpoint(this.o.crypto, this.o.deviceId, this.o.deviceKey, head, this.o.clock.now()),
    );
    this.sinceCheckpoint = 0;
  }

  /**
   * Enforce `maxEvents`: when over, record an `audit.trimmed` event, sign an anchor at the last removed
   * event and delete up to it (keeping 90 % of the bound). Returns the number of events removed.
   */
  trimIfNeeded(): number {
    const count = this.o.store.count();
    if (count <= this.o.maxEvents) return 0;
    const keep = Math.floor(this.o.maxEvents * 0.9);
    const head = this.o.store.head();
    const firstSeq = head.seq - count + 1;
    let throughSeq = firstSeq + (count - keep) - 1;
    // Events a replica still needs (not yet acknowledged by the cloud) stay, up to twice the bound: past
    // that, bounded storage wins and the replica sees the trim anchor (a flagged gap) instead.
    const needed = this.keepFrom?.() ?? null;
    if (needed !== null && throughSeq >= needed && count <= 2 * this.o.maxEvents) throughSeq = needed - 1;
    if (throughSeq < firstSeq) return 0;
    const [through] = this.o.store.query({ afterSeq: throughSeq - 1, limit: 1 });
    if (!through || through.seq !== throughSeq)
      throw new LatchkeyError("LK_INTERNAL", "trim point not found");
    const now = this.o.clock.now();
    this.commit([
      {
        at: now,
        lockId: null,
        kind: AuditKind.AuditTrimmed,
        data: {
          throughSeq,
          throughHash: through.hash,
          removed: throughSeq - firstSeq + 1,
          maxEvents: this.o.maxEvents,
        },
      },
    ]);
    const anchor = signAnchor(
      this.o.crypto,
      this.o.deviceId,
      this.o.deviceKey,
      { seq: throughSeq, hash: through.hash },
      now,
    );
    this.o.store.trim(anchor);
    this.checkpoint();
    return throughSeq - firstSeq + 1;
  }

  /** Verify the whole stored chain against the device public key. */
  verify(publicKey: Uint8Array): ChainVerification {
    const s = this.o.store;
    return verifyChain(this.o.crypto, this.o.deviceId, publicKey, s.anchor(), s.iterate(), s.checkpoints());
  }

  /**
   * The first seq a replica still needs (the cloud sync's resume point + 1), or null: trimming keeps it
   * and everything after (see {@link trimIfNeeded}). Set by the cloud sync when it starts.
   */
  keepFrom: (() => number | null) | null = null;

  /** Live feed of committed events (console, SSE). Returns an unsubscribe function. */
  subscribe(l: AuditListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      const err = isLatchkeyError(e) ? e : new LatchkeyError("LK_AUDIT_NOT_DURABLE", (e as Error).message);
      this.o.onFatal(err);
    }
  }
}
