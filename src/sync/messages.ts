/**
 * The hub ⇄ cloud sync protocol over MQTT 5: the topic map and every message, validated at the boundary
 * (spec: docs/protocol/sync.md). Shared by the hub (src/hub/cloud-sync.ts) and the cloud worker
 * (src/cloud/worker.ts), so both sides read and write exactly the same shapes.
 *
 * Every payload is UTF-8 JSON with `"v": 1`. A payload that is not JSON, is over its size limit, or does
 * not match its schema is refused with `LK_SYNC_MALFORMED` and changes nothing.
 */
import { z } from "zod";
import { AuditKind } from "../core/audit/chain.ts";
import { LatchkeyError } from "../core/errors.ts";

/** Version segment of every topic. */
export const SYNC_TOPIC_ROOT = "lk/v1";
/** Largest payload either side publishes or accepts (bytes). Mosquitto's default limit is far above. */
export const MAX_SYNC_PAYLOAD_BYTES = 1024 * 1024;
/** Most audit events in one `audit/up` batch. */
export const MAX_AUDIT_BATCH = 1000;
/** Most operations in one `ops/up` or `ops/down` batch. */
export const MAX_OPS_BATCH = 500;
/** The MQTT 5 shared-subscription group the cloud workers join (`$share/<group>/<filter>`). */
export const SHARED_GROUP = "latchkey-ingest";

/** A site id (the hub's device id, e.g. `hub_0123456789abcdef`) as it appears in a topic level. */
const SITE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const LOCK_ID = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** The topic map of one site. Every topic of the protocol is built here and nowhere else. */
export function siteTopics(siteId: string) {
  if (!SITE_ID.test(siteId))
    throw new LatchkeyError("LK_INVALID_INPUT", "site id is not a valid topic level");
  const base = `${SYNC_TOPIC_ROOT}/${siteId}`;
  return {
    /** hub → all, retained, QoS 1; the hub's Last Will publishes `online: false` here. */
    hubStatus: `${base}/hub/status`,
    /** hub → cloud, QoS 1, on every (re)connect. */
    hello: `${base}/sync/hello`,
    /** hub → all, retained, QoS 1. */
    lockState: (lockId: string) => {
      if (!LOCK_ID.test(lockId))
        throw new LatchkeyError("LK_INVALID_INPUT", "lock id is not a valid topic level");
      return `${base}/lock/${lockId}/state`;
    },
    /** hub → cloud, QoS 1: a batch of audit events. */
    auditUp: `${base}/audit/up`,
    /** cloud → hub, QoS 1: what the cloud holds. */
    auditAck: `${base}/audit/ack`,
    /** hub → cloud, QoS 1: signed operations. */
    opsUp: `${base}/ops/up`,
    /** cloud → hub, QoS 1: which of them the cloud now holds. */
    opsUpAck: `${base}/ops/up/ack`,
    /** cloud → hub, QoS 1: signed operations made in the cloud (or relayed from elsewhere). */
    opsDown: `${base}/ops/down`,
    /** hub → cloud, QoS 1: which of them the hub now holds (drift = what the hub has not acknowledged). */
    opsDownAck: `${base}/ops/down/ack`,
  };
}
export type SiteTopics = ReturnType<typeof siteTopics>;

/** Topic filters for the cloud side, over all sites (prefix with `$share/<group>/` to share). */
export const CLOUD_FILTERS = {
  hubStatus: `${SYNC_TOPIC_ROOT}/+/hub/status`,
  hello: `${SYNC_TOPIC_ROOT}/+/sync/hello`,
  lockState: `${SYNC_TOPIC_ROOT}/+/lock/+/state`,
  auditUp: `${SYNC_TOPIC_ROOT}/+/audit/up`,
  opsUp: `${SYNC_TOPIC_ROOT}/+/ops/up`,
  opsDownAck: `${SYNC_TOPIC_ROOT}/+/ops/down/ack`,
} as const;

