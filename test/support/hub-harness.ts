/** A hub on a temporary data directory with a fake clock: scenario tests read like a day at the door. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LatchkeyError } from "../../src/core/errors.ts";
import { Milliseconds } from "../../src/core/units.ts";
import { FakeClock } from "../../src/device/fake-clock.ts";
import { openDataDir } from "../../src/hub/data-dir.ts";
import { type Actor, Hub, type HubOptions } from "../../src/hub/hub.ts";

export interface Harness {
  hub: Hub;
  clock: FakeClock;
  dir: string;
  owner: Actor;
  fatal: LatchkeyError[];
  /** Close and reopen the hub on the same directory (a restart). */
  restart(): Hub;
  cleanup(): void;
}

export function makeHub(opts: Partial<Omit<HubOptions, "dataDir" | "clock" | "scheduler">> = {}): Harness {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-test-"));
  const clock = new FakeClock();
  const fatal: LatchkeyError[] = [];
  const open = () =>
    new Hub({
      dataDir: openDataDir(dir),
      clock,
      scheduler: clock,
      monotonic: () => clock.now(),
      timeZone: "Europe/Berlin",
      motorTime: Milliseconds(300),
      onFatal: (e) => fatal.push(e),
      ...opts,
    });
  let hub = open();
  const { setupCode } = hub.initialize();
  hub.start();
  const { user } = hub.claim(setupCode!, "Olivia Owner");
  const h: Harness = {
    hub,
    clock,
    dir,
    owner: { userId: user.id, role: user.role },
    fatal,
    restart() {
      hub.close();
      hub = open();
      hub.start();
      h.hub = hub;
      return hub;
    },
    cleanup() {
      try {
        hub.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return h;
}

/** Run an input while moving the fake clock so the motor can finish. */
export async function settle<T>(h: Harness, p: Promise<T>, ms = 1000): Promise<T> {
  await h.clock.advance(ms);
  return p;
}
