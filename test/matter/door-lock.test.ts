/**
 * The Matter bridge against a real Matter client: the matter.js controller commissions the lock on
 * loopback (docs: shared notes/matter.md — the operational address is given to the controller, so no
 * multicast is needed), reads LockState, locks and unlocks, and sets a user and PIN that then open the
 * simulated keypad. Every step is bounded far below matter.js's own 255 s timeouts: fail fast.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Environment, LogLevel, Seconds } from "@matter/main";
import { DoorLock } from "@matter/main/clusters/door-lock";
import { GeneralCommissioning } from "@matter/main/clusters/general-commissioning";
import { PeerSet } from "@matter/main/protocol";
import { CommissioningController } from "@project-chip/matter.js";
import { afterEach, describe, expect, it } from "vitest";
import { AuditKind } from "../../src/core/audit/chain.ts";
import { Milliseconds } from "../../src/core/units.ts";
import { type RunningHub, startHub } from "../../src/hub/server.ts";
import { type MatterBridge, startMatterBridge } from "../../src/matter/door-lock-endpoint.ts";

Environment.default.vars.set("mdns.networkInterface", "lo");
Environment.default.vars.set("log.level", LogLevel.NOTICE);

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref(),
    ),
  ]);

let nextPort = 20_000 + (process.pid % 5_000) * 2;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  // The device before the controller (the reverse leaves the device retrying for ~15 s).
  for (const c of cleanups.splice(0)) await c().catch(() => {});
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-matter-"));
  const port = nextPort++;
  const running: RunningHub = await startHub({
    dataDir: join(dir, "hub"),
    port: 0,
    host: "127.0.0.1",
    linkPort: null,
    motorTime: Milliseconds(5),
    timeZone: "Europe/Berlin",
    print: () => {},
  });
  const hub = running.hub;
  const { user: owner } = hub.claim(running.setupCode!, "Olivia Owner");
  const lines: string[] = [];
  const bridge: MatterBridge = await startMatterBridge(hub, {
    port,
    storageDir: join(dir, "matter"),
    log: (l) => lines.push(l),
  });
  const controller = new CommissioningController({
    environment: { environment: Environment.default, id: `controller-${port}` },
    autoConnect: false,
    adminFabricLabel: "latchkey-test",
  });
  await controller.start();
  controller.node.env.get(PeerSet).added.on((p) => {
    p.descriptor.operationalAddress ??= { ip: "::1", port, type: "udp" };
  });
  cleanups.push(async () => {
    await bridge.close();
    await controller.close();
    await running.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { hub, owner, bridge, controller, port, lines };
}

async function commission(s: Awaited<ReturnType<typeof setup>>) {
  const t0 = performance.now();
  const nodeId = await within(
    s.controller.commissionNode({
      commissioning: {
        regulatoryLocation: GeneralCommissioning.RegulatoryLocationType.IndoorOutdoor,
        regulatoryCountryCode: "XX",
      },
      discovery: {
        knownAddress: { ip: "::1", port: s.port, type: "udp" },
        identifierData: { longDiscriminator: 3840 },
        timeout: Seconds(10),
      },
      passcode: 20202021,
    }),
    20_000,
    "commissioning",
  );
  const commissionMs = performance.now() - t0;
  const node = await within(s.controller.getNode(nodeId), 10_000, "getNode");
  node.connect();
  if (!node.remoteInitializationDone)
    await within(
      new Promise<void>((r) => node.events.initializedFromRemote.once(() => r())),
      15_000,
      "initial subscription",
    );
  const device = node.getDevices()[0];
  if (!device) throw new Error("no device endpoint");
  const lock = device.getClusterClient(DoorLock.Complete);
  if (!lock) throw new Error("no DoorLock cluster");
  return { node, lock, commissionMs };
}

describe("Matter Door Lock bridge", () => {
  it("prints the pairing code, is commissioned, reads LockState, unlocks and locks through decide()", async () => {
    const s = await setup();
    expect(s.bridge.pairingCode).toMatch(/^\d{11}$/);
    expect(s.bridge.qrPayload).toMatch(/^MT:/);
    expect(s.lines.join("\n")).toContain(s.bridge.pairingCode);

    const { node, lock, commissionMs } = await commission(s);
    const events: { name: string; data: unknown }[] = [];
    node.events.eventTriggered.on((e) => {
      events.push({ name: e.path.eventName, data: e.events[0]?.data });
    });

    expect(await lock.getLockStateAttribute(true)).toBe(DoorLock.LockState.Locked);

    const t0 = performance.now();
    await within(lock.unlockDoor({}), 5_000, "unlock");
    const unlockMs = performance.now() - t0;
    expect(s.hub.status("front-door").lockState).toBe("unlocked");
    expect(await lock.getLockStateAttribute(true)).toBe(DoorLock.LockState.Unlocked);

    await within(lock.lockDoor({}), 5_000, "lock");
    expect(s.hub.status("front-door").lockState).toBe("locked");

    const audit = s.hub.queryAudit(
      { userId: s.owner.id, role: s.owner.role },
      {
        lockId: "front-door",
        limit: 100,
      },
    );
    const granted = audit.find((e) => e.kind === AuditKind.AccessGranted && e.data.via === "matter");
    expect(granted?.data).toMatchObject({ source: "remote", via: "matter", userId: s.owner.id });
    expect(typeof granted?.data.fabricIndex).toBe("number");

    // Wrong PIN: denied, audited with the fabric, bolt stays.
    await expect(
      within(lock.unlockDoor({ pinCode: new TextEncoder().encode("9999") }), 5_000, "bad pin"),
    ).rejects.toThrow();
    expect(s.hub.status("front-door").lockState).toBe("locked");

    // Warm round trips (first figures for the matter.unlock_roundtrip benchmark).
    const warm: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await within(lock.unlockDoor({}), 5_000, "unlock");
      warm.push(performance.now() - t);
      await within(lock.lockDoor({}), 5_000, "lock");
    }
    warm.sort((a, b) => a - b);
    console.log(`matter: warm unlock p50 ${warm[10]?.toFixed(1)} ms, max ${warm[19]?.toFixed(1)} ms`);

    await new Promise((r) => setTimeout(r, 300)); // let the subscription deliver the events
    console.log(
      `matter: commission ${commissionMs.toFixed(0)} ms, unlock round trip ${unlockMs.toFixed(1)} ms, events ${events.map((e) => e.name).join(",")}`,
    );
    const ops = events
      .filter((e) => e.name === "lockOperation")
      .map((e) => e.data as DoorLock.LockOperationEvent);
    expect(ops.length).toBe(42);
    expect(ops.slice(0, 2).map((o) => o.lockOperationType)).toEqual([
      DoorLock.LockOperationType.Unlock,
      DoorLock.LockOperationType.Lock,
    ]);
    expect(
      ops.every((o) => o.operationSource === DoorLock.OperationSource.Remote && o.fabricIndex !== null),
    ).toBe(true);
    expect(events.map((e) => e.name)).toContain("lockOperationError");
  }, 50_000);

  it("SetUser + SetCredential(PIN) write Latchkey's model: the PIN opens the keypad and Matter commands", async () => {
    const s = await setup();
    const { lock } = await commission(s);
    await within(
      lock.setUser({
        operationType: DoorLock.DataOperationType.Add,
        userIndex: 1,
        userName: "Matter Mia",
        userUniqueId: null,
        userStatus: DoorLock.UserStatus.OccupiedEnabled,
        userType: DoorLock.UserType.UnrestrictedUser,
        credentialRule: DoorLock.CredentialRule.Single,
      }),
      5_000,
      "setUser",
    );
    const mia = s.hub.users().find((u) => u.name === "Matter Mia");
    expect(mia).toBeDefined();
    const res = await within(
      lock.setCredential({
        operationType: DoorLock.DataOperationType.Add,
        credential: { credentialType: DoorLock.CredentialType.Pin, credentialIndex: 1 },
        credentialData: new TextEncoder().encode("482915"),
        userIndex: 1,
        userStatus: null,
        userType: null,
      }),
      5_000,
      "setCredential",
    );
    expect(res.status).toBe(0);
    expect(s.hub.credentialViews(mia!.id).map((c) => c.type)).toEqual(["pin"]);

    const r = await s.hub.lock("front-door").keypadEntry("482915");
    expect(r.feedback).toBe("granted");
    expect(r.decision?.userId).toBe(mia!.id);
    await s.hub.lock("front-door").drive("locked", "manual", null);

    // RequirePINforRemoteOperation: the PIN-less form fails, the PIN form opens as Mia.
    await lock.setRequirePinForRemoteOperationAttribute(true);
    await expect(within(lock.unlockDoor({}), 5_000, "unlock without PIN")).rejects.toThrow();
    await within(lock.unlockDoor({ pinCode: new TextEncoder().encode("482915") }), 5_000, "unlock with PIN");
    expect(s.hub.status("front-door").lockState).toBe("unlocked");
  }, 50_000);
});
