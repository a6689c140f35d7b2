/**
 * The merge of management operations into replica state (spec: docs/protocol/operations.md § "Merge").
 *
 * A replica's state is a function of the *set* of operations it holds, and of nothing else:
 *
 *     state = fold(apply, genesis, sort(dedupe(ops)))
 *
 * - `dedupe`: by operation id (the hash of the canonical encoding), so a copy is the same operation;
 * - `sort`: by HLC stamp, then id ({@link compareOperations}), a total order every replica computes alike;
 * - `apply`: the rules below, one operation at a time, each judged against the state built so far.
 *
 * Sets merge by union, so the merge is idempotent (A ∪ A = A), commutative and associative, and every
 * replica holding the same operations holds the same state, whatever the order, duplication or
 * partition in which they arrived.
 *
 * Rules, per operation in that order:
 * 1. **Authority** ({@link authorize}): the actor must be an owner, or an admin for kinds other than
 *    owner.add/owner.remove/role.set, at that point of the order. Otherwise the operation is skipped.
 * 2. **Last writer wins** for upserts and sets: a later operation overwrites an earlier one, per field
 *    for `user.upsert` (absent fields keep their value), per entity for `credential.upsert`,
 *    `schedule.set`, `mode.set`, `role.set`, `key.issue`.
 * 3. **Removal and revocation win, for good**: `user.remove`, `credential.remove`, `key.revoke`,
 *    `role.set` with null and `owner.remove` leave a tombstone for the target id that no upsert ever
 *    lifts, earlier, concurrent or later. HLC stamps cannot tell a concurrent grant from a later one, so
 *    a removed id stays removed and a new grant takes a new id (users and credentials get fresh ids,
 *    a key a new serial, an admin a new key). Removing a user removes its credentials and schedule, and
 *    credentials later written for a removed user are skipped. A remove of an id never seen still
 *    leaves its tombstone.
 * 4. **Never strand the lock**: an `owner.remove` that would leave no owner is skipped (no tombstone):
 *    of owners removing each other concurrently, the remove that comes last in the order is the one
 *    skipped, so exactly one owner stays.
 * Guest-code revocations only accumulate (the largest `dropAfter` of one code's revocations is kept).
 *
 * Pure: no I/O, no clock. Operations must come from `makeOperation`, `decodeOperation` or
 * `verifyOperation`, whose ids are the hashes of their contents.
 */

import type { CryptoPort } from "../crypto.ts";
import { toHex } from "../crypto.ts";
import { encodeDeterministic } from "../envelope/cbor.ts";
import { LatchkeyError } from "../errors.ts";
import { assertUsablePublicKey, keyId, type PublicKey } from "../keys/digital-key.ts";
import type { OperatingMode, Role, UserStatus, UserType } from "../model.ts";
import type { Seconds } from "../units.ts";
import {
  type ActorStanding,
  authorize,
  type CredentialUpsertPayload,
  compareOperations,
  type DelegatedRole,
  type GuestCodeRevokePayload,
  type KeyIssuePayload,
  type Operation,
  payloadToCbor,
  type ScheduleSetPayload,
} from "./operation.ts";

/** The owners a lock starts with: the root key(s) registered when it was claimed. Same on every replica. */
export interface Genesis {
  /** Key id (32 lowercase hex digits) → public key; at least one. */
  readonly owners: ReadonlyMap<string, PublicKey>;
}

/**
 * The genesis of a lock claimed by `ownerKeys` (at least one).
 * @throws LatchkeyError `LK_INVALID_INPUT` for no keys; `LK_ENVELOPE_ALG` for an unusable key.
 */
export function genesisOf(crypto: CryptoPort, ownerKeys: readonly PublicKey[]): Genesis {
  if (ownerKeys.length === 0)
    throw new LatchkeyError("LK_INVALID_INPUT", "a lock starts with at least one owner");
  const owners = new Map<string, PublicKey>();
  for (const k of ownerKeys) {
    assertUsablePublicKey(k);
    owners.set(toHex(keyId(crypto, k)), { alg: k.alg, key: k.key.slice() });
  }
  return { owners: sortedMap(owners) };
}

/** Why an operation was skipped by the merge. Stable ids (they are shown as drift and audited). */
export const SkipReason = {
  /** The actor was not allowed to make it at its place in the order ({@link authorize}). */
  Unauthorized: "unauthorized",
  /** Its target (or a credential's user) was removed: removal wins for good. */
  Removed: "removed",
  /** Its key serial or its role grant was revoked: revocation wins for good. */
  Revoked: "revoked",
  /** It would have removed the last owner. */
  LastOwner: "last_owner",
} as const;
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason];

