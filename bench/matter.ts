/**
 * Matter unlock round trip (issue 6), part of `npm run bench`:
 *
 *   matter.unlock_roundtrip  one UnlockDoor command from the matter.js controller to Latchkey's Door Lock
 *                            endpoint (`startMatterBridge` over a claimed hub from `startHub`: decide(),
 *                            durable audit commit, simulated motor with `motorTime` 0) and its response
 *   baseline.matter_plain    the same command to matter.js's own `DoorLockServer` (same features, no
 *                            Latchkey logic) on a second node in the same process
 *
 * One process, both devices and one controller on loopback (the operational address is given to the
 * controller and mDNS is kept on `lo`: shared notes/matter.md). Each iteration unlocks and locks
 * Latchkey, then the baseline, so both series see the same conditions; only the unlock is timed.
 *
 * The simulated motor is instant (motorTime 0, its timer on the next event-loop turn: Node clamps
 * setTimeout(0) to ~1 ms, a simulated-hardware cost, not Latchkey's). BENCH_MATTER_REAL_TIMERS=1 uses the
 * hub's real scheduler, BENCH_MATTER_MOTOR_MS another motor time, BENCH_MATTER_N the sample count.
 * Run alone: `node --import tsx bench/matter.ts`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Environment, LogLevel, Seconds, ServerNode, VendorId } from "@matter/main";
import { DoorLockServer } from "@matter/main/behaviors/door-lock";
import { DoorLock } from "@matter/main/clusters/door-lock";
import { GeneralCommissioning } from "@matter/main/clusters/general-commissioning";
import { DoorLockDevice } from "@matter/main/devices/door-lock";
import { PeerSet } from "@matter/main/protocol";
import { CommissioningController } from "@project-chip/matter.js";
import { Milliseconds } from "../src/core/units.ts";
import type { Scheduler } from "../src/device/ports.ts";
import { startHub } from "../src/hub/server.ts";
import { startMatterBridge } from "../src/matter/door-lock-endpoint.ts";
import { type Metric, percentiles } from "./stats.ts";

const N = Number(process.env.BENCH_MATTER_N ?? 200);
const WARMUP = 20;
const PASSCODE = 20202021;

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`bench matter: ${what}: no answer in ${ms} ms`)), ms).unref(),
    ),
  ]);

/** matter.js's Door Lock with the same features as Latchkey's and nothing overridden. */
const PlainDoorLockServer = DoorLockServer.with(
  "PinCredential",
  "User",
  "CredentialOverTheAirAccess",
  "WeekDayAccessSchedules",
  "YearDayAccessSchedules",
  "DoorPositionSensor",
);

