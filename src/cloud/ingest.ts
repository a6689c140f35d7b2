/**
 * Cloud ingest of a site's audit chain (spec: docs/protocol/sync.md, docs/protocol/audit-log.md): one
 * `audit/up` batch in, verified against the chain the cloud already holds, stored exactly once.
 *
 * Exactly-once under concurrent workers: the site's `audit_heads` row is locked for the whole
 * transaction (so two workers ingesting batches of one site take turns), and `(site_id, seq)` is the
 * primary key of `audit_events` (so a replay can never store an event twice).
 *
 * Fast path, measured with bench/cloud.ts: hashes are computed with node:crypto over
 * {@link eventPreimage}'s text (the cloud runs on Node only), the same bytes {@link hashEvent} hashes at
 * a third of the cost of the port's byte API; data already in canonical key order is serialised natively
 * ({@link canonicalDataJson}); events are loaded with COPY where the adapter has it (falling back to
 * INSERT … ON CONFLICT DO NOTHING), and everything else of the batch is one statement.
 */
import * as nodeCryptoModule from "node:crypto";
import { canonicalJson } from "../core/audit/canonical.ts";
import {
  type AuditEventInput,
  eventPreimage,
  GENESIS_HASH,
  verifyAnchor,
  verifyCheckpoint,
} from "../core/audit/chain.ts";
import type { CryptoPort } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";
import type { AuditUpMsg } from "../sync/messages.ts";
import type { SqlClient, SqlQueryable } from "./db/sql.ts";

/** Audit kinds that raise a notification (a `notifications` row, written in the ingest transaction). */
export const NOTIFY_KINDS: ReadonlySet<string> = new Set([
  "alarm.forced_open",
  "alarm.tamper",
  "alarm.duress",
  "alarm.battery_low",
  "alarm.battery_critical",
  "alarm.lockout",
  "alarm.jam",
]);

/** What is wrong with the chain, at which seq (the first bad one). */
export interface ChainProblem {
  readonly seq: number;
  readonly what: string;
}

/** Outcome of {@link ingestAuditBatch}. */
export interface IngestResult {
  /** The site's head after this batch: the cloud holds every event through this seq (the resume point). */
  readonly through: number;
  /** Events stored by this call. */
  readonly stored: number;
  /** Events at or below the head before this call (already held), skipped. */
  readonly duplicates: number;
  /** The first problem found (also recorded in `chain_problems`), or null. */
  readonly problem: ChainProblem | null;
}

type AuditEventMsg = AuditUpMsg["events"][number];

interface HeadRow {
  tenant_id: string;
  device_public_key: Uint8Array;
  seq: number;
  hash: string;
  checkpoint_seq: number;
}

/**
 * Lock the site's head row for this transaction (creating it at seq 0 / {@link GENESIS_HASH} if absent)
 * and load the site's tenant and device key. An upsert whose conflict branch rewrites the row takes the
 * same row lock `SELECT … FOR UPDATE` would, in one round trip; no row comes back for an unknown site.
 */
const LOCK_HEAD = `
WITH s AS (SELECT id, tenant_id, device_public_key FROM sites WHERE id = $1),
h AS (
  INSERT INTO audit_heads (site_id, seq, hash, checkpoint_seq, updated_at)
  SELECT id, 0, $2, 0, $3 FROM s
  ON CONFLICT (site_id) DO UPDATE SET seq = audit_heads.seq
  RETURNING seq, hash, checkpoint_seq
)
SELECT s.tenant_id, s.device_public_key, h.seq, h.hash, h.checkpoint_seq FROM s, h`;

/**
 * Store the verified events, their checkpoints and alarms, and move the head: one statement, one round
 * trip. The events travel as one JSON text expanded by json_to_recordset: written by concatenation from
 * strings already at hand (the canonical data JSON), it costs the worker far less than `pg`'s escaping
 * of seven array parameters, and the server about the same as unnest (measured: bench/cloud.ts).
 */
const STORE = `
WITH ev AS (
  INSERT INTO audit_events (site_id, seq, at, lock_id, kind, data, prev_hash, hash)
  SELECT $1, r.seq, r.at, r.lock_id, r.kind, r.data, r.prev_hash, r.hash
  FROM json_to_recordset($2::json)
    AS r(seq bigint, at bigint, lock_id text, kind text, data jsonb, prev_hash text, hash text)
  ON CONFLICT DO NOTHING
  RETURNING 1
), cp AS (
  INSERT INTO audit_checkpoints (site_id, seq, hash, at, signature)
  SELECT $1, * FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[])
  ON CONFLICT DO NOTHING
), nt AS (
  INSERT INTO notifications (tenant_id, site_id, lock_id, kind, seq, data, created_at)
  SELECT $7, $1, n.lock_id, n.kind, n.seq, n.data, $11
  FROM unnest($8::text[], $9::text[], $10::bigint[], $12::jsonb[]) AS n(lock_id, kind, seq, data)
  ON CONFLICT DO NOTHING
), hd AS (
  UPDATE audit_heads
  SET seq = $13, hash = $14, checkpoint_seq = GREATEST(checkpoint_seq, $15), updated_at = $11
  WHERE site_id = $1
)
SELECT count(*)::int AS stored FROM ev`;

