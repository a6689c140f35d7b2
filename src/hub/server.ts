/**
 * Start a hub: take the data directory's lock, open (or create) its secrets and database, create the
 * default simulated lock and the one-time owner setup code on first run, and serve the API.
 */
import { randomInt } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { serve } from "@hono/node-server";
import type { Clock } from "../core/clock.ts";
import { LatchkeyError } from "../core/errors.ts";
import { MAX_FRAME_SIZE } from "../core/link/frames.ts";
import { Role, UserStatus } from "../core/model.ts";
import type { Milliseconds } from "../core/units.ts";
import { MonotonicMs } from "../core/units.ts";
import { realScheduler } from "../device/fake-clock.ts";
import type { Scheduler } from "../device/ports.ts";
import { type HomeAssistantBridge, startHomeAssistant } from "../ha/discovery.ts";
import { MessageLink } from "../link/message-link.ts";
import { listenTcpLink, type TcpLinkServer } from "../link/tcp-transport.ts";
import type { MatterBridge } from "../matter/door-lock-endpoint.ts";
import { systemClock } from "../platform/system-clock.ts";
import { createApi } from "./api.ts";
import { CloudSync, type SyncOptions } from "./cloud-sync.ts";
import { lockDataDir, openDataDir } from "./data-dir.ts";
import { Hub } from "./hub.ts";

/** Phones served at once on the link bridge. */
export const MAX_LINK_CONNECTIONS = 32;

export interface StartOptions {
  readonly dataDir: string;
  /** TCP port; 0 picks a free one. Default 8080. */
  readonly port: number;
  /** Bind address. Default 127.0.0.1; anything else is an explicit choice. */
  readonly host: string;
  readonly timeZone?: string;
  readonly clock?: Clock;
  readonly scheduler?: Scheduler;
  readonly motorTime?: Milliseconds;
  readonly checkpointEvery?: number;
  readonly maxAuditEvents?: number;
  /**
   * TCP port of the phone link bridge (docs/protocol/link.md § "Transports"); 0 picks a free one, null
   * turns it off. Default: the API port + 1, or a free port when the API port is 0.
   */
  readonly linkPort?: number | null;
  /**
   * MQTT broker URL of the cloud (docs/protocol/sync.md), e.g. `mqtt://127.0.0.1:1883`; none by default.
   * The hub works the same without it and while it is unreachable.
   */
  readonly cloud?: string;
  /**
   * MQTT broker URL for Home Assistant discovery (docs/protocol/home-assistant.md), e.g.
   * `mqtt://127.0.0.1:1883`; none by default. LOCK commands run as the first owner.
   */
  readonly mqtt?: string;
  /**
   * UDP port of the Matter Door Lock endpoint (src/matter/door-lock-endpoint.ts); off when absent. The
   * setup passcode is random per hub, kept in `<data-dir>/matter/passcode` (mode 0600).
   */
  readonly matterPort?: number;
  /** Options of the cloud sync (tests shorten its timers). */
  readonly sync?: Omit<SyncOptions, "url">;
  /** Where to print the first-run banner. Default console.log. */
  readonly print?: (line: string) => void;
}

export interface RunningHub {
  readonly hub: Hub;
  readonly url: string;
  /** `tcp://host:port` of the phone link bridge, or null when it is off. */
  readonly linkUrl: string | null;
  readonly setupCode: string | null;
  close(): Promise<void>;
}

