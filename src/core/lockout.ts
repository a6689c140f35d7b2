/**
 * Wrong-code protection per input (keypad, card reader, fingerprint sensor), after Matter § 5.2.9.32
 * WrongCodeEntryLimit and § 5.2.9.33 UserCodeTemporaryDisableTime, with a doubling penalty on
 * repeated lockouts (capped). Pure state transitions; the runtime persists the state before acting, so
 * a crash or restart never resets a counter.
 */
import { addMs, type EpochMs, type Milliseconds, Seconds, secondsToMs } from "./units.ts";

/** The input a wrong attempt is counted against. Lockout on one input never disables another. */
export const LockoutInput = { Keypad: "keypad", Reader: "reader", Fingerprint: "fingerprint" } as const;
export type LockoutInput = (typeof LockoutInput)[keyof typeof LockoutInput];

export interface LockoutPolicy {
  /** Matter WrongCodeEntryLimit: wrong attempts (1–255) before the input is disabled. Default 5. */
  readonly wrongCodeEntryLimit: number;
  /** Matter UserCodeTemporaryDisableTime: the first disable period (1–255 s). Default 60 s. */
  readonly userCodeTemporaryDisableTime: Seconds;
  /** Upper bound of the doubled disable period. Default 3,840 s (60 s doubled six times). */
  readonly maxDisableTime: Seconds;
}

export const DEFAULT_LOCKOUT_POLICY: LockoutPolicy = {
  wrongCodeEntryLimit: 5,
  userCodeTemporaryDisableTime: Seconds(60),
  maxDisableTime: Seconds(3840),
};

/** Per-input counter state. `strikes` counts lockouts since the last success (drives the doubling). */
export interface InputLockoutState {
  readonly failures: number;
  readonly strikes: number;
  readonly disabledUntil: EpochMs | null;
}

export const INITIAL_LOCKOUT: InputLockoutState = { failures: 0, strikes: 0, disabledUntil: null };

/** Is the input disabled at `now`? */
export function isDisabled(s: InputLockoutState, now: EpochMs): boolean {
  return s.disabledUntil !== null && now < s.disabledUntil;
}

/** Disable period for the `strikes`-th lockout (0-based): base × 2^strikes, capped at `maxDisableTime`. */
export function disablePeriod(policy: LockoutPolicy, strikes: number): Milliseconds {
  const base = secondsToMs(policy.userCodeTemporaryDisableTime);
  const cap = secondsToMs(policy.maxDisableTime);
  return Math.min(cap, base * 2 ** Math.min(strikes, 30)) as Milliseconds;
}

/**
 * Count a wrong attempt. Returns the next state and, when this attempt reached the limit, the
 * instant the input is disabled until (the caller raises a `lockout` alarm).
 */
export function recordFailure(
  s: InputLockoutState,
  policy: LockoutPolicy,
  now: EpochMs,
): { next: InputLockoutState; lockedOutUntil: EpochMs | null } {
  const failures = s.failures + 1;
  if (failures < policy.wrongCodeEntryLimit) {
    return { next: { ...s, failures }, lockedOutUntil: null };
  }
  const until = addMs(now, disablePeriod(policy, s.strikes));
  return { next: { failures: 0, strikes: s.strikes + 1, disabledUntil: until }, lockedOutUntil: until };
}

/** A successful credential on this input clears the counter and the doubling. */
export function recordSuccess(s: InputLockoutState): InputLockoutState {
  return s.failures === 0 && s.strikes === 0
    ? s
    : { failures: 0, strikes: 0, disabledUntil: s.disabledUntil };
}
