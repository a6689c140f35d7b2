/**
 * Hybrid logical clock (HLC) for management operations (spec: docs/protocol/operations.md § "Clock").
 *
 * After Kulkarni, Demirbas, Madappa, Avva and Leone, "Logical Physical Clocks" (OPODIS 2014), § 3,
 * Algorithm 2. A stamp is `(wallMs, counter, nodeId)`:
 *
 * - `wallMs` (the paper's `l`): the largest wall-clock time, in ms since the Unix epoch, this node has
 *   seen, locally or in a stamp it received; 0 ≤ wallMs ≤ 2^48 − 1 (year 10889);
 * - `counter` (the paper's `c`): orders events within one `wallMs`; 0 ≤ counter ≤ 65,535;
 * - `nodeId`: the replica that made the stamp, 16 lowercase hex digits (8 bytes). It only breaks ties,
 *   so the order is total; two replicas must not share one.
 *
 * Stamps are totally ordered by (wallMs, counter, nodeId). Both encodings keep that order: the text
 * form `wwwwwwwwwwww-cccc-nnnnnnnnnnnnnnnn` (34 characters, fixed width) sorts as strings, and the
 * 16-byte binary form `u48be(wallMs) ‖ u16be(counter) ‖ nodeId` sorts bytewise.
 *
 * Two deviations from the paper, both to keep every stamp in its fixed width:
 * - **counter overflow**: when the counter would pass 65,535 the clock borrows one millisecond
 *   (`wallMs + 1`, `counter = 0`). Stamps stay strictly increasing; the clock runs ahead of physical
 *   time by at most 1 ms per 65,536 events in one millisecond.
 * - **bounded drift**: {@link hlcReceive} refuses a stamp whose `wallMs` is more than `maxDriftMs`
 *   ahead of the local wall clock (`LK_OP_CLOCK_DRIFT`), so one sender with a wrong clock cannot drag
 *   every replica's clock into the future (the paper's ε bound, enforced at receipt).
 *
 * Pure: the wall clock is passed in as a number of ms (from the platform's `Clock` port).
 */
import { LatchkeyError } from "../errors.ts";
import { EpochMs, Milliseconds } from "../units.ts";

/** One HLC stamp. Compare with {@link compareHlc}; never with `<` on objects. */
export interface Hlc {
  /** Logical wall time `l`: ms since the Unix epoch (UTC), 0..{@link MAX_WALL_MS}. */
  readonly wallMs: EpochMs;
  /** Logical counter `c` within `wallMs`, 0..{@link MAX_COUNTER}. */
  readonly counter: number;
  /** The replica that made the stamp: {@link NODE_ID_HEX_LENGTH} lowercase hex digits. */
  readonly nodeId: string;
}

/** Largest `wallMs`: 2^48 − 1 ms (6 bytes in the binary form). */
export const MAX_WALL_MS = 2 ** 48 - 1;
/** Largest `counter`: 2^16 − 1 (2 bytes in the binary form). */
export const MAX_COUNTER = 0xffff;
/** Length of a node id in hex digits (8 bytes). */
export const NODE_ID_HEX_LENGTH = 16;
/** Length of the binary form {@link hlcToBytes}. */
export const HLC_BYTES = 16;
/** Length of the text form {@link hlcToText}. */
export const HLC_TEXT_LENGTH = 34;
/** Default bound of {@link hlcReceive}: a received stamp may be at most 5 minutes ahead of local time. */
export const DEFAULT_MAX_DRIFT_MS = Milliseconds(5 * 60 * 1000);

const NODE_ID_RE = /^[0-9a-f]{16}$/;
const TEXT_RE = /^([0-9a-f]{12})-([0-9a-f]{4})-([0-9a-f]{16})$/;

function invalidInput(detail: string): LatchkeyError {
  return new LatchkeyError("LK_INVALID_INPUT", detail);
}

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_OP_MALFORMED", detail);
}

