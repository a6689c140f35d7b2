/**
 * The link transport port (spec: docs/protocol/link.md § "Transports"): a bidirectional, ordered,
 * frame-oriented pipe between a phone and a lock. BLE (a GATT characteristic or an L2CAP channel),
 * TCP/WebSocket and the in-memory pair each implement it; everything above works on frames only.
 *
 * Contract (one acceptance suite, test/support/link-transport.acceptance.ts, checks every adapter):
 * - frames sent on one end arrive at the other end in order, each intact, or not at all (a lossy medium
 *   may drop frames; it never reorders, splits, merges or alters them);
 * - `send` refuses a frame longer than `frameSize` with `LK_LINK_LIMIT` and any send after close with
 *   `LK_LINK_CLOSED`;
 * - `close()` on either end closes both; each end's close handler runs once; no frame arrives after it.
 */
import type { LatchkeyError } from "../core/errors.ts";

export interface LinkTransport {
  /** Largest frame this link carries, in bytes (20..244): the BLE ATT MTU − 3, or a configured size. */
  readonly frameSize: number;
  /** True once either end closed. */
  readonly closed: boolean;
  /** Send one frame of 1..frameSize bytes. */
  send(frame: Uint8Array): void;
  /** The handler of incoming frames; a second call replaces the first. */
  onFrame(handler: (frame: Uint8Array) => void): void;
  /** The handler called once when the link closes: null for an orderly close, else why. */
  onClose(handler: (reason: LatchkeyError | null) => void): void;
  /** Close both ends. Idempotent. */
  close(reason?: LatchkeyError): void;
}
