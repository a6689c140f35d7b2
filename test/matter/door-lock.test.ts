/**
 * The Matter bridge against a real Matter client: the matter.js controller commissions the lock on
 * loopback (rig.ts), reads LockState, locks and unlocks with and without a PIN through decide(), and
 * manages users and PINs that are Latchkey's own: a user or PIN added through Latchkey's API shows in
 * GetUser / GetCredentialStatus, a PIN set over Matter opens the simulated keypad, a changed or cleared
 * PIN is changed or gone in Latchkey, and each change is an audited management operation attributed to
 * the fabric (signed when the hub's operation log is active).
 */
import { DoorLock } from "@matter/main/clusters/door-lock";
import { afterEach, describe, expect, it } from "vitest";
import { AuditKind } from "../../src/core/audit/chain.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { ALL_KEY_RIGHTS, issueKey } from "../../src/core/keys/digital-key.ts";
import { decodeHeldOp } from "../../src/core/ops/admit.ts";
import { SealedKind, sealContext, sealToLock } from "../../src/core/ops/seal.ts";
import { c, ed } from "../support/link-fixtures.ts";
import { signOp, signRoleGrant } from "./ops-fixtures.ts";
import { closeRigs, pinBytes, type Rig, rig, within } from "./rig.ts";

afterEach(closeRigs);

const S = 5_000; // bound of one Matter command
const FRONT = "front-door";

function adminEvents(r: Rig, action: string) {
  return r.hub
    .queryAudit(r.owner, { limit: 500, descending: true })
    .filter((e) => e.kind === AuditKind.Admin && e.data.action === action);
}

const userSlot = (r: Rig, slot: number) => within(r.lock.getUser({ userIndex: slot }), S, `GetUser ${slot}`);
const pinStatus = (r: Rig, slot: number) =>
  within(
    r.lock.getCredentialStatus({
      credential: { credentialType: DoorLock.CredentialType.Pin, credentialIndex: slot },
    }),
    S,
    `GetCredentialStatus ${slot}`,
  );

async function addMatterUser(r: Rig, slot: number, userName: string) {
  await within(
    r.lock.setUser({
      operationType: DoorLock.DataOperationType.Add,
      userIndex: slot,
      userName,
      userUniqueId: null,
      userStatus: DoorLock.UserStatus.OccupiedEnabled,
      userType: DoorLock.UserType.UnrestrictedUser,
      credentialRule: DoorLock.CredentialRule.Single,
    }),
    S,
    "SetUser",
  );
}

function setPin(r: Rig, op: DoorLock.DataOperationType, slot: number, pin: string, userIndex: number | null) {
  return within(
    r.lock.setCredential({
      operationType: op,
      credential: { credentialType: DoorLock.CredentialType.Pin, credentialIndex: slot },
      credentialData: pinBytes(pin),
      userIndex,
      userStatus: null,
      userType: null,
    }),
    S,
    "SetCredential",
  );
}

