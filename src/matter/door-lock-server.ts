/**
 * One lock's Door Lock cluster server (Matter 1.4 § 5.2): matter.js's `DoorLockServer` with every command
 * answered from Latchkey. Lock/Unlock go through the lock runtime (decide(), the signed audit log);
 * the user, credential and schedule commands read and write Latchkey's users and PINs through the hub's
 * management methods, so each change is an audited, signed management operation attributed to the
 * fabric (`attribution` on the Actor: `{ via: "matter", command, fabricIndex, fabricLabel, nodeId }`).
 * matter.js's own user/credential store stays empty; the slot table (slots.ts) is the only Matter state.
 *
 * The Actor: a commissioned fabric acts for the hub's first owner (who commissioned the hub into their
 * controller). Over Matter it manages members and guests; owners, admins and service users are shown
 * but changed only through Latchkey's API or CLI.
 */
import { Supervision } from "@matter/main";
import { DoorLockServer } from "@matter/main/behaviors/door-lock";
import { DoorLock } from "@matter/main/clusters/door-lock";
import { FabricManager } from "@matter/main/protocol";
import { type FabricIndex, type NodeId, Status, StatusResponseError } from "@matter/main/types";
import type { JsonValue } from "../core/audit/canonical.ts";
import { AuditKind } from "../core/audit/chain.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import {
  type Credential,
  inScope,
  type LockScope,
  type PinCredential,
  Role,
  type User,
  UserStatus,
  UserType,
  type WeekDaySchedule,
  type YearDaySchedule,
} from "../core/model.ts";
import type { Actor, Hub } from "../hub/hub.ts";
import {
  fromMatterWeekDay,
  fromMatterYearDay,
  LATCHKEY_USER_TYPE,
  latchkeyUserStatus,
  MATTER_LOCK_STATE,
  MATTER_USER_STATUS,
  MATTER_USER_TYPE,
  matterUserName,
  operationError,
  scheduleKeys,
  toMatterWeekDay,
  toMatterYearDay,
} from "./mapping.ts";
import type { MatterSlots, ScheduleKind } from "./slots.ts";

/** How many of each a Latchkey Door Lock endpoint offers (Matter § 5.2.9 Number…Supported attributes). */
export interface MatterCapacity {
  /** NumberOfTotalUsersSupported: user slots per lock. Default 100. */
  readonly users: number;
  /** NumberOfPINUsersSupported: PIN credential slots per lock. Default 100. */
  readonly pins: number;
  /** NumberOfCredentialsSupportedPerUser. Default 5. */
  readonly credentialsPerUser: number;
  /** NumberOfWeekDaySchedulesSupportedPerUser. Default 7. */
  readonly weekDaySchedulesPerUser: number;
  /** NumberOfYearDaySchedulesSupportedPerUser. Default 7. */
  readonly yearDaySchedulesPerUser: number;
}

export const DEFAULT_MATTER_CAPACITY: MatterCapacity = {
  users: 100,
  pins: 100,
  credentialsPerUser: 5,
  weekDaySchedulesPerUser: 7,
  yearDaySchedulesPerUser: 7,
};

/** PIN lengths a Matter controller may send (MinPINCodeLength/MaxPINCodeLength; Latchkey's own bounds). */
export const MATTER_PIN_LENGTH = { min: 4, max: 12 } as const;

/**
 * What a Matter command is about to change, set around the hub call so the audit listener (mirror.ts),
 * which runs inside that call, puts the new record at the slot the command named.
 */
export interface PendingChange {
  /** The endpoint (lock) the command came on. */
  readonly lockId: string;
  readonly userSlot?: number;
  readonly userUniqueId?: number | null;
  readonly pinSlot?: number;
  /** SetCredential Modify: the credential the new PIN replaces (it keeps the slot). */
  readonly replacing?: string;
  readonly schedule?: { readonly kind: ScheduleKind; readonly slot: number; readonly key: string };
}

/** What the server classes share with the bridge. */
export interface BridgeContext {
  readonly hub: Hub;
  readonly slots: MatterSlots;
  readonly capacity: MatterCapacity;
  /** Matter Lock/Unlock commands in flight per lock (their own events are emitted by the command). */
  readonly inFlight: Map<string, number>;
  pending: PendingChange | null;
  /** Make the lock's slot table agree with Latchkey (and report what changed as LockUserChange events). */
  catchUp(lockId: string): void;
  readonly log: (line: string) => void;
}

/** The matter.js feature set of a Latchkey lock. */
export const LatchkeyDoorLockBase = DoorLockServer.with(
  "PinCredential",
  "User",
  "CredentialOverTheAirAccess",
  "WeekDayAccessSchedules",
  "YearDayAccessSchedules",
  "DoorPositionSensor",
);

