/**
 * Units in types. A duration or an instant is a branded number, so `Seconds` cannot be passed where
 * `Milliseconds` is expected without an explicit conversion.
 */
declare const brand: unique symbol;
type Branded<T, B extends string> = T & { readonly [brand]: B };

/** A duration in seconds. */
export type Seconds = Branded<number, "Seconds">;
/** A duration in milliseconds. */
export type Milliseconds = Branded<number, "Milliseconds">;
/** An instant: milliseconds since the Unix epoch (UTC). */
export type EpochMs = Branded<number, "EpochMs">;
/**
 * An instant on a monotonic clock: milliseconds since an arbitrary origin (boot, process start). Only
 * differences mean anything; it never jumps when the wall clock is set. Node: `performance.now()`.
 */
export type MonotonicMs = Branded<number, "MonotonicMs">;

export const Seconds = (n: number): Seconds => n as Seconds;
export const Milliseconds = (n: number): Milliseconds => n as Milliseconds;
export const EpochMs = (n: number): EpochMs => n as EpochMs;
export const MonotonicMs = (n: number): MonotonicMs => n as MonotonicMs;

/** Convert a duration in seconds to milliseconds. */
export const secondsToMs = (s: Seconds): Milliseconds => (s * 1000) as Milliseconds;
/** An instant plus a duration. */
export const addMs = (t: EpochMs, d: Milliseconds): EpochMs => (t + d) as EpochMs;
