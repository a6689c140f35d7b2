/**
 * What the lock runtime needs from storage, as ports. The SQLite edge store implements both; the
 * device layer depends on these interfaces only.
 */

import type { AuditEvent, AuditEventInput } from "../core/audit/chain.ts";
import type { GuestCodeUsage } from "../core/credentials/guest-code.ts";
import type { InputLockoutState, LockoutInput } from "../core/lockout.ts";
import type { User } from "../core/model.ts";
import type { AuditStore } from "./audit-store.ts";
import type { LockRecord } from "./sqlite/edge-store.ts";

/** An audit store whose appends can share one durable transaction with other state changes. */
export interface TransactionalAuditStore extends AuditStore {
  /** Run `fn` atomically and durably; nested calls join the outer transaction. */
  transaction<T>(fn: () => T): T;
  /** Chain and append inside the current transaction. */
  appendInTransaction(inputs: readonly AuditEventInput[]): AuditEvent[];
  /** True while a transaction is open. */
  readonly inTransaction: boolean;
  /** Re-read the chain head from durable storage (after a failure). */
  reloadHead(): void;
  /** Storage housekeeping the caller runs off the hot path (SQLite: fold the WAL into the database). */
  compact?(): void;
}

/** The lock runtime's own state: lockout counters, time floors, users touched by decisions, TOTP steps, lock config. */
export interface RuntimeStateStore {
  lockouts(): Map<string, Map<LockoutInput, InputLockoutState>>;
  setLockout(lockId: string, input: LockoutInput, s: InputLockoutState): void;
  getMeta(key: string): string | null;
  setMeta(key: string, value: string): void;
  upsertUser(u: User): void;
  updateLock(l: LockRecord): void;
  /** Persist a TOTP credential's last accepted time step (accept once); never moves it back. */
  setTotpLastStep(credentialId: string, step: number): void;
  /** The lock's per-code guest-code rows (docs/protocol/guest-codes.md § 5). */
  guestCodeStates(lockId: string): GuestCodeUsage[];
  /** Write one guest code's row (inside the grant's or revocation's transaction). */
  putGuestCodeState(lockId: string, u: GuestCodeUsage): void;
  /** Delete rows with drop_after ≤ `through` (local minute); returns how many. */
  pruneGuestCodeState(lockId: string, through: number): number;
}