/** A user as the merge holds it. Fields never set by a `user.upsert` have their defaults. */
export interface ReplicaUser {
  readonly id: string;
  /** Null until a `user.upsert` names the user. */
  readonly name: string | null;
  /** Default `unrestricted`. */
  readonly userType: UserType;
  /** Default `occupiedEnabled`. */
  readonly userStatus: UserStatus;
  /** Default null. */
  readonly expiringTimeout: Seconds | null;
  /** The user's role at the management API. Default `member`. */
  readonly role: Role;
}

/** A credential as the merge holds it: its id and its last `credential.upsert` payload. */
export type ReplicaCredential = CredentialUpsertPayload & { readonly id: string };

/** A guest-code revocation as the merge holds it. */
export interface ReplicaGuestCodeRevocation extends GuestCodeRevokePayload {
  readonly codeId: string;
}

/**
 * The state of one replica. Maps are in merge order of first insertion, which is the same on every
 * replica; compare states with {@link encodeReplicaState}.
 */
export interface ReplicaState {
  /** Key id → owner public key. Never empty. */
  readonly owners: ReadonlyMap<string, PublicKey>;
  readonly removedOwners: ReadonlySet<string>;
  /** Key id → role given by `role.set`. */
  readonly roles: ReadonlyMap<string, DelegatedRole>;
  readonly revokedRoles: ReadonlySet<string>;
  readonly users: ReadonlyMap<string, ReplicaUser>;
  readonly removedUsers: ReadonlySet<string>;
  readonly credentials: ReadonlyMap<string, ReplicaCredential>;
  readonly removedCredentials: ReadonlySet<string>;
  /** User id → schedules. */
  readonly schedules: ReadonlyMap<string, ScheduleSetPayload>;
  /** Lock id → OperatingMode. */
  readonly modes: ReadonlyMap<string, OperatingMode>;
  /** Key serial (hex) → issued key. */
  readonly keys: ReadonlyMap<string, KeyIssuePayload>;
  readonly revokedKeys: ReadonlySet<string>;
  /** {@link guestCodeKey} → revocation. */
  readonly revokedGuestCodes: ReadonlyMap<string, ReplicaGuestCodeRevocation>;
  /** Operation id → why the merge skipped it. */
  readonly skipped: ReadonlyMap<string, SkipReason>;
  /** How many operations the merge applied (not skipped). */
  readonly applied: number;
}

/** The key of a guest code in {@link ReplicaState.revokedGuestCodes}: `[issuerId, epoch, codeId]` as JSON. */
export function guestCodeKey(issuerId: string, epoch: number, codeId: string): string {
  return JSON.stringify([issuerId, epoch, codeId]);
}

/** The mutable state the fold works on. */
class Accumulator {
  readonly owners: Map<string, PublicKey>;
  readonly removedOwners = new Set<string>();
  readonly roles = new Map<string, DelegatedRole>();
  readonly revokedRoles = new Set<string>();
  readonly users = new Map<string, ReplicaUser>();
  readonly removedUsers = new Set<string>();
  readonly credentials = new Map<string, ReplicaCredential>();
  readonly removedCredentials = new Set<string>();
  readonly schedules = new Map<string, ScheduleSetPayload>();
  readonly modes = new Map<string, OperatingMode>();
  readonly keys = new Map<string, KeyIssuePayload>();
  readonly revokedKeys = new Set<string>();
  readonly revokedGuestCodes = new Map<string, ReplicaGuestCodeRevocation>();
  readonly skipped = new Map<string, SkipReason>();
  applied = 0;

  constructor(genesis: Genesis) {
    this.owners = new Map(genesis.owners);
  }

  standing(actor: string): ActorStanding {
    if (this.owners.has(actor)) return "owner";
    return this.roles.get(actor) ?? null;
  }

  apply(op: Operation): void {
    if (!authorize(op, this.standing(op.actor)).ok) {
      this.skipped.set(op.id, SkipReason.Unauthorized);
      return;
    }
    const reason = this.#change(op);
    if (reason === null) this.applied++;
    else this.skipped.set(op.id, reason);
  }

