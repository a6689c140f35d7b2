/**
 * What a Matter controller hears and schedules it sets, against the matter.js controller (rig.ts):
 * Latchkey's audit events arrive as LockOperation, LockOperationError, DoorStateChange, DoorLockAlarm and
 * LockUserChange events with the right fields, and DoorState follows the simulated door; week-day and
 * year-day schedules set over Matter are the Latchkey user's schedules, so a PIN is refused outside its
 * window at the simulated keypad (the hub runs on a fake clock the test sets).
 */
import { DoorLock } from "@matter/main/clusters/door-lock";
import { afterEach, describe, expect, it } from "vitest";
import { AuditKind } from "../../src/core/audit/chain.ts";
import { closeRigs, pinBytes, type Rig, rig, within } from "./rig.ts";

afterEach(closeRigs);

const S = 5_000;
const FRONT = "front-door";
const { LockDataType: T, DataOperationType: Op, OperationSource: Src } = DoorLock;

/** 2026-01-05 is a Monday; Europe/Berlin is UTC+1 in January. */
const berlin = (hh: number, mm = 0, day = 5) => Date.UTC(2026, 0, day, hh - 1, mm);

async function matterUserWithPin(r: Rig, slot: number, name: string, pinSlot: number, pin: string) {
  await within(
    r.lock.setUser({
      operationType: Op.Add,
      userIndex: slot,
      userName: name,
      userUniqueId: 4242,
      userStatus: null,
      userType: null,
      credentialRule: null,
    }),
    S,
    "SetUser",
  );
  const res = await within(
    r.lock.setCredential({
      operationType: Op.Add,
      credential: { credentialType: DoorLock.CredentialType.Pin, credentialIndex: pinSlot },
      credentialData: pinBytes(pin),
      userIndex: slot,
      userStatus: null,
      userType: null,
    }),
    S,
    "SetCredential",
  );
  expect(res.status).toBe(0);
  return r.hub.users().find((u) => u.name === name)!;
}