/** Start a hub and its API. Throws LK_DATA_DIR_LOCKED when another hub runs on the same directory. */
export async function startHub(opts: StartOptions): Promise<RunningHub> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const dataDir = openDataDir(opts.dataDir);
  const release = lockDataDir(dataDir.path);
  let hub: Hub;
  try {
    hub = new Hub({
      dataDir,
      clock: opts.clock ?? systemClock,
      scheduler: opts.scheduler ?? realScheduler,
      ...(opts.timeZone ? { timeZone: opts.timeZone } : {}),
      ...(opts.motorTime !== undefined ? { motorTime: opts.motorTime } : {}),
      ...(opts.checkpointEvery !== undefined ? { checkpointEvery: opts.checkpointEvery } : {}),
      ...(opts.maxAuditEvents !== undefined ? { maxAuditEvents: opts.maxAuditEvents } : {}),
    });
  } catch (e) {
    release();
    throw e;
  }
  let setupCode: string | null;
  try {
    setupCode = hub.initialize().setupCode;
    hub.start();
  } catch (e) {
    hub.close();
    release();
    throw e;
  }
  const app = createApi(hub);
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.port, hostname: opts.host }, () => resolve(s));
    s.once("error", (e: NodeJS.ErrnoException) => {
      if (setupCode) hub.discardSetupCode(); // never shown: the next start prints a fresh one
      hub.close();
      release();
      reject(
        e.code === "EADDRINUSE"
          ? new LatchkeyError(
              "LK_INVALID_INPUT",
              `port ${opts.port} on ${opts.host} is already in use: choose another with --port`,
            )
          : e,
      );
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  const shownHost = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const url = `http://${shownHost}:${port}`;

  // The phone link bridge: phones reach the locks over the LAN (BLE is another adapter of the same port).
  const wantedLinkPort = opts.linkPort === undefined ? (opts.port === 0 ? 0 : opts.port + 1) : opts.linkPort;
  let linkServer: TcpLinkServer | null = null;
  let linkUrl: string | null = null;
  if (wantedLinkPort !== null) {
    try {
      let active = 0;
      linkServer = await listenTcpLink(
        (t) => {
          // Bounded: each exchange ends within the Select and answer timeouts; beyond the bound a phone
          // is turned away at once and retries.
          if (active >= MAX_LINK_CONNECTIONS) {
            t.close();
            return;
          }
          active++;
          const link = new MessageLink(t, {
            now: () => MonotonicMs(hub.monotonic()),
            limits: { maxMessageBytes: 16 * 1024 },
          });
          void hub.serveLink(link).finally(() => {
            active--;
            t.close();
          });
        },
        { port: wantedLinkPort, host: opts.host, frameSize: MAX_FRAME_SIZE },
      );
      linkUrl = `tcp://${shownHost}:${linkServer.port}`;
      writeFileSync(join(dataDir.path, "hub.link"), `${linkUrl}\n`, { mode: 0o600 });
    } catch (e) {
      await new Promise<void>((r) => server.close(() => r()));
      hub.close();
      release();
      throw (e as NodeJS.ErrnoException).code === "EADDRINUSE"
        ? new LatchkeyError(
            "LK_INVALID_INPUT",
            `link port ${wantedLinkPort} on ${opts.host} is already in use: choose another with --link-port`,
          )
        : e;
    }
  }

  let sync: CloudSync | null = null;
  if (opts.cloud) {
    sync = new CloudSync(hub, { ...opts.sync, url: opts.cloud, log: (l) => print(l) });
    hub.cloud = sync;
    sync.start();
  }

  let ha: HomeAssistantBridge | null = null;
  if (opts.mqtt) {
    const owner = hub
      .users()
      .find((u) => u.role === Role.Owner && u.userStatus === UserStatus.OccupiedEnabled);
    if (owner) {
      ha = startHomeAssistant(hub, {
        url: opts.mqtt,
        actor: { userId: owner.id, role: owner.role },
        log: (l) => print(l),
      });
    } else {
      print("Home Assistant: claim the hub first (LOCK commands run as its owner), then restart with --mqtt");
    }
  }

  let matter: MatterBridge | null = null;
  if (opts.matterPort !== undefined) {
    if (hub.isClaimed()) {
      const { startMatterBridge } = await import("../matter/door-lock-endpoint.ts");
      const dir = join(dataDir.path, "matter");
      const { passcode, discriminator } = matterSetup(dir);
      matter = await startMatterBridge(hub, {
        port: opts.matterPort,
        storageDir: dir,
        passcode,
        discriminator,
        log: (l) => print(l),
      });
    } else {
      print("Matter: claim the hub first (Matter commands act as its owner), then restart with --matter");
    }
  }

  // Written once everything listens: a failed start leaves no stale address behind.
  writeFileSync(join(dataDir.path, "hub.url"), `${url}\n`, { mode: 0o600 });
  print(`Latchkey hub ${hub.deviceId} listening on ${url}  (data: ${dataDir.path})`);
  print(`Console: open ${url}/ in a browser (served by the hub; no internet needed)`);
  if (linkUrl) print(`Phone link (TCP bridge to the locks): ${linkUrl}`);
  if (opts.cloud) print(`Cloud sync: ${opts.cloud} (the hub keeps working whenever it is unreachable)`);
  if (ha) print(`Home Assistant MQTT discovery: ${opts.mqtt}`);
  print(
    `Locks: ${hub
      .locks()
      .map((l) => l.id)
      .join(", ")}. No internet needed.`,
  );
  if (setupCode) {
    print("");
    print(`  Owner setup code (shown once): ${setupCode}`);
    const dirFlag =
      resolvePath(dataDir.path) === resolvePath("latchkey-data")
        ? ""
        : ` --data-dir ${JSON.stringify(dataDir.path)}`;
    print(`  Claim the hub:  open ${url}/ in a browser, or: npx latchkey${dirFlag} claim --name "Your Name"`);
    print(`  The code is also in ${join(dataDir.path, "setup-code")} (mode 0600) until it is used.`);
    print("");
  } else if (!hub.isClaimed()) {
    print(`Not claimed yet: the setup code is in ${join(dataDir.path, "setup-code")}.`);
  }

  let closed = false;
  return {
    hub,
    url,
    linkUrl,
    setupCode,
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((r) => {
        server.close(() => r());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await linkServer?.close();
      await sync?.close();
      await ha?.close();
      await matter?.close();
      hub.close();
      rmSync(join(dataDir.path, "hub.url"), { force: true });
      rmSync(join(dataDir.path, "hub.link"), { force: true });
      release();
    },
  };
}

/** Passcodes the Matter specification forbids (§ 5.1.7.1): all one digit, 12345678, 87654321. */
const INVALID_PASSCODES = new Set([
  0, 11111111, 22222222, 33333333, 44444444, 55555555, 66666666, 77777777, 88888888, 99999999, 12345678,
  87654321,
]);

/**
 * The hub's Matter setup passcode and discriminator: random on first use (no default passcode), then kept
 * in `<dir>/passcode` (mode 0600) so the pairing code stays the same across restarts.
 */
function matterSetup(dir: string): { passcode: number; discriminator: number } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, "passcode");
  if (!existsSync(file)) {
    let passcode = 0;
    while (INVALID_PASSCODES.has(passcode) || passcode < 1 || passcode > 99_999_998) {
      passcode = randomInt(1, 99_999_999);
    }
    writeFileSync(file, JSON.stringify({ passcode, discriminator: randomInt(0, 4096) }), {
      mode: 0o600,
      flag: "wx",
    });
  }
  const v = JSON.parse(readFileSync(file, "utf8")) as { passcode: number; discriminator: number };
  return { passcode: v.passcode, discriminator: v.discriminator };
}