function isWall(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_WALL_MS;
}

function isCounter(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_COUNTER;
}

/** Is `s` a node id: 16 lowercase hex digits? */
export function isNodeId(s: unknown): s is string {
  return typeof s === "string" && NODE_ID_RE.test(s);
}

/** Is `h` a well-formed stamp (every field in range)? Never throws. */
export function isHlc(h: unknown): h is Hlc {
  if (typeof h !== "object" || h === null) return false;
  const o = h as Record<string, unknown>;
  return isWall(o.wallMs) && isCounter(o.counter) && isNodeId(o.nodeId);
}

/**
 * Check a stamp built in code (not decoded from bytes).
 * @throws LatchkeyError `LK_INVALID_INPUT` when a field is missing or out of range.
 */
export function assertHlc(h: Hlc): void {
  if (!isHlc(h)) {
    throw invalidInput(
      "an HLC stamp is { wallMs: 0..2^48-1, counter: 0..65535, nodeId: 16 lowercase hex digits }",
    );
  }
}

/** A stamp from its three parts. @throws LatchkeyError `LK_INVALID_INPUT` when a part is out of range. */
export function hlc(wallMs: number, counter: number, nodeId: string): Hlc {
  const h: Hlc = { wallMs: EpochMs(wallMs), counter, nodeId };
  assertHlc(h);
  return h;
}

/**
 * The total order of stamps: by `wallMs`, then `counter`, then `nodeId` (as strings; for fixed-width
 * lowercase hex that is the bytewise order). Returns -1, 0 or 1.
 */
export function compareHlc(a: Hlc, b: Hlc): -1 | 0 | 1 {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.nodeId !== b.nodeId) return a.nodeId < b.nodeId ? -1 : 1;
  return 0;
}

/** The later of two stamps (either one when equal). */
export function maxHlc(a: Hlc, b: Hlc): Hlc {
  return compareHlc(a, b) >= 0 ? a : b;
}

/** The smallest stamp of a node: wall time 0, counter 0. A fresh clock starts here. */
export function zeroHlc(nodeId: string): Hlc {
  return hlc(0, 0, nodeId);
}

function checkLocalWall(localWallMs: number): void {
  if (!isWall(localWallMs)) {
    throw invalidInput("the local wall clock must be an integer number of ms in 0..2^48-1");
  }
}

/** (l, c) with the counter-overflow rule: past 65,535 the clock borrows one millisecond. */
function stamp(wallMs: number, counter: number, nodeId: string): Hlc {
  if (counter <= MAX_COUNTER) return { wallMs: EpochMs(wallMs), counter, nodeId };
  if (wallMs + 1 > MAX_WALL_MS) throw invalidInput("HLC wall time would pass 2^48-1 ms");
  return { wallMs: EpochMs(wallMs + 1), counter: 0, nodeId };
}

/**
 * The stamp of a local event (making an operation, or sending one), after `last` (the paper's
 * "send or local event"):
 *
 *     l = max(last.l, pt);  c = (l == last.l) ? last.c + 1 : 0
 *
 * The result is strictly after `last` and carries `nodeId`.
 *
 * @param last the node's previous stamp (its `nodeId` is not used)
 * @param nodeId this node's id
 * @param localWallMs the local wall clock `pt`, integer ms since the Unix epoch
 * @throws LatchkeyError `LK_INVALID_INPUT` for a malformed `last`, node id or wall time.
 */
export function hlcTick(last: Hlc, nodeId: string, localWallMs: number): Hlc {
  assertHlc(last);
  if (!isNodeId(nodeId)) throw invalidInput("a node id is 16 lowercase hex digits");
  checkLocalWall(localWallMs);
  if (localWallMs > last.wallMs) return stamp(localWallMs, 0, nodeId);
  return stamp(last.wallMs, last.counter + 1, nodeId);
}