/**
 * Whether canonical JSON text holds an escape PostgreSQL's jsonb refuses: U+0000, or a lone surrogate
 * (JSON.stringify writes those as `\uXXXX`; a preceding even run of backslashes is a literal backslash).
 */
const UNSTORABLE_ESCAPE = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f])/;
/** A lone surrogate in a JS string (text columns would store U+FFFD instead, changing the hash). */
const LONE_SURROGATE = /\p{Cs}/u;

async function recordProblem(
  tx: SqlQueryable,
  siteId: string,
  problem: ChainProblem,
  nowMs: number,
): Promise<void> {
  // A hub resends a batch until it is acknowledged past the problem: record each problem once.
  await tx.query(
    `INSERT INTO chain_problems (site_id, seq, what, detected_at)
     SELECT $1, $2, $3, $4
     WHERE NOT EXISTS (SELECT 1 FROM chain_problems WHERE site_id = $1 AND seq = $2 AND what = $3)`,
    [siteId, problem.seq, problem.what, nowMs],
  );
}

/**
 * SHA-256 of a string's UTF-8 bytes, lowercase hex: node's one-shot `crypto.hash` where it exists
 * (Node ≥ 20.12; cheaper than createHash for short inputs), else createHash.
 */
const sha256Hex: (s: string) => string =
  typeof (nodeCryptoModule as { hash?: unknown }).hash === "function"
    ? (s) =>
        (nodeCryptoModule as unknown as { hash(alg: string, d: string, enc: "hex"): string }).hash(
          "sha256",
          s,
          "hex",
        )
    : (s) => nodeCryptoModule.createHash("sha256").update(s).digest("hex");

/** The event's hash as {@link hashEvent} computes it (lowercase hex), from its canonical data JSON. */
function hashOf(e: AuditEventMsg, dataJson: string): string {
  return sha256Hex(eventPreimage(e.seq, e.prevHash, e as unknown as AuditEventInput, dataJson));
}

/**
 * Ingest one `audit/up` batch of site `siteId`, in one transaction:
 *
 * 1. lock the site's head (created at seq 0 if absent) and load its device key;
 * 2. events at or below the head are duplicates and skipped, but one whose hash differs from the stored
 *    one is tampering: recorded as a problem, nothing stored;
 * 3. at head 0, an `anchor` (a hub trimmed its log before its first sync) is accepted if its signature
 *    verifies with the device key, and the chain continues from it; otherwise it is ignored at head > 0;
 * 4. a first new event beyond head + 1 is a gap: nothing stored, `through` = head, so the hub resends;
 * 5. the new events are verified in order (link, hash, and each checkpoint's hash and signature); the
 *    good prefix before the first bad event is stored with its checkpoints, alarm notifications
 *    ({@link NOTIFY_KINDS}) and the new head, and the first problem is recorded in `chain_problems`.
 *
 * @param nowMs the cloud's clock, ms since the Unix epoch (stamps rows it writes)
 * @returns the new head (`through`), counts, and the first problem or null
 * @throws LatchkeyError `LK_SITE_UNKNOWN` when no site `siteId` is registered (nothing stored);
 *   `LK_SYNC_MALFORMED` when `msg.deviceId` is not `siteId`; the driver's error when the database fails
 *   (the transaction is rolled back: retry the same batch).
 */
export async function ingestAuditBatch(
  db: SqlClient,
  crypto: CryptoPort,
  siteId: string,
  msg: AuditUpMsg,
  nowMs: number,
): Promise<IngestResult> {
  if (msg.deviceId !== siteId) {
    throw new LatchkeyError("LK_SYNC_MALFORMED", "audit/up: deviceId is not the topic's site");
  }
  try {
    return await ingestOnce(db, crypto, siteId, msg, nowMs, true);
  } catch (e) {
    // COPY has no ON CONFLICT: rows above the head exist only if the head was reset by hand. Redo the
    // batch (nothing was kept) with the INSERT that skips them.
    if ((e as { code?: unknown }).code !== "23505") throw e;
    return ingestOnce(db, crypto, siteId, msg, nowMs, false);
  }
}