  /** Apply one authorised operation; the reason it had no effect, or null. */
  #change(op: Operation): SkipReason | null {
    const t = op.target;
    switch (op.kind) {
      case "user.upsert": {
        if (this.removedUsers.has(t)) return SkipReason.Removed;
        const before =
          this.users.get(t) ??
          ({
            id: t,
            name: null,
            userType: "unrestricted",
            userStatus: "occupiedEnabled",
            expiringTimeout: null,
            role: "member",
          } satisfies ReplicaUser);
        const p = op.payload;
        this.users.set(t, {
          id: t,
          name: p.name ?? before.name,
          userType: p.userType ?? before.userType,
          userStatus: p.userStatus ?? before.userStatus,
          expiringTimeout: p.expiringTimeout !== undefined ? p.expiringTimeout : before.expiringTimeout,
          role: p.role ?? before.role,
        });
        return null;
      }
      case "user.remove":
        this.removedUsers.add(t);
        this.users.delete(t);
        this.schedules.delete(t);
        for (const [id, c] of this.credentials) {
          if (c.userId === t) {
            this.credentials.delete(id);
            this.removedCredentials.add(id);
          }
        }
        return null;
      case "credential.upsert":
        if (this.removedCredentials.has(t) || this.removedUsers.has(op.payload.userId))
          return SkipReason.Removed;
        this.credentials.set(t, { ...op.payload, id: t });
        return null;
      case "credential.remove":
        this.credentials.delete(t);
        this.removedCredentials.add(t);
        return null;
      case "schedule.set":
        if (this.removedUsers.has(t)) return SkipReason.Removed;
        this.schedules.set(t, op.payload);
        return null;
      case "mode.set":
        this.modes.set(t, op.payload.mode);
        return null;
      case "role.set":
        if (op.payload.role === null) {
          this.roles.delete(t);
          this.revokedRoles.add(t);
          return null;
        }
        if (this.revokedRoles.has(t)) return SkipReason.Revoked;
        this.roles.set(t, op.payload.role);
        return null;
      case "key.issue":
        if (this.revokedKeys.has(t)) return SkipReason.Revoked;
        this.keys.set(t, op.payload);
        return null;
      case "key.revoke":
        this.keys.delete(t);
        this.revokedKeys.add(t);
        return null;
      case "guestcode.revoke": {
        const p = op.payload;
        const k = guestCodeKey(p.issuerId, p.epoch, t);
        const before = this.revokedGuestCodes.get(k);
        if (before === undefined || before.dropAfter < p.dropAfter) {
          this.revokedGuestCodes.set(k, {
            issuerId: p.issuerId,
            epoch: p.epoch,
            codeId: t,
            dropAfter: p.dropAfter,
          });
        }
        return null;
      }
      case "owner.add":
        if (this.removedOwners.has(t)) return SkipReason.Removed;
        this.owners.set(t, op.payload.key);
        return null;
      case "owner.remove":
        if (this.owners.has(t) && this.owners.size === 1) return SkipReason.LastOwner;
        this.owners.delete(t);
        this.removedOwners.add(t);
        return null;
    }
  }

  snapshot(): ReplicaState {
    return {
      owners: new Map(this.owners),
      removedOwners: new Set(this.removedOwners),
      roles: new Map(this.roles),
      revokedRoles: new Set(this.revokedRoles),
      users: new Map(this.users),
      removedUsers: new Set(this.removedUsers),
      credentials: new Map(this.credentials),
      removedCredentials: new Set(this.removedCredentials),
      schedules: new Map(this.schedules),
      modes: new Map(this.modes),
      keys: new Map(this.keys),
      revokedKeys: new Set(this.revokedKeys),
      revokedGuestCodes: new Map(this.revokedGuestCodes),
      skipped: new Map(this.skipped),
      applied: this.applied,
    };
  }
}

