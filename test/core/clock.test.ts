import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { observeClock } from "../../src/core/clock.ts";
import { EpochMs, Milliseconds } from "../../src/core/units.ts";

const TOL = Milliseconds(120_000);
const F = EpochMs(1_800_000_000_000);

describe("observeClock", () => {
  it.each([
    ["RTC ahead of the floor", F + 5_000, false, null, true, null],
    ["RTC within tolerance behind the floor", F - 100_000, false, null, true, null],
    ["RTC set back", F - 200_000, false, null, false, "setBack"],
    ["RTC lost power", F + 5_000, true, null, false, "powerLost"],
    ["RTC within tolerance of the monotonic estimate", F + 100_000, false, F + 60_000, true, null],
    ["RTC jumped forward", F + 3_600_000, false, F + 60_000, false, "jumpedForward"],
  ] as const)("%s", (_n, rtc, lost, expected, trusted, distrust) => {
    const r = observeClock(EpochMs(rtc), lost, F, TOL, expected === null ? null : EpochMs(expected));
    expect(r.trusted).toBe(trusted);
    expect(r.distrust).toBe(distrust);
  });

  it("never answers a time before the floor, and never lowers the floor", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1e10, max: 1e10 }),
        fc.boolean(),
        fc.option(fc.integer({ min: -1e9, max: 1e9 })),
        (d, lost, e) => {
          const r = observeClock(EpochMs(F + d), lost, F, TOL, e === null ? null : EpochMs(F + e));
          expect(r.now).toBeGreaterThanOrEqual(F);
          expect(r.floor).toBeGreaterThanOrEqual(F);
          if (!r.trusted) expect(r.floor).toBe(F);
        },
      ),
    );
  });
});
