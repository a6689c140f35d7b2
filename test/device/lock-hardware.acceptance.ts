/**
 * The acceptance suite of the LockHardware ports. Every adapter runs it: the simulator today, a real
 * board's GPIO/motor-driver adapter tomorrow. `setup` returns the hardware, a way to let time pass,
 * and test hooks to act on the physical world (which a bench rig would do with a relay or a jig).
 */
import { describe, expect, it } from "vitest";
import { EpochMs } from "../../src/core/units.ts";
import type { LockHardware } from "../../src/device/ports.ts";

export interface HardwareRig {
  readonly hw: LockHardware;
  /** Let `ms` of time pass. */
  advance(ms: number): Promise<void>;
  openDoor(): void;
  closeDoor(): void;
  jamNextDrive(): void;
  setTamper(t: boolean): void;
  turnKey(to: "locked" | "unlocked"): void;
  cutRtcPower(): void;
}

export function runLockHardwareTests(name: string, setup: () => HardwareRig): void {
  describe(`LockHardware acceptance: ${name}`, () => {
    it("drives the bolt to each target and reports where it ended", async () => {
      const r = setup();
      const p1 = r.hw.actuator.drive("unlocked");
      await r.advance(5_000);
      expect(await p1).toBe("unlocked");
      const p2 = r.hw.actuator.drive("locked");
      await r.advance(5_000);
      expect(await p2).toBe("locked");
    });

    it("reports a stalled drive as jammed", async () => {
      const r = setup();
      r.jamNextDrive();
      const p = r.hw.actuator.drive("unlocked");
      await r.advance(5_000);
      expect(await p).toBe("jammed");
    });

    it("reports door position changes once per change", () => {
      const r = setup();
      const seen: boolean[] = [];
      r.hw.door.onChange((open) => seen.push(open));
      r.openDoor();
      r.openDoor();
      expect(r.hw.door.isOpen()).toBe(true);
      r.closeDoor();
      expect(seen).toEqual([true, false]);
    });

    it("reads the battery as percent 0–100 and a plausible voltage", () => {
      const b = setup().hw.battery.read();
      expect(b.percent).toBeGreaterThanOrEqual(0);
      expect(b.percent).toBeLessThanOrEqual(100);
      expect(b.millivolts).toBeGreaterThan(0);
    });

    it("reports tamper and mechanical key events", () => {
      const r = setup();
      const tamper: boolean[] = [];
      const manual: string[] = [];
      r.hw.tamper.onChange((t) => tamper.push(t));
      r.hw.manual.onTurn((to) => manual.push(to));
      r.setTamper(true);
      r.turnKey("unlocked");
      expect(tamper).toEqual([true]);
      expect(manual).toEqual(["unlocked"]);
    });

    it("keeps RTC time, flags power loss, and clears the flag when set", () => {
      const r = setup();
      const t = r.hw.rtc.now();
      expect(r.hw.rtc.powerLost()).toBe(false);
      r.cutRtcPower();
      expect(r.hw.rtc.powerLost()).toBe(true);
      r.hw.rtc.set(EpochMs(t + 1000));
      expect(r.hw.rtc.powerLost()).toBe(false);
      expect(Math.abs(r.hw.rtc.now() - (t + 1000))).toBeLessThan(5);
    });
  });
}