function sortedMap<V>(m: ReadonlyMap<string, V>): Map<string, V> {
  return new Map([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function sameGenesis(a: Genesis, b: Genesis): boolean {
  if (a.owners.size !== b.owners.size) return false;
  for (const [id, k] of a.owners) {
    const o = b.owners.get(id);
    if (o === undefined || o.alg !== k.alg || toHex(o.key) !== toHex(k.key)) return false;
  }
  return true;
}

/**
 * One replica's operations and the state they fold to. Adding operations that all sort after the
 * ones held applies just them (the common case: new changes); anything else re-folds from the genesis.
 * Either way `state()` equals {@link foldOps} over {@link OpLog.ops} (the tests check it).
 */
export class OpLog {
  readonly genesis: Genesis;
  #ops: Operation[] = [];
  readonly #ids = new Set<string>();
  #acc: Accumulator;
  #snapshot: ReplicaState | null = null;

  constructor(genesis: Genesis) {
    if (genesis.owners.size === 0) {
      throw new LatchkeyError("LK_INVALID_INPUT", "a lock starts with at least one owner");
    }
    this.genesis = genesis;
    this.#acc = new Accumulator(genesis);
  }

  /** How many distinct operations are held. */
  get size(): number {
    return this.#ops.length;
  }

  /** Is the operation with this id held? */
  has(id: string): boolean {
    return this.#ids.has(id);
  }

  /** The operations held, in merge order (a copy). */
  ops(): Operation[] {
    return this.#ops.slice();
  }

  /** Add operations (copies and already-held ones are ignored); returns how many were new. */
  add(ops: Iterable<Operation>): number {
    const fresh: Operation[] = [];
    for (const op of ops) {
      if (this.#ids.has(op.id)) continue;
      this.#ids.add(op.id);
      fresh.push(op);
    }
    if (fresh.length === 0) return 0;
    fresh.sort(compareOperations);
    const last = this.#ops[this.#ops.length - 1];
    this.#snapshot = null;
    if (last === undefined || compareOperations(last, fresh[0]!) < 0) {
      for (const op of fresh) {
        this.#ops.push(op);
        this.#acc.apply(op);
      }
    } else {
      this.#ops = this.#ops.concat(fresh).sort(compareOperations);
      this.#acc = new Accumulator(this.genesis);
      for (const op of this.#ops) this.#acc.apply(op);
    }
    return fresh.length;
  }

  /**
   * Take every operation of `other` (a replica of the same lock); returns how many were new.
   * @throws LatchkeyError `LK_CONFLICT` when the two logs start from different genesis owners.
   */
  merge(other: OpLog): number {
    if (!sameGenesis(this.genesis, other.genesis)) {
      throw new LatchkeyError(
        "LK_CONFLICT",
        "the two replicas belong to locks with different owners at genesis",
      );
    }
    return this.add(other.#ops);
  }

  /** The state the held operations fold to. A fresh copy per change; the same object until then. */
  state(): ReplicaState {
    this.#snapshot ??= this.#acc.snapshot();
    return this.#snapshot;
  }
}

/** The state of a set of operations from a genesis (see the module doc). Order and copies do not matter. */
export function foldOps(genesis: Genesis, ops: Iterable<Operation>): ReplicaState {
  const log = new OpLog(genesis);
  log.add(ops);
  return log.state();
}

/** The union of two operation sets, without copies, in merge order. */
export function mergeOpSets(a: Iterable<Operation>, b: Iterable<Operation>): Operation[] {
  const byId = new Map<string, Operation>();
  for (const op of a) if (!byId.has(op.id)) byId.set(op.id, op);
  for (const op of b) if (!byId.has(op.id)) byId.set(op.id, op);
  return [...byId.values()].sort(compareOperations);
}

const byKey = <T>(entries: Iterable<[string, T]>): [string, T][] =>
  [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
const sortedSet = (s: ReadonlySet<string>): string[] => [...s].sort();

/**
 * A canonical encoding of a state (deterministic CBOR, every collection sorted by key), so two replicas
 * can compare states byte for byte or by hash. Not a storage or wire format.
 */
export function encodeReplicaState(s: ReplicaState): Uint8Array {
  return encodeDeterministic(
    new Map<string, unknown>([
      ["owners", byKey(s.owners).map(([id, k]) => [id, k.alg, k.key])],
      ["removedOwners", sortedSet(s.removedOwners)],
      ["roles", byKey(s.roles)],
      ["revokedRoles", sortedSet(s.revokedRoles)],
      [
        "users",
        byKey(s.users).map(([id, u]) => [id, u.name, u.userType, u.userStatus, u.expiringTimeout, u.role]),
      ],
      ["removedUsers", sortedSet(s.removedUsers)],
      [
        "credentials",
        byKey(s.credentials).map(([id, { id: _, ...c }]) => [id, payloadToCbor("credential.upsert", c)]),
      ],
      ["removedCredentials", sortedSet(s.removedCredentials)],
      ["schedules", byKey(s.schedules).map(([id, p]) => [id, payloadToCbor("schedule.set", p)])],
      ["modes", byKey(s.modes)],
      ["keys", byKey(s.keys).map(([serial, k]) => [serial, payloadToCbor("key.issue", k)])],
      ["revokedKeys", sortedSet(s.revokedKeys)],
      ["revokedGuestCodes", byKey(s.revokedGuestCodes).map(([k, r]) => [k, r.dropAfter])],
      ["skipped", byKey(s.skipped)],
      ["applied", s.applied],
    ]),
  );
}