/** Whether every object in `v` (at any depth) has its keys in canonical (UTF-16 code unit) order. */
function inCanonicalOrder(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return true;
  if (Array.isArray(v)) {
    for (const x of v) if (!inCanonicalOrder(x)) return false;
    return true;
  }
  let prev: string | null = null;
  for (const k in v) {
    if (prev !== null && !(prev < k)) return false;
    prev = k;
    if (!inCanonicalOrder((v as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/**
 * {@link canonicalJson} of a parsed event's data. A hub sends data with its keys already in canonical
 * order (it keeps the canonical form), and for JSON.parse output in that order JSON.stringify writes the
 * same text, natively; anything else goes through canonicalJson. Throws as canonicalJson does.
 */
export function canonicalDataJson(data: Record<string, unknown>): string {
  return inCanonicalOrder(data) ? JSON.stringify(data) : canonicalJson(data);
}

/** COPY text-format field: backslash is the only character canonical JSON and ids can hold that needs escaping. */
function copyText(s: string): string {
  return s.includes("\\") ? s.replaceAll("\\", "\\\\") : s;
}
/** COPY text-format field of any string (lock ids may hold tabs or newlines). */
function copyAny(s: string): string {
  if (!/[\\\t\n\r]/.test(s)) return s;
  return s.replace(/[\\\t\n\r]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
}

const COPY_EVENTS = "COPY audit_events (site_id, seq, at, lock_id, kind, data, prev_hash, hash) FROM STDIN";

async function ingestOnce(
  db: SqlClient,
  crypto: CryptoPort,
  siteId: string,
  msg: AuditUpMsg,
  nowMs: number,
  preferCopy: boolean,
): Promise<IngestResult> {
  return db.transaction(async (tx) => {
    // Events go in with COPY where the adapter has it (the fastest path into PostgreSQL), else INSERT.
    const copy = preferCopy ? tx.copyIn?.bind(tx) : undefined;
    const locked = await tx.query<HeadRow>(LOCK_HEAD, [siteId, GENESIS_HASH, nowMs]);
    const site = locked.rows[0];
    if (!site) throw new LatchkeyError("LK_SITE_UNKNOWN", `site ${siteId} is not registered`);
    const key = site.device_public_key;
    const headSeq = site.seq;
    const headHash = site.hash;
    const events = msg.events;
    const first = events[0]!;
    const last = events[events.length - 1]!;

    const fail = async (problem: ChainProblem, through: number): Promise<IngestResult> => {
      await recordProblem(tx, siteId, problem, nowMs);
      return { through, stored: 0, duplicates: 0, problem };
    };

    // 2. duplicates: compare with what is stored (the event at the head with the head itself).
    let duplicates = 0;
    if (first.seq <= headSeq) {
      const upTo = Math.min(last.seq, headSeq);
      duplicates = upTo - first.seq + 1;
      const stored = await tx.query<{ seq: number; hash: string }>(
        "SELECT seq, hash FROM audit_events WHERE site_id = $1 AND seq >= $2 AND seq <= $3",
        [siteId, first.seq, upTo],
      );
      const held = new Map(stored.rows.map((r) => [r.seq, r.hash]));
      held.set(headSeq, headHash);
      for (let i = 0; i < duplicates; i++) {
        const e = events[i]!;
        const h = held.get(e.seq);
        // No stored row: below the trim anchor the chain started from; nothing to compare with.
        if (h !== undefined && h !== e.hash) {
          return fail(
            { seq: e.seq, what: "event differs from the one already held (hash mismatch)" },
            headSeq,
          );
        }
      }
    }

    // 3. the trim anchor, only where the chain starts.
    let anchor: AuditUpMsg["anchor"] = null;
    if (msg.anchor && headSeq === 0) {
      if (!verifyAnchor(crypto, siteId, key, msg.anchor)) {
        return fail({ seq: msg.anchor.throughSeq, what: "trim anchor signature does not verify" }, 0);
      }
      anchor = msg.anchor;
    }
    const startSeq = anchor ? anchor.throughSeq : headSeq;
    const startHash = anchor ? anchor.hash : headHash;
    if (last.seq <= startSeq) {
      return { through: headSeq, stored: 0, duplicates: events.length, problem: null };
    }
    const firstNew = Math.max(0, startSeq + 1 - first.seq);
    // 4. a gap: the hub resends from our head.
    if (events[firstNew]!.seq !== startSeq + 1) {
      return { through: headSeq, stored: 0, duplicates: 0, problem: null };
    }
    duplicates = firstNew;
    if (anchor) {
      await tx.query(
        `INSERT INTO audit_anchors (site_id, through_seq, hash, at, signature) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (site_id) DO NOTHING`,
        [siteId, anchor.throughSeq, anchor.hash, anchor.at, anchor.signature],
      );
    }

    // 5. verify the new events in order.
    const checkpoints = new Map<number, AuditUpMsg["checkpoints"][number]>();
    for (const cp of msg.checkpoints) checkpoints.set(cp.seq, cp);
    const rows: string[] = [];
    let lastSeq = startSeq;
    let lastHash = startHash;
    const cpSeqs: number[] = [];
    const cpHashes: string[] = [];
    const cpAts: number[] = [];
    const cpSigs: string[] = [];
    const ntLocks: (string | null)[] = [];
    const ntKinds: string[] = [];
    const ntSeqs: number[] = [];
    const ntDatas: string[] = [];
    let prevHash = startHash;
    let problem: ChainProblem | null = null;
    for (let i = firstNew; i < events.length; i++) {
      const e = events[i]!;
      if (e.prevHash !== prevHash) {
        problem = { seq: e.seq, what: "prevHash does not link to the previous event" };
        break;
      }
      let dataJson: string;
      try {
        dataJson = canonicalDataJson(e.data);
      } catch {
        problem = { seq: e.seq, what: "event body cannot be encoded" };
        break;
      }
      if (hashOf(e, dataJson) !== e.hash) {
        problem = { seq: e.seq, what: "event hash does not match its content" };
        break;
      }
      // PostgreSQL text and jsonb cannot hold U+0000 or a lone surrogate: such an event verifies but
      // cannot be replicated faithfully.
      if (
        UNSTORABLE_ESCAPE.test(dataJson) ||
        (e.lockId !== null && (e.lockId.includes("\u0000") || LONE_SURROGATE.test(e.lockId)))
      ) {
        problem = { seq: e.seq, what: "event holds text the cloud cannot store (NUL or a lone surrogate)" };
        break;
      }
      const cp = checkpoints.get(e.seq);
      if (cp) {
        if (cp.hash !== e.hash) {
          problem = { seq: e.seq, what: "checkpoint hash differs from the event's" };
          break;
        }
        if (!verifyCheckpoint(crypto, siteId, key, cp)) {
          problem = { seq: e.seq, what: "checkpoint signature does not verify" };
          break;
        }
        cpSeqs.push(cp.seq);
        cpHashes.push(cp.hash);
        cpAts.push(cp.at);
        cpSigs.push(cp.signature);
      }
      // The site id matches [A-Za-z0-9_-], kind is one of AuditKind and the hashes are hex: only the
      // lock id and the data need escaping.
      rows.push(
        copy
          ? `${siteId}\t${e.seq}\t${e.at}\t${e.lockId === null ? "\\N" : copyAny(e.lockId)}\t${e.kind}\t${copyText(dataJson)}\t${e.prevHash}\t${e.hash}\n`
          : `{"seq":${e.seq},"at":${e.at},"lock_id":${e.lockId === null ? "null" : JSON.stringify(e.lockId)},"kind":"${e.kind}","data":${dataJson},"prev_hash":"${e.prevHash}","hash":"${e.hash}"}`,
      );
      lastSeq = e.seq;
      lastHash = e.hash;
      if (NOTIFY_KINDS.has(e.kind)) {
        ntLocks.push(e.lockId);
        ntKinds.push(e.kind);
        ntSeqs.push(e.seq);
        ntDatas.push(`{"at":${e.at},"data":${dataJson}}`);
      }
      prevHash = e.hash;
    }
    if (problem === null) {
      for (const cp of msg.checkpoints) {
        if (cp.seq > last.seq) {
          problem = { seq: cp.seq, what: "checkpoint for an event that is not in the batch" };
          break;
        }
      }
    }
    let stored = 0;
    let through = headSeq;
    if (rows.length > 0 || anchor) {
      through = lastSeq;
      if (copy && rows.length > 0) stored = await copy(COPY_EVENTS, rows.join(""));
      const r = await tx.query<{ stored: number }>(STORE, [
        siteId,
        copy ? "[]" : `[${rows.join(",")}]`,
        cpSeqs,
        cpHashes,
        cpAts,
        cpSigs,
        site.tenant_id,
        ntLocks,
        ntKinds,
        ntSeqs,
        nowMs,
        ntDatas,
        through,
        lastHash,
        cpSeqs.length > 0 ? cpSeqs[cpSeqs.length - 1]! : 0,
      ]);
      stored += r.rows[0]?.stored ?? 0;
    }
    if (problem) await recordProblem(tx, siteId, problem, nowMs);
    return { through, stored, duplicates, problem };
  });
}
