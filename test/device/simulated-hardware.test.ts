import { describe, expect, it } from "vitest";
import { Milliseconds } from "../../src/core/units.ts";
import { FakeClock } from "../../src/device/fake-clock.ts";
import { SimulatedLockHardware } from "../../src/device/simulator/simulated-hardware.ts";
import { runLockHardwareTests } from "./lock-hardware.acceptance.ts";

function rig() {
  const clock = new FakeClock();
  const sim = new SimulatedLockHardware({ clock, scheduler: clock, motorTime: Milliseconds(350) });
  return {
    hw: sim,
    advance: (ms: number) => clock.advance(ms),
    openDoor: () => sim.openDoor(),
    closeDoor: () => sim.closeDoor(),
    jamNextDrive: () => sim.jamNextDrive(),
    setTamper: (t: boolean) => sim.setTamper(t),
    turnKey: (to: "locked" | "unlocked") => sim.turnKey(to),
    cutRtcPower: () => sim.cutRtcPower(),
    clock,
    sim,
  };
}

runLockHardwareTests("simulator", rig);

describe("simulator specifics", () => {
  it("takes the configured motor time and drains the battery per operation", async () => {
    const r = rig();
    const p = r.sim.actuator.drive("unlocked");
    await r.clock.advance(349);
    let done = false;
    void p.then(() => {
      done = true;
    });
    await r.clock.advance(0);
    expect(done).toBe(false);
    await r.clock.advance(1);
    expect(await p).toBe("unlocked");
    expect(r.sim.battery.read().percent).toBeLessThan(100);
  });

  it("drifts its RTC by the configured ppm", async () => {
    const clock = new FakeClock();
    const sim = new SimulatedLockHardware({ clock, scheduler: clock, rtcDriftPpm: 20 });
    const start = sim.rtc.now();
    await clock.advance(86_400_000);
    // 20 ppm over a day is 1.728 s fast.
    expect(sim.rtc.now() - start - 86_400_000).toBe(1728);
  });
});