/** Which message a topic carries, and for which site (and lock): null for a topic not of this protocol. */
export function parseTopic(topic: string):
  | {
      kind: "hubStatus" | "hello" | "auditUp" | "auditAck" | "opsUp" | "opsUpAck" | "opsDown" | "opsDownAck";
      siteId: string;
    }
  | { kind: "lockState"; siteId: string; lockId: string }
  | null {
  const parts = topic.split("/");
  if (parts.length < 4 || `${parts[0]}/${parts[1]}` !== SYNC_TOPIC_ROOT) return null;
  const siteId = parts[2]!;
  if (!SITE_ID.test(siteId)) return null;
  const rest = parts.slice(3).join("/");
  switch (rest) {
    case "hub/status":
      return { kind: "hubStatus", siteId };
    case "sync/hello":
      return { kind: "hello", siteId };
    case "audit/up":
      return { kind: "auditUp", siteId };
    case "audit/ack":
      return { kind: "auditAck", siteId };
    case "ops/up":
      return { kind: "opsUp", siteId };
    case "ops/up/ack":
      return { kind: "opsUpAck", siteId };
    case "ops/down":
      return { kind: "opsDown", siteId };
    case "ops/down/ack":
      return { kind: "opsDownAck", siteId };
  }
  if (parts.length === 6 && parts[3] === "lock" && parts[5] === "state" && LOCK_ID.test(parts[4]!)) {
    return { kind: "lockState", siteId, lockId: parts[4]! };
  }
  return null;
}

// ------------------------------------------------------------------ shapes

const hex = (n: number) => z.string().regex(new RegExp(`^[0-9a-f]{${n}}$`));
const Ms = z
  .number()
  .int()
  .min(0)
  .max(2 ** 48);
const Seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** Whether `v` is a JSON value: null, boolean, finite number, string, array or plain object of them. */
function isJsonValue(v: unknown): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v);
    case "object":
      if (v === null) return true;
      if (Array.isArray(v)) return v.every(isJsonValue);
      return isJsonObject(v);
    default:
      return false;
  }
}
function isJsonObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k in v) if (!isJsonValue((v as Record<string, unknown>)[k])) return false;
  return true;
}
/**
 * A JSON object, checked in place (no copy): the same values the recursive zod union accepted, at a
 * fraction of its cost on the ingest path (measured in bench/cloud.ts).
 */
const JsonObject = z.custom<Record<string, unknown>>(isJsonObject, { message: "expected a JSON object" });
/** base64url without padding (RFC 4648 § 5) of a COSE_Sign1 operation. */
const OpB64 = z
  .string()
  .min(1)
  .max(12_000)
  .regex(/^[A-Za-z0-9_-]+$/);
/** An operation id: 32 lowercase hex digits (docs/protocol/operations.md). */
export const OpIdSchema = hex(32);

const auditKinds = Object.values(AuditKind) as [AuditKind, ...AuditKind[]];

/** One committed audit event, exactly as the hub's chain holds it (docs/protocol/audit-log.md). */
export const AuditEventSchema = z.strictObject({
  seq: Seq,
  at: Ms,
  lockId: z.string().min(1).max(64).nullable(),
  kind: z.enum(auditKinds),
  data: JsonObject,
  prevHash: hex(64),
  hash: hex(64),
});
export const AuditCheckpointSchema = z.strictObject({ seq: Seq, hash: hex(64), at: Ms, signature: hex(128) });
export const AuditAnchorSchema = z.strictObject({
  throughSeq: Seq,
  hash: hex(64),
  at: Ms,
  signature: hex(128),
});

/** `hub/status` (retained). The Last Will is the same shape with `online: false`. */
export const HubStatusSchema = z.strictObject({
  v: z.literal(1),
  online: z.boolean(),
  at: Ms,
  deviceId: z.string().regex(SITE_ID),
  version: z.string().max(40),
});

