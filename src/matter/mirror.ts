/**
 * Latchkey's audit log, mirrored into Matter (Matter 1.4 § 5.2.11 events, § 5.2.9 attributes). Every
 * committed event is looked at once, in commit order:
 *
 * - door and bolt: LockState / DoorState / OperatingMode attributes follow the lock (the DoorStateChange
 *   event comes from matter.js's DPS handling of the attribute); a bolt movement is a LockOperation, a
 *   refusal a LockOperationError, an alarm a DoorLockAlarm;
 * - management (`admin.change`): a user or credential added, changed or removed by any path (API, CLI,
 *   import, cloud operation, Matter) updates the slot table at once and becomes a LockUserChange.
 *
 * Slot bookkeeping runs synchronously in the listener (the event names the record, and a Matter command's
 * `pending` names its slot); emitting runs on one queue through the endpoint's agent.
 */
import type { ActionContext, Endpoint } from "@matter/main";
import { DoorLock } from "@matter/main/clusters/door-lock";
import { type FabricIndex, NodeId } from "@matter/main/types";
import type { JsonValue } from "../core/audit/canonical.ts";
import { type AuditEvent, AuditKind } from "../core/audit/chain.ts";
import { inScope, type LockScope, type WeekDaySchedule, type YearDaySchedule } from "../core/model.ts";
import { type BridgeContext, LatchkeyDoorLockBase } from "./door-lock-server.ts";
import {
  lockDataTypeOf,
  MATTER_DOOR_STATE,
  MATTER_LOCK_STATE,
  MATTER_OPERATING_MODE,
  matterAlarm,
  matterLockSettings,
  matterSource,
  operationError,
  scheduleKeys,
} from "./mapping.ts";
import type { ScheduleKind } from "./slots.ts";

type Data = { readonly [k: string]: JsonValue };

/** One LockUserChange (§ 5.2.11.5) before its origin is added. */
interface UserChange {
  readonly lockDataType: DoorLock.LockDataType;
  readonly dataOperationType: DoorLock.DataOperationType;
  readonly userIndex: number | null;
  readonly dataIndex: number | null;
}

/** Who made a management change: a Matter fabric and node, or Latchkey's own paths (both null). */
interface Origin {
  readonly fabricIndex: number | null;
  readonly nodeId: string | null;
}

const str = (v: JsonValue | undefined): string | null => (typeof v === "string" ? v : null);
const strings = (v: JsonValue | undefined): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

/** Audit kinds after which the cluster's state attributes are re-read from the lock. */
const STATE_KINDS: ReadonlySet<string> = new Set([
  AuditKind.LockState,
  AuditKind.DoorState,
  AuditKind.AlarmJam,
  AuditKind.AlarmForcedOpen,
  AuditKind.AlarmDoorAjar,
  AuditKind.PowerUp,
  AuditKind.Admin,
]);

export class MatterMirror {
  private readonly endpoints = new Map<string, Endpoint>();
  private queue: Promise<void> = Promise.resolve();
  /** The last grant per lock, to name the user and credential of the bolt movement that follows it. */
  private readonly lastGrant = new Map<
    string,
    { source: JsonValue; userId: string | null; credentialId: string | null }
  >();

  constructor(private readonly ctx: BridgeContext) {}

  addEndpoint(lockId: string, endpoint: Endpoint): void {
    this.endpoints.set(lockId, endpoint);
  }

  /** Resolves once everything mirrored so far has been handed to matter.js. */
  settled(): Promise<void> {
    return this.queue;
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue
      .then(fn)
      .catch((e: unknown) => this.ctx.log(`matter: mirror failed: ${(e as Error).message}`));
  }

  /** Run `fn` with the lock's Door Lock behavior, after everything queued before. */
  private withBehavior(
    lockId: string,
    fn: (b: InstanceType<typeof LatchkeyDoorLockBase>, context: ActionContext) => void,
  ): void {
    const ep = this.endpoints.get(lockId);
    if (!ep) return;
    this.enqueue(async () => {
      await ep.act((agent) => fn(agent.get(LatchkeyDoorLockBase), agent.context));
    });
  }

  /** LockState, DoorState, OperatingMode and the lock's settings as attributes (§ 5.2.9). */
  private syncState(lockId: string): void {
    const ep = this.endpoints.get(lockId);
    if (!ep) return;
    this.enqueue(async () => {
      const st = this.ctx.hub.status(lockId);
      const settings = this.ctx.hub.lock(lockId).record.settings;
      await ep.setStateOf(LatchkeyDoorLockBase, {
        lockState: MATTER_LOCK_STATE[st.lockState] ?? null,
        doorState: MATTER_DOOR_STATE[st.doorState],
        operatingMode: MATTER_OPERATING_MODE[st.operatingMode],
        autoRelockTime: st.autoRelockTime,
        ...matterLockSettings(settings),
      });
    });
  }

