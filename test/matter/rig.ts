/**
 * A Latchkey hub with its Matter bridge, and the matter.js controller (CommissioningController, a client
 * we did not write) commissioning it on loopback. The operational address is given to the controller,
 * so no multicast is needed (shared notes/matter.md). Every wait is bounded far below matter.js's own
 * 255 s timeouts: a broken step fails in seconds.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Environment, LogLevel, Seconds } from "@matter/main";
import { DoorLock } from "@matter/main/clusters/door-lock";
import { GeneralCommissioning } from "@matter/main/clusters/general-commissioning";
import { PeerSet } from "@matter/main/protocol";
import { CommissioningController } from "@project-chip/matter.js";
import type { PairedNode } from "@project-chip/matter.js/device";
import { Milliseconds } from "../../src/core/units.ts";
import { FakeClock, realScheduler } from "../../src/device/fake-clock.ts";
import { openDataDir } from "../../src/hub/data-dir.ts";
import { type Actor, Hub } from "../../src/hub/hub.ts";
import { startHub } from "../../src/hub/server.ts";
import { type MatterBridge, startMatterBridge } from "../../src/matter/door-lock-endpoint.ts";

Environment.default.vars.set("mdns.networkInterface", "lo");
Environment.default.vars.set("log.level", LogLevel.NOTICE);

export const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref(),
    ),
  ]);

/** One event as the controller received it. */
export interface SeenEvent {
  readonly name: string;
  readonly data: Record<string, unknown>;
}

export interface Rig {
  readonly hub: Hub;
  readonly owner: Actor;
  /** The hub's clock when the rig runs on the fake clock (`harness: true`). */
  readonly clock: FakeClock | null;
  readonly bridge: MatterBridge;
  readonly port: number;
  /** What the bridge printed. */
  readonly lines: string[];
  readonly controller: CommissioningController;
  readonly node: PairedNode;
  readonly lock: ReturnType<typeof clusterOf>;
  readonly commissionMs: number;
  /** Every event the controller received since commissioning, in order. */
  readonly events: SeenEvent[];
  /** Wait until an event after `from` (an index into `events`) matches; fails fast with what arrived. */
  waitForEvent(
    name: string,
    match?: (d: Record<string, unknown>) => boolean,
    from?: number,
  ): Promise<SeenEvent>;
  /** The events named `name` after `from`, once there are `count` of them (fails fast after 5 s). */
  eventsOf(name: string, count: number, from?: number): Promise<Record<string, unknown>[]>;
}

function clusterOf(node: PairedNode) {
  const device = node.getDevices()[0];
  const lock = device?.getClusterClient(DoorLock.Complete);
  if (!lock) throw new Error("no DoorLock cluster on the commissioned node");
  return lock;
}

let nextPort = 20_000 + (process.pid % 5_000) * 2;
const cleanups: (() => Promise<void>)[] = [];

/** Close every rig made since the last call (the device before the controller: the reverse leaves the device retrying ~15 s). */
export async function closeRigs(): Promise<void> {
  for (const c of cleanups.splice(0)) await c().catch(() => {});
}

/**
 * A rig. Default: `startHub`, the path `latchkey start --matter` takes. `harness: true`: a hub on the
 * fake clock (time moves only when the test sets it) with the real scheduler, for schedules.
 */
