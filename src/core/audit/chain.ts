/**
 * The audit log's hash chain and signed checkpoints (spec: docs/protocol/audit-log.md).
 *
 *   hash(e) = SHA-256( utf8("LK-AUDIT-v1\n" + prevHash + "\n" + canonicalJson({seq, at, lockId, kind, data})) )
 *
 * with prevHash the previous event's hash (hex) and 64 zeros before the first event. Every
 * `checkpointInterval` events (and at shutdown) the lock signs `(deviceId, seq, hash)` with its Ed25519
 * device key. Trimming old events keeps a signed *anchor* `(throughSeq, hash)` so the remaining chain
 * still verifies from the anchor; an `audit.trimmed` event in the chain records every trim.
 */
import { type CryptoPort, fromHex, toHex, utf8 } from "../crypto.ts";
import { LatchkeyError } from "../errors.ts";
import type { EpochMs } from "../units.ts";
import { canonicalJson, type JsonValue } from "./canonical.ts";

/** prevHash of the very first event. */
export const GENESIS_HASH = "0".repeat(64);

/** An event as the runtime submits it (the store assigns seq and hashes). */
export interface AuditEventInput {
  readonly at: EpochMs;
  /** The lock the event concerns, or null for hub-wide events (admin changes, claims). */
  readonly lockId: string | null;
  /** Event kind from {@link AuditKind} (dotted, stable). */
  readonly kind: AuditKind;
  readonly data: { readonly [k: string]: JsonValue };
}

/** A committed event. `seq` starts at 1 and has no gaps. */
export interface AuditEvent extends AuditEventInput {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** A device-key signature over the chain head at `seq`. */
export interface AuditCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly at: EpochMs;
  /** Ed25519 signature, hex. */
  readonly signature: string;
}

/** The signed start of a trimmed log: every event up to `throughSeq` was removed; its hash was `hash`. */
export interface AuditAnchor {
  readonly throughSeq: number;
  readonly hash: string;
  readonly at: EpochMs;
  readonly signature: string;
}

/** Every event kind, stable: stored in the log and matched by filters. */
export const AuditKind = {
  AccessGranted: "access.granted",
  AccessDenied: "access.denied",
  LockState: "lock.state",
  DoorState: "door.state",
  ManualKey: "lock.manual_key",
  RequestToExit: "lock.request_to_exit",
  AlarmLockout: "alarm.lockout",
  AlarmTamper: "alarm.tamper",
  AlarmDuress: "alarm.duress",
  AlarmForcedOpen: "alarm.forced_open",
  AlarmDoorAjar: "alarm.door_ajar",
  AlarmJam: "alarm.jam",
  AlarmBatteryLow: "alarm.battery_low",
  AlarmBatteryCritical: "alarm.battery_critical",
  AlarmBadFrame: "alarm.bad_frame",
  ClockUntrusted: "clock.untrusted",
  ClockSet: "clock.set",
  /** A signed time ticket raised the lock's time floor (the clock's trust does not change). */
  ClockFloorRaised: "clock.floor_raised",
  /** A newer revocation list (carried by a phone or pushed by the hub) was applied. */
  RevocationApplied: "keys.revocation_applied",
  PowerUp: "power.up",
  Admin: "admin.change",
  AuditTrimmed: "audit.trimmed",
} as const;
export type AuditKind = (typeof AuditKind)[keyof typeof AuditKind];

const EVENT_DOMAIN = "LK-AUDIT-v1\n";
const CHECKPOINT_DOMAIN = "LK-AUDIT-CHECKPOINT-v1\n";
const ANCHOR_DOMAIN = "LK-AUDIT-ANCHOR-v1\n";

/**
 * The hash of an event given its chain position. Returns lowercase hex. `dataJson`, when given, must be
 * `canonicalJson(e.data)` (callers that store it anyway pass it to avoid encoding twice).
 */
export function hashEvent(
  crypto: CryptoPort,
  seq: number,
  prevHash: string,
  e: AuditEventInput,
  dataJson?: string,
): string {
  return toHex(crypto.sha256(utf8(eventPreimage(seq, prevHash, e, dataJson))));
}