  private userChanges(lockId: string, changes: readonly UserChange[], origin: Origin): void {
    if (changes.length === 0) return;
    const fromMatter = origin.fabricIndex !== null;
    this.withBehavior(lockId, (b, context) => {
      for (const c of changes) {
        b.events.lockUserChange.emit(
          {
            ...c,
            // § 5.2.11.5.3: Remote means a Matter node (and then needs its fabric and node id); Latchkey's
            // own API, CLI and cloud are ProprietaryRemote.
            operationSource: fromMatter
              ? DoorLock.OperationSource.Remote
              : DoorLock.OperationSource.ProprietaryRemote,
            fabricIndex: origin.fabricIndex as FabricIndex | null,
            sourceNode: origin.nodeId !== null ? NodeId(BigInt(origin.nodeId)) : null,
          },
          context,
        );
      }
    });
  }

  // ------------------------------------------------------------------ catching up

  /**
   * Make the lock's slot table agree with Latchkey (records added or removed while nobody was listening:
   * the bridge was off, or a cloud operation's credential). With `emit`, the differences become
   * LockUserChange events.
   */
  catchUp(lockId: string, emit = true): void {
    const { hub, slots, capacity } = this.ctx;
    const byAge = <T extends { createdAt: number; id: string }>(a: T, b: T) =>
      a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const users = hub.users().sort(byAge);
    const pins = hub
      .credentialViews()
      .filter((c) => c.type === "pin" && inScope(c.locks, lockId))
      .sort(byAge);
    const r = slots.reconcile(
      lockId,
      users.map((u) => u.id),
      pins.map((c) => c.id),
      capacity,
    );
    if (!emit) return;
    const U = DoorLock.LockDataType.UserIndex;
    const P = DoorLock.LockDataType.Pin;
    const { Add, Clear } = DoorLock.DataOperationType;
    const owner = (slot: number) => {
      const id = slots.pinAt(lockId, slot)?.id;
      const c = pins.find((p) => p.id === id);
      return c ? slots.userSlot(lockId, c.userId) : null;
    };
    this.userChanges(
      lockId,
      [
        ...r.pinsRemoved.map((s) => ({
          lockDataType: P,
          dataOperationType: Clear,
          userIndex: null,
          dataIndex: s,
        })),
        ...r.usersRemoved.map((s) => ({
          lockDataType: U,
          dataOperationType: Clear,
          userIndex: s,
          dataIndex: s,
        })),
        ...r.usersAdded.map((s) => ({ lockDataType: U, dataOperationType: Add, userIndex: s, dataIndex: s })),
        ...r.pinsAdded.map((s) => ({
          lockDataType: P,
          dataOperationType: Add,
          userIndex: owner(s),
          dataIndex: s,
        })),
      ],
      { fabricIndex: null, nodeId: null },
    );
  }

  // ------------------------------------------------------------------ the listener

  /** The audit listener: subscribe it to `hub.audit`. */
  readonly onEvents = (events: readonly AuditEvent[]): void => {
    for (const ev of events) {
      if (ev.kind === AuditKind.Admin) this.onAdmin(ev.data);
      const lockId = ev.lockId;
      if (lockId === null || !this.endpoints.has(lockId)) continue;
      const data = ev.data;
      // A Matter Lock/Unlock command reports its own grant, refusal and bolt movement when it finishes
      // (its events carry `via: "matter"`; the bolt's movement is a remote one while it runs): mirroring
      // them too would only add work on its critical path and a transient null LockState.
      const matterCmd = (this.ctx.inFlight.get(lockId) ?? 0) > 0 && data.source === "remote";
      if (data.via === "matter" || (matterCmd && ev.kind === AuditKind.LockState)) continue;
      if (STATE_KINDS.has(ev.kind)) this.syncState(lockId);
      this.onLockEvent(lockId, ev.kind, data);
    }
  };

