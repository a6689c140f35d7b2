/**
 * Messages over a frame transport: splits outgoing messages into frames (with rolling message ids) and
 * reassembles incoming ones under the {@link Reassembler}'s limits. Any framing error closes the link
 * (strict: a peer that breaks the framing gets no second chance on the same connection).
 */
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { MESSAGE_ID_MODULUS, Reassembler, type ReassemblyLimits, splitMessage } from "../core/link/frames.ts";
import { type Milliseconds, MonotonicMs } from "../core/units.ts";
import type { LinkTransport } from "./transport.ts";

/** The process's monotonic clock. */
export const processMonotonic = (): MonotonicMs => MonotonicMs(performance.now());

export interface MessageLinkOptions {
  /** Reassembly limits; the frame size is the transport's. */
  readonly limits?: Omit<ReassemblyLimits, "frameSize">;
  /** Monotonic clock. Default `performance.now()`. */
  readonly now?: () => MonotonicMs;
}

/** A received message and the monotonic time its last frame arrived. */
export interface ReceivedMessage {
  readonly message: Uint8Array;
  readonly at: MonotonicMs;
}

interface Waiter {
  readonly resolve: (m: ReceivedMessage) => void;
  readonly reject: (e: LatchkeyError) => void;
  readonly timer: ReturnType<typeof setTimeout> | null;
}

export class MessageLink {
  readonly transport: LinkTransport;
  readonly #reassembler: Reassembler;
  readonly #now: () => MonotonicMs;
  readonly #queue: ReceivedMessage[] = [];
  readonly #waiters: Waiter[] = [];
  #nextId = 0;
  #error: LatchkeyError | null = null;

  constructor(transport: LinkTransport, options: MessageLinkOptions = {}) {
    this.transport = transport;
    this.#now = options.now ?? processMonotonic;
    this.#reassembler = new Reassembler({ ...options.limits, frameSize: transport.frameSize });
    transport.onFrame((frame) => this.#onFrame(frame));
    transport.onClose((reason) =>
      this.#fail(reason ?? new LatchkeyError("LK_LINK_CLOSED", "the link closed")),
    );
  }

  /** Send one message (split into frames). @throws LatchkeyError LK_LINK_LIMIT / LK_LINK_CLOSED */
  send(message: Uint8Array): void {
    if (this.#error !== null) throw this.#error;
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) % MESSAGE_ID_MODULUS;
    for (const f of splitMessage(message, id, this.transport.frameSize)) this.transport.send(f);
  }

  /**
   * The next message, waiting at most `timeout`. Rejects with the link's error (a framing error or
   * LK_LINK_CLOSED) or LK_LINK_TIMEOUT.
   */
  next(timeout: Milliseconds): Promise<ReceivedMessage> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#error !== null) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new LatchkeyError("LK_LINK_TIMEOUT", `no message within ${timeout} ms`));
        }, timeout),
      };
      this.#waiters.push(waiter);
    });
  }

  close(reason?: LatchkeyError): void {
    this.transport.close(reason);
  }

  #onFrame(frame: Uint8Array): void {
    if (this.#error !== null) return;
    const at = this.#now();
    let message: Uint8Array | null;
    try {
      message = this.#reassembler.push(frame, at);
    } catch (e) {
      const err = isLatchkeyError(e) ? e : new LatchkeyError("LK_LINK_MALFORMED", "bad frame");
      this.#fail(err);
      this.transport.close(err);
      return;
    }
    if (message === null) return;
    const received = { message, at };
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      // At most a handful of messages queue up: the protocol is request/response.
      if (this.#queue.length >= 16) {
        const err = new LatchkeyError("LK_LINK_LIMIT", "too many unread messages");
        this.#fail(err);
        this.transport.close(err);
        return;
      }
      this.#queue.push(received);
      return;
    }
    if (waiter.timer !== null) clearTimeout(waiter.timer);
    waiter.resolve(received);
  }

  #fail(err: LatchkeyError): void {
    if (this.#error === null) this.#error = err;
    this.#reassembler.clear();
    for (const w of this.#waiters.splice(0)) {
      if (w.timer !== null) clearTimeout(w.timer);
      w.reject(this.#error);
    }
  }
}