async function startPlain(port: number, discriminator: number): Promise<ServerNode> {
  const node = await ServerNode.create({
    id: `bench-plain-${port}`,
    environment: Environment.default,
    network: { port },
    commissioning: { passcode: PASSCODE, discriminator },
    productDescription: { name: "Plain", deviceType: DoorLockDevice.deviceType },
    basicInformation: {
      vendorName: "Bench",
      vendorId: VendorId(0xfff1),
      productName: "Plain lock",
      productId: 0x8001,
      nodeLabel: "Plain",
      serialNumber: `plain-${port}`,
      uniqueId: `plain-${port}`,
    },
  });
  await node.add(DoorLockDevice.with(PlainDoorLockServer), {
    id: "lock-plain",
    doorLock: {
      lockType: DoorLock.LockType.DeadBolt,
      actuatorEnabled: true,
      lockState: DoorLock.LockState.Locked,
      doorState: DoorLock.DoorState.DoorClosed,
      operatingMode: DoorLock.OperatingMode.Normal,
      autoRelockTime: 0,
      wrongCodeEntryLimit: 5,
      userCodeTemporaryDisableTime: 60,
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
  await node.start();
  return node;
}

/**
 * The real scheduler, except that a 0 ms timer (the zero-time simulated motor) runs on the next turn of
 * the event loop: Node clamps setTimeout(0) to 1 ms, which would be a simulated-hardware cost, not Latchkey's.
 */
const immediateZero: Scheduler = {
  setTimer(delay, fn) {
    if (delay <= 0) {
      const h = setImmediate(fn);
      return () => clearImmediate(h);
    }
    const h = setTimeout(fn, delay);
    h.unref?.();
    return () => clearTimeout(h);
  },
};

export async function benchMatter(): Promise<Metric[]> {
  const env = Environment.default;
  env.vars.set("mdns.networkInterface", "lo");
  env.vars.set("log.level", LogLevel.NOTICE);
  const dir = mkdtempSync(join(tmpdir(), "latchkey-bench-matter-"));
  const base = 21_000 + (process.pid % 4_000) * 2;
  const lkPort = base;
  const plainPort = base + 1;

  const running = await startHub({
    dataDir: join(dir, "hub"),
    port: 0,
    host: "127.0.0.1",
    linkPort: null,
    motorTime: Milliseconds(Number(process.env.BENCH_MATTER_MOTOR_MS ?? 0)),
    ...(process.env.BENCH_MATTER_REAL_TIMERS ? {} : { scheduler: immediateZero }),
    timeZone: "UTC",
    print: () => {},
  });
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const hub = running.hub;
    hub.claim(running.setupCode!, "Bench Owner");
    const bridge = await startMatterBridge(hub, {
      port: lkPort,
      storageDir: join(dir, "matter"),
      log: () => {},
    });
    cleanups.push(() => bridge.close());
    const plain = await startPlain(plainPort, 3841);
    cleanups.push(() => plain.close());

    const controller = new CommissioningController({
      environment: { environment: env, id: `bench-controller-${base}` },
      autoConnect: false,
      adminFabricLabel: "latchkey-bench",
    });
    await controller.start();
    cleanups.push(() => controller.close());
    // The port of the device being commissioned: no multicast on loopback (notes/matter.md).
    let commissioningPort = lkPort;
    controller.node.env.get(PeerSet).added.on((p) => {
      p.descriptor.operationalAddress ??= { ip: "::1", port: commissioningPort, type: "udp" };
    });

    const commission = async (port: number, discriminator: number) => {
      commissioningPort = port;
      const nodeId = await within(
        controller.commissionNode({
          commissioning: {
            regulatoryLocation: GeneralCommissioning.RegulatoryLocationType.IndoorOutdoor,
            regulatoryCountryCode: "XX",
          },
          discovery: {
            knownAddress: { ip: "::1", port, type: "udp" },
            identifierData: { longDiscriminator: discriminator },
            timeout: Seconds(10),
          },
          passcode: PASSCODE,
        }),
        20_000,
        "commissioning",
      );
      const node = await within(controller.getNode(nodeId), 10_000, "getNode");
      node.connect();
      if (!node.remoteInitializationDone)
        await within(
          new Promise<void>((r) => node.events.initializedFromRemote.once(() => r())),
          15_000,
          "initial subscription",
        );
      const lock = node.getDevices()[0]?.getClusterClient(DoorLock.Complete);
      if (!lock) throw new Error("bench matter: no DoorLock cluster");
      return lock;
    };
    const lk = await commission(lkPort, 3840);
    const pl = await commission(plainPort, 3841);

    const latchkey: number[] = [];
    const baseline: number[] = [];
    const roundTrip = async (lock: typeof lk, out: number[] | null, what: string) => {
      const t = process.hrtime.bigint();
      await within(lock.unlockDoor({}), 5_000, `${what} unlock`);
      const d = Number(process.hrtime.bigint() - t);
      await within(lock.lockDoor({}), 5_000, `${what} lock`);
      out?.push(d);
    };
    for (let k = 0; k < WARMUP + N; k++) {
      const warm = k < WARMUP;
      await roundTrip(lk, warm ? null : latchkey, "latchkey");
      await roundTrip(pl, warm ? null : baseline, "plain");
    }
    if (hub.status("front-door").lockState !== "locked")
      throw new Error("bench matter: Latchkey's lock is not locked after the bench");
    const v = hub.verifyAudit();
    if (!v.ok) throw new Error(`bench matter: audit chain broken: ${v.problem?.what}`);
    return [
      { name: "matter.unlock_roundtrip", unit: "ms", ...percentiles(latchkey), n: latchkey.length },
      { name: "baseline.matter_plain", unit: "ms", ...percentiles(baseline), n: baseline.length },
    ];
  } finally {
    // The devices before the controller (the reverse leaves a device retrying for ~15 s).
    for (const c of cleanups) await c().catch(() => {});
    await running.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  for (const m of await benchMatter())
    console.log(`${m.name.padEnd(24)} p50 ${m.p50} ms  p99 ${m.p99} ms  (n=${m.n})`);
  console.log(`took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  process.exit(0);
}