  private onLockEvent(lockId: string, kind: string, data: Data): void {
    const { slots } = this.ctx;
    const userId = str(data.userId);
    const userIndex = userId ? slots.userSlot(lockId, userId) : null;
    const pinCredential = (credentialId: string | null) => {
      const slot = credentialId ? slots.pinSlot(lockId, credentialId) : null;
      return slot !== null ? [{ credentialType: DoorLock.CredentialType.Pin, credentialIndex: slot }] : null;
    };
    if (kind === AuditKind.AccessGranted) {
      this.lastGrant.set(lockId, {
        source: data.source ?? null,
        userId,
        credentialId: str(data.credentialId),
      });
      return;
    }
    if (kind === AuditKind.LockState) {
      const grant = this.lastGrant.get(lockId);
      this.lastGrant.delete(lockId);
      const fromGrant = grant && grant.source === data.source && grant.userId === userId ? grant : undefined;
      const credentials = pinCredential(fromGrant?.credentialId ?? null);
      this.withBehavior(lockId, (b, context) =>
        b.events.lockOperation.emit(
          {
            lockOperationType:
              data.to === "locked" ? DoorLock.LockOperationType.Lock : DoorLock.LockOperationType.Unlock,
            operationSource: matterSource(data.source),
            userIndex,
            fabricIndex: null,
            sourceNode: null,
            credentials,
          },
          context,
        ),
      );
      return;
    }
    if (kind === AuditKind.AccessDenied) {
      const credentials = pinCredential(str(data.credentialId));
      this.withBehavior(lockId, (b, context) =>
        b.events.lockOperationError.emit(
          {
            lockOperationType:
              data.action === "lock" ? DoorLock.LockOperationType.Lock : DoorLock.LockOperationType.Unlock,
            operationSource: matterSource(data.source),
            operationError: operationError(data.malformed === true ? "malformed" : data.reason),
            userIndex,
            fabricIndex: null,
            sourceNode: null,
            credentials,
          },
          context,
        ),
      );
      return;
    }
    const alarm = matterAlarm(kind, data);
    if (alarm !== null)
      this.withBehavior(lockId, (b, context) => b.events.doorLockAlarm.emit({ alarmCode: alarm }, context));
  }

