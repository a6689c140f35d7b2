/**
 * The encrypted audit export (docs/formats/export.md § "Encrypted audit export"): a range of the audit
 * log, as `GET /api/v1/audit` returns events, with the checkpoints signed in that range and the hub's
 * chain verification result, sealed in a passphrase box (src/hub/passphrase-box.ts) of kind
 * `latchkey-audit-export`:
 *
 * ```json
 * { "format": "latchkey-audit-export", "version": 1, "exportedAt": "…", "hub": { "deviceId": "hub_…" },
 *   "box": { "box": "latchkey-passphrase-box", "kind": "latchkey-audit-export", … } }
 * ```
 *
 * The opened payload carries each event's `prevHash` and `hash`, so {@link verifyAuditSlice} can check
 * the range's links, hashes and checkpoint signatures against the hub's device public key with nothing
 * but the file.
 */
import { z } from "zod";
import {
  type AuditCheckpoint,
  type AuditEvent,
  type ChainVerification,
  hashEvent,
  verifyCheckpoint,
} from "../core/audit/chain.ts";
import { fromHex, toHex } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";
import { Role } from "../core/model.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import type { Actor, Hub } from "./hub.ts";
import {
  type BoxOptions,
  openWithPassphrase,
  type PassphraseBox,
  PassphraseBoxSchema,
  sealWithPassphrase,
} from "./passphrase-box.ts";

/** The box `kind` and the outer document's `format`. */
export const AUDIT_EXPORT_KIND = "latchkey-audit-export";
/** Most events one export holds; a longer range is cut there and `next` says where to go on. */
export const AUDIT_EXPORT_MAX_EVENTS = 100_000;

/** The downloadable document: the box and what identifies it (not secret). */
export const AuditExportDocumentSchema = z.strictObject({
  format: z.literal(AUDIT_EXPORT_KIND),
  version: z.literal(1),
  exportedAt: z.iso.datetime(),
  hub: z.strictObject({ deviceId: z.string().min(1).max(64) }),
  box: PassphraseBoxSchema,
});
export type AuditExportDocument = z.infer<typeof AuditExportDocumentSchema>;

/** What the box holds (UTF-8 JSON). */
export interface AuditExportPayload {
  readonly format: "latchkey-audit-events";
  readonly version: 1;
  readonly exportedAt: string;
  readonly hub: { readonly deviceId: string; readonly publicKey: string };
  /** The range asked for (inclusive seqs; null: from the first, to the last). */
  readonly fromSeq: number | null;
  readonly toSeq: number | null;
  /** Events in ascending seq, as `GET /api/v1/audit` returns them (with `prevHash` and `hash`). */
  readonly events: readonly AuditEvent[];
  /** Checkpoints signed at a seq of the range, ascending. */
  readonly checkpoints: readonly AuditCheckpoint[];
  /** The seq to continue from when the range held more than {@link AUDIT_EXPORT_MAX_EVENTS}; else null. */
  readonly next: number | null;
  /** The hub's verification of its whole log when exporting (`GET /api/v1/audit/verify`). */
  readonly verification: ChainVerification & { readonly deviceId: string; readonly publicKey: string };
}

const Seq = z.number().int().min(0);
const PayloadSchema = z.strictObject({
  format: z.literal("latchkey-audit-events"),
  version: z.literal(1),
  exportedAt: z.string(),
  hub: z.strictObject({ deviceId: z.string(), publicKey: z.string().regex(/^[0-9a-f]{64}$/) }),
  fromSeq: Seq.nullable(),
  toSeq: Seq.nullable(),
  events: z.array(
    z.looseObject({
      seq: Seq,
      at: z.number(),
      lockId: z.string().nullable(),
      kind: z.string(),
      data: z.record(z.string(), z.unknown()),
      prevHash: z.string(),
      hash: z.string(),
    }),
  ),
  checkpoints: z.array(z.strictObject({ seq: Seq, hash: z.string(), at: z.number(), signature: z.string() })),
  next: Seq.nullable(),
  verification: z.looseObject({ ok: z.boolean() }),
});

/**
 * Seal the audit events with seq in [`fromSeq`, `toSeq`] (inclusive; defaults: the whole log) to
 * `passphrase`. Admins and owners. `opts` is for tests (a low scrypt cost).
 * Throws LK_FORBIDDEN, LK_INVALID_INPUT (fromSeq > toSeq), LK_PASSPHRASE_WEAK.
 */