describe("Matter Door Lock bridge", () => {
  it("prints the pairing code, is commissioned, reads LockState, unlocks and locks through decide()", async () => {
    const r = await rig();
    expect(r.bridge.pairingCode).toMatch(/^\d{11}$/);
    expect(r.bridge.qrPayload).toMatch(/^MT:/);
    expect(r.lines.join("\n")).toContain(r.bridge.pairingCode);
    expect(r.lines.join("\n")).toContain(r.bridge.qrPayload);

    expect(await r.lock.getLockStateAttribute(true)).toBe(DoorLock.LockState.Locked);
    const from = r.events.length;

    const t0 = performance.now();
    await within(r.lock.unlockDoor({}), S, "unlock");
    const unlockMs = performance.now() - t0;
    expect(r.hub.status(FRONT).lockState).toBe("unlocked");
    expect(await r.lock.getLockStateAttribute(true)).toBe(DoorLock.LockState.Unlocked);

    await within(r.lock.lockDoor({}), S, "lock");
    expect(r.hub.status(FRONT).lockState).toBe("locked");

    const audit = r.hub.queryAudit(r.owner, { lockId: FRONT, limit: 100 });
    const granted = audit.find((e) => e.kind === AuditKind.AccessGranted && e.data.via === "matter");
    expect(granted?.data).toMatchObject({
      source: "remote",
      via: "matter",
      command: "UnlockDoor",
      userId: r.owner.userId,
      fabricLabel: "latchkey-test",
    });
    expect(typeof granted?.data.fabricIndex).toBe("number");
    expect(granted?.data.nodeId).toMatch(/^0x[0-9a-f]+$/);
    const locked = audit.find((e) => e.kind === AuditKind.LockState && e.data.to === "locked");
    expect(locked?.data).toMatchObject({ source: "remote", via: "matter", command: "LockDoor" });

    // Wrong PIN: denied, audited with the fabric, bolt stays.
    await expect(within(r.lock.unlockDoor({ pinCode: pinBytes("9999") }), S, "bad pin")).rejects.toThrow();
    expect(r.hub.status(FRONT).lockState).toBe("locked");

    // Warm round trips (first figures for the matter.unlock_roundtrip benchmark).
    const warm: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await within(r.lock.unlockDoor({}), S, "unlock");
      warm.push(performance.now() - t);
      await within(r.lock.lockDoor({}), S, "lock");
    }
    warm.sort((a, b) => a - b);
    console.log(
      `matter: commission ${r.commissionMs.toFixed(0)} ms, unlock round trip ${unlockMs.toFixed(1)} ms, warm p50 ${warm[10]?.toFixed(1)} ms, max ${warm[19]?.toFixed(1)} ms`,
    );

    await r.waitForEvent("lockOperationError", () => true, from);
    const ops = (await r.eventsOf("lockOperation", 42, from)) as unknown as DoorLock.LockOperationEvent[];
    expect(ops.length).toBe(42);
    expect(ops.slice(0, 2).map((o) => o.lockOperationType)).toEqual([
      DoorLock.LockOperationType.Unlock,
      DoorLock.LockOperationType.Lock,
    ]);
    for (const o of ops) {
      expect(o.operationSource).toBe(DoorLock.OperationSource.Remote);
      expect(o.fabricIndex).not.toBeNull();
      expect(o.sourceNode).not.toBeNull();
      expect(o.userIndex).toBe(1); // the owner, whom a fabric acts as, is user 1
    }
    const err = r.events.slice(from).find((e) => e.name === "lockOperationError");
    expect(err?.data).toMatchObject({
      operationSource: DoorLock.OperationSource.Remote,
      operationError: DoorLock.OperationError.InvalidCredential,
    });
  }, 40_000);

  it("SetUser + SetCredential(PIN) write Latchkey's model: the PIN opens the keypad and Matter commands", async () => {
    const r = await rig({ harness: true });
    await addMatterUser(r, 2, "Matter Mia");
    const mia = r.hub.users().find((u) => u.name === "Matter Mia");
    expect(mia).toMatchObject({ role: "member", userType: "unrestricted" });
    const res = await setPin(r, DoorLock.DataOperationType.Add, 1, "482915", 2);
    expect(res).toMatchObject({ status: 0, userIndex: null, nextCredentialIndex: 2 });
    expect(r.hub.credentialViews(mia!.id)).toMatchObject([{ type: "pin", locks: [FRONT] }]);

    // Read back from Latchkey's model.
    const got = await userSlot(r, 2);
    expect(got).toMatchObject({
      userName: "Matter Mia",
      userStatus: DoorLock.UserStatus.OccupiedEnabled,
      userType: DoorLock.UserType.UnrestrictedUser,
      credentials: [{ credentialType: DoorLock.CredentialType.Pin, credentialIndex: 1 }],
      nextUserIndex: null,
    });
    expect(got.creatorFabricIndex).not.toBeNull();

    // The same PIN at the simulated keypad opens as Mia.
    const sim = r.hub.simulator(FRONT);
    expect(await sim.enterPin("482915")).toBe("granted");
    const opened = r.hub.queryAudit(r.owner, {
      kinds: [AuditKind.AccessGranted],
      limit: 1,
      descending: true,
    })[0];
    expect(opened?.data).toMatchObject({ source: "keypad", userId: mia!.id });
    await r.hub.lock(FRONT).drive("locked", "manual", null);
    // Events arrive in order: once this one is in, the keypad's is too.
    await r.waitForEvent("lockOperation", (d) => d.operationSource === DoorLock.OperationSource.Manual);

    // RequirePINforRemoteOperation: the PIN-less form fails, the PIN form opens as Mia.
    await r.lock.setRequirePinForRemoteOperationAttribute(true);
    await expect(within(r.lock.unlockDoor({}), S, "unlock without PIN")).rejects.toThrow();
    const mark = r.events.length;
    await within(r.lock.unlockDoor({ pinCode: pinBytes("482915") }), S, "unlock with PIN");
    expect(r.hub.status(FRONT).lockState).toBe("unlocked");
    await within(r.lock.lockDoor({ pinCode: pinBytes("482915") }), S, "lock with PIN");
    expect(r.hub.status(FRONT).lockState).toBe("locked");
    const viaMatter = r.hub
      .queryAudit(r.owner, { kinds: [AuditKind.AccessGranted], limit: 5, descending: true })
      .filter((e) => e.data.via === "matter");
    expect(viaMatter[0]?.data).toMatchObject({ userId: mia!.id, command: "LockDoor", source: "remote" });
    // One LockOperation per command, Remote, naming Mia and her PIN (the bolt's own movement is not repeated).
    const { Remote, Keypad } = DoorLock.OperationSource;
    await r.waitForEvent(
      "lockOperation",
      (d) => d.operationSource === Remote && d.lockOperationType === DoorLock.LockOperationType.Lock,
      mark,
    );
    await new Promise((res) => setTimeout(res, 200));
    const after = r.events
      .slice(mark)
      .filter((e) => e.name === "lockOperation")
      .map((e) => e.data);
    expect(after.filter((o) => o.operationSource === Keypad)).toEqual([]);
    const remote = after.filter((o) => o.operationSource === Remote);
    expect(remote).toHaveLength(2); // unlock and lock
    for (const o of remote)
      expect(o).toMatchObject({
        userIndex: 2,
        credentials: [{ credentialType: DoorLock.CredentialType.Pin, credentialIndex: 1 }],
      });

    // LockDoor with a PIN on a locked door moves nothing (the PIN is checked, the bolt never unlocks).
    const lastSeq = r.hub.queryAudit(r.owner, { limit: 1, descending: true })[0]!.seq;
    await within(r.lock.lockDoor({ pinCode: pinBytes("482915") }), S, "lock again with PIN");
    expect(r.hub.queryAudit(r.owner, { afterSeq: lastSeq, kinds: [AuditKind.LockState], limit: 5 })).toEqual(
      [],
    );

    // NoRemoteLockUnlock refuses a Matter command even with a valid PIN (the keypad still works).
    r.hub.setOperatingMode(r.owner, FRONT, "noRemoteLockUnlock");
    await expect(
      within(r.lock.unlockDoor({ pinCode: pinBytes("482915") }), S, "unlock in mode"),
    ).rejects.toThrow();
    expect(r.hub.status(FRONT).lockState).toBe("locked");
    expect(await sim.enterPin("482915")).toBe("granted");

    // SetCredential without a UserIndex creates its user (the lock picks the first free slot).
    const created = await setPin(r, DoorLock.DataOperationType.Add, 5, "730461", null);
    expect(created).toMatchObject({ status: 0, userIndex: 3 });
    expect((await userSlot(r, 3)).credentials).toEqual([
      { credentialType: DoorLock.CredentialType.Pin, credentialIndex: 5 },
    ]);

    // Refusals: an occupied slot, a PIN another user has, a PIN Latchkey calls weak.
    expect((await setPin(r, DoorLock.DataOperationType.Add, 1, "604938", 2)).status).toBe(
      DoorLock.StatusCode.Occupied,
    );
    expect((await setPin(r, DoorLock.DataOperationType.Add, 2, "730461", 2)).status).toBe(
      DoorLock.StatusCode.Duplicate,
    );
    expect((await setPin(r, DoorLock.DataOperationType.Add, 2, "1234", 2)).status).toBe(133); // INVALID_COMMAND
    await expect(addMatterUser(r, 2, "Someone")).rejects.toThrow(/non-success/);
  }, 40_000);

  it("shows users and PINs added through Latchkey's API at stable slots; Modify and Clear change Latchkey", async () => {
    const r = await rig({ harness: true });
    const { hub, owner } = r;
    const bob = hub.addUser(owner, { name: "Bob Builder" });
    hub.setPin(owner, bob.id, "518274");

    // The owner (user 1) and Bob (user 2, his PIN in slot 1): names cut to Matter's 10 bytes.
    expect(await userSlot(r, 1)).toMatchObject({
      userName: "Olivia Own",
      credentials: null,
      creatorFabricIndex: null,
      nextUserIndex: 2,
    });
    expect(await userSlot(r, 2)).toMatchObject({
      userName: "Bob Builde",
      credentials: [{ credentialType: DoorLock.CredentialType.Pin, credentialIndex: 1 }],
      creatorFabricIndex: null,
      nextUserIndex: null,
    });
    expect(await pinStatus(r, 1)).toMatchObject({
      credentialExists: true,
      userIndex: 2,
      nextCredentialIndex: null,
    });
    expect(await pinStatus(r, 2)).toMatchObject({ credentialExists: false, nextCredentialIndex: null });

    // Change Bob's PIN over Matter: the same slot, the old PIN no longer opens, the new one does.
    expect((await setPin(r, DoorLock.DataOperationType.Modify, 1, "639182", 2)).status).toBe(0);
    const sim = r.hub.simulator(FRONT);
    expect(await sim.enterPin("518274")).toBe("denied");
    expect(await sim.enterPin("639182")).toBe("granted");
    await hub.lock(FRONT).drive("locked", "manual", null);
    const bobPins = hub.credentialViews(bob.id);
    expect(bobPins).toHaveLength(1);
    expect(bobPins[0]).toMatchObject({ type: "pin", locks: "all" }); // the PIN keeps its scope
    expect(await pinStatus(r, 1)).toMatchObject({ credentialExists: true, userIndex: 2 });
    const changed = adminEvents(r, "credential.add").at(0);
    expect(changed?.data).toMatchObject({
      via: "matter",
      command: "SetCredential",
      replaced: [expect.any(String)],
    });

    // More users and PINs: Carol (user 3, PIN 2), the owner's own PIN (3).
    const carol = hub.addUser(owner, { name: "Carol" });
    hub.setPin(owner, carol.id, "407215");
    hub.setPin(owner, owner.userId, "861530");
    expect(await pinStatus(r, 2)).toMatchObject({
      credentialExists: true,
      userIndex: 3,
      nextCredentialIndex: 3,
    });
    expect(await pinStatus(r, 3)).toMatchObject({ credentialExists: true, userIndex: 1 });

    // ClearCredential one PIN: gone from Latchkey; Bob (made in Latchkey) stays.
    await within(
      r.lock.clearCredential({
        credential: { credentialType: DoorLock.CredentialType.Pin, credentialIndex: 1 },
      }),
      S,
      "ClearCredential 1",
    );
    expect(hub.credentialViews(bob.id)).toEqual([]);
    expect(hub.users().some((u) => u.id === bob.id)).toBe(true);
    expect(await pinStatus(r, 1)).toMatchObject({ credentialExists: false, nextCredentialIndex: 2 });

    // ClearCredential all PINs: Carol's goes; the owner's is Latchkey's to manage and stays.
    await within(
      r.lock.clearCredential({
        credential: { credentialType: DoorLock.CredentialType.Pin, credentialIndex: 0xfffe },
      }),
      S,
      "ClearCredential all",
    );
    expect(hub.credentialViews(carol.id)).toEqual([]);
    expect(hub.credentialViews(owner.userId)).toHaveLength(1);
    await expect(within(r.lock.clearUser({ userIndex: 1 }), S, "ClearUser owner")).rejects.toThrow();

    // A user removed in Latchkey disappears; the next one takes the lowest free slot; the others keep theirs.
    hub.removeUser(owner, carol.id);
    expect(await userSlot(r, 3)).toMatchObject({ userName: null, userStatus: null, nextUserIndex: null });
    const dave = hub.addUser(owner, { name: "Dave" });
    expect(await userSlot(r, 3)).toMatchObject({ userName: "Dave" });
    expect(await userSlot(r, 2)).toMatchObject({ userName: "Bob Builde" });

    // ClearUser over Matter removes the Latchkey user.
    await within(r.lock.clearUser({ userIndex: 3 }), S, "ClearUser 3");
    expect(hub.users().some((u) => u.id === dave.id)).toBe(false);
    const removed = adminEvents(r, "user.remove").at(0);
    expect(removed?.data).toMatchObject({ userId: dave.id, via: "matter", command: "ClearUser" });
  }, 40_000);

  it("records Matter's user changes as signed operations, attributed to the fabric in the audit log", async () => {
    const r = await rig({ harness: true });
    const { hub, owner } = r;
    // The owner grants the hub's key the admin role: from then on, local changes are signed operations.
    const root = ed();
    const nowS = Math.floor(r.clock!.now() / 1000);
    hub.keys.register(
      owner,
      root.pk,
      issueKey(c, root, {
        serial: c.randomBytes(16),
        holder: hub.keys.signerKey,
        scope: { kind: "site", id: hub.deviceId },
        nbf: NumericDate(nowS - 60),
        exp: NumericDate(nowS + 3650 * 86_400),
        rights: ALL_KEY_RIGHTS,
        schedule: null,
        leaseSeconds: null,
      }),
    );
    const cloud = ed();
    const t = r.clock!.now();
    const g = hub.applyOps(
      owner,
      [signRoleGrant(root, hub, t, hub.replica.hubKey), signRoleGrant(root, hub, t + 1, cloud.pk)],
      false,
    );
    expect(g.refused).toEqual([]);
    expect(hub.opsStatus().active).toBe(true);
    const before = hub.store.ops.all().length;

    await addMatterUser(r, 2, "Signed Sue");
    expect((await setPin(r, DoorLock.DataOperationType.Add, 1, "592047", 2)).status).toBe(0);
    const sue = hub.users().find((u) => u.name === "Signed Sue")!;

    const ops = hub.store.ops
      .all()
      .slice(before)
      .map((row) => decodeHeldOp(c, row.cose));
    expect(ops.map((o) => [o.kind, o.target])).toEqual([
      ["user.upsert", sue.id],
      ["credential.upsert", hub.credentialViews(sue.id)[0]!.id],
    ]);
    expect(ops.every((o) => o.actor === hub.replica.hubKeyId)).toBe(true);
    const add = adminEvents(r, "user.add").find((e) => e.data.userId === sue.id);
    expect(add?.data).toMatchObject({
      via: "matter",
      command: "SetUser",
      fabricLabel: "latchkey-test",
      actorId: owner.userId,
    });
    expect(typeof add?.data.fabricIndex).toBe("number");

    // A user and a sealed PIN made by the cloud's key: Matter hears of them and shows them.
    const from = r.events.length;
    const box = sealToLock(
      c,
      hub.sealPublicKey,
      { kind: SealedKind.Pin, pin: "731904" },
      sealContext(hub.deviceId, "cred_cloud1"),
    );
    const applied = hub.applyOps(
      null,
      [
        signOp(cloud, hub, t + 5, "00000000000000c1", {
          kind: "user.upsert",
          target: "usr_cloud1",
          payload: { name: "Chloe", role: "member" },
        } as never),
        signOp(cloud, hub, t + 6, "00000000000000c1", {
          kind: "credential.upsert",
          target: "cred_cloud1",
          payload: {
            userId: "usr_cloud1",
            type: "pin",
            locks: "all",
            label: null,
            sealed: box,
            duress: false,
          },
        } as never),
      ],
      true,
    );
    expect(applied.refused).toEqual([]);
    await r.waitForEvent(
      "lockUserChange",
      (d) => d.userIndex === 3 && d.lockDataType === DoorLock.LockDataType.Pin,
      from,
    );
    const heard = r.events
      .slice(from)
      .filter((e) => e.name === "lockUserChange" && e.data.userIndex === 3)
      .map((e) => e.data);
    expect(heard).toMatchObject([
      { lockDataType: DoorLock.LockDataType.UserIndex, dataOperationType: 0, userIndex: 3, dataIndex: 3 },
      { lockDataType: DoorLock.LockDataType.Pin, dataOperationType: 0, userIndex: 3, dataIndex: 2 },
    ]);
    for (const e of heard)
      expect(e).toMatchObject({
        operationSource: DoorLock.OperationSource.ProprietaryRemote,
        fabricIndex: null,
      });
    expect(await userSlot(r, 3)).toMatchObject({
      userName: "Chloe",
      credentials: [{ credentialType: DoorLock.CredentialType.Pin, credentialIndex: 2 }],
    });
    expect(hub.verifyAudit().ok).toBe(true);
  }, 40_000);
});