/** `sync/hello`: where the hub stands, so the cloud can answer with its resume point and missing ops. */
export const HelloSchema = z.strictObject({
  v: z.literal(1),
  deviceId: z.string().regex(SITE_ID),
  at: Ms,
  /** The hub's audit head (0 and 64 zeros for an empty log). */
  auditHead: z.strictObject({ seq: z.number().int().min(0), hash: hex(64) }),
  /** How many operations the hub holds. */
  opCount: z.number().int().min(0),
});

/** `lock/<id>/state` (retained): the lock's status as the hub's API shows it (open shape, bounded). */
export const LockStateSchema = z.strictObject({
  v: z.literal(1),
  at: Ms,
  lockId: z.string().regex(LOCK_ID),
  status: JsonObject,
});

/**
 * `audit/up`: contiguous events in ascending seq, the checkpoints that fall among them, and the trim
 * anchor when the batch starts right after one.
 */
export const AuditUpSchema = z
  .strictObject({
    v: z.literal(1),
    deviceId: z.string().regex(SITE_ID),
    events: z.array(AuditEventSchema).min(1).max(MAX_AUDIT_BATCH),
    checkpoints: z.array(AuditCheckpointSchema).max(MAX_AUDIT_BATCH),
    anchor: AuditAnchorSchema.nullable(),
  })
  .refine((b) => b.events.every((e, i) => i === 0 || e.seq === b.events[i - 1]!.seq + 1), {
    message: "events must have contiguous seq",
  });

/** `audit/ack`: the cloud holds every event through `through` (its resume point), and any problem it saw. */
export const AuditAckSchema = z.strictObject({
  v: z.literal(1),
  deviceId: z.string().regex(SITE_ID),
  through: z.number().int().min(0),
  problem: z.strictObject({ seq: z.number().int().min(0), what: z.string().max(200) }).nullable(),
});

/** `ops/up` and `ops/down`: signed operations (COSE_Sign1, base64url). */
export const OpsBatchSchema = z.strictObject({
  v: z.literal(1),
  ops: z.array(OpB64).min(1).max(MAX_OPS_BATCH),
});

/** `ops/up/ack` and `ops/down/ack`: ids now held by the receiver, and those it refused (with the code). */
export const OpsAckSchema = z.strictObject({
  v: z.literal(1),
  have: z.array(OpIdSchema).max(MAX_OPS_BATCH),
  refused: z
    .array(z.strictObject({ index: z.number().int().min(0), code: z.string().max(40) }))
    .max(MAX_OPS_BATCH),
});

export type HubStatusMsg = z.infer<typeof HubStatusSchema>;
export type HelloMsg = z.infer<typeof HelloSchema>;
export type LockStateMsg = z.infer<typeof LockStateSchema>;
export type AuditUpMsg = z.infer<typeof AuditUpSchema>;
export type AuditAckMsg = z.infer<typeof AuditAckSchema>;
export type OpsBatchMsg = z.infer<typeof OpsBatchSchema>;
export type OpsAckMsg = z.infer<typeof OpsAckSchema>;

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parse and validate one payload. Throws `LK_SYNC_MALFORMED` (with the first problem in the message) for
 * anything that is not valid UTF-8 JSON within {@link MAX_SYNC_PAYLOAD_BYTES} matching `schema`.
 */
export function decodeSync<T>(
  schema: z.ZodType<T>,
  payload: Uint8Array,
  what: string,
  fast?: (json: unknown) => boolean,
): T {
  if (payload.byteLength > MAX_SYNC_PAYLOAD_BYTES) {
    throw new LatchkeyError(
      "LK_SYNC_MALFORMED",
      `${what}: payload of ${payload.byteLength} bytes is over the limit`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(payload));
  } catch {
    throw new LatchkeyError("LK_SYNC_MALFORMED", `${what}: payload is not UTF-8 JSON`);
  }
  // A hand-written check at least as strict as the schema accepts the common case without zod's cost;
  // anything it refuses goes to the schema, which decides (and names the problem).
  if (fast?.(json)) return json as T;
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new LatchkeyError(
      "LK_SYNC_MALFORMED",
      `${what}: ${issue ? `${issue.path.join(".") || "payload"}: ${issue.message}` : "invalid"}`,
    );
  }
  return r.data;
}

