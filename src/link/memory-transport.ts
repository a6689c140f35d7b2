/**
 * The in-memory link transport: two connected {@link LinkTransport} ends in one process, for tests,
 * simulations and benchmarks. Optional injected one-way delay and frame loss model a radio (and a relay:
 * a relay is a delay); a tap sees every frame on the air, as an eavesdropper would.
 */
import { LatchkeyError } from "../core/errors.ts";
import { checkFrameSize, DEFAULT_FRAME_SIZE } from "../core/link/frames.ts";
import type { Milliseconds } from "../core/units.ts";
import type { LinkTransport } from "./transport.ts";

export interface MemoryTransportOptions {
  /** Frame size of both ends (20..244). Default 20. */
  readonly frameSize?: number;
  /** One-way delay of every frame. Default 0 (delivered on the next microtask). */
  readonly delay?: Milliseconds;
  /** Probability that a frame is lost, 0..1. Default 0. */
  readonly loss?: number;
  /** Random source for loss, uniform in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /** Sees every frame sent, with the end that sent it ("a" or "b"), before loss and delay. */
  readonly tap?: (frame: Uint8Array, from: "a" | "b") => void;
}

class MemoryEnd implements LinkTransport {
  readonly frameSize: number;
  peer: MemoryEnd | null = null;
  readonly #name: "a" | "b";
  readonly #shared: Shared;
  #frameHandler: ((frame: Uint8Array) => void) | null = null;
  #closeHandler: ((reason: LatchkeyError | null) => void) | null = null;
  #closeNotified = false;

  constructor(name: "a" | "b", frameSize: number, shared: Shared) {
    this.#name = name;
    this.frameSize = frameSize;
    this.#shared = shared;
  }

  get closed(): boolean {
    return this.#shared.closed;
  }

  send(frame: Uint8Array): void {
    if (this.#shared.closed) throw new LatchkeyError("LK_LINK_CLOSED", "the link is closed");
    if (!(frame instanceof Uint8Array) || frame.length === 0 || frame.length > this.frameSize) {
      throw new LatchkeyError("LK_LINK_LIMIT", `a frame is 1..${this.frameSize} bytes`);
    }
    const copy = frame.slice();
    const o = this.#shared.options;
    o.tap?.(copy.slice(), this.#name);
    if ((o.loss ?? 0) > 0 && (o.random ?? Math.random)() < (o.loss ?? 0)) return;
    const peer = this.peer!;
    const deliver = () => {
      if (!this.#shared.closed) peer.#frameHandler?.(copy);
    };
    const delay = o.delay ?? 0;
    if (delay > 0) {
      const timer = setTimeout(() => {
        this.#shared.timers.delete(timer);
        deliver();
      }, delay);
      this.#shared.timers.add(timer);
    } else {
      queueMicrotask(deliver);
    }
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#frameHandler = handler;
  }

  onClose(handler: (reason: LatchkeyError | null) => void): void {
    this.#closeHandler = handler;
  }

  close(reason?: LatchkeyError): void {
    if (this.#shared.closed) return;
    this.#shared.closed = true;
    for (const t of this.#shared.timers) clearTimeout(t);
    this.#shared.timers.clear();
    for (const end of [this, this.peer!]) queueMicrotask(() => end.#notifyClose(reason ?? null));
  }

  #notifyClose(reason: LatchkeyError | null): void {
    if (this.#closeNotified) return;
    this.#closeNotified = true;
    this.#closeHandler?.(reason);
  }
}

interface Shared {
  closed: boolean;
  readonly options: MemoryTransportOptions;
  readonly timers: Set<ReturnType<typeof setTimeout>>;
}

/** Two connected ends: what `a` sends arrives at `b` and the reverse. */
export function memoryTransportPair(options: MemoryTransportOptions = {}): [LinkTransport, LinkTransport] {
  const frameSize = options.frameSize ?? DEFAULT_FRAME_SIZE;
  checkFrameSize(frameSize);
  const loss = options.loss ?? 0;
  if (!(loss >= 0 && loss <= 1) || !((options.delay ?? 0) >= 0)) {
    throw new LatchkeyError("LK_INVALID_INPUT", "loss must be 0..1 and delay ≥ 0");
  }
  const shared: Shared = { closed: false, options, timers: new Set() };
  const a = new MemoryEnd("a", frameSize, shared);
  const b = new MemoryEnd("b", frameSize, shared);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
