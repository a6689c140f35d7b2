/**
 * A faithful simulated lock: every hardware port of {@link LockHardware}, with realistic behaviour —
 * motor travel time, injectable jams, battery drain per operation (4×AA pack: 6.0 V full, 4.4 V empty),
 * door position sensor, tamper switch, and an RTC with drift, set-back and power loss.
 * Inputs are injected with the methods at the bottom (`enterPin`, `tapCard`, ...), which return the
 * feedback the lock gives (beep/LED).
 */
import type { Clock } from "../../core/clock.ts";
import { LatchkeyError } from "../../core/errors.ts";
import { EpochMs, Milliseconds } from "../../core/units.ts";
import type {
  Actuator,
  BatteryGauge,
  BoltPosition,
  CardReader,
  DoorSensor,
  ExitButton,
  Feedback,
  FingerprintSensor,
  Keypad,
  LockHardware,
  ManualOverride,
  Rtc,
  Scheduler,
  TamperSwitch,
} from "../ports.ts";

/** Persistable simulator state (kept across hub restarts). */
export interface SimulatorState {
  readonly bolt: BoltPosition;
  readonly doorOpen: boolean;
  readonly batteryPercent: number;
  readonly tampered: boolean;
  /** RTC offset from the host clock, ms (set by `setRtc` / drift). */
  readonly rtcOffset: number;
  readonly rtcPowerLost: boolean;
}

export const INITIAL_SIMULATOR_STATE: SimulatorState = {
  bolt: "locked",
  doorOpen: false,
  batteryPercent: 100,
  tampered: false,
  rtcOffset: 0,
  rtcPowerLost: false,
};

export interface SimulatorOptions {
  /** The host time the RTC is derived from. */
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  /** Motor travel time per drive. Default 350 ms. */
  readonly motorTime?: Milliseconds;
  /** Battery percent drained per motor operation. Default 0.02 (≈5,000 operations per pack). */
  readonly drainPerOperation?: number;
  /** RTC drift in parts per million (positive: runs fast). Default 0. */
  readonly rtcDriftPpm?: number;
  readonly initial?: SimulatorState;
  /** Called whenever the persistable state changes. */
  readonly onStateChange?: (s: SimulatorState) => void;
}

type Handler<A extends unknown[], R> = ((...a: A) => R) | null;

function noHandler(): never {
  throw new LatchkeyError("LK_INTERNAL", "simulator input has no runtime attached");
}

export class SimulatedLockHardware implements LockHardware {
  private state: SimulatorState;
  private jamNext = false;
  private readonly clock: Clock;
  private readonly scheduler: Scheduler;
  private readonly motorTime: Milliseconds;
  private readonly drain: number;
  private readonly driftPpm: number;
  private readonly driftOrigin: number;
  private readonly onStateChange: ((s: SimulatorState) => void) | undefined;

  private keypadHandler: Handler<[string], Promise<Feedback>> = null;
  private uidHandler: Handler<[string], Promise<Feedback>> = null;
  private wiegandHandler: Handler<[string], Promise<Feedback>> = null;
  private fingerHandler: Handler<[number | null], Promise<Feedback>> = null;
  private exitHandler: Handler<[], Promise<Feedback>> = null;
  private readonly doorHandlers: ((open: boolean) => void)[] = [];
  private readonly tamperHandlers: ((t: boolean) => void)[] = [];
  private readonly manualHandlers: ((to: "locked" | "unlocked") => void)[] = [];

  constructor(opts: SimulatorOptions) {
    this.clock = opts.clock;
    this.scheduler = opts.scheduler;
    this.motorTime = opts.motorTime ?? Milliseconds(350);
    this.drain = opts.drainPerOperation ?? 0.02;
    this.driftPpm = opts.rtcDriftPpm ?? 0;
    this.driftOrigin = opts.clock.now();
    this.state = opts.initial ?? INITIAL_SIMULATOR_STATE;
    this.onStateChange = opts.onStateChange;
  }

  snapshot(): SimulatorState {
    return this.state;
  }

  private update(patch: Partial<SimulatorState>): void {
    this.state = { ...this.state, ...patch };
    this.onStateChange?.(this.state);
  }

  // ------------------------------------------------------------------ ports

