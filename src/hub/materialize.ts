/**
 * From the folded state of the operation log to the hub's tables (docs/protocol/sync.md § "Applying
 * operations at the hub"). The state decides; the tables follow it:
 *
 * - a user the state holds is written with the state's fields and schedules (first use and creation
 *   time stay the hub's own); a removed user is deleted with everything it has;
 * - a credential the state holds is written from its payload: a PIN box is opened with the hub's seal
 *   key and only its digest is stored; a `held` box keeps the digest or secret the hub already has; a
 *   removed credential is deleted;
 * - a lock's mode follows the state.
 *
 * Entities the log never mentions (none, once the log is active: activation records a snapshot) are left
 * alone. Only differences are written, so applying the same state twice changes nothing.
 */
import { assertPinAcceptable, effectiveMinLength, pinDigest } from "../core/credentials/pin-policy.ts";
import {
  TOTP_DEFAULT_ALGORITHM,
  TOTP_DEFAULT_DIGITS,
  TOTP_DEFAULT_STEP_SECONDS,
} from "../core/credentials/totp.ts";
import { type CryptoPort, toHex } from "../core/crypto.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { type Credential, inScope, type LockScope, type User } from "../core/model.ts";
import type { ReplicaCredential, ReplicaState } from "../core/ops/merge.ts";
import { openSealed, SealedKind, sealContext } from "../core/ops/seal.ts";
import { EpochMs, Seconds } from "../core/units.ts";
import type { LockRecord, SqliteEdgeStore } from "../store/sqlite/edge-store.ts";

/** What reconciling needs from the hub. */
export interface MaterializeContext {
  readonly crypto: CryptoPort;
  readonly store: SqliteEdgeStore;
  readonly siteId: string;
  readonly pinSecret: Uint8Array;
  readonly sealKey: Uint8Array;
  readonly now: () => number;
  /** The hub's locks and how to change one's record (mode). */
  readonly locks: () => LockRecord[];
  readonly updateLock: (next: LockRecord) => void;
}

/** What a reconcile changed (for the audit event and tests). */
export interface MaterializeResult {
  usersWritten: string[];
  usersRemoved: string[];
  credentialsWritten: string[];
  credentialsRemoved: string[];
  /** Credentials the state holds that could not be written (a box that does not open, an unknown user). */
  credentialsRefused: { id: string; code: string }[];
  modesSet: string[];
}

