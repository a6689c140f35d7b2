/**
 * Hardware ports of a lock. The runtime (`lock-runtime.ts`) sees hardware only through these; the
 * simulator (`simulator/`) implements them all, and a real board would implement them with GPIO,
 * a motor driver, a Wiegand/NFC reader and a fingerprint module.
 */
import type { Clock } from "../core/clock.ts";
import type { EpochMs, Milliseconds } from "../core/units.ts";

/** Timers, so tests can run on a fake clock. `setTimer` returns a cancel function. */
export interface Scheduler {
  setTimer(delay: Milliseconds, fn: () => void): () => void;
}

/** Where the bolt ends up after a drive. */
export type BoltPosition = "locked" | "unlocked" | "jammed";

/** The motor driving the bolt. `drive` resolves when the bolt reached `target` or stalled (jam). */
export interface Actuator {
  drive(target: "locked" | "unlocked"): Promise<BoltPosition>;
}

/** Door position sensor (reed switch). */
export interface DoorSensor {
  isOpen(): boolean;
  onChange(handler: (open: boolean) => void): void;
}

/** Battery gauge. */
export interface BatteryGauge {
  read(): { readonly percent: number; readonly millivolts: number };
  /** Called by the runtime after each motor operation so a gauge can account for the drain. */
  onOperation?(): void;
}

/** Tamper switch on the housing. */
export interface TamperSwitch {
  onChange(handler: (tampered: boolean) => void): void;
}

/** Real-time clock. `powerLost` is the oscillator-stopped flag: its time is meaningless until set. */
export interface Rtc extends Clock {
  now(): EpochMs;
  powerLost(): boolean;
  set(t: EpochMs): void;
}

/** What a keypad, reader or sensor hears back (the lock's beep/LED): never why a credential failed. */
export type Feedback = "granted" | "denied" | "locked_out" | "error";

/** Keypad: delivers a complete entry (digits then '#'). */
export interface Keypad {
  onEntry(handler: (digits: string) => Promise<Feedback>): void;
}

/** Card reader: ISO 14443 UIDs (hex) or raw Wiegand frames ('0'/'1' bits). */
export interface CardReader {
  onUid(handler: (uid: string) => Promise<Feedback>): void;
  onWiegand(handler: (frame: string) => Promise<Feedback>): void;
}

/** Fingerprint sensor: the template stays on the sensor; it reports a matching slot or null (no match). */
export interface FingerprintSensor {
  onMatch(handler: (slot: number | null) => Promise<Feedback>): void;
}

/** Mechanical override: the key cylinder or thumb-turn moved the bolt by hand. */
export interface ManualOverride {
  onTurn(handler: (to: "locked" | "unlocked") => void): void;
}

/** Request-to-exit button on the inside. */
export interface ExitButton {
  onPress(handler: () => Promise<Feedback>): void;
}

/** Everything a lock runtime drives and listens to. */
export interface LockHardware {
  readonly actuator: Actuator;
  readonly door: DoorSensor;
  readonly battery: BatteryGauge;
  readonly tamper: TamperSwitch;
  readonly rtc: Rtc;
  readonly keypad: Keypad;
  readonly reader: CardReader;
  readonly fingerprint: FingerprintSensor;
  readonly manual: ManualOverride;
  readonly exitButton: ExitButton;
}