/** DoorLock cluster status codes (§ 5.2.7.1) carried in a response's Status field, as the CHIP SDK does. */
const DUPLICATE = DoorLock.StatusCode.Duplicate as number as Status;
const OCCUPIED = DoorLock.StatusCode.Occupied as number as Status;

/** ClearUser / ClearCredential "all" (§ 5.2.10.19, § 5.2.10.24); ClearWeekDaySchedule "all" is 0xFE. */
const ALL_USERS = 0xfffe;
const ALL_SCHEDULES = 0xfe;

/** The hub's first owner: the identity a commissioned fabric acts as. */
function ownerActor(hub: Hub): Actor {
  let owner: User | undefined;
  for (const u of hub.users())
    if (u.role === Role.Owner && (!owner || u.createdAt < owner.createdAt)) owner = u;
  if (!owner) throw new LatchkeyError("LK_FORBIDDEN", "claim the hub before turning Matter on");
  return { userId: owner.id, role: owner.role };
}

/** Users a Matter controller may change: members and guests (owners, admins, services: Latchkey only). */
function managedOverMatter(u: User): boolean {
  return u.role === Role.Member || u.role === Role.Guest;
}

/** A Latchkey refusal as a Matter status (§ 5.2.10: INVALID_COMMAND for bad data, DUPLICATE for a PIN in use). */
function statusOf(e: unknown): Status {
  if (!isLatchkeyError(e)) throw e;
  switch (e.code) {
    case "LK_PIN_IN_USE":
      return DUPLICATE;
    case "LK_PIN_FORMAT":
    case "LK_PIN_TOO_SHORT":
    case "LK_PIN_WEAK":
    case "LK_INVALID_INPUT":
    case "LK_SCHEDULE_INVALID":
    case "LK_NOT_FOUND":
      return Status.InvalidCommand;
    default:
      return Status.Failure;
  }
}

function refuse(message: string, status: Status = Status.InvalidCommand): never {
  throw new StatusResponseError(message, status);
}

function scopesOverlap(a: LockScope, b: LockScope): boolean {
  if (a === "all" || b === "all") return true;
  return a.some((id) => b.includes(id));
}

const textOf = (b: Uint8Array) => new TextDecoder().decode(b);

/** The first of `candidates` no user has (names are unique per hub, case-insensitive), or null. */
function freeName(hub: Hub, candidates: readonly string[]): string | null {
  const taken = new Set(hub.users().map((u) => u.name.toLowerCase()));
  return candidates.find((n) => !taken.has(n.toLowerCase())) ?? null;
}