/**
 * The stamp of receiving `remote` (the paper's "receive event of message m"), after `last`:
 *
 *     l = max(last.l, m.l, pt)
 *     c = last.c + 1            if l == last.l and l != m.l
 *         max(last.c, m.c) + 1  if l == last.l == m.l
 *         m.c + 1               if l == m.l and l != last.l
 *         0                     otherwise (l == pt)
 *
 * The result is strictly after both `last` and `remote` and carries `nodeId`.
 *
 * @param maxDriftMs how far `remote.wallMs` may be ahead of `localWallMs`; default
 *   {@link DEFAULT_MAX_DRIFT_MS} (5 minutes)
 * @throws LatchkeyError `LK_OP_CLOCK_DRIFT` when `remote.wallMs − localWallMs > maxDriftMs` (the clock
 *   is left as it was: the caller refuses the operation); `LK_INVALID_INPUT` for a malformed argument.
 */
export function hlcReceive(
  last: Hlc,
  remote: Hlc,
  nodeId: string,
  localWallMs: number,
  maxDriftMs: Milliseconds = DEFAULT_MAX_DRIFT_MS,
): Hlc {
  assertHlc(last);
  assertHlc(remote);
  if (!isNodeId(nodeId)) throw invalidInput("a node id is 16 lowercase hex digits");
  checkLocalWall(localWallMs);
  if (!Number.isInteger(maxDriftMs) || maxDriftMs < 0) {
    throw invalidInput("maxDriftMs must be a non-negative integer number of ms");
  }
  if (remote.wallMs - localWallMs > maxDriftMs) {
    throw new LatchkeyError(
      "LK_OP_CLOCK_DRIFT",
      `the stamp is ${remote.wallMs - localWallMs} ms ahead of this replica's clock; at most ${maxDriftMs} ms is allowed`,
      { remoteWallMs: remote.wallMs, localWallMs, maxDriftMs },
    );
  }
  const l = Math.max(last.wallMs, remote.wallMs, localWallMs);
  if (l === last.wallMs && l === remote.wallMs) {
    return stamp(l, Math.max(last.counter, remote.counter) + 1, nodeId);
  }
  if (l === last.wallMs) return stamp(l, last.counter + 1, nodeId);
  if (l === remote.wallMs) return stamp(l, remote.counter + 1, nodeId);
  return stamp(l, 0, nodeId);
}

/** Options of {@link HybridLogicalClock}. */
export interface HlcOptions {
  /** Bound of {@link HybridLogicalClock.receive}; default {@link DEFAULT_MAX_DRIFT_MS}. */
  readonly maxDriftMs?: Milliseconds;
  /** The last stamp this node made, restored from storage; default {@link zeroHlc}. */
  readonly last?: Hlc;
}

/**
 * One node's clock: {@link hlcTick} and {@link hlcReceive} with the last stamp kept. Persist
 * {@link HybridLogicalClock.last} with every operation made or received, and pass it back as
 * `options.last` after a restart, so stamps keep increasing even if the wall clock went back.
 */
export class HybridLogicalClock {
  readonly nodeId: string;
  readonly maxDriftMs: Milliseconds;
  #last: Hlc;

  /** @throws LatchkeyError `LK_INVALID_INPUT` for a malformed node id, drift bound or restored stamp. */
  constructor(nodeId: string, options: HlcOptions = {}) {
    if (!isNodeId(nodeId)) throw invalidInput("a node id is 16 lowercase hex digits");
    const maxDriftMs = options.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    if (!Number.isInteger(maxDriftMs) || maxDriftMs < 0) {
      throw invalidInput("maxDriftMs must be a non-negative integer number of ms");
    }
    const last = options.last ?? zeroHlc(nodeId);
    assertHlc(last);
    this.nodeId = nodeId;
    this.maxDriftMs = maxDriftMs;
    this.#last = last;
  }

  /** The latest stamp this clock made (or was restored with). */
  get last(): Hlc {
    return this.#last;
  }

