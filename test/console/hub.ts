/**
 * A real hub for the console's browser tests: the Hub and its HTTP API (which serves the built console)
 * on 127.0.0.1, on real time — except that a test can move the hub's clock forward (a month passes:
 * people become "ghosts", the battery drains). The wall clock and the monotonic clock move together, so
 * the lock's clock stays trusted.
 */
import { serve } from "@hono/node-server";
import { EpochMs } from "../../src/core/units.ts";
import { realScheduler } from "../../src/device/fake-clock.ts";
import { createApi } from "../../src/hub/api.ts";
import { lockDataDir, openDataDir } from "../../src/hub/data-dir.ts";
import { Hub } from "../../src/hub/hub.ts";

export interface ConsoleHub {
  readonly hub: Hub;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly setupCode: string;
  /** Move the hub's clock forward by `ms` (never back). */
  advance(ms: number): void;
  close(): Promise<void>;
}

export async function startConsoleHub(dir: string, timeZone = "Europe/Berlin"): Promise<ConsoleHub> {
  let offset = 0;
  const dataDir = openDataDir(dir);
  const release = lockDataDir(dataDir.path);
  const hub = new Hub({
    dataDir,
    clock: { now: () => EpochMs(Date.now() + offset) },
    monotonic: () => performance.now() + offset,
    scheduler: realScheduler,
    timeZone,
  });
  const { setupCode } = hub.initialize();
  hub.start();
  if (!setupCode) throw new Error("a fresh hub prints a setup code");
  const app = createApi(hub);
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
    s.once("error", reject);
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  let closed = false;
  return {
    hub,
    url: `http://127.0.0.1:${port}`,
    setupCode,
    advance(ms) {
      offset += Math.max(0, ms);
    },
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((r) => {
        server.close(() => r());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      hub.close();
      release();
    },
  };
}
