/**
 * A fake clock and scheduler for tests and deterministic simulation: time moves only when `advance`
 * is called, and timers fire in order as it passes them.
 */
import { EpochMs, type Milliseconds } from "../core/units.ts";
import type { Scheduler } from "./ports.ts";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class FakeClock implements Scheduler {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start: EpochMs | number = Date.UTC(2026, 0, 5, 9, 0, 0)) {
    this.t = start;
  }

  now(): EpochMs {
    return EpochMs(this.t);
  }

  setTimer(delay: Milliseconds, fn: () => void): () => void {
    const timer = { at: this.t + Math.max(0, delay), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  /** Move time forward by `ms`, firing due timers in order and letting promise callbacks run between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flushMicrotasks();
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
    await flushMicrotasks();
  }

  /** Jump the wall clock without firing timers (e.g. to model an RTC being set). */
  set(t: number): void {
    this.t = t;
  }

  pendingTimers(): number {
    return this.timers.length;
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** The real scheduler (setTimeout), for the running hub. Timers do not keep the process alive. */
export const realScheduler: Scheduler = {
  setTimer(delay, fn) {
    const h = setTimeout(fn, delay);
    h.unref?.();
    return () => clearTimeout(h);
  },
};