  readonly actuator: Actuator = {
    drive: (target) =>
      new Promise<BoltPosition>((resolve) => {
        this.scheduler.setTimer(this.motorTime, () => {
          const result: BoltPosition = this.jamNext ? "jammed" : target;
          this.jamNext = false;
          this.update({ bolt: result, batteryPercent: Math.max(0, this.state.batteryPercent - this.drain) });
          resolve(result);
        });
      }),
  };

  readonly door: DoorSensor = {
    isOpen: () => this.state.doorOpen,
    onChange: (h) => void this.doorHandlers.push(h),
  };

  readonly battery: BatteryGauge = {
    read: () => {
      const percent = Math.round(this.state.batteryPercent * 100) / 100;
      return { percent, millivolts: Math.round(4400 + percent * 16) };
    },
  };

  readonly tamper: TamperSwitch = { onChange: (h) => void this.tamperHandlers.push(h) };

  readonly rtc: Rtc = {
    now: () => {
      const host = this.clock.now();
      const drift = ((host - this.driftOrigin) * this.driftPpm) / 1e6;
      return EpochMs(Math.floor(host + this.state.rtcOffset + drift));
    },
    powerLost: () => this.state.rtcPowerLost,
    set: (t) => this.update({ rtcOffset: t - this.clock.now(), rtcPowerLost: false }),
  };

  readonly keypad: Keypad = {
    onEntry: (h) => {
      this.keypadHandler = h;
    },
  };
  readonly reader: CardReader = {
    onUid: (h) => {
      this.uidHandler = h;
    },
    onWiegand: (h) => {
      this.wiegandHandler = h;
    },
  };
  readonly fingerprint: FingerprintSensor = {
    onMatch: (h) => {
      this.fingerHandler = h;
    },
  };
  readonly manual: ManualOverride = { onTurn: (h) => void this.manualHandlers.push(h) };
  readonly exitButton: ExitButton = {
    onPress: (h) => {
      this.exitHandler = h;
    },
  };

  // ------------------------------------------------------------------ inputs (what a person or the world does)

  /** Type digits then '#'. */
  enterPin(digits: string): Promise<Feedback> {
    return (this.keypadHandler ?? noHandler)(digits);
  }
  /** Present an ISO 14443 card; `uid` as hex. */
  tapCard(uid: string): Promise<Feedback> {
    return (this.uidHandler ?? noHandler)(uid);
  }
  /** A Wiegand reader sends a frame ('0'/'1' characters). */
  sendWiegand(frame: string): Promise<Feedback> {
    return (this.wiegandHandler ?? noHandler)(frame);
  }
  /** A finger on the sensor: the matching slot, or null when the sensor found no match. */
  presentFinger(slot: number | null): Promise<Feedback> {
    return (this.fingerHandler ?? noHandler)(slot);
  }
  pressExit(): Promise<Feedback> {
    return (this.exitHandler ?? noHandler)();
  }
  openDoor(): void {
    if (this.state.doorOpen) return;
    this.update({ doorOpen: true });
    for (const h of this.doorHandlers) h(true);
  }
  closeDoor(): void {
    if (!this.state.doorOpen) return;
    this.update({ doorOpen: false });
    for (const h of this.doorHandlers) h(false);
  }
  /** Turn the mechanical key (or thumb-turn): the bolt moves with no motor. */
  turnKey(to: "locked" | "unlocked"): void {
    this.update({ bolt: to });
    for (const h of this.manualHandlers) h(to);
  }
  setTamper(tampered: boolean): void {
    if (this.state.tampered === tampered) return;
    this.update({ tampered });
    for (const h of this.tamperHandlers) h(tampered);
  }
  setBattery(percent: number): void {
    this.update({ batteryPercent: Math.max(0, Math.min(100, percent)) });
  }
  /** The next motor drive stalls. */
  jamNextDrive(): void {
    this.jamNext = true;
  }
  /** Set the RTC to `t` (e.g. back in time, to test clock trust). */
  setRtc(t: EpochMs): void {
    this.rtc.set(t);
  }
  /** The RTC lost power: its time is meaningless until set. */
  cutRtcPower(): void {
    this.update({ rtcPowerLost: true, rtcOffset: -this.clock.now() });
  }
}