  /** A management change: keep the slot table in step and report it on every bridged lock. */
  private onAdmin(d: Data): void {
    const { slots, capacity } = this.ctx;
    const fromMatter = d.via === "matter";
    const origin: Origin = {
      fabricIndex: fromMatter && typeof d.fabricIndex === "number" ? d.fabricIndex : null,
      nodeId: fromMatter ? str(d.nodeId) : null,
    };
    const pending = fromMatter ? this.ctx.pending : null;
    const mine = (lockId: string) => (pending?.lockId === lockId ? pending : null);
    const U = DoorLock.LockDataType.UserIndex;
    const P = DoorLock.LockDataType.Pin;
    const { Add, Clear, Modify } = DoorLock.DataOperationType;
    const changes = new Map<string, UserChange[]>();
    const push = (lockId: string, c: UserChange) => {
      const list = changes.get(lockId) ?? [];
      list.push(c);
      changes.set(lockId, list);
    };
    const locks = [...this.endpoints.keys()];

    const userAdded = (userId: string) => {
      for (const lockId of locks) {
        const p = mine(lockId);
        const had = slots.userSlot(lockId, userId);
        const slot = slots.placeUser(lockId, userId, {
          want: p?.userSlot ?? null,
          max: capacity.users,
          fabricIndex: origin.fabricIndex,
          userUniqueId: p?.userUniqueId ?? null,
        });
        if (slot !== null)
          push(lockId, {
            lockDataType: U,
            dataOperationType: had === null ? Add : Modify,
            userIndex: slot,
            dataIndex: slot,
          });
      }
    };
    const userRemoved = (userId: string, credentialIds: readonly string[]) => {
      for (const lockId of locks) {
        for (const id of credentialIds) slots.removePin(lockId, id);
        const slot = slots.removeUser(lockId, userId);
        if (slot !== null)
          push(lockId, { lockDataType: U, dataOperationType: Clear, userIndex: slot, dataIndex: slot });
      }
    };
    const pinRemoved = (credentialId: string, userId: string | null) => {
      for (const lockId of locks) {
        const userIndex = userId ? slots.userSlot(lockId, userId) : null;
        const slot = slots.removePin(lockId, credentialId);
        if (slot !== null)
          push(lockId, { lockDataType: P, dataOperationType: Clear, userIndex, dataIndex: slot });
      }
    };

    switch (d.action) {
      case "user.add": {
        const userId = str(d.userId);
        if (userId) userAdded(userId);
        break;
      }
      case "user.update": {
        const userId = str(d.userId);
        if (!userId) break;
        const patch = (d.changes ?? {}) as Data;
        for (const lockId of locks) {
          const slot = slots.userSlot(lockId, userId);
          if (slot === null) continue;
          const p = mine(lockId);
          slots.touchUser(lockId, slot, origin.fabricIndex, p?.userUniqueId);
          if (Object.keys(patch).some((k) => k !== "weekDaySchedules" && k !== "yearDaySchedules"))
            push(lockId, { lockDataType: U, dataOperationType: Modify, userIndex: slot, dataIndex: slot });
          for (const kind of ["weekDay", "yearDay"] as const satisfies readonly ScheduleKind[]) {
            const list = patch[`${kind}Schedules`];
            if (!Array.isArray(list)) continue;
            const want = p?.schedule?.kind === kind ? p.schedule : undefined;
            const r = slots.syncSchedules(
              lockId,
              kind,
              userId,
              scheduleKeys(list as unknown as (WeekDaySchedule | YearDaySchedule)[]),
              kind === "weekDay" ? capacity.weekDaySchedulesPerUser : capacity.yearDaySchedulesPerUser,
              want,
            );
            const type =
              kind === "weekDay"
                ? DoorLock.LockDataType.WeekDaySchedule
                : DoorLock.LockDataType.YearDaySchedule;
            for (const [op, list2] of [
              [Add, r.added],
              [Modify, r.modified],
              [Clear, r.removed],
            ] as const)
              for (const s of list2)
                push(lockId, { lockDataType: type, dataOperationType: op, userIndex: slot, dataIndex: s });
          }
        }
        break;
      }
      case "user.remove": {
        const userId = str(d.userId);
        if (userId) userRemoved(userId, strings(d.credentialIds));
        break;
      }
      case "credential.add": {
        const userId = str(d.userId);
        const credentialId = str(d.credentialId);
        if (!userId || !credentialId) break;
        const scope = (d.locks ?? "all") as LockScope;
        for (const lockId of locks) {
          const p = mine(lockId);
          const userIndex = slots.userSlot(lockId, userId);
          if (d.credentialType !== "pin") {
            if (inScope(scope, lockId))
              push(lockId, {
                lockDataType: lockDataTypeOf(d.credentialType),
                dataOperationType: Add,
                userIndex,
                dataIndex: null,
              });
            continue;
          }
          // A changed PIN is a new credential replacing the old: it keeps the old one's slot (Modify).
          const olds = [...new Set([...(p?.replacing ? [p.replacing] : []), ...strings(d.replaced)])];
          let slot: number | null = null;
          let op: DoorLock.DataOperationType = Add;
          for (const old of olds) {
            const s: number | null =
              slot === null && inScope(scope, lockId)
                ? slots.replacePin(lockId, old, credentialId, origin.fabricIndex)
                : slots.removePin(lockId, old);
            if (s === null) continue;
            if (slot === null && inScope(scope, lockId)) {
              slot = s;
              op = Modify;
            } else push(lockId, { lockDataType: P, dataOperationType: Clear, userIndex, dataIndex: s });
          }
          if (slot === null && inScope(scope, lockId))
            slot = slots.placePin(lockId, credentialId, {
              want: p?.pinSlot ?? null,
              max: capacity.pins,
              fabricIndex: origin.fabricIndex,
            });
          if (slot !== null)
            push(lockId, { lockDataType: P, dataOperationType: op, userIndex, dataIndex: slot });
        }
        break;
      }
      case "credential.remove": {
        const credentialId = str(d.credentialId);
        if (!credentialId) break;
        if (d.credentialType === "pin") pinRemoved(credentialId, str(d.userId));
        else {
          const userId = str(d.userId);
          for (const lockId of locks)
            push(lockId, {
              lockDataType: lockDataTypeOf(d.credentialType),
              dataOperationType: Clear,
              userIndex: userId ? slots.userSlot(lockId, userId) : null,
              dataIndex: null,
            });
        }
        break;
      }
      case "ops.applied": {
        // Operations signed elsewhere (the cloud, an admin's own key) folded into the hub's tables.
        for (const id of strings(d.credentialsRemoved)) pinRemoved(id, null);
        for (const id of strings(d.usersRemoved)) userRemoved(id, []);
        for (const id of strings(d.usersWritten)) userAdded(id);
        for (const id of strings(d.credentialsWritten)) {
          for (const lockId of locks) {
            const slot = slots.pinSlot(lockId, id);
            if (slot !== null)
              push(lockId, { lockDataType: P, dataOperationType: Modify, userIndex: null, dataIndex: slot });
          }
        }
        // New credentials' type and locks are known once the hub has re-read its tables: catch up then.
        if (strings(d.credentialsWritten).length > 0)
          this.enqueue(async () => {
            for (const lockId of locks) this.catchUp(lockId);
          });
        break;
      }
    }
    for (const [lockId, list] of changes) this.userChanges(lockId, list, origin);
  }
}