/** The Door Lock server class of one lock. */
export function latchkeyDoorLockServer(ctx: BridgeContext, lockId: string) {
  const { hub, slots, capacity } = ctx;
  const rt = () => hub.lock(lockId);

  /** This lock's PINs of a user (the credentials a Matter user shows). */
  const pinsOf = (userId: string): PinCredential[] =>
    hub.credentialsOf(userId).filter((c): c is PinCredential => c.type === "pin" && inScope(c.locks, lockId));

  const findUser = (id: string): User | undefined => hub.users().find((u) => u.id === id);

  const findCredential = (id: string): Credential | undefined => {
    const view = hub.credentialViews().find((c) => c.id === id);
    return view ? hub.credentialsOf(view.userId).find((c) => c.id === id) : undefined;
  };

  /** Run a hub change with `pending` set, so the audit listener slots the new record as asked. */
  const withPending = <T>(p: Omit<PendingChange, "lockId">, fn: () => T): T => {
    ctx.pending = { lockId, ...p };
    try {
      return fn();
    } finally {
      ctx.pending = null;
    }
  };

  const requireIndex = (index: number, max: number, what: string) => {
    if (!Number.isInteger(index) || index < 1 || index > max) refuse(`${what} ${index} is not 1…${max}`);
  };

  const nextIn = (occupied: readonly number[], after: number): number | null =>
    occupied.find((s) => s > after) ?? null;

  const nextFreePin = (after: number): number | null => {
    for (let i = after + 1; i <= capacity.pins; i++) if (!slots.pinAt(lockId, i)) return i;
    return null;
  };

  return class LatchkeyDoorLockServer extends LatchkeyDoorLockBase {
    // ── Who is asking ──────────────────────────────────────────────────────

    private get fabricIndex(): FabricIndex {
      const f = this.context.fabric;
      if (f === undefined) refuse("a fabric is required", Status.UnsupportedAccess);
      return f;
    }

    private get sourceNode(): NodeId | null {
      const c = this.context;
      return "subject" in c && c.subject?.kind === "node" ? c.subject.id : null;
    }

    /** Where a command came from, as recorded in the audit log. */
    private attribution(command: string): Record<string, JsonValue> {
      const fabricIndex = this.context.fabric ?? null;
      const label =
        fabricIndex === null ? undefined : this.env.get(FabricManager).maybeFor(fabricIndex)?.label;
      const node = this.sourceNode;
      return {
        via: "matter",
        command,
        fabricIndex,
        ...(label ? { fabricLabel: label } : {}),
        ...(node !== null ? { nodeId: `0x${node.toString(16)}` } : {}),
      };
    }

    /** The owner, attributed to this command's fabric. */
    private actor(command: string): Actor {
      return { ...ownerActor(hub), attribution: this.attribution(command) };
    }

    // ── Lock / Unlock (§ 5.2.10.1–3) ───────────────────────────────────────

    override async lockDoor(request: DoorLock.LockDoorRequest) {
      await this.operate(DoorLock.LockOperationType.Lock, request.pinCode, "LockDoor");
    }
    override async unlockDoor(request: DoorLock.UnlockDoorRequest) {
      await this.operate(DoorLock.LockOperationType.Unlock, request.pinCode, "UnlockDoor");
    }
    override async unlockWithTimeout(request: DoorLock.UnlockWithTimeoutRequest) {
      await this.operate(DoorLock.LockOperationType.Unlock, request.pinCode, "UnlockWithTimeout");
    }

    private async operate(
      type: DoorLock.LockOperationType,
      pinCode: Uint8Array | undefined,
      command: string,
    ) {
      const fabricIndex = this.fabricIndex;
      const extra: Record<string, JsonValue> = { ...this.attribution(command), source: "remote" };
      const lockType = type === DoorLock.LockOperationType.Lock;
      const action = lockType ? "lock" : "unlock";
      const deny = (reason: string) => {
        this.operationError(type, operationError(reason), fabricIndex);
        refuse(`refused: ${reason}`, Status.Failure);
      };
      if (pinCode === undefined && this.state.requirePinForRemoteOperation) {
        rt().audit(AuditKind.AccessDenied, { ...extra, action, reason: "pin_required" });
        deny("pin_required");
      }
      if (pinCode !== undefined && rt().status().operatingMode === "noRemoteLockUnlock") {
        // The PIN is read as at the keypad (which this mode allows); the command is still a remote one.
        rt().audit(AuditKind.AccessDenied, { ...extra, action, reason: "mode_forbids" });
        deny("mode_forbids");
      }
      ctx.inFlight.set(lockId, (ctx.inFlight.get(lockId) ?? 0) + 1);
      try {
        let granted: boolean;
        let userId: string | null = null;
        let credentialId: string | null = null;
        let reason: string | undefined;
        if (pinCode !== undefined) {
          // The PIN decides (who, scope, schedule, lockout) as at the keypad; with LockDoor it secures the door.
          const r = await rt().keypadEntry(textOf(pinCode), { ...extra, action }, action);
          granted = r.decision?.outcome === "grant";
          userId = r.decision?.userId ?? null;
          credentialId = r.decision?.credentialId ?? null;
          if (!granted) reason = r.decision?.outcome === "deny" ? r.decision.reason : "malformed";
          else if (r.feedback === "error") reason = "lock_jammed";
        } else if (lockType) {
          const actor = ownerActor(hub);
          const r = await rt().remoteLock(actor.userId, extra);
          granted = "result" in r && r.result !== "jammed";
          userId = actor.userId;
          if (!granted) reason = "refused" in r ? r.refused : "lock_jammed";
        } else {
          const actor = ownerActor(hub);
          const r = await rt().attempt({ source: "remote", userId: actor.userId }, extra);
          granted = r.feedback === "granted";
          userId = actor.userId;
          if (!granted) reason = r.decision?.outcome === "deny" ? r.decision.reason : "lock_jammed";
        }
        if (!granted || reason !== undefined) deny(reason ?? "unknown");
        const state = MATTER_LOCK_STATE[rt().status().lockState];
        if (state !== undefined) this.state.lockState = state;
        const pinSlot = credentialId ? slots.pinSlot(lockId, credentialId) : null;
        this.events.lockOperation.emit(
          {
            lockOperationType: type,
            operationSource: DoorLock.OperationSource.Remote,
            userIndex: userId ? slots.userSlot(lockId, userId) : null,
            fabricIndex,
            sourceNode: this.sourceNode,
            credentials:
              pinSlot !== null
                ? [{ credentialType: DoorLock.CredentialType.Pin, credentialIndex: pinSlot }]
                : null,
          },
          this.context,
        );
      } finally {
        ctx.inFlight.set(lockId, (ctx.inFlight.get(lockId) ?? 1) - 1);
      }
    }

    private operationError(
      type: DoorLock.LockOperationType,
      error: DoorLock.OperationError,
      fabricIndex: FabricIndex,
    ) {
      this.events.lockOperationError.emit(
        {
          lockOperationType: type,
          operationSource: DoorLock.OperationSource.Remote,
          operationError: error,
          userIndex: null,
          fabricIndex,
          sourceNode: this.sourceNode,
          credentials: null,
        },
        this.context,
      );
    }

    // ── Users (§ 5.2.10.18–20) ─────────────────────────────────────────────

    override getUser({ userIndex }: DoorLock.GetUserRequest): DoorLock.GetUserResponse {
      requireIndex(userIndex, capacity.users, "UserIndex");
      ctx.catchUp(lockId);
      const entry = slots.userAt(lockId, userIndex);
      const user = entry ? findUser(entry.id) : undefined;
      const nextUserIndex = nextIn(slots.userSlots(lockId), userIndex);
      if (!entry || !user) {
        return {
          userIndex,
          userName: null,
          userUniqueId: null,
          userStatus: null,
          userType: null,
          credentialRule: null,
          credentials: null,
          creatorFabricIndex: null,
          lastModifiedFabricIndex: null,
          nextUserIndex,
        };
      }
      const credentials = pinsOf(user.id)
        .map((c) => slots.pinSlot(lockId, c.id))
        .filter((s): s is number => s !== null)
        .sort((a, b) => a - b)
        .map((credentialIndex) => ({ credentialType: DoorLock.CredentialType.Pin, credentialIndex }));
      return {
        userIndex,
        userName: matterUserName(user.name),
        userUniqueId: entry.userUniqueId,
        userStatus: MATTER_USER_STATUS[user.userStatus],
        userType: MATTER_USER_TYPE[user.userType],
        credentialRule: DoorLock.CredentialRule.Single,
        credentials: credentials.length > 0 ? credentials : null,
        creatorFabricIndex: entry.creatorFabricIndex as FabricIndex | null,
        lastModifiedFabricIndex: entry.lastModifiedFabricIndex as FabricIndex | null,
        nextUserIndex,
      };
    }

    override setUser(request: DoorLock.SetUserRequest): void {
      const { operationType, userIndex } = request;
      requireIndex(userIndex, capacity.users, "UserIndex");
      const fabricIndex = this.fabricIndex;
      if (request.credentialRule != null && request.credentialRule !== DoorLock.CredentialRule.Single)
        refuse("only the Single credential rule is supported");
      const userType = request.userType == null ? undefined : LATCHKEY_USER_TYPE[request.userType];
      if (request.userType != null && userType === undefined)
        refuse(`user type ${request.userType} is not supported`);
      const userStatus = latchkeyUserStatus(request.userStatus);
      if (request.userStatus != null && userStatus === undefined)
        refuse("a user's status is Enabled or Disabled");
      ctx.catchUp(lockId);
      const entry = slots.userAt(lockId, userIndex);
      const actor = this.actor("SetUser");
      try {
        if (operationType === DoorLock.DataOperationType.Add) {
          if (entry) throw new DoorLock.OccupiedError(`user slot ${userIndex} is occupied`);
          const given = request.userName?.trim();
          const name = given
            ? freeName(hub, [given, `${given} (${userIndex})`, `${given} (${lockId} ${userIndex})`])
            : freeName(hub, [`Matter user ${userIndex}`, `Matter user ${userIndex} (${lockId})`]);
          if (name === null) throw new DoorLock.DuplicateError("another user has this name");
          withPending({ userSlot: userIndex, userUniqueId: request.userUniqueId ?? null }, () => {
            const u = hub.addUser(actor, { name, role: Role.Member, ...(userType ? { userType } : {}) });
            if (userStatus === UserStatus.OccupiedDisabled) hub.updateUser(actor, u.id, { userStatus });
          });
        } else if (operationType === DoorLock.DataOperationType.Modify) {
          const user = entry ? findUser(entry.id) : undefined;
          if (!entry || !user) refuse(`user slot ${userIndex} is available`);
          if (!managedOverMatter(user)) refuse(`${user.role}s are managed in Latchkey`, Status.Failure);
          // § 5.2.10.18: only the creating fabric renames a user or changes its UserUniqueID.
          if (
            (request.userName != null || request.userUniqueId != null) &&
            entry.creatorFabricIndex !== fabricIndex
          )
            refuse("only the fabric that created this user may change its name or unique id");
          const patch: { name?: string; userType?: UserType; userStatus?: UserStatus } = {};
          const newName = request.userName?.trim();
          if (newName && newName !== matterUserName(user.name)) patch.name = newName;
          if (userType !== undefined && userType !== user.userType) patch.userType = userType;
          if (userStatus !== undefined && userStatus !== user.userStatus) patch.userStatus = userStatus;
          const uniqueId = request.userUniqueId === null ? undefined : request.userUniqueId;
          withPending(
            { userSlot: userIndex, ...(uniqueId !== undefined ? { userUniqueId: uniqueId } : {}) },
            () => {
              if (Object.keys(patch).length > 0) hub.updateUser(actor, user.id, patch);
              else slots.touchUser(lockId, userIndex, fabricIndex, uniqueId);
            },
          );
        } else {
          refuse("SetUser takes Add or Modify");
        }
      } catch (e) {
        if (e instanceof StatusResponseError) throw e;
        refuse(`SetUser refused: ${(e as Error).message}`, statusOf(e));
      }
    }

    override clearUser({ userIndex }: DoorLock.ClearUserRequest): void {
      if (userIndex !== ALL_USERS) requireIndex(userIndex, capacity.users, "UserIndex");
      ctx.catchUp(lockId);
      const targets: User[] = [];
      for (const slot of userIndex === ALL_USERS ? slots.userSlots(lockId) : [userIndex]) {
        const entry = slots.userAt(lockId, slot);
        const user = entry ? findUser(entry.id) : undefined;
        if (!user) continue; // an available slot clears silently
        if (managedOverMatter(user)) targets.push(user);
        else if (userIndex !== ALL_USERS) refuse(`${user.role}s are managed in Latchkey`, Status.Failure);
      }
      const actor = this.actor("ClearUser");
      for (const u of targets) {
        try {
          hub.removeUser(actor, u.id);
        } catch (e) {
          if (!isLatchkeyError(e, "LK_NOT_FOUND"))
            refuse(`ClearUser refused: ${(e as Error).message}`, statusOf(e));
        }
      }
    }

    // ── PIN credentials (§ 5.2.10.21–24) ──────────────────────────────────

    override setCredential(request: DoorLock.SetCredentialRequest): DoorLock.SetCredentialResponse {
      const { operationType, credential, credentialData, userIndex } = request;
      const index = credential.credentialIndex;
      const fail = (status: Status, next: number | null = null): DoorLock.SetCredentialResponse => {
        const response = { status, userIndex: null, nextCredentialIndex: next };
        Supervision(response, "status").validate = false;
        return response;
      };
      if (credential.credentialType !== DoorLock.CredentialType.Pin) return fail(Status.InvalidCommand);
      if (!Number.isInteger(index) || index < 1 || index > capacity.pins) return fail(Status.InvalidCommand);
      const pin = textOf(credentialData);
      if (!/^\d+$/.test(pin) || pin.length < MATTER_PIN_LENGTH.min || pin.length > MATTER_PIN_LENGTH.max)
        return fail(Status.InvalidCommand, nextFreePin(index));
      if (userIndex !== null && (userIndex < 1 || userIndex > capacity.users))
        return fail(Status.InvalidCommand, nextFreePin(index));
      const fabricIndex = this.fabricIndex;
      ctx.catchUp(lockId);
      const entry = slots.pinAt(lockId, index);
      const actor = this.actor("SetCredential");

      if (operationType === DoorLock.DataOperationType.Add) {
        if (entry) return fail(OCCUPIED, nextFreePin(index));
        let user: User;
        let createdSlot: number | null = null;
        if (userIndex === null) {
          // § 5.2.10.21: no UserIndex — the lock creates the user, at its first available slot.
          let slot: number | null = null;
          for (let i = 1; i <= capacity.users && slot === null; i++) if (!slots.userAt(lockId, i)) slot = i;
          if (slot === null) return fail(OCCUPIED, nextFreePin(index));
          const userType = request.userType == null ? undefined : LATCHKEY_USER_TYPE[request.userType];
          if (request.userType != null && userType === undefined) return fail(Status.InvalidCommand);
          const name = freeName(hub, [`Matter user ${slot}`, `Matter user ${slot} (${lockId})`]);
          if (name === null) return fail(Status.Failure);
          try {
            user = withPending({ userSlot: slot }, () =>
              hub.addUser(actor, { name, role: Role.Member, ...(userType ? { userType } : {}) }),
            );
            if (latchkeyUserStatus(request.userStatus) === UserStatus.OccupiedDisabled)
              user = hub.updateUser(actor, user.id, { userStatus: UserStatus.OccupiedDisabled });
          } catch (e) {
            return fail(statusOf(e), nextFreePin(index));
          }
          createdSlot = slot;
        } else {
          const uEntry = slots.userAt(lockId, userIndex);
          const found = uEntry ? findUser(uEntry.id) : undefined;
          if (!found) return fail(Status.InvalidCommand, nextFreePin(index));
          user = found;
          if (!managedOverMatter(user)) return fail(Status.Failure, nextFreePin(index));
          if (pinsOf(user.id).length >= capacity.credentialsPerUser)
            return fail(Status.ResourceExhausted, nextFreePin(index));
        }
        const userId = user.id;
        try {
          withPending({ pinSlot: index }, () =>
            hub.setPin(actor, userId, pin, { locks: [lockId], label: `matter:${index}`, replace: false }),
          );
        } catch (e) {
          ctx.log(`matter: SetCredential refused: ${(e as Error).message}`);
          if (createdSlot !== null) hub.removeUser(actor, user.id);
          return fail(statusOf(e), nextFreePin(index));
        }
        return { status: Status.Success, userIndex: createdSlot, nextCredentialIndex: nextFreePin(index) };
      }

      if (operationType === DoorLock.DataOperationType.Modify) {
        const cred = entry ? findCredential(entry.id) : undefined;
        if (!entry || !cred || cred.type !== "pin") return fail(Status.InvalidCommand, nextFreePin(index));
        const user = findUser(cred.userId);
        if (!user) return fail(Status.InvalidCommand, nextFreePin(index));
        if (userIndex !== null && slots.userAt(lockId, userIndex)?.id !== user.id)
          return fail(OCCUPIED, nextFreePin(index));
        if (!managedOverMatter(user)) return fail(Status.Failure, nextFreePin(index));
        if (entry.creatorFabricIndex !== null && entry.creatorFabricIndex !== fabricIndex)
          return fail(Status.InvalidCommand, nextFreePin(index));
        // Latchkey replaces a user's PIN of the same kind on overlapping locks: atomic when this is the only
        // one; otherwise the new PIN is added and this one removed.
        const sameKind = hub
          .credentialsOf(user.id)
          .filter((c) => c.type === "pin" && c.duress === cred.duress && scopesOverlap(c.locks, cred.locks));
        const opts = { locks: cred.locks, duress: cred.duress, label: cred.label };
        try {
          withPending({ pinSlot: index, replacing: cred.id }, () => {
            if (sameKind.length === 1) hub.setPin(actor, user.id, pin, { ...opts, replace: true });
            else {
              hub.setPin(actor, user.id, pin, { ...opts, replace: false });
              hub.removeCredential(actor, cred.id);
            }
          });
        } catch (e) {
          ctx.log(`matter: SetCredential refused: ${(e as Error).message}`);
          return fail(statusOf(e), nextFreePin(index));
        }
        return { status: Status.Success, userIndex: null, nextCredentialIndex: nextFreePin(index) };
      }
      return fail(Status.InvalidCommand);
    }

    override getCredentialStatus({
      credential,
    }: DoorLock.GetCredentialStatusRequest): DoorLock.GetCredentialStatusResponse {
      const none = (next: number | null): DoorLock.GetCredentialStatusResponse => ({
        credentialExists: false,
        userIndex: null,
        creatorFabricIndex: null,
        lastModifiedFabricIndex: null,
        nextCredentialIndex: next,
      });
      if (credential.credentialType !== DoorLock.CredentialType.Pin) return none(null);
      ctx.catchUp(lockId);
      const index = credential.credentialIndex;
      const entry = slots.pinAt(lockId, index);
      const cred = entry ? findCredential(entry.id) : undefined;
      const next = nextIn(slots.pinSlots(lockId), index);
      if (!entry || !cred) return none(next);
      return {
        credentialExists: true,
        userIndex: slots.userSlot(lockId, cred.userId),
        creatorFabricIndex: entry.creatorFabricIndex as FabricIndex | null,
        lastModifiedFabricIndex: entry.lastModifiedFabricIndex as FabricIndex | null,
        nextCredentialIndex: next,
      };
    }

    override clearCredential({ credential }: DoorLock.ClearCredentialRequest): void {
      if (credential?.credentialType === DoorLock.CredentialType.ProgrammingPin)
        refuse("the ProgrammingPIN is not cleared this way");
      const all = credential === null || credential.credentialIndex === ALL_USERS;
      if (credential !== null && credential.credentialType !== DoorLock.CredentialType.Pin) {
        if (all) return; // no credentials of that type here
        refuse("only PIN credentials are offered over Matter");
      }
      ctx.catchUp(lockId);
      const targets: { credentialId: string; user: User }[] = [];
      for (const slot of all ? slots.pinSlots(lockId) : [credential!.credentialIndex]) {
        const entry = slots.pinAt(lockId, slot);
        const cred = entry ? findCredential(entry.id) : undefined;
        const user = cred ? findUser(cred.userId) : undefined;
        if (!cred || !user) {
          if (!all) refuse(`PIN slot ${slot} is available`);
          continue;
        }
        if (managedOverMatter(user)) targets.push({ credentialId: cred.id, user });
        else if (!all) refuse(`${user.role}s' PINs are managed in Latchkey`, Status.Failure);
      }
      const actor = this.actor("ClearCredential");
      for (const { credentialId, user } of targets) {
        try {
          hub.removeCredential(actor, credentialId);
          // § 5.2.10.24: a user left without credentials is cleared too — for users a Matter command created
          // (a Latchkey user may hold cards, phone keys or API tokens Matter does not see).
          const slot = slots.userSlot(lockId, user.id);
          const createdOverMatter = slot !== null && slots.userAt(lockId, slot)?.creatorFabricIndex != null;
          if (createdOverMatter && hub.credentialsOf(user.id).length === 0) hub.removeUser(actor, user.id);
        } catch (e) {
          if (!isLatchkeyError(e, "LK_NOT_FOUND"))
            refuse(`ClearCredential refused: ${(e as Error).message}`, statusOf(e));
        }
      }
    }

    // ── Schedules (§ 5.2.10.4–9) ─────────────────────────────────────────

    /** The user in `userIndex` for a schedule command: Failure when the slot is empty or not ours to change. */
    private scheduleUser(userIndex: number, write: boolean): User {
      requireIndex(userIndex, capacity.users, "UserIndex");
      ctx.catchUp(lockId);
      const entry = slots.userAt(lockId, userIndex);
      const user = entry ? findUser(entry.id) : undefined;
      if (!user) refuse(`user slot ${userIndex} is available`, Status.Failure);
      if (write && !managedOverMatter(user)) refuse(`${user.role}s are managed in Latchkey`, Status.Failure);
      return user;
    }

    /** Position in the user's list of the schedule in `slot`, or undefined. */
    private scheduleAt(kind: ScheduleKind, user: User, slot: number): number | undefined {
      const list = kind === "weekDay" ? user.weekDaySchedules : user.yearDaySchedules;
      const max = kind === "weekDay" ? capacity.weekDaySchedulesPerUser : capacity.yearDaySchedulesPerUser;
      return slots.syncSchedules(lockId, kind, user.id, scheduleKeys(list), max).slots.get(slot);
    }

    /**
     * Write one schedule slot of a user through `updateUser`: `value` replaces the schedule in `slot` or
     * is added; `null` clears the slot (`slot` 0xFE: all of that kind).
     */
    private writeSchedule(
      kind: ScheduleKind,
      user: User,
      slot: number,
      value: WeekDaySchedule | YearDaySchedule | null,
      command: string,
    ): void {
      const current: readonly (WeekDaySchedule | YearDaySchedule)[] =
        kind === "weekDay" ? user.weekDaySchedules : user.yearDaySchedules;
      const pos = slot === ALL_SCHEDULES ? undefined : this.scheduleAt(kind, user, slot);
      let list: (WeekDaySchedule | YearDaySchedule)[];
      let want: PendingChange["schedule"];
      if (value === null) {
        if (slot !== ALL_SCHEDULES && pos === undefined) return; // nothing there: clearing is a no-op
        list = slot === ALL_SCHEDULES ? [] : current.filter((_, i) => i !== pos);
      } else {
        list = pos === undefined ? [...current, value] : current.map((x, i) => (i === pos ? value : x));
        want = { kind, slot, key: scheduleKeys(list)[pos ?? list.length - 1]! };
      }
      // § 5.2.10.4/7: the lock may make the user ScheduleRestricted when a schedule is set. Latchkey's
      // unrestricted users ignore schedules, and a week-day user ignores year-day ones (and back): so it does.
      const restrict =
        value !== null &&
        (user.userType === UserType.Unrestricted ||
          user.userType === (kind === "weekDay" ? UserType.YearDaySchedule : UserType.WeekDaySchedule));
      const patch =
        kind === "weekDay"
          ? { weekDaySchedules: list as WeekDaySchedule[] }
          : { yearDaySchedules: list as YearDaySchedule[] };
      try {
        withPending(want ? { schedule: want } : {}, () =>
          hub.updateUser(this.actor(command), user.id, {
            ...patch,
            ...(restrict ? { userType: UserType.ScheduleRestricted } : {}),
          }),
        );
      } catch (e) {
        refuse(`${command} refused: ${(e as Error).message}`, statusOf(e));
      }
    }

    override setWeekDaySchedule(request: DoorLock.SetWeekDayScheduleRequest): void {
      requireIndex(request.weekDayIndex, capacity.weekDaySchedulesPerUser, "WeekDayIndex");
      const user = this.scheduleUser(request.userIndex, true);
      const s = fromMatterWeekDay(request);
      if (s === null) refuse("a week-day schedule needs a day and an end after its start");
      this.writeSchedule("weekDay", user, request.weekDayIndex, s, "SetWeekDaySchedule");
    }

    override getWeekDaySchedule(
      request: DoorLock.GetWeekDayScheduleRequest,
    ): DoorLock.GetWeekDayScheduleResponse {
      const { weekDayIndex, userIndex } = request;
      if (
        weekDayIndex < 1 ||
        weekDayIndex > capacity.weekDaySchedulesPerUser ||
        userIndex < 1 ||
        userIndex > capacity.users
      ) {
        const response = { weekDayIndex, userIndex, status: Status.InvalidCommand };
        Supervision(response, "weekDayIndex").constraint = false;
        Supervision(response, "userIndex").constraint = false;
        return response;
      }
      ctx.catchUp(lockId);
      const entry = slots.userAt(lockId, userIndex);
      const user = entry ? findUser(entry.id) : undefined;
      if (!user) return { weekDayIndex, userIndex, status: Status.NotFound };
      const pos = this.scheduleAt("weekDay", user, weekDayIndex);
      const s = pos === undefined ? undefined : user.weekDaySchedules[pos];
      if (!s) return { weekDayIndex, userIndex, status: Status.NotFound };
      return { weekDayIndex, userIndex, status: Status.Success, ...toMatterWeekDay(s) };
    }

    override clearWeekDaySchedule({ weekDayIndex, userIndex }: DoorLock.ClearWeekDayScheduleRequest): void {
      if (weekDayIndex !== ALL_SCHEDULES)
        requireIndex(weekDayIndex, capacity.weekDaySchedulesPerUser, "WeekDayIndex");
      const user = this.scheduleUser(userIndex, true);
      this.writeSchedule("weekDay", user, weekDayIndex, null, "ClearWeekDaySchedule");
    }

    override setYearDaySchedule(request: DoorLock.SetYearDayScheduleRequest): void {
      requireIndex(request.yearDayIndex, capacity.yearDaySchedulesPerUser, "YearDayIndex");
      const user = this.scheduleUser(request.userIndex, true);
      const s = fromMatterYearDay(request.localStartTime, request.localEndTime);
      if (s === null) refuse("a year-day schedule's end must be at least a minute after its start");
      this.writeSchedule("yearDay", user, request.yearDayIndex, s, "SetYearDaySchedule");
    }

    override getYearDaySchedule(
      request: DoorLock.GetYearDayScheduleRequest,
    ): DoorLock.GetYearDayScheduleResponse {
      const { yearDayIndex, userIndex } = request;
      if (
        yearDayIndex < 1 ||
        yearDayIndex > capacity.yearDaySchedulesPerUser ||
        userIndex < 1 ||
        userIndex > capacity.users
      ) {
        const response = { yearDayIndex, userIndex, status: Status.InvalidCommand };
        Supervision(response, "yearDayIndex").constraint = false;
        Supervision(response, "userIndex").constraint = false;
        return response;
      }
      ctx.catchUp(lockId);
      const entry = slots.userAt(lockId, userIndex);
      const user = entry ? findUser(entry.id) : undefined;
      if (!user) return { yearDayIndex, userIndex, status: Status.NotFound };
      const pos = this.scheduleAt("yearDay", user, yearDayIndex);
      const s = pos === undefined ? undefined : user.yearDaySchedules[pos];
      if (!s) return { yearDayIndex, userIndex, status: Status.NotFound };
      return { yearDayIndex, userIndex, status: Status.Success, ...toMatterYearDay(s) };
    }

    override clearYearDaySchedule({ yearDayIndex, userIndex }: DoorLock.ClearYearDayScheduleRequest): void {
      if (yearDayIndex !== ALL_SCHEDULES)
        requireIndex(yearDayIndex, capacity.yearDaySchedulesPerUser, "YearDayIndex");
      const user = this.scheduleUser(userIndex, true);
      this.writeSchedule("yearDay", user, yearDayIndex, null, "ClearYearDaySchedule");
    }
  };
}