  /** A stamp for a local event at wall time `localWallMs` (ms); see {@link hlcTick}. */
  tick(localWallMs: number): Hlc {
    this.#last = hlcTick(this.#last, this.nodeId, localWallMs);
    return this.#last;
  }

  /**
   * Take in a received stamp at wall time `localWallMs` (ms); see {@link hlcReceive}. On
   * `LK_OP_CLOCK_DRIFT` the clock is unchanged.
   */
  receive(remote: Hlc, localWallMs: number): Hlc {
    this.#last = hlcReceive(this.#last, remote, this.nodeId, localWallMs, this.maxDriftMs);
    return this.#last;
  }
}

const HEX = "0123456789abcdef";

function hexOf(n: number, digits: number): string {
  let s = "";
  let v = n;
  for (let i = 0; i < digits; i++) {
    s = HEX[v % 16]! + s;
    v = Math.floor(v / 16);
  }
  return s;
}

/**
 * The text form: `wwwwwwwwwwww-cccc-nnnnnnnnnnnnnnnn` — 12 hex digits of `wallMs`, 4 of `counter`, the
 * node id — all lowercase, 34 characters. Strings compare exactly as {@link compareHlc}.
 * @throws LatchkeyError `LK_INVALID_INPUT` for a malformed stamp.
 */
export function hlcToText(h: Hlc): string {
  assertHlc(h);
  return `${hexOf(h.wallMs, 12)}-${hexOf(h.counter, 4)}-${h.nodeId}`;
}

/**
 * Parse the text form, strictly: exactly 34 characters, lowercase hex, dashes at 12 and 17.
 * @throws LatchkeyError `LK_OP_MALFORMED` for anything else.
 */
export function hlcFromText(s: string): Hlc {
  const m = typeof s === "string" ? TEXT_RE.exec(s) : null;
  if (m === null)
    throw malformed("an HLC stamp in text is wwwwwwwwwwww-cccc-nnnnnnnnnnnnnnnn (lowercase hex)");
  return {
    wallMs: EpochMs(Number.parseInt(m[1]!, 16)),
    counter: Number.parseInt(m[2]!, 16),
    nodeId: m[3]!,
  };
}

/**
 * The 16-byte binary form: `u48be(wallMs) ‖ u16be(counter) ‖ nodeId (8 bytes)`. Byte strings compare
 * (bytewise, as SQLite BLOBs and CBOR map keys do) exactly as {@link compareHlc}.
 * @throws LatchkeyError `LK_INVALID_INPUT` for a malformed stamp.
 */
export function hlcToBytes(h: Hlc): Uint8Array {
  assertHlc(h);
  const out = new Uint8Array(HLC_BYTES);
  let w = h.wallMs as number;
  for (let i = 5; i >= 0; i--) {
    out[i] = w % 256;
    w = Math.floor(w / 256);
  }
  out[6] = h.counter >>> 8;
  out[7] = h.counter & 0xff;
  for (let i = 0; i < 8; i++) out[8 + i] = Number.parseInt(h.nodeId.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Parse the binary form. Every 16-byte string is a valid stamp; any other length is refused.
 * @throws LatchkeyError `LK_OP_MALFORMED` unless `b` is a `Uint8Array` of exactly 16 bytes.
 */
export function hlcFromBytes(b: Uint8Array): Hlc {
  if (!(b instanceof Uint8Array) || b.length !== HLC_BYTES) {
    throw malformed(`an HLC stamp in binary is exactly ${HLC_BYTES} bytes`);
  }
  let w = 0;
  for (let i = 0; i < 6; i++) w = w * 256 + b[i]!;
  let node = "";
  for (let i = 8; i < 16; i++) node += hexOf(b[i]!, 2);
  return { wallMs: EpochMs(w), counter: (b[6]! << 8) | b[7]!, nodeId: node };
}