export async function exportAuditSealed(
  hub: Hub,
  actor: Actor,
  passphrase: string,
  range: { readonly fromSeq?: number | undefined; readonly toSeq?: number | undefined } = {},
  opts: BoxOptions = {},
): Promise<AuditExportDocument> {
  hub.requireRole(actor, Role.Admin);
  const fromSeq = range.fromSeq ?? null;
  const toSeq = range.toSeq ?? null;
  if (fromSeq !== null && toSeq !== null && fromSeq > toSeq)
    throw new LatchkeyError("LK_INVALID_INPUT", "fromSeq must not be after toSeq");
  const events: AuditEvent[] = [];
  let afterSeq = Math.max(0, (fromSeq ?? 1) - 1);
  let next: number | null = null;
  for (;;) {
    const page = hub.queryAudit(actor, {
      afterSeq,
      limit: 5000,
      ...(toSeq !== null ? { beforeSeq: toSeq + 1 } : {}),
    });
    for (const e of page) {
      if (events.length >= AUDIT_EXPORT_MAX_EVENTS) {
        next = e.seq;
        break;
      }
      events.push(e);
    }
    if (next !== null || page.length < 5000) break;
    afterSeq = page[page.length - 1]!.seq;
  }
  const first = events[0]?.seq;
  const last = events.at(-1)?.seq;
  const checkpoints =
    first !== undefined && last !== undefined ? hub.store.checkpointsBetween(first, last) : [];
  const exportedAt = new Date(hub.now()).toISOString();
  const publicKey = toHex(hub.publicKey);
  const payload: AuditExportPayload = {
    format: "latchkey-audit-events",
    version: 1,
    exportedAt,
    hub: { deviceId: hub.deviceId, publicKey },
    fromSeq,
    toSeq,
    events,
    checkpoints,
    next,
    verification: { ...hub.verifyAudit(), deviceId: hub.deviceId, publicKey },
  };
  const box: PassphraseBox = await sealWithPassphrase(
    AUDIT_EXPORT_KIND,
    Buffer.from(JSON.stringify(payload), "utf8"),
    passphrase,
    opts,
  );
  return { format: AUDIT_EXPORT_KIND, version: 1, exportedAt, hub: { deviceId: hub.deviceId }, box };
}

/**
 * Open an audit export (the document, its JSON text, or the API's `{ ok: true, data }` envelope around
 * it) with `passphrase`. Throws LK_INVALID_INPUT (not an audit export), LK_PASSPHRASE_BOX_MALFORMED,
 * LK_PASSPHRASE_WRONG.
 */
export async function openAuditExport(
  doc: unknown,
  passphrase: string,
  opts: BoxOptions = {},
): Promise<AuditExportPayload> {
  let v = doc;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      throw new LatchkeyError("LK_INVALID_INPUT", "not JSON (truncated or damaged file?)");
    }
  }
  const env = v as { ok?: unknown; data?: unknown } | null;
  if (typeof env === "object" && env !== null && env.ok === true && "data" in env) v = env.data;
  const d = AuditExportDocumentSchema.safeParse(v);
  if (!d.success) throw new LatchkeyError("LK_INVALID_INPUT", "not a latchkey-audit-export document");
  const plain = await openWithPassphrase(AUDIT_EXPORT_KIND, d.data.box, passphrase, opts);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(plain).toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const p = PayloadSchema.safeParse(parsed);
  if (!p.success)
    throw new LatchkeyError("LK_PASSPHRASE_BOX_MALFORMED", "the box opened but holds no audit events");
  return p.data as unknown as AuditExportPayload;
}

/** Result of {@link verifyAuditSlice}. */
export interface SliceVerification {
  readonly ok: boolean;
  readonly eventsChecked: number;
  readonly checkpointsChecked: number;
  readonly problem: { readonly seq: number; readonly what: string } | null;
}

/**
 * Check an opened export by itself (docs/protocol/audit-log.md): consecutive seqs, each event's hash
 * over its content and its link to the one before, and each checkpoint's Ed25519 signature by the
 * payload's device public key over an event of the range. It cannot say the hub's key is genuine:
 * compare `hub.publicKey` with one recorded earlier (`latchkey log verify` prints it).
 */
export function verifyAuditSlice(p: AuditExportPayload): SliceVerification {
  const publicKey = fromHex(p.hub.publicKey);
  const byHash = new Map<number, string>();
  let prev: AuditEvent | null = null;
  let eventsChecked = 0;
  const fail = (seq: number, what: string): SliceVerification => ({
    ok: false,
    eventsChecked,
    checkpointsChecked: 0,
    problem: { seq, what },
  });
  for (const e of p.events) {
    if (prev && e.seq !== prev.seq + 1) return fail(e.seq, `gap after seq ${prev.seq}`);
    if (prev && e.prevHash !== prev.hash) return fail(e.seq, "does not link to the event before");
    let h: string;
    try {
      h = hashEvent(nodeCrypto, e.seq, e.prevHash, {
        at: e.at,
        lockId: e.lockId,
        kind: e.kind,
        data: e.data,
      });
    } catch {
      return fail(e.seq, "content cannot be hashed");
    }
    if (h !== e.hash) return fail(e.seq, "hash does not match the content");
    byHash.set(e.seq, e.hash);
    prev = e;
    eventsChecked++;
  }
  let checkpointsChecked = 0;
  for (const cp of p.checkpoints) {
    if (byHash.get(cp.seq) !== cp.hash) return fail(cp.seq, "checkpoint names no event of this range");
    if (!verifyCheckpoint(nodeCrypto, p.hub.deviceId, publicKey, cp))
      return fail(cp.seq, "checkpoint signature does not verify");
    checkpointsChecked++;
  }
  return { ok: true, eventsChecked, checkpointsChecked, problem: null };
}
