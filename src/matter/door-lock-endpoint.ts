/**
 * The Matter bridge: each hub lock appears as a Matter Door Lock (Matter 1.4 § 5.2) on one matter.js
 * server node, with the PIN, USR, COTA, week-day and year-day schedule and door position features.
 * matter.js speaks the protocol; Latchkey decides. Lock/Unlock go through the lock runtime (decide(),
 * the signed audit log) with the controller's fabric recorded; the user, credential and schedule
 * commands are Latchkey's users and PINs (door-lock-server.ts); Latchkey's audit events become Matter
 * events and attributes (mirror.ts). docs/protocol/matter.md has the whole mapping.
 *
 * Versions pinned exactly (protocol-level APIs are used): @matter/main, @matter/nodejs,
 * @project-chip/matter.js 0.17.9.
 */

import { join } from "node:path";
import { Environment, LogLevel, ServerNode, VendorId } from "@matter/main";
import { DoorLock } from "@matter/main/clusters/door-lock";
import { DoorLockDevice } from "@matter/main/devices/door-lock";
import type { Hub } from "../hub/hub.ts";
import {
  type BridgeContext,
  DEFAULT_MATTER_CAPACITY,
  latchkeyDoorLockServer,
  MATTER_PIN_LENGTH,
  type MatterCapacity,
} from "./door-lock-server.ts";
import {
  MATTER_DOOR_STATE,
  MATTER_LOCK_STATE,
  MATTER_OPERATING_MODE,
  matterLockSettings,
} from "./mapping.ts";
import { MatterMirror } from "./mirror.ts";
import { MatterSlots } from "./slots.ts";

export interface MatterBridgeOptions {
  /** UDP port of the Matter node (5540 is the Matter default). */
  readonly port: number;
  /** matter.js storage root (fabrics, the node's keys); the slot table (slots.ts) is kept beside it. */
  readonly storageDir: string;
  /** Setup passcode (1–99999998, not a trivial one). Default 20202021 (the matter.js test passcode). */
  readonly passcode?: number;
  /** 12-bit discriminator. Default 3840. */
  readonly discriminator?: number;
  /** Where to print the pairing code and QR payload. Default console.log. */
  readonly log?: (line: string) => void;
  /** matter.js log level. Default notice (debug costs ~3 ms per round trip). */
  readonly matterLogLevel?: LogLevel;
  /** Slots per lock (users, PINs, schedules). Default {@link DEFAULT_MATTER_CAPACITY}. */
  readonly capacity?: Partial<MatterCapacity>;
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

/**
 * Start the Matter bridge for the hub's locks. Resolves once the node is online; prints the pairing
 * code and QR payload through `opts.log` while the node is not commissioned.
 */
export async function startMatterBridge(hub: Hub, opts: MatterBridgeOptions): Promise<MatterBridge> {
  const print = opts.log ?? ((l: string) => console.log(l));
  const env = Environment.default;
  env.vars.set("storage.path", opts.storageDir);
  env.vars.set("log.level", opts.matterLogLevel ?? LogLevel.NOTICE);
  const capacity: MatterCapacity = { ...DEFAULT_MATTER_CAPACITY, ...opts.capacity };

  const ctx: BridgeContext = {
    hub,
    slots: new MatterSlots(
      join(opts.storageDir, "latchkey-matter-slots.json"),
      join(opts.storageDir, "latchkey-matter-users.json"),
    ),
    capacity,
    inFlight: new Map(),
    pending: null,
    catchUp: (lockId) => mirror.catchUp(lockId),
    log: print,
  };
  const mirror = new MatterMirror(ctx);

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

  for (const lock of hub.locks()) {
    const lockId = lock.id;
    // Slots for what Latchkey holds now (quietly: nobody is subscribed yet).
    mirror.catchUp(lockId, false);
    const s = hub.status(lockId);
    const settings = lock.settings;
    const endpoint = await node.add(DoorLockDevice.with(latchkeyDoorLockServer(ctx, lockId)), {
      id: `lock-${lockId}`.replace(/[^a-zA-Z0-9-]/g, "-"),
      doorLock: {
        lockType: DoorLock.LockType.DeadBolt,
        actuatorEnabled: true,
        lockState: MATTER_LOCK_STATE[s.lockState] ?? null,
        doorState: MATTER_DOOR_STATE[s.doorState],
        operatingMode: MATTER_OPERATING_MODE[s.operatingMode],
        autoRelockTime: s.autoRelockTime,
        ...matterLockSettings(settings),
        requirePinForRemoteOperation: false,
        numberOfTotalUsersSupported: capacity.users,
        numberOfPinUsersSupported: capacity.pins,
        numberOfCredentialsSupportedPerUser: capacity.credentialsPerUser,
        numberOfWeekDaySchedulesSupportedPerUser: capacity.weekDaySchedulesPerUser,
        numberOfYearDaySchedulesSupportedPerUser: capacity.yearDaySchedulesPerUser,
        minPinCodeLength: MATTER_PIN_LENGTH.min,
        maxPinCodeLength: MATTER_PIN_LENGTH.max,
        credentialRulesSupport: { single: true },
      },
    });
    mirror.addEndpoint(lockId, endpoint);
  }

  const unsubscribe = hub.audit.subscribe(mirror.onEvents);
  try {
    await node.start();
  } catch (e) {
    unsubscribe();
    await node.close().catch(() => {});
    throw e;
  }
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
      await mirror.settled();
      ctx.slots.flush();
      await node.close();
    },
  };
}