/**
 * The text {@link hashEvent} hashes (before UTF-8 encoding): `"LK-AUDIT-v1\n" + prevHash + "\n" +
 * canonicalJson({seq, at, lockId, kind, data})`. For platforms that hash strings natively (the cloud
 * ingest hashes it with node:crypto); `dataJson` as for {@link hashEvent}.
 */
export function eventPreimage(seq: number, prevHash: string, e: AuditEventInput, dataJson?: string): string {
  // canonicalJson({ seq, at, lockId, kind, data }), written out with its keys in sorted order.
  const data = dataJson ?? canonicalJson(e.data);
  const body = `{"at":${canonicalJson(e.at)},"data":${data},"kind":${canonicalJson(e.kind)},"lockId":${canonicalJson(e.lockId)},"seq":${canonicalJson(seq)}}`;
  return `${EVENT_DOMAIN}${prevHash}\n${body}`;
}

/** Link `e` after (`prevSeq`, `prevHash`). `dataJson` as for {@link hashEvent}. */
export function chainEvent(
  crypto: CryptoPort,
  prevSeq: number,
  prevHash: string,
  e: AuditEventInput,
  dataJson?: string,
): AuditEvent {
  const seq = prevSeq + 1;
  return { ...e, seq, prevHash, hash: hashEvent(crypto, seq, prevHash, e, dataJson) };
}

function checkpointMessage(deviceId: string, seq: number, hash: string): Uint8Array {
  return utf8(`${CHECKPOINT_DOMAIN}${deviceId}\n${seq}\n${hash}`);
}
function anchorMessage(deviceId: string, throughSeq: number, hash: string): Uint8Array {
  return utf8(`${ANCHOR_DOMAIN}${deviceId}\n${throughSeq}\n${hash}`);
}

/** Sign the chain head. `deviceKey` is the lock's 32-byte Ed25519 seed. */
export function signCheckpoint(
  crypto: CryptoPort,
  deviceId: string,
  deviceKey: Uint8Array,
  head: { seq: number; hash: string },
  at: EpochMs,
): AuditCheckpoint {
  const sig = crypto.ed25519Sign(deviceKey, checkpointMessage(deviceId, head.seq, head.hash));
  return { seq: head.seq, hash: head.hash, at, signature: toHex(sig) };
}

/** Sign a trim anchor: events through `throughSeq` are about to be removed. */
export function signAnchor(
  crypto: CryptoPort,
  deviceId: string,
  deviceKey: Uint8Array,
  head: { seq: number; hash: string },
  at: EpochMs,
): AuditAnchor {
  const sig = crypto.ed25519Sign(deviceKey, anchorMessage(deviceId, head.seq, head.hash));
  return { throughSeq: head.seq, hash: head.hash, at, signature: toHex(sig) };
}

/**
 * Whether `cp` is the device's signature over (deviceId, cp.seq, cp.hash) with the 32-byte Ed25519
 * `publicKey`. Never throws: a malformed signature is false. Does not check that `cp.hash` is the hash of
 * the event at `cp.seq` (the caller compares it with its event).
 */
export function verifyCheckpoint(
  crypto: CryptoPort,
  deviceId: string,
  publicKey: Uint8Array,
  cp: Pick<AuditCheckpoint, "seq" | "hash" | "signature">,
): boolean {
  const sig = safeHex(cp.signature);
  return sig !== null && crypto.ed25519Verify(publicKey, checkpointMessage(deviceId, cp.seq, cp.hash), sig);
}

/** Whether `anchor` is the device's signature over (deviceId, throughSeq, hash). Never throws. */
export function verifyAnchor(
  crypto: CryptoPort,
  deviceId: string,
  publicKey: Uint8Array,
  anchor: Pick<AuditAnchor, "throughSeq" | "hash" | "signature">,
): boolean {
  const sig = safeHex(anchor.signature);
  return (
    sig !== null &&
    crypto.ed25519Verify(publicKey, anchorMessage(deviceId, anchor.throughSeq, anchor.hash), sig)
  );
}