describe("Matter events from Latchkey's audit log", () => {
  it("LockOperation, LockOperationError, DoorStateChange and DoorLockAlarm follow the simulated lock", async () => {
    const r = await rig({ harness: true });
    const { hub, owner } = r;
    const sim = hub.simulator(FRONT);
    const bob = hub.addUser(owner, { name: "Bob" });
    hub.setPin(owner, bob.id, "518274");
    let from = r.events.length;

    // A PIN at the keypad: LockOperation Unlock from the keypad, with Bob's user and PIN slots.
    expect(await sim.enterPin("518274")).toBe("granted");
    const unlock = await r.waitForEvent("lockOperation", (d) => d.operationSource === Src.Keypad, from);
    expect(unlock.data).toMatchObject({
      lockOperationType: DoorLock.LockOperationType.Unlock,
      userIndex: 2,
      fabricIndex: null,
      sourceNode: null,
      credentials: [{ credentialType: DoorLock.CredentialType.Pin, credentialIndex: 1 }],
    });

    // The door opens and closes: DoorStateChange, and the DoorState attribute follows.
    sim.openDoor();
    await r.waitForEvent("doorStateChange", (d) => d.doorState === DoorLock.DoorState.DoorOpen, from);
    expect(await r.lock.getDoorStateAttribute(true)).toBe(DoorLock.DoorState.DoorOpen);
    sim.closeDoor();
    await r.waitForEvent("doorStateChange", (d) => d.doorState === DoorLock.DoorState.DoorClosed, from);
    expect(await r.lock.getDoorStateAttribute(true)).toBe(DoorLock.DoorState.DoorClosed);

    // The thumb-turn, then the door forced while locked.
    sim.turnKey("locked");
    await r.waitForEvent(
      "lockOperation",
      (d) => d.operationSource === Src.Manual && d.lockOperationType === DoorLock.LockOperationType.Lock,
      from,
    );
    from = r.events.length;
    sim.openDoor();
    await r.waitForEvent("doorLockAlarm", (d) => d.alarmCode === DoorLock.AlarmCode.DoorForcedOpen, from);
    await r.waitForEvent("doorStateChange", (d) => d.doorState === DoorLock.DoorState.DoorForcedOpen, from);
    sim.closeDoor();

    // Wrong PINs: LockOperationError from the keypad each time, then the wrong-code-limit alarm.
    from = r.events.length;
    for (let i = 0; i < 5; i++) expect(await sim.enterPin("999000")).not.toBe("granted");
    const wrong = await r.waitForEvent("lockOperationError", () => true, from);
    expect(wrong.data).toMatchObject({
      lockOperationType: DoorLock.LockOperationType.Unlock,
      operationSource: Src.Keypad,
      operationError: DoorLock.OperationError.InvalidCredential,
      userIndex: null,
    });
    await r.waitForEvent(
      "doorLockAlarm",
      (d) => d.alarmCode === DoorLock.AlarmCode.WrongCodeEntryLimit,
      from,
    );

    // Tamper, and a jammed bolt (LockState NotFullyLocked).
    sim.setTamper(true);
    await r.waitForEvent(
      "doorLockAlarm",
      (d) => d.alarmCode === DoorLock.AlarmCode.FrontEsceutcheonRemoved,
      from,
    );
    sim.jamNextDrive();
    await hub.remoteUnlock(owner, FRONT);
    await r.waitForEvent("doorLockAlarm", (d) => d.alarmCode === DoorLock.AlarmCode.LockJammed, from);
    expect(await r.lock.getLockStateAttribute(true)).toBe(DoorLock.LockState.NotFullyLocked);

    // Latchkey's own remote paths (API, CLI) are ProprietaryRemote: Matter's Remote means a Matter node.
    // Driving the bolt home clears the jam.
    from = r.events.length;
    await hub.remoteLock(owner, FRONT);
    expect(hub.status(FRONT).lockState).toBe("locked");
    await hub.remoteUnlock(owner, FRONT);
    const api = await r.waitForEvent(
      "lockOperation",
      (d) =>
        d.operationSource === Src.ProprietaryRemote &&
        d.lockOperationType === DoorLock.LockOperationType.Unlock,
      from,
    );
    expect(api.data).toMatchObject({ lockOperationType: DoorLock.LockOperationType.Unlock, userIndex: 1 });
    hub.setOperatingMode(owner, FRONT, "noRemoteLockUnlock");
    await hub.remoteUnlock(owner, FRONT);
    const refused = await r.waitForEvent(
      "lockOperationError",
      (d) => d.operationSource === Src.ProprietaryRemote,
      from,
    );
    expect(refused.data).toMatchObject({ operationError: DoorLock.OperationError.Restricted, userIndex: 1 });
    expect(await r.lock.getOperatingModeAttribute(true)).toBe(DoorLock.OperatingMode.NoRemoteLockUnlock);
  }, 40_000);

  it("LockUserChange reports users and PINs changed through the API and over Matter, with the fabric", async () => {
    const r = await rig({ harness: true });
    const { hub, owner } = r;
    let from = r.events.length;

    // Through Latchkey's API: ProprietaryRemote, no fabric.
    const carol = hub.addUser(owner, { name: "Carol" });
    const pin = hub.setPin(owner, carol.id, "407215");
    hub.updateUser(owner, carol.id, { userStatus: "occupiedDisabled" });
    hub.removeCredential(owner, pin.id);
    hub.removeUser(owner, carol.id);
    await r.eventsOf("lockUserChange", 5, from);
    const api = r.events
      .filter((e) => e.name === "lockUserChange" && e.data.userIndex === 2)
      .map((e) => e.data);
    expect(api).toMatchObject([
      { lockDataType: T.UserIndex, dataOperationType: Op.Add, userIndex: 2, dataIndex: 2 },
      { lockDataType: T.Pin, dataOperationType: Op.Add, userIndex: 2, dataIndex: 1 },
      { lockDataType: T.UserIndex, dataOperationType: Op.Modify, userIndex: 2 },
      { lockDataType: T.Pin, dataOperationType: Op.Clear, userIndex: 2, dataIndex: 1 },
      { lockDataType: T.UserIndex, dataOperationType: Op.Clear, userIndex: 2, dataIndex: 2 },
    ]);
    for (const e of api)
      expect(e).toMatchObject({
        operationSource: Src.ProprietaryRemote,
        fabricIndex: null,
        sourceNode: null,
      });

    // Over Matter: Remote, with the controller's fabric and node id.
    from = r.events.length;
    await matterUserWithPin(r, 3, "Matter Max", 7, "604938");
    await within(r.lock.clearUser({ userIndex: 3 }), S, "ClearUser");
    await r.waitForEvent(
      "lockUserChange",
      (d) => d.userIndex === 3 && d.dataOperationType === Op.Clear,
      from,
    );
    const viaMatter = r.events
      .filter((e) => e.name === "lockUserChange" && e.data.userIndex === 3)
      .map((e) => e.data);
    expect(viaMatter).toMatchObject([
      { lockDataType: T.UserIndex, dataOperationType: Op.Add, userIndex: 3, dataIndex: 3 },
      { lockDataType: T.Pin, dataOperationType: Op.Add, userIndex: 3, dataIndex: 7 },
      { lockDataType: T.UserIndex, dataOperationType: Op.Clear, userIndex: 3, dataIndex: 3 },
    ]);
    for (const e of viaMatter) {
      expect(e.operationSource).toBe(Src.Remote);
      expect(e.fabricIndex).toBeTypeOf("number");
      expect(e.sourceNode).not.toBeNull();
    }
    // A Matter PIN opens: the LockOperation names its user and credential slots.
    from = r.events.length;
    await matterUserWithPin(r, 4, "Matter Mo", 2, "730461");
    expect(await hub.simulator(FRONT).enterPin("730461")).toBe("granted");
    const op = await r.waitForEvent("lockOperation", (d) => d.operationSource === Src.Keypad, from);
    expect(op.data).toMatchObject({
      userIndex: 4,
      credentials: [{ credentialType: DoorLock.CredentialType.Pin, credentialIndex: 2 }],
    });
    expect((await within(r.lock.getUser({ userIndex: 4 }), S, "GetUser")).userUniqueId).toBe(4242);
  }, 40_000);
});

