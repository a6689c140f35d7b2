/**
 * The Matter bridge: each hub lock appears as a Matter Door Lock (Matter 1.4 § 5.2) on one matter.js
 * server node. matter.js speaks the protocol; Latchkey decides. Every Lock/Unlock command goes through
 * the lock runtime (and so `decide()` and the signed audit log), with the controller's fabric in the
 * audit data; Matter users and PIN credentials become Latchkey users and PINs (one model, not two).
 *
 * The Actor for Matter: a commissioned fabric acts for the hub's first owner (the person who
 * commissioned the hub into their controller). A PIN-less remote command is therefore the owner's remote
 * unlock; a command with a PIN is decided as that PIN (its user, scope, schedule, lockout), source
 * remote. RequirePINforRemoteOperation, when set by a controller, makes the PIN-less form fail.
 *
 * Versions pinned exactly (protocol-level APIs are used): @matter/main, @matter/nodejs,
 * @project-chip/matter.js 0.17.9.
 */

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Environment, LogLevel, ServerNode, VendorId } from "@matter/main";
import { DoorLockServer } from "@matter/main/behaviors/door-lock";
import { DoorLock } from "@matter/main/clusters/door-lock";
import { DoorLockDevice } from "@matter/main/devices/door-lock";
import { Status, StatusResponseError } from "@matter/main/types";
import type { JsonValue } from "../core/audit/canonical.ts";
import { type AuditEvent, AuditKind } from "../core/audit/chain.ts";
import type { ClockReading } from "../core/clock.ts";
import type { Attempt } from "../core/decide.ts";
import { LatchkeyError } from "../core/errors.ts";
import { type DoorState, type LockState, type OperatingMode, Role, UserType } from "../core/model.ts";
import type { AttemptResult, LockRuntime } from "../device/lock-runtime.ts";
import type { Actor, Hub } from "../hub/hub.ts";

export interface MatterBridgeOptions {
  /** UDP port of the Matter node (5540 is the Matter default). */
  readonly port: number;
  /** matter.js storage root (fabrics, the node's keys); the bridge's user map is kept beside it. */
  readonly storageDir: string;
  /** Setup passcode (1–99999998, not a trivial one). Default 20202021 (the matter.js test passcode). */
  readonly passcode?: number;
  /** 12-bit discriminator. Default 3840. */
  readonly discriminator?: number;
  /** Where to print the pairing code and QR payload. Default console.log. */
  readonly log?: (line: string) => void;
  /** matter.js log level. Default notice (debug costs ~3 ms per round trip). */
  readonly matterLogLevel?: LogLevel;
}

export interface MatterBridge {
  /** The 11-digit manual pairing code. */
  readonly pairingCode: string;
  /** The `MT:` QR payload. */
  readonly qrPayload: string;
  /** matter.js node id (storage namespace). */
  readonly nodeId: string;
  close(): Promise<void>;
}

const MATTER_LOCK_STATE: Partial<Record<LockState, DoorLock.LockState>> = {
  locked: DoorLock.LockState.Locked,
  unlocked: DoorLock.LockState.Unlocked,
  jammed: DoorLock.LockState.NotFullyLocked,
};

const MATTER_DOOR_STATE: Record<DoorState, DoorLock.DoorState> = {
  open: DoorLock.DoorState.DoorOpen,
  closed: DoorLock.DoorState.DoorClosed,
  ajar: DoorLock.DoorState.DoorAjar,
  forced: DoorLock.DoorState.DoorForcedOpen,
};

const MATTER_OPERATING_MODE: Record<OperatingMode, DoorLock.OperatingMode> = {
  normal: DoorLock.OperatingMode.Normal,
  vacation: DoorLock.OperatingMode.Vacation,
  privacy: DoorLock.OperatingMode.Privacy,
  noRemoteLockUnlock: DoorLock.OperatingMode.NoRemoteLockUnlock,
  passage: DoorLock.OperatingMode.Passage,
};

const MATTER_SOURCE: Record<string, DoorLock.OperationSource> = {
  keypad: DoorLock.OperationSource.Keypad,
  rfid: DoorLock.OperationSource.Rfid,
  biometric: DoorLock.OperationSource.Biometric,
  remote: DoorLock.OperationSource.Remote,
  phone: DoorLock.OperationSource.ProprietaryRemote,
  manual: DoorLock.OperationSource.Manual,
  button: DoorLock.OperationSource.Button,
  auto: DoorLock.OperationSource.Auto,
};

