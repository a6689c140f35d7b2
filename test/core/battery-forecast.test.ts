import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { forecastBattery } from "../../src/core/battery-forecast.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

describe("forecastBattery", () => {
  it("extends a steady drain to the threshold", () => {
    // 1 % per day from 90 %: 15 % is reached 75 days after the first reading.
    const samples = Array.from({ length: 11 }, (_, i) => ({ at: T0 + i * DAY, percent: 90 - i }));
    const f = forecastBattery(samples, T0 + 10 * DAY, 15);
    expect(f.percentPerDay).toBeCloseTo(1, 6);
    expect(f.replaceAt).toBe(new Date(T0 + 75 * DAY).toISOString());
    expect(f.basis).toContain("11 readings");
  });

  it("starts again after a battery change", () => {
    const old = Array.from({ length: 5 }, (_, i) => ({ at: T0 + i * DAY, percent: 30 - 5 * i }));
    const fresh = Array.from({ length: 5 }, (_, i) => ({ at: T0 + (10 + i) * DAY, percent: 100 - 2 * i }));
    const f = forecastBattery([...fresh, ...old], T0 + 14 * DAY, 20);
    expect(f.percentPerDay).toBeCloseTo(2, 6);
    expect(f.replaceAt).toBe(new Date(T0 + 50 * DAY).toISOString());
  });

  it("withholds a forecast without enough data or without drain", () => {
    expect(forecastBattery([], T0).replaceAt).toBeNull();
    expect(forecastBattery([{ at: T0, percent: 80 }], T0).replaceAt).toBeNull();
    expect(
      forecastBattery(
        [
          { at: T0, percent: 80 },
          { at: T0 + 60_000, percent: 79 },
        ],
        T0,
      ).basis,
    ).toContain("less than an hour");
    const flat = forecastBattery(
      [
        { at: T0, percent: 80 },
        { at: T0 + DAY, percent: 80 },
      ],
      T0 + DAY,
    );
    expect(flat.replaceAt).toBeNull();
    expect(flat.basis).toContain("no measurable drain");
  });

  it("says now when the pack is already at the threshold", () => {
    const f = forecastBattery(
      [
        { at: T0, percent: 20 },
        { at: T0 + DAY, percent: 12 },
      ],
      T0 + DAY,
      15,
    );
    expect(f.replaceAt).toBe(new Date(T0 + DAY).toISOString());
    expect(f.basis).toContain("now");
  });

  it("never forecasts a date before the last reading, nor a rising line", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            at: fc.integer({ min: 0, max: 400 * DAY }),
            percent: fc.double({ min: 0, max: 100, noNaN: true }),
          }),
          { maxLength: 40 },
        ),
        (raw) => {
          const samples = raw.map((s) => ({ at: T0 + s.at, percent: s.percent }));
          const last = Math.max(...samples.map((s) => s.at));
          const f = forecastBattery(samples, last);
          if (f.percentPerDay !== null) expect(f.percentPerDay).toBeGreaterThanOrEqual(0);
          if (f.replaceAt !== null && samples.length > 0)
            expect(Date.parse(f.replaceAt)).toBeGreaterThanOrEqual(last);
        },
      ),
      { numRuns: 300 },
    );
  });
});
