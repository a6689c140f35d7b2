/**
 * Link framing (spec: docs/protocol/link.md § "Framing"): a message is cut into frames that fit a small
 * radio MTU, and a {@link Reassembler} puts them back together under hard limits.
 *
 *   frame = header (2 bytes) ‖ payload (1 .. frameSize − 2 bytes)
 *   header byte 0: bit 7 = LAST (this frame ends the message), bits 6..0 = message id (0..127)
 *   header byte 1: frame index within the message (0..255)
 *
 * Frames of one message arrive in order (BLE GATT/L2CAP and TCP keep order); frames of up to
 * `maxConcurrent` messages may interleave. Every defect is a coded {@link LatchkeyError}:
 * `LK_LINK_MALFORMED` (header, order, size), `LK_LINK_LIMIT` (message size, frame count, concurrency),
 * `LK_LINK_TIMEOUT` (a message not finished in time). Buffered bytes never exceed
 * `maxConcurrent × maxMessageBytes`.
 *
 * Pure: time comes in as a monotonic instant.
 */
import { LatchkeyError } from "../errors.ts";
import type { Milliseconds, MonotonicMs } from "../units.ts";

/** Bytes of the frame header. */
export const FRAME_HEADER_BYTES = 2;
/** Smallest frame: the BLE 4.0 default ATT MTU (23) less the 3-byte ATT header. */
export const MIN_FRAME_SIZE = 20;
/** Largest frame: the BLE 4.2+ data-length-extension payload (251) less L2CAP and ATT headers. */
export const MAX_FRAME_SIZE = 244;
/** Frame size when none is configured: fits every BLE link before MTU exchange. */
export const DEFAULT_FRAME_SIZE = MIN_FRAME_SIZE;
/** Frames per message the header can number (index is one byte). */
export const MAX_FRAMES_PER_MESSAGE = 256;
/** Message ids run 0..127 and wrap. */
export const MESSAGE_ID_MODULUS = 128;
const LAST_FLAG = 0x80;

/** Limits of a {@link Reassembler}. */
export interface ReassemblyLimits {
  /** Largest frame accepted, in bytes (20..244). Default {@link DEFAULT_FRAME_SIZE}. */
  readonly frameSize?: number;
  /** Largest reassembled message, in bytes. Default 4096. */
  readonly maxMessageBytes?: number;
  /** Most frames in one message (1..256). Default 256. */
  readonly maxFrames?: number;
  /** Most messages being reassembled at once. Default 2. */
  readonly maxConcurrent?: number;
  /** A message not finished this long after its first frame is dropped. Default 10,000 ms. */
  readonly timeout?: Milliseconds;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 4096;
export const DEFAULT_MAX_CONCURRENT = 2;
export const DEFAULT_REASSEMBLY_TIMEOUT_MS = 10_000;

/** Throws `LK_INVALID_INPUT` unless `n` is a frame size in 20..244. */
export function checkFrameSize(n: number): void {
  if (!Number.isInteger(n) || n < MIN_FRAME_SIZE || n > MAX_FRAME_SIZE) {
    throw new LatchkeyError("LK_INVALID_INPUT", `frame size must be ${MIN_FRAME_SIZE}..${MAX_FRAME_SIZE}`, {
      frameSize: n,
    });
  }
}

/**
 * Cut `message` into frames of at most `frameSize` bytes with message id `messageId` (0..127). Every frame
 * but the last is full. Throws `LK_LINK_LIMIT` when it needs more than {@link MAX_FRAMES_PER_MESSAGE}
 * frames, `LK_INVALID_INPUT` for an empty message, a bad frame size or id.
 */
export function splitMessage(message: Uint8Array, messageId: number, frameSize: number): Uint8Array[] {
  checkFrameSize(frameSize);
  if (!Number.isInteger(messageId) || messageId < 0 || messageId >= MESSAGE_ID_MODULUS) {
    throw new LatchkeyError("LK_INVALID_INPUT", "message id must be 0..127");
  }
  if (!(message instanceof Uint8Array) || message.length === 0) {
    throw new LatchkeyError("LK_INVALID_INPUT", "a message is at least one byte");
  }
  const chunk = frameSize - FRAME_HEADER_BYTES;
  const count = Math.ceil(message.length / chunk);
  if (count > MAX_FRAMES_PER_MESSAGE) {
    throw new LatchkeyError("LK_LINK_LIMIT", `message needs ${count} frames; at most 256`, {
      bytes: message.length,
      frameSize,
    });
  }
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const part = message.subarray(i * chunk, Math.min(message.length, (i + 1) * chunk));
    const f = new Uint8Array(FRAME_HEADER_BYTES + part.length);
    f[0] = messageId | (i === count - 1 ? LAST_FLAG : 0);
    f[1] = i;
    f.set(part, FRAME_HEADER_BYTES);
    frames.push(f);
  }
  return frames;
}