const MATTER_ALARM: Partial<Record<AuditKind, DoorLock.AlarmCode>> = {
  [AuditKind.AlarmJam]: DoorLock.AlarmCode.LockJammed,
  [AuditKind.AlarmLockout]: DoorLock.AlarmCode.WrongCodeEntryLimit,
  [AuditKind.AlarmTamper]: DoorLock.AlarmCode.FrontEsceutcheonRemoved,
  [AuditKind.AlarmForcedOpen]: DoorLock.AlarmCode.DoorForcedOpen,
  [AuditKind.AlarmDoorAjar]: DoorLock.AlarmCode.DoorAjar,
  [AuditKind.AlarmDuress]: DoorLock.AlarmCode.ForcedUser,
};

/** Latchkey deny reasons as Matter OperationErrorEnum (§ 5.2.6.12). */
function operationError(reason: string | undefined): DoorLock.OperationError {
  switch (reason) {
    case "unknown_credential":
    case "wrong_lock":
    case "totp_invalid":
    case "second_credential_required":
      return DoorLock.OperationError.InvalidCredential;
    case "user_disabled":
    case "expired":
    case "non_access_user":
      return DoorLock.OperationError.DisabledUserDenied;
    case "battery_reserve":
      return DoorLock.OperationError.InsufficientBattery;
    default:
      return DoorLock.OperationError.Restricted;
  }
}

const MATTER_USER_TYPE: Partial<Record<number, UserType>> = {
  [DoorLock.UserType.UnrestrictedUser]: UserType.Unrestricted,
  [DoorLock.UserType.YearDayScheduleUser]: UserType.YearDaySchedule,
  [DoorLock.UserType.WeekDayScheduleUser]: UserType.WeekDaySchedule,
  [DoorLock.UserType.ProgrammingUser]: UserType.Programming,
  [DoorLock.UserType.NonAccessUser]: UserType.NonAccess,
  [DoorLock.UserType.DisposableUser]: UserType.Disposable,
  [DoorLock.UserType.ExpiringUser]: UserType.ExpiringDisposable,
  [DoorLock.UserType.ScheduleRestrictedUser]: UserType.ScheduleRestricted,
};

/** Matter user slot (per lock) → Latchkey user id, persisted beside the matter.js storage. */
class UserSlots {
  private readonly map: Record<string, Record<string, string>>;
  constructor(private readonly file: string) {
    try {
      this.map = JSON.parse(readFileSync(file, "utf8")) as Record<string, Record<string, string>>;
    } catch {
      this.map = {};
    }
  }
  get(lockId: string, slot: number): string | undefined {
    return this.map[lockId]?.[String(slot)];
  }
  set(lockId: string, slot: number, userId: string | null): void {
    const m = this.map[lockId] ?? {};
    if (userId === null) delete m[String(slot)];
    else m[String(slot)] = userId;
    this.map[lockId] = m;
    writeFileSync(this.file, JSON.stringify(this.map), { mode: 0o600 });
  }
}

/** The matter.js feature set of a Latchkey lock. */
const LatchkeyDoorLockBase = DoorLockServer.with(
  "PinCredential",
  "User",
  "CredentialOverTheAirAccess",
  "WeekDayAccessSchedules",
  "YearDayAccessSchedules",
  "DoorPositionSensor",
);

/**
 * The PIN decision of a lock, source remote, with `extra` in the access event. The runtime's keypad
 * reading (PIN, PIN + authenticator code, guest code) is reused so a Matter PIN means exactly what it
 * means at the keypad. TODO(hub): `LockRuntime.keypadEntry(digits, extra)` would make this cast go.
 */
async function pinAttempt(
  rt: LockRuntime,
  pin: string,
  extra: Record<string, JsonValue>,
): Promise<AttemptResult> {
  if (!/^\d{1,18}$/.test(pin))
    return rt.attempt({ source: "keypad", pinDigest: "" }, { ...extra, malformed: true });
  const reading = rt.readClock();
  const inner = rt as unknown as { keypadAttempt(digits: string, reading: ClockReading): Attempt };
  return rt.attempt(inner.keypadAttempt(pin, reading), extra, reading);
}

/** The hub's first owner: the identity a commissioned Matter fabric acts as. */
function matterActor(hub: Hub): Actor {
  const owner = hub.users().find((u) => u.role === Role.Owner);
  if (!owner) throw new LatchkeyError("LK_FORBIDDEN", "claim the hub before turning Matter on");
  return { userId: owner.id, role: owner.role };
}