/** Serialize a message (the caller built it from the typed shape). */
export function encodeSync(msg: unknown): Buffer {
  return Buffer.from(JSON.stringify(msg), "utf8");
}

/** base64url (no padding) of bytes: the form operations travel in. */
export function opToB64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}
/** Bytes of a base64url operation (validated by the schema before this is called). */
export function opFromB64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "base64url"));
}

// ------------------------------------------------------------------ the ingest hot path

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const AUDIT_KINDS: ReadonlySet<string> = new Set(Object.values(AuditKind));
const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;
const isMs = (v: unknown): v is number =>
  Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 2 ** 48;
const isHex = (v: unknown, re: RegExp): boolean => typeof v === "string" && re.test(v);

function hasOnlyKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  let n = 0;
  for (const k in o) {
    if (!keys.includes(k)) return false;
    n++;
  }
  return n === keys.length;
}

const EVENT_KEYS = ["seq", "at", "lockId", "kind", "data", "prevHash", "hash"] as const;
const CHECKPOINT_KEYS = ["seq", "hash", "at", "signature"] as const;
const ANCHOR_KEYS = ["throughSeq", "hash", "at", "signature"] as const;
const AUDIT_UP_KEYS = ["v", "deviceId", "events", "checkpoints", "anchor"] as const;

/**
 * Whether `json` is a valid `audit/up` message, checked by hand: at least as strict as
 * {@link AuditUpSchema} (every key, type, range and pattern of it), several times cheaper per event.
 * Used as the fast path of {@link decodeAuditUp}; property-tested against the schema.
 */
export function isAuditUp(json: unknown): json is AuditUpMsg {
  if (!isJsonPlain(json) || !hasOnlyKeys(json, AUDIT_UP_KEYS)) return false;
  if (json.v !== 1 || typeof json.deviceId !== "string" || !SITE_ID.test(json.deviceId)) return false;
  const events = json.events;
  if (!Array.isArray(events) || events.length < 1 || events.length > MAX_AUDIT_BATCH) return false;
  let prev = -1;
  for (const e of events) {
    if (!isJsonPlain(e) || !hasOnlyKeys(e, EVENT_KEYS)) return false;
    if (!isSeq(e.seq) || !isMs(e.at)) return false;
    if (prev !== -1 && e.seq !== prev + 1) return false;
    prev = e.seq;
    const l = e.lockId;
    if (l !== null && (typeof l !== "string" || l.length < 1 || l.length > 64)) return false;
    if (typeof e.kind !== "string" || !AUDIT_KINDS.has(e.kind)) return false;
    if (!isJsonObject(e.data)) return false;
    if (!isHex(e.prevHash, HEX64) || !isHex(e.hash, HEX64)) return false;
  }
  const cps = json.checkpoints;
  if (!Array.isArray(cps) || cps.length > MAX_AUDIT_BATCH) return false;
  for (const c of cps) {
    if (!isJsonPlain(c) || !hasOnlyKeys(c, CHECKPOINT_KEYS)) return false;
    if (!isSeq(c.seq) || !isMs(c.at) || !isHex(c.hash, HEX64) || !isHex(c.signature, HEX128)) return false;
  }
  const a = json.anchor;
  if (a !== null) {
    if (!isJsonPlain(a) || !hasOnlyKeys(a, ANCHOR_KEYS)) return false;
    if (!isSeq(a.throughSeq) || !isMs(a.at) || !isHex(a.hash, HEX64) || !isHex(a.signature, HEX128))
      return false;
  }
  return true;
}

function isJsonPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** {@link decodeSync} of an `audit/up` payload, with the hand-written fast path. Throws LK_SYNC_MALFORMED. */
export function decodeAuditUp(payload: Uint8Array): AuditUpMsg {
  return decodeSync(AuditUpSchema, payload, "audit/up", isAuditUp);
}