/** One message being put together. */
interface PartialMessage {
  readonly startedAt: MonotonicMs;
  readonly chunks: Uint8Array[];
  bytes: number;
}

/**
 * Puts frames back into messages. `push()` returns the completed message, or null while one is still
 * partial; on any defect it throws a coded error and forgets the offending message (other messages are
 * kept). A caller that wants the strictest behaviour closes the link on the first error.
 */
export class Reassembler {
  readonly frameSize: number;
  readonly maxMessageBytes: number;
  readonly maxFrames: number;
  readonly maxConcurrent: number;
  readonly timeout: Milliseconds;
  readonly #partials = new Map<number, PartialMessage>();

  constructor(limits: ReassemblyLimits = {}) {
    this.frameSize = limits.frameSize ?? DEFAULT_FRAME_SIZE;
    checkFrameSize(this.frameSize);
    this.maxMessageBytes = limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxFrames = limits.maxFrames ?? MAX_FRAMES_PER_MESSAGE;
    this.maxConcurrent = limits.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
    this.timeout = limits.timeout ?? (DEFAULT_REASSEMBLY_TIMEOUT_MS as Milliseconds);
    const ok =
      Number.isInteger(this.maxMessageBytes) &&
      this.maxMessageBytes >= 1 &&
      this.maxMessageBytes <= 1 << 20 &&
      Number.isInteger(this.maxFrames) &&
      this.maxFrames >= 1 &&
      this.maxFrames <= MAX_FRAMES_PER_MESSAGE &&
      Number.isInteger(this.maxConcurrent) &&
      this.maxConcurrent >= 1 &&
      this.maxConcurrent <= MESSAGE_ID_MODULUS &&
      Number.isFinite(this.timeout) &&
      this.timeout > 0;
    if (!ok) throw new LatchkeyError("LK_INVALID_INPUT", "reassembly limits out of range");
  }

  /** Messages being reassembled now. */
  get pending(): number {
    return this.#partials.size;
  }

  /** Bytes buffered now (never more than maxConcurrent × maxMessageBytes). */
  get bufferedBytes(): number {
    let n = 0;
    for (const p of this.#partials.values()) n += p.bytes;
    return n;
  }

  /** Drop messages older than the timeout; returns how many were dropped. */
  expire(now: MonotonicMs): number {
    let dropped = 0;
    for (const [id, p] of this.#partials) {
      if (!(now - p.startedAt <= this.timeout)) {
        this.#partials.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  /** Forget every partial message. */
  clear(): void {
    this.#partials.clear();
  }

  /**
   * Take one frame at monotonic time `now`. Returns the message it completes, or null.
   * @throws LatchkeyError LK_LINK_MALFORMED / LK_LINK_LIMIT / LK_LINK_TIMEOUT
   */
  push(frame: Uint8Array, now: MonotonicMs): Uint8Array | null {
    if (!(frame instanceof Uint8Array)) throw malformed("a frame is bytes");
    if (frame.length <= FRAME_HEADER_BYTES) throw malformed("a frame carries at least one payload byte");
    if (frame.length > this.frameSize) throw malformed(`frame longer than ${this.frameSize} bytes`);
    const id = frame[0]! & ~LAST_FLAG;
    const last = (frame[0]! & LAST_FLAG) !== 0;
    const index = frame[1]!;
    const payload = frame.subarray(FRAME_HEADER_BYTES);

    let p = this.#partials.get(id);
    if (p !== undefined && !(now - p.startedAt <= this.timeout)) {
      this.#partials.delete(id);
      throw new LatchkeyError("LK_LINK_TIMEOUT", "message not completed in time", { messageId: id });
    }
    if (p === undefined) {
      if (index !== 0) throw malformed("frame of a message whose first frame is missing");
      this.expire(now);
      if (this.#partials.size >= this.maxConcurrent) {
        throw new LatchkeyError("LK_LINK_LIMIT", `more than ${this.maxConcurrent} messages at once`);
      }
      p = { startedAt: now, chunks: [], bytes: 0 };
    } else if (index !== p.chunks.length) {
      this.#partials.delete(id);
      throw malformed("frame out of order");
    }
    if (index + 1 > this.maxFrames) {
      this.#partials.delete(id);
      throw new LatchkeyError("LK_LINK_LIMIT", `message has more than ${this.maxFrames} frames`);
    }
    if (p.bytes + payload.length > this.maxMessageBytes) {
      this.#partials.delete(id);
      throw new LatchkeyError("LK_LINK_LIMIT", `message larger than ${this.maxMessageBytes} bytes`);
    }
    p.chunks.push(payload.slice());
    p.bytes += payload.length;
    if (!last) {
      this.#partials.set(id, p);
      return null;
    }
    this.#partials.delete(id);
    const out = new Uint8Array(p.bytes);
    let off = 0;
    for (const c of p.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_LINK_MALFORMED", detail);
}