describe("Matter schedules are the Latchkey user's schedules", () => {
  it("a week-day schedule set over Matter refuses the PIN outside its window at the keypad", async () => {
    const r = await rig({ harness: true });
    const { hub, clock } = r;
    const sim = hub.simulator(FRONT);
    clock!.set(berlin(10)); // Monday 10:00 in Berlin
    const sam = await matterUserWithPin(r, 2, "Sam", 1, "736185");
    let from = r.events.length;

    // Monday 09:00–12:00.
    await within(
      r.lock.setWeekDaySchedule({
        weekDayIndex: 1,
        userIndex: 2,
        daysMask: { monday: true },
        startHour: 9,
        startMinute: 0,
        endHour: 12,
        endMinute: 0,
      }),
      S,
      "SetWeekDaySchedule",
    );
    expect(hub.user(sam.id)).toMatchObject({
      userType: "scheduleRestricted",
      weekDaySchedules: [{ daysMask: 0b10, startHour: 9, startMinute: 0, endHour: 12, endMinute: 0 }],
    });
    const got = await within(r.lock.getWeekDaySchedule({ weekDayIndex: 1, userIndex: 2 }), S, "Get");
    expect(got).toMatchObject({
      status: 0,
      startHour: 9,
      endHour: 12,
      daysMask: { monday: true, tuesday: false },
    });
    expect((await within(r.lock.getUser({ userIndex: 2 }), S, "GetUser")).userType).toBe(
      DoorLock.UserType.ScheduleRestrictedUser,
    );
    await r.waitForEvent(
      "lockUserChange",
      (d) => d.lockDataType === T.WeekDaySchedule && d.dataIndex === 1,
      from,
    );

    // Inside the window the PIN opens; at 13:00 it is refused (outside_schedule), at the keypad and over Matter.
    expect(await sim.enterPin("736185")).toBe("granted");
    await hub.lock(FRONT).drive("locked", "manual", null);
    clock!.set(berlin(13));
    from = r.events.length;
    expect(await sim.enterPin("736185")).toBe("denied");
    const denied = hub.queryAudit(r.owner, {
      kinds: [AuditKind.AccessDenied],
      limit: 1,
      descending: true,
    })[0];
    expect(denied?.data).toMatchObject({ reason: "outside_schedule", userId: sam.id });
    const err = await r.waitForEvent("lockOperationError", (d) => d.operationSource === Src.Keypad, from);
    expect(err.data).toMatchObject({ operationError: DoorLock.OperationError.Restricted, userIndex: 2 });
    await expect(within(r.lock.unlockDoor({ pinCode: pinBytes("736185") }), S, "unlock")).rejects.toThrow();

    // A second window (slot 2) that covers 13:00 opens again; clearing it closes again.
    await within(
      r.lock.setWeekDaySchedule({
        weekDayIndex: 2,
        userIndex: 2,
        daysMask: { monday: true, tuesday: true },
        startHour: 12,
        startMinute: 30,
        endHour: 14,
        endMinute: 0,
      }),
      S,
      "SetWeekDaySchedule 2",
    );
    expect(await sim.enterPin("736185")).toBe("granted");
    await hub.lock(FRONT).drive("locked", "manual", null);
    await within(r.lock.clearWeekDaySchedule({ weekDayIndex: 2, userIndex: 2 }), S, "Clear 2");
    expect(await sim.enterPin("736185")).toBe("denied");
    expect(hub.user(sam.id).weekDaySchedules).toHaveLength(1);
    expect(
      (await within(r.lock.getWeekDaySchedule({ weekDayIndex: 2, userIndex: 2 }), S, "Get 2")).status,
    ).toBe(
      139, // NOT_FOUND
    );

    // A schedule set in Latchkey shows over Matter at the next free slot; slot 1 keeps its schedule.
    hub.updateUser(r.owner, sam.id, {
      weekDaySchedules: [
        ...hub.user(sam.id).weekDaySchedules,
        { daysMask: 0b1000001, startHour: 8, startMinute: 15, endHour: 24, endMinute: 0 },
      ],
    });
    expect(
      await within(r.lock.getWeekDaySchedule({ weekDayIndex: 2, userIndex: 2 }), S, "Get 2"),
    ).toMatchObject({
      status: 0,
      daysMask: { sunday: true, saturday: true, monday: false },
      startHour: 8,
      startMinute: 15,
      endHour: 23,
      endMinute: 59,
    });
    expect(
      await within(r.lock.getWeekDaySchedule({ weekDayIndex: 1, userIndex: 2 }), S, "Get 1"),
    ).toMatchObject({
      startHour: 9,
    });
    await within(r.lock.clearWeekDaySchedule({ weekDayIndex: 0xfe, userIndex: 2 }), S, "Clear all");
    expect(hub.user(sam.id).weekDaySchedules).toEqual([]);
  }, 40_000);

  it("year-day schedules round-trip as Matter local epoch seconds and decide access", async () => {
    const r = await rig({ harness: true });
    const { hub, clock } = r;
    const sim = hub.simulator(FRONT);
    clock!.set(berlin(10, 0, 20)); // 2026-01-20 10:00 Berlin
    const yan = await matterUserWithPin(r, 2, "Yan", 1, "592047");
    // 2026-01-20T09:00 – 2026-01-20T11:30 local: epoch seconds of the local wall-clock time (matter.js
    // takes epoch-s fields as seconds since 1970 and moves them to the Matter epoch on the wire).
    const local = (y: number, mo: number, d: number, h: number, mi: number) =>
      Date.UTC(y, mo - 1, d, h, mi) / 1000;
    await within(
      r.lock.setYearDaySchedule({
        yearDayIndex: 1,
        userIndex: 2,
        localStartTime: local(2026, 1, 20, 9, 0),
        localEndTime: local(2026, 1, 20, 11, 30),
      }),
      S,
      "SetYearDaySchedule",
    );
    expect(hub.user(yan.id)).toMatchObject({
      userType: "scheduleRestricted",
      yearDaySchedules: [{ start: "2026-01-20T09:00", end: "2026-01-20T11:30" }],
    });
    expect(
      await within(r.lock.getYearDaySchedule({ yearDayIndex: 1, userIndex: 2 }), S, "Get"),
    ).toMatchObject({
      status: 0,
      localStartTime: local(2026, 1, 20, 9, 0),
      localEndTime: local(2026, 1, 20, 11, 30),
    });
    expect(await sim.enterPin("592047")).toBe("granted");
    await hub.lock(FRONT).drive("locked", "manual", null);
    clock!.set(berlin(11, 45, 20));
    expect(await sim.enterPin("592047")).toBe("denied");

    // Out-of-range indexes answer INVALID_COMMAND in the response; clearing empties Latchkey's list.
    expect(
      (await within(r.lock.getYearDaySchedule({ yearDayIndex: 9, userIndex: 2 }), S, "Get 9")).status,
    ).toBe(133);
    await within(r.lock.clearYearDaySchedule({ yearDayIndex: 1, userIndex: 2 }), S, "Clear");
    expect(hub.user(yan.id).yearDaySchedules).toEqual([]);
  }, 40_000);
});