const textOf = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * Start the Matter bridge for the hub's locks. Resolves once the node is online; prints the pairing
 * code and QR payload through `opts.log` while the node is not commissioned.
 */
export async function startMatterBridge(hub: Hub, opts: MatterBridgeOptions): Promise<MatterBridge> {
  const print = opts.log ?? ((l: string) => console.log(l));
  const env = Environment.default;
  env.vars.set("storage.path", opts.storageDir);
  env.vars.set("log.level", opts.matterLogLevel ?? LogLevel.NOTICE);
  const slots = new UserSlots(join(opts.storageDir, "latchkey-matter-users.json"));
  /** Matter commands in flight per lock: their lock.state events are reported by the command itself. */
  const inFlight = new Map<string, number>();

  const nodeId = `latchkey-${hub.deviceId}`;
  const node = await ServerNode.create({
    id: nodeId,
    environment: env,
    network: { port: opts.port },
    commissioning: { passcode: opts.passcode ?? 20202021, discriminator: opts.discriminator ?? 3840 },
    productDescription: { name: "Latchkey", deviceType: DoorLockDevice.deviceType },
    basicInformation: {
      vendorName: "Latchkey",
      vendorId: VendorId(0xfff1),
      productName: "Latchkey lock",
      productId: 0x8000,
      nodeLabel: "Latchkey",
      serialNumber: hub.deviceId.slice(0, 32),
      uniqueId: hub.deviceId.slice(0, 32),
    },
  });

  const endpoints = new Map<string, Awaited<ReturnType<typeof node.add<typeof DoorLockDevice>>>>();
  for (const lock of hub.locks()) {
    const lockId = lock.id;
    const rt = () => hub.lock(lockId);

    /** One lock's Door Lock cluster: matter.js's server with Latchkey's decisions. */
    class LatchkeyDoorLockServer extends LatchkeyDoorLockBase {
      override async lockDoor(request: DoorLock.LockDoorRequest) {
        await this.operate(DoorLock.LockOperationType.Lock, request.pinCode);
      }
      override async unlockDoor(request: DoorLock.UnlockDoorRequest) {
        await this.operate(DoorLock.LockOperationType.Unlock, request.pinCode);
      }
      override async unlockWithTimeout(request: DoorLock.UnlockWithTimeoutRequest) {
        await this.operate(DoorLock.LockOperationType.Unlock, request.pinCode);
      }

      private async operate(type: DoorLock.LockOperationType, pinCode: Uint8Array | undefined) {
        const fabricIndex = this.context.fabric ?? null;
        const extra: Record<string, JsonValue> = { source: "remote", via: "matter", fabricIndex };
        const lockType = type === DoorLock.LockOperationType.Lock;
        if (pinCode === undefined && this.state.requirePinForRemoteOperation) {
          rt().audit(AuditKind.AccessDenied, {
            ...extra,
            action: lockType ? "lock" : "unlock",
            reason: "pin_required",
          });
          this.operationError(type, DoorLock.OperationError.InvalidCredential, fabricIndex);
          throw new StatusResponseError("PIN required for remote operation", Status.Failure);
        }
        inFlight.set(lockId, (inFlight.get(lockId) ?? 0) + 1);
        try {
          let granted: boolean;
          let userId: string | null = null;
          let reason: string | undefined;
          if (pinCode !== undefined) {
            // The PIN decides (who, scope, schedule, lockout); locking with a valid PIN drives the bolt home.
            const r = await pinAttempt(rt(), textOf(pinCode), {
              ...extra,
              action: lockType ? "lock" : "unlock",
            });
            granted = r.decision?.outcome === "grant";
            userId = r.decision?.userId ?? null;
            if (!granted) reason = r.decision?.outcome === "deny" ? r.decision.reason : "malformed";
            else if (lockType) await rt().drive("locked", "remote", userId);
            if (granted && r.feedback === "error") reason = "lock_jammed";
          } else if (lockType) {
            const actor = matterActor(hub);
            const r = await rt().remoteLock(actor.userId);
            granted = "result" in r && r.result !== "jammed";
            userId = actor.userId;
            if (!granted) reason = "refused" in r ? r.refused : "lock_jammed";
          } else {
            const actor = matterActor(hub);
            const r = await rt().attempt({ source: "remote", userId: actor.userId }, extra);
            granted = r.feedback === "granted";
            userId = actor.userId;
            if (!granted) reason = r.decision?.outcome === "deny" ? r.decision.reason : "lock_jammed";
          }
          if (!granted) {
            this.operationError(type, operationError(reason), fabricIndex);
            throw new StatusResponseError(`refused: ${reason ?? "unknown"}`, Status.Failure);
          }
          const state = MATTER_LOCK_STATE[rt().status().lockState];
          if (state !== undefined) this.state.lockState = state;
          this.events.lockOperation.emit(
            {
              lockOperationType: type,
              operationSource: DoorLock.OperationSource.Remote,
              userIndex: userId ? this.slotOf(userId) : null,
              fabricIndex,
              sourceNode: null,
              credentials: null,
            },
            this.context,
          );
        } finally {
          inFlight.set(lockId, (inFlight.get(lockId) ?? 1) - 1);
        }
      }

      private operationError(
        type: DoorLock.LockOperationType,
        error: DoorLock.OperationError,
        fabricIndex: number | null,
      ) {
        this.events.lockOperationError.emit(
          {
            lockOperationType: type,
            operationSource: DoorLock.OperationSource.Remote,
            operationError: error,
            userIndex: null,
            fabricIndex: fabricIndex as never,
            sourceNode: null,
            credentials: null,
          },
          this.context,
        );
      }

      private slotOf(userId: string): number | null {
        for (const u of this.state.users) if (slots.get(lockId, u.userIndex) === userId) return u.userIndex;
        return null;
      }

      // ── Users and credentials: Matter's commands write Latchkey's model ──

      override async setUser(request: DoorLock.SetUserRequest) {
        const adding = request.operationType === DoorLock.DataOperationType.Add;
        await super.setUser(request);
        if (!adding) return;
        const actor = matterActor(hub);
        const name = request.userName?.trim() || `Matter user ${request.userIndex} (${lockId})`;
        const userType = MATTER_USER_TYPE[request.userType ?? 0] ?? UserType.Unrestricted;
        const user = hub.addUser(actor, { name, role: Role.Member, userType });
        slots.set(lockId, request.userIndex, user.id);
      }

      override async clearUser(request: DoorLock.ClearUserRequest) {
        const indexes =
          request.userIndex === 0xfffe ? this.state.users.map((u) => u.userIndex) : [request.userIndex];
        await super.clearUser(request);
        const actor = matterActor(hub);
        for (const i of indexes) {
          const id = slots.get(lockId, i);
          if (!id) continue;
          try {
            hub.removeUser(actor, id);
          } catch (e) {
            if (!(e instanceof LatchkeyError && e.code === "LK_NOT_FOUND")) throw e;
          }
          slots.set(lockId, i, null);
        }
      }

      override async setCredential(
        request: DoorLock.SetCredentialRequest,
      ): Promise<DoorLock.SetCredentialResponse> {
        const { credential, credentialData, userIndex } = request;
        if (credential.credentialType !== DoorLock.CredentialType.Pin)
          return { status: Status.InvalidCommand, userIndex: null, nextCredentialIndex: null };
        if (request.operationType !== DoorLock.DataOperationType.Add || userIndex === null)
          // Modify and SetCredential-creates-the-user come next; 0.17.9 fails the latter anyway.
          return { status: Status.InvalidCommand, userIndex: null, nextCredentialIndex: null };
        const userId = slots.get(lockId, userIndex);
        if (!userId) return { status: Status.InvalidCommand, userIndex: null, nextCredentialIndex: null };
        const pin = textOf(credentialData);
        // matter.js's own store keeps the slot bookkeeping, never the digits: Latchkey keeps only the HMAC.
        const placeholder = new TextEncoder().encode(
          String(credential.credentialIndex).padStart(this.state.minPinCodeLength, "0"),
        );
        const res = await super.setCredential({ ...request, credentialData: placeholder });
        if (res.status !== Status.Success) return res;
        try {
          hub.setPin(matterActor(hub), userId, pin, {
            locks: [lockId],
            label: `matter:${credential.credentialIndex}`,
          });
        } catch (e) {
          // A PIN Latchkey refuses (format, weak, too short, in use) is refused to the controller too.
          print(`matter: SetCredential refused: ${(e as Error).message}`);
          await super.clearCredential({ credential });
          return { status: Status.Failure, userIndex: null, nextCredentialIndex: null };
        }
        return res;
      }
    }

    const s = hub.status(lockId);
    const settings = lock.settings;
    const endpoint = await node.add(DoorLockDevice.with(LatchkeyDoorLockServer), {
      id: `lock-${lockId}`.replace(/[^a-zA-Z0-9-]/g, "-"),
      doorLock: {
        lockType: DoorLock.LockType.DeadBolt,
        actuatorEnabled: true,
        lockState: MATTER_LOCK_STATE[s.lockState] ?? null,
        doorState: MATTER_DOOR_STATE[s.doorState],
        operatingMode: MATTER_OPERATING_MODE[s.operatingMode],
        autoRelockTime: s.autoRelockTime,
        wrongCodeEntryLimit: Math.min(255, Math.max(1, settings.wrongCodeEntryLimit)),
        userCodeTemporaryDisableTime: Math.min(255, Math.max(1, settings.userCodeTemporaryDisableTime)),
        requirePinForRemoteOperation: false,
        numberOfTotalUsersSupported: 100,
        numberOfPinUsersSupported: 100,
        numberOfCredentialsSupportedPerUser: 5,
        numberOfWeekDaySchedulesSupportedPerUser: 7,
        numberOfYearDaySchedulesSupportedPerUser: 7,
        minPinCodeLength: 4,
        maxPinCodeLength: 12,
        credentialRulesSupport: { single: true },
      },
    });
    endpoints.set(lockId, endpoint);
  }

  // Mirror Latchkey into Matter: state attributes and events, in commit order.
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (fn: () => Promise<void>) => {
    queue = queue.then(fn).catch((e: unknown) => print(`matter: mirror failed: ${(e as Error).message}`));
  };
  const unsubscribe = hub.audit.subscribe((events: readonly AuditEvent[]) => {
    for (const ev of events) {
      const ep = ev.lockId ? endpoints.get(ev.lockId) : undefined;
      if (!ep || !ev.lockId) continue;
      const lockId = ev.lockId;
      const data = ev.data as Record<string, JsonValue>;
      // Decided now, not when the queue runs: by then the Matter command has finished.
      const matterCmd = (inFlight.get(lockId) ?? 0) > 0 && data.source === "remote";
      // The command's own grant and bolt movement: the command sets LockState and emits LockOperation when
      // it finishes, so mirroring them too only adds work on its critical path (~1 ms per event with an
      // instant motor) and a transient null LockState report while the bolt moves. Alarms still mirror.
      if (matterCmd && (ev.kind === AuditKind.LockState || data.via === "matter")) continue;
      enqueue(async () => {
        const st = hub.status(lockId);
        await ep.setStateOf(LatchkeyDoorLockBase, {
          lockState: MATTER_LOCK_STATE[st.lockState] ?? null,
          doorState: MATTER_DOOR_STATE[st.doorState],
          operatingMode: MATTER_OPERATING_MODE[st.operatingMode],
        });
        await ep.act((agent) => {
          const ev2 = agent.get(LatchkeyDoorLockBase).events;
          if (ev.kind === AuditKind.LockState && !matterCmd) {
            ev2.lockOperation.emit(
              {
                lockOperationType:
                  data.to === "locked" ? DoorLock.LockOperationType.Lock : DoorLock.LockOperationType.Unlock,
                operationSource: MATTER_SOURCE[String(data.source)] ?? DoorLock.OperationSource.Unspecified,
                userIndex: null,
                fabricIndex: null,
                sourceNode: null,
                credentials: null,
              },
              agent.context,
            );
          } else if (ev.kind === AuditKind.AccessDenied && data.via !== "matter") {
            ev2.lockOperationError.emit(
              {
                lockOperationType: DoorLock.LockOperationType.Unlock,
                operationSource: MATTER_SOURCE[String(data.source)] ?? DoorLock.OperationSource.Unspecified,
                operationError: operationError(typeof data.reason === "string" ? data.reason : undefined),
                userIndex: null,
                fabricIndex: null,
                sourceNode: null,
                credentials: null,
              },
              agent.context,
            );
          }
          const alarm = MATTER_ALARM[ev.kind as AuditKind];
          if (alarm !== undefined) ev2.doorLockAlarm.emit({ alarmCode: alarm }, agent.context);
        });
      });
    }
  });

  await node.start();
  const codes = node.state.commissioning.pairingCodes;
  if (!node.state.commissioning.commissioned) {
    print(`Matter: pair with code ${codes.manualPairingCode}  (QR payload ${codes.qrPairingCode})`);
  }
  let closed = false;
  return {
    pairingCode: codes.manualPairingCode,
    qrPayload: codes.qrPairingCode,
    nodeId,
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      await queue;
      await node.close();
    },
  };
}
