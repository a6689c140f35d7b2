/**
 * The lock's trusted clock. The RTC can drift, be set back, or lose its time after a power failure;
 * time-limited credentials must never gain validity from that. The runtime persists a *time floor*
 * (the latest trusted time it has seen) and reads the RTC through {@link observeClock}.
 */
import type { EpochMs, Milliseconds } from "./units.ts";

/** A source of the current time. Production: the RTC; tests: a fake clock. */
export interface Clock {
  now(): EpochMs;
}

/** Why the clock is not trusted, or `null` when it is. */
export const ClockDistrust = {
  /** The RTC reads earlier than the persisted time floor (by more than the tolerance). */
  SetBack: "setBack",
  /** The RTC ran ahead of the time expected from the last trusted reading plus elapsed monotonic time. */
  JumpedForward: "jumpedForward",
  /** The RTC reports it lost power and its time is meaningless until set from a trusted source. */
  PowerLost: "powerLost",
} as const;
export type ClockDistrust = (typeof ClockDistrust)[keyof typeof ClockDistrust];

export interface ClockReading {
  /** The time decisions use: never earlier than the floor, so floors and deadlines never go back. */
  readonly now: EpochMs;
  readonly trusted: boolean;
  readonly distrust: ClockDistrust | null;
  /** The floor to persist after this reading (max of old floor and a trusted RTC time). */
  readonly floor: EpochMs;
}

/**
 * Combine an RTC reading with the persisted floor and, when known, the time expected from the last
 * trusted reading plus the monotonic time elapsed since (so a jump either way is caught).
 *
 * @param rtc the RTC's time (ms since epoch)
 * @param powerLost the RTC's own "oscillator stopped" flag
 * @param floor the latest trusted time persisted by this lock
 * @param tolerance how far the RTC may stray (drift) and stay trusted; default policy 2 minutes
 * @param expected last trusted time + monotonic elapsed, or null right after power-up
 * When untrusted, `now` is the best estimate that never goes back: max(floor, expected).
 */
export function observeClock(
  rtc: EpochMs,
  powerLost: boolean,
  floor: EpochMs,
  tolerance: Milliseconds,
  expected: EpochMs | null = null,
): ClockReading {
  const estimate = (expected !== null && expected > floor ? expected : floor) as EpochMs;
  if (powerLost) return { now: estimate, trusted: false, distrust: ClockDistrust.PowerLost, floor };
  if (rtc + tolerance < floor)
    return { now: estimate, trusted: false, distrust: ClockDistrust.SetBack, floor };
  if (expected !== null && rtc > expected + tolerance) {
    return { now: estimate, trusted: false, distrust: ClockDistrust.JumpedForward, floor };
  }
  const now = (rtc > floor ? rtc : floor) as EpochMs;
  return { now, trusted: true, distrust: null, floor: now };
}