/** Result of {@link verifyChain}. On failure, `problem` names the first bad seq and what is wrong. */
export interface ChainVerification {
  readonly ok: boolean;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly eventsChecked: number;
  readonly checkpointsChecked: number;
  /** Events after the last valid checkpoint: hash-linked but not yet signed. */
  readonly unsignedTail: number;
  readonly problem: { readonly seq: number; readonly what: string } | null;
}

function safeHex(s: string): Uint8Array | null {
  try {
    return fromHex(s);
  } catch {
    return null;
  }
}

/**
 * Verify a log: the anchor's signature (if any), every event's link and hash in order with no gap,
 * and every checkpoint's signature and that it matches the event at its seq.
 *
 * @param events the events in ascending seq order (a streaming iterable is fine)
 * @param checkpoints by seq
 * @param publicKey the lock's 32-byte Ed25519 public key
 * Never throws for corrupt data: a problem is reported in the result.
 */
export function verifyChain(
  crypto: CryptoPort,
  deviceId: string,
  publicKey: Uint8Array,
  anchor: AuditAnchor | null,
  events: Iterable<AuditEvent>,
  checkpoints: ReadonlyMap<number, AuditCheckpoint>,
): ChainVerification {
  let prevSeq = 0;
  let prevHash = GENESIS_HASH;
  let eventsChecked = 0;
  let checkpointsChecked = 0;
  let lastSigned = 0;
  const result = (problem: ChainVerification["problem"]): ChainVerification => ({
    ok: problem === null,
    firstSeq: (anchor?.throughSeq ?? 0) + 1,
    lastSeq: prevSeq,
    lastHash: prevHash,
    eventsChecked,
    checkpointsChecked,
    unsignedTail: prevSeq - lastSigned,
    problem,
  });
  if (anchor) {
    const sig = safeHex(anchor.signature);
    if (
      !sig ||
      !crypto.ed25519Verify(publicKey, anchorMessage(deviceId, anchor.throughSeq, anchor.hash), sig)
    ) {
      return result({ seq: anchor.throughSeq, what: "trim anchor signature does not verify" });
    }
    prevSeq = anchor.throughSeq;
    prevHash = anchor.hash;
    lastSigned = anchor.throughSeq;
  }
  for (const e of events) {
    if (e.seq !== prevSeq + 1) return result({ seq: prevSeq + 1, what: `gap: next event has seq ${e.seq}` });
    if (e.prevHash !== prevHash)
      return result({ seq: e.seq, what: "prevHash does not link to the previous event" });
    let expected: string;
    try {
      expected = hashEvent(crypto, e.seq, prevHash, e);
    } catch {
      return result({ seq: e.seq, what: "event body cannot be encoded" });
    }
    if (expected !== e.hash) return result({ seq: e.seq, what: "event hash does not match its content" });
    prevSeq = e.seq;
    prevHash = e.hash;
    eventsChecked++;
    const cp = checkpoints.get(e.seq);
    if (cp) {
      const sig = safeHex(cp.signature);
      if (cp.hash !== e.hash) return result({ seq: e.seq, what: "checkpoint hash differs from the event's" });
      if (!sig || !crypto.ed25519Verify(publicKey, checkpointMessage(deviceId, cp.seq, cp.hash), sig)) {
        return result({ seq: e.seq, what: "checkpoint signature does not verify" });
      }
      checkpointsChecked++;
      lastSigned = e.seq;
    }
  }
  for (const seq of checkpoints.keys()) {
    if (seq > prevSeq)
      return result({ seq, what: "checkpoint for an event that is missing (events were removed)" });
  }
  return result(null);
}

/** Throw LK_AUDIT_CHAIN_BROKEN unless `v.ok`. */
export function assertChainOk(v: ChainVerification): void {
  if (!v.ok)
    throw new LatchkeyError(
      "LK_AUDIT_CHAIN_BROKEN",
      `audit chain broken at seq ${v.problem?.seq}: ${v.problem?.what}`,
    );
}