export async function rig(opts: { harness?: boolean } = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-matter-"));
  const port = nextPort++;
  let hub: Hub;
  let owner: Actor;
  let clock: FakeClock | null = null;
  let closeHub: () => Promise<void>;
  if (opts.harness) {
    // As test/support/hub-harness.ts, with the real scheduler: matter.js's round trips take real time.
    const fake = new FakeClock();
    const h = new Hub({
      dataDir: openDataDir(join(dir, "hub")),
      clock: fake,
      scheduler: realScheduler,
      monotonic: () => fake.now(),
      timeZone: "Europe/Berlin",
      motorTime: Milliseconds(5),
      onFatal: (e) => {
        throw e;
      },
    });
    const { setupCode } = h.initialize();
    h.start();
    const { user } = h.claim(setupCode!, "Olivia Owner");
    hub = h;
    owner = { userId: user.id, role: user.role };
    clock = fake;
    closeHub = async () => h.close();
  } else {
    const running = await startHub({
      dataDir: join(dir, "hub"),
      port: 0,
      host: "127.0.0.1",
      linkPort: null,
      motorTime: Milliseconds(5),
      timeZone: "Europe/Berlin",
      print: () => {},
    });
    hub = running.hub;
    const { user } = hub.claim(running.setupCode!, "Olivia Owner");
    owner = { userId: user.id, role: user.role };
    closeHub = () => running.close();
  }
  const lines: string[] = [];
  const bridge = await startMatterBridge(hub, {
    port,
    storageDir: join(dir, "matter"),
    log: (l) => lines.push(l),
  });
  const controller = new CommissioningController({
    environment: { environment: Environment.default, id: `controller-${port}` },
    autoConnect: false,
    adminFabricLabel: "latchkey-test",
  });
  cleanups.push(async () => {
    await bridge.close();
    await controller.close();
    await closeHub();
    rmSync(dir, { recursive: true, force: true });
  });
  await controller.start();
  controller.node.env.get(PeerSet).added.on((p) => {
    p.descriptor.operationalAddress ??= { ip: "::1", port, type: "udp" };
  });

  const t0 = performance.now();
  const nodeId = await within(
    controller.commissionNode({
      commissioning: {
        regulatoryLocation: GeneralCommissioning.RegulatoryLocationType.IndoorOutdoor,
        regulatoryCountryCode: "XX",
      },
      discovery: {
        knownAddress: { ip: "::1", port, type: "udp" },
        identifierData: { longDiscriminator: 3840 },
        timeout: Seconds(10),
      },
      passcode: 20202021,
    }),
    20_000,
    "commissioning",
  );
  const commissionMs = performance.now() - t0;
  const node = await within(controller.getNode(nodeId), 10_000, "getNode");
  const events: SeenEvent[] = [];
  node.events.eventTriggered.on((e) => {
    for (const x of e.events)
      events.push({ name: e.path.eventName, data: x.data as Record<string, unknown> });
  });
  node.connect();
  if (!node.remoteInitializationDone)
    await within(
      new Promise<void>((r) => node.events.initializedFromRemote.once(() => r())),
      15_000,
      "initial subscription",
    );
  const describeEvents = (from: number) =>
    events
      .slice(from)
      .map((e) => `${e.name}${JSON.stringify(e.data, (_, v) => (typeof v === "bigint" ? String(v) : v))}`)
      .join(", ");
  const r: Rig = {
    hub,
    owner,
    clock,
    bridge,
    port,
    lines,
    controller,
    node,
    lock: clusterOf(node),
    commissionMs,
    events,
    async waitForEvent(name, match = () => true, from = 0) {
      const deadline = performance.now() + 5_000;
      for (;;) {
        const hit = events.slice(from).find((e) => e.name === name && match(e.data));
        if (hit) return hit;
        if (performance.now() > deadline)
          throw new Error(`no ${name} event in 5 s; received: ${describeEvents(from)}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    },
    async eventsOf(name, count, from = 0) {
      const deadline = performance.now() + 5_000;
      for (;;) {
        const hits = events.slice(from).filter((e) => e.name === name);
        if (hits.length >= count) return hits.map((e) => e.data);
        if (performance.now() > deadline)
          throw new Error(
            `${hits.length} of ${count} ${name} events in 5 s; received: ${describeEvents(from)}`,
          );
        await new Promise((res) => setTimeout(res, 20));
      }
    },
  };
  return r;
}

export const pinBytes = (pin: string) => new TextEncoder().encode(pin);