function sameScope(a: LockScope, b: LockScope): boolean {
  if (a === "all" || b === "all") return a === b;
  return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The credential a state entry stands for, or null when nothing needs writing. Throws LK_SEAL_INVALID
 * for a box that does not open with the hub's key (recorded as refused by the caller).
 */
function credentialFrom(
  ctx: MaterializeContext,
  rc: ReplicaCredential,
  cur: Credential | undefined,
  others: ReadonlyMap<string, Credential>,
): Credential | "keep" | "missing" {
  const base = {
    id: rc.id,
    userId: rc.userId,
    locks: rc.locks === "all" ? ("all" as const) : [...rc.locks],
    label: rc.label,
    createdAt: cur?.createdAt ?? EpochMs(ctx.now()),
  };
  const sameBase = (c: Credential) =>
    c.type === rc.type && c.userId === rc.userId && sameScope(c.locks, base.locks) && c.label === rc.label;
  switch (rc.type) {
    case "rfid":
      if (cur && sameBase(cur) && cur.type === "rfid" && cur.cardId === rc.cardId) return "keep";
      return { ...base, type: "rfid", cardId: rc.cardId };
    case "fingerprint":
      if (cur && sameBase(cur) && cur.type === "fingerprint" && cur.slot === rc.slot) return "keep";
      return { ...base, type: "fingerprint", slot: rc.slot };
    case "pin": {
      const s = openSealed(ctx.crypto, ctx.sealKey, rc.sealed, sealContext(ctx.siteId, rc.id));
      if (s.kind === SealedKind.Held) {
        if (cur?.type !== "pin") return "missing";
        if (sameBase(cur) && cur.duress === rc.duress) return "keep";
        return { ...cur, ...base, duress: rc.duress };
      }
      if (s.kind !== SealedKind.Pin) return "missing";
      const digest = pinDigest(ctx.crypto, ctx.pinSecret, s.pin);
      if (cur && cur.type === "pin" && sameBase(cur) && cur.pinDigest === digest && cur.duress === rc.duress)
        return "keep";
      // The hub's own PIN rules hold whoever set the PIN: the lock's minimum length (raised with the
      // number of codes) and no shared codes on an overlapping lock (LK_PIN_TOO_SHORT, LK_PIN_IN_USE).
      checkPinHere(ctx, rc.id, base.locks, s.pin, digest, others);
      return { ...base, type: "pin", pinDigest: digest, pinLength: s.pin.length, duress: rc.duress };
    }
    case "totp": {
      const s = openSealed(ctx.crypto, ctx.sealKey, rc.sealed, sealContext(ctx.siteId, rc.id));
      if (s.kind === SealedKind.Held) {
        if (cur?.type !== "totp") return "missing";
        if (sameBase(cur) && cur.requirePin === rc.requirePin) return "keep";
        return { ...cur, ...base, requirePin: rc.requirePin };
      }
      if (s.kind !== SealedKind.TotpSecret) return "missing";
      if (
        cur &&
        cur.type === "totp" &&
        sameBase(cur) &&
        toHex(cur.secret) === toHex(s.secret) &&
        cur.requirePin === rc.requirePin
      )
        return "keep";
      return {
        ...base,
        type: "totp",
        secret: s.secret,
        algorithm: TOTP_DEFAULT_ALGORITHM,
        digits: TOTP_DEFAULT_DIGITS,
        step: Seconds(TOTP_DEFAULT_STEP_SECONDS),
        requirePin: rc.requirePin,
        lastStep: cur?.type === "totp" && toHex(cur.secret) === toHex(s.secret) ? cur.lastStep : null,
      };
    }
  }
}

function overlaps(a: LockScope, b: LockScope): boolean {
  if (a === "all" || b === "all") return true;
  return a.some((id) => b.includes(id));
}

/** Throws LK_PIN_TOO_SHORT / LK_PIN_WEAK / LK_PIN_IN_USE as the hub's `setPin` would. */
function checkPinHere(
  ctx: MaterializeContext,
  id: string,
  scope: LockScope,
  pin: string,
  digest: string,
  creds: ReadonlyMap<string, Credential>,
): void {
  const pinsOnScope = [...creds.values()].filter(
    (c): c is Extract<Credential, { type: "pin" }> =>
      c.type === "pin" && c.id !== id && overlaps(c.locks, scope),
  );
  const locks = ctx.locks().filter((l) => scope === "all" || scope.includes(l.id));
  const minLength = Math.max(
    4,
    ...locks.map((l) =>
      effectiveMinLength(
        { minLength: l.settings.pinMinLength },
        pinsOnScope.filter((c) => inScope(c.locks, l.id)).length,
      ),
    ),
  );
  assertPinAcceptable(pin, minLength);
  if (pinsOnScope.some((c) => c.pinDigest === digest)) {
    throw new LatchkeyError("LK_PIN_IN_USE", "another credential on this lock already has this PIN");
  }
}

/**
 * Make the hub's tables match `state` (call inside a store transaction). Returns what changed.
 * Never throws for a credential it cannot write: it is listed in `credentialsRefused`.
 */
export function materialize(ctx: MaterializeContext, state: ReplicaState): MaterializeResult {
  const r: MaterializeResult = {
    usersWritten: [],
    usersRemoved: [],
    credentialsWritten: [],
    credentialsRemoved: [],
    credentialsRefused: [],
    modesSet: [],
  };
  const store = ctx.store;
  const users = new Map(store.users().map((u) => [u.id, u]));
  for (const id of state.removedUsers) {
    if (users.has(id)) {
      store.deleteUser(id);
      users.delete(id);
      r.usersRemoved.push(id);
    }
  }
  for (const [id, ru] of state.users) {
    if (ru.name === null) continue;
    const cur = users.get(id);
    const sched = state.schedules.get(id);
    const next: User = {
      id,
      name: ru.name,
      role: ru.role,
      userType: ru.userType,
      userStatus: ru.userStatus,
      expiringTimeout: ru.expiringTimeout,
      weekDaySchedules: sched ? [...sched.weekDay] : (cur?.weekDaySchedules ?? []),
      yearDaySchedules: sched ? [...sched.yearDay] : (cur?.yearDaySchedules ?? []),
      firstUsedAt: cur?.firstUsedAt ?? null,
      createdAt: cur?.createdAt ?? EpochMs(ctx.now()),
    };
    if (
      !cur ||
      cur.name !== next.name ||
      cur.role !== next.role ||
      cur.userType !== next.userType ||
      cur.userStatus !== next.userStatus ||
      cur.expiringTimeout !== next.expiringTimeout ||
      !sameJson(cur.weekDaySchedules, next.weekDaySchedules) ||
      !sameJson(cur.yearDaySchedules, next.yearDaySchedules)
    ) {
      store.upsertUser(next);
      users.set(id, next);
      r.usersWritten.push(id);
    }
  }
  const creds = new Map(store.credentials().map((c) => [c.id, c]));
  for (const id of state.removedCredentials) {
    if (creds.has(id)) {
      store.deleteCredential(id);
      creds.delete(id);
      r.credentialsRemoved.push(id);
    }
  }
  for (const [id, rc] of state.credentials) {
    if (!users.has(rc.userId)) {
      if (!creds.has(id)) r.credentialsRefused.push({ id, code: "LK_NOT_FOUND" });
      continue;
    }
    let next: ReturnType<typeof credentialFrom>;
    try {
      next = credentialFrom(ctx, rc, creds.get(id), creds);
    } catch (e) {
      r.credentialsRefused.push({ id, code: isLatchkeyError(e) ? e.code : "LK_INTERNAL" });
      continue;
    }
    if (next === "keep") continue;
    if (next === "missing") {
      r.credentialsRefused.push({ id, code: "LK_SEAL_INVALID" });
      continue;
    }
    if (creds.has(id)) store.deleteCredential(id);
    store.insertCredential(next);
    creds.set(id, next);
    r.credentialsWritten.push(id);
  }
  for (const lock of ctx.locks()) {
    const mode = state.modes.get(lock.id);
    if (mode !== undefined && mode !== lock.operatingMode) {
      ctx.updateLock({ ...lock, operatingMode: mode });
      r.modesSet.push(lock.id);
    }
  }
  return r;
}
