/**
 * A cloud sync worker (spec: docs/protocol/sync.md): it subscribes to every site's hub → cloud topics
 * (QoS 1, MQTT 5), validates each message at the boundary, applies it to the database in one
 * transaction, answers the hub (acks, missing operations), and only then acknowledges the MQTT message.
 *
 * Delivery guarantees:
 * - a message is acknowledged (PUBACK) only after its transaction committed, so a worker killed mid-batch
 *   loses nothing: the broker redelivers to the persistent session (stable client id, `clean: false`);
 *   every handler is idempotent, so a redelivered message changes nothing twice;
 * - while the database is unavailable, the message is retried with exponential backoff and never dropped
 *   (mqtt.js reads the next message only after this one is acknowledged: that is the backpressure);
 * - a malformed message (bad topic, JSON or schema, site id mismatch) is counted, logged with its code,
 *   acknowledged and changes nothing; a message about an unregistered site likewise (`refused`);
 * - a message that fails permanently in the database (SQLSTATE class 22 or 23: its own data, never an
 *   outage) is logged, acknowledged and counted as `failed`, so one poisoned message cannot stall every
 *   site; every other database error is retried.
 *
 * Several workers share the load through an MQTT 5 shared subscription (`$share/<group>/…`), which needs
 * a broker that has them (Mosquitto, EMQX); the embedded Aedes broker runs one worker.
 */
import mqtt, { type IClientOptions, type IPublishPacket, type ISubscriptionMap, type MqttClient } from "mqtt";
import { type CryptoPort, toHex } from "../core/crypto.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { admitOps, decodeHeldOp, genesisFromJson, keyDirectoryFrom } from "../core/ops/admit.ts";
import { hlcToText } from "../core/ops/hlc.ts";
import type { Operation } from "../core/ops/operation.ts";
import {
  type AuditAckMsg,
  CLOUD_FILTERS,
  decodeAuditUp,
  decodeSync,
  encodeSync,
  HelloSchema,
  HubStatusSchema,
  LockStateSchema,
  MAX_OPS_BATCH,
  MAX_SYNC_PAYLOAD_BYTES,
  type OpsAckMsg,
  OpsAckSchema,
  OpsBatchSchema,
  opFromB64,
  opToB64,
  parseTopic,
  SHARED_GROUP,
  siteTopics,
} from "../sync/messages.ts";
import type { SqlClient } from "./db/sql.ts";
import { ingestAuditBatch } from "./ingest.ts";

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  readonly db: SqlClient;
  readonly crypto: CryptoPort;
  /**
   * A connected mqtt.js client speaking MQTT 5, with a stable client id and a persistent session (see
   * {@link connectWorkerMqtt}). The worker takes over its `handleMessage`; the caller ends it after
   * {@link CloudWorker.close}.
   */
  readonly mqtt: MqttClient;
  /** Subscribe through an MQTT 5 shared subscription (several workers on one broker). */
  readonly shared: boolean;
  /** The shared group (default {@link SHARED_GROUP}); tests sharing one broker use their own. */
  readonly group?: string;
  /** Wall clock, ms since the Unix epoch. */
  readonly clock: () => number;
  /** One line per malformed or refused message and per retry. Never given a payload or a secret. */
  readonly log?: (line: string) => void;
  /** Backoff while the database is unavailable: first and longest wait, ms (defaults 100 and 5,000). */
  readonly retryFirstMs?: number;
  readonly retryMaxMs?: number;
}

/** Counters of one worker since it started. */
export interface WorkerStats {
  /** Messages delivered to the worker. */
  received: number;
  /** Messages applied (transaction committed) and acknowledged. */
  handled: number;
  /** Messages refused as malformed (`LK_SYNC_MALFORMED` or a topic not of the protocol), changing nothing. */
  malformed: number;
  /** Well-formed messages about a site the cloud does not know (`LK_SITE_UNKNOWN`), changing nothing. */
  refused: number;
  /** Messages that failed permanently in the database (logged with their code) and were acknowledged. */
  failed: number;
  /** Attempts retried after a transient database failure. */
  retries: number;
  /** Audit events stored by this worker. */
  eventsStored: number;
  /** Audit events received again and skipped (already stored): resends after an outage or a stall. */
  eventsDuplicate: number;
}

/** A running worker. */
export interface CloudWorker {
  /** A snapshot of its counters. */
  stats(): WorkerStats;
  /**
   * Stop taking messages and wait (up to `timeoutMs`, default 10,000) for the one in progress. A message
   * still unacknowledged stays with the broker for redelivery. Does not end the MQTT client.
   */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * SQLSTATE classes caused by the message's own content (data exceptions, integrity violations): retrying
 * the same message fails the same way. Every other database error (connection, crash recovery, locks,
 * resources, even a missing relation while an operator migrates) is retried until it clears.
 */
const PERMANENT_SQLSTATE_CLASSES = new Set(["22", "23"]);

/**
 * Whether `e` is worth retrying (the database or the network is down, or anything not known to be the
 * message's fault), rather than a permanent failure of this message.
 */
export function isTransientDbError(e: unknown): boolean {
  if (isLatchkeyError(e)) return e.code === "LK_CLOUD_UNAVAILABLE";
  if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) return false;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) {
    return !PERMANENT_SQLSTATE_CLASSES.has(code.slice(0, 2));
  }
  // Socket errors (ECONNREFUSED, ECONNRESET…), "Connection terminated", pool timeouts: the platform.
  return true;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Connect an mqtt.js client the way a worker needs it: MQTT 5 (or 3.1.1), a persistent session under
 * `clientId` (`clean: false`; with MQTT 5 a session expiry of `sessionExpirySeconds`, default one day) so
 * unacknowledged messages survive a crash, automatic reconnection every second.
 *
 * @throws the mqtt.js connection error when the broker cannot be reached (after `connectTimeout`).
 */
export async function connectWorkerMqtt(
  url: string,
  clientId: string,
  opts: {
    /** 5 (default), or 4 (MQTT 3.1.1) for a broker without MQTT 5 such as Aedes 1.2. */
    readonly protocolVersion?: 4 | 5;
    readonly sessionExpirySeconds?: number;
    readonly extra?: IClientOptions;
  } = {},
): Promise<MqttClient> {
  const v5 = (opts.protocolVersion ?? 5) === 5;
  return mqtt.connectAsync(url, {
    protocolVersion: v5 ? 5 : 4,
    clientId,
    clean: false,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    keepalive: 30,
    // MQTT 5 ends a session at disconnect unless it has an expiry; 3.1.1 keeps it until a clean connect.
    ...(v5
      ? { properties: { sessionExpiryInterval: opts.sessionExpirySeconds ?? 86_400, receiveMaximum: 64 } }
      : {}),
    ...opts.extra,
  });
}

/**
 * The `ops/down` payloads carrying `opsBytes` (COSE_Sign1) in order: batches of at most
 * {@link MAX_OPS_BATCH} operations and {@link MAX_SYNC_PAYLOAD_BYTES} bytes each.
 * @throws LatchkeyError `LK_INVALID_INPUT` for one operation too large for a message.
 */
export function opsDownPayloads(opsBytes: readonly Uint8Array[]): Buffer[] {
  const budget = MAX_SYNC_PAYLOAD_BYTES - 64; // room for {"v":1,"ops":[]}
  const out: Buffer[] = [];
  let batch: string[] = [];
  let size = 0;
  const flush = () => {
    if (batch.length > 0) out.push(encodeSync({ v: 1, ops: batch }));
    batch = [];
    size = 0;
  };
  for (const bytes of opsBytes) {
    const b64 = opToB64(bytes);
    if (b64.length + 3 > budget) {
      throw new LatchkeyError("LK_INVALID_INPUT", "an operation is too large for one ops/down message");
    }
    if (batch.length === MAX_OPS_BATCH || size + b64.length + 3 > budget) flush();
    batch.push(b64);
    size += b64.length + 3;
  }
  flush();
  return out;
}

/**
 * Publish operations (COSE_Sign1 bytes) to a site's hub on `ops/down`, QoS 1, in order, batched as
 * {@link opsDownPayloads} does; resolves when the broker has acknowledged every batch. For the API after
 * it stores operations the cloud made. Never call it from inside a worker's message handling on the
 * worker's own client: the broker's acknowledgement would queue behind the message being handled.
 *
 * @throws LatchkeyError `LK_INVALID_INPUT` for a bad site id or an operation too large for a message;
 *   the mqtt.js error when the client cannot publish.
 */
export async function publishOpsDown(
  client: MqttClient,
  siteId: string,
  opsBytes: readonly Uint8Array[],
): Promise<void> {
  const topic = siteTopics(siteId).opsDown;
  for (const payload of opsDownPayloads(opsBytes)) await client.publishAsync(topic, payload, { qos: 1 });
}

interface Handled {
  /** Audit events stored (auditUp only). */
  readonly stored?: number;
  /** Audit events already held (auditUp only). */
  readonly duplicates?: number;
}

/**
 * Start a worker on a connected client: subscribe to {@link CLOUD_FILTERS} (QoS 1; through
 * `$share/${SHARED_GROUP}/` when `shared`) and handle every message as the module doc says.
 *
 * @throws LatchkeyError `LK_CLOUD_UNAVAILABLE` when the broker refuses a subscription (e.g. a shared
 *   subscription on a broker without them).
 */
export async function startWorker(opts: WorkerOptions): Promise<CloudWorker> {
  const { db, crypto, mqtt: client, clock, log } = opts;
  const retryFirst = opts.retryFirstMs ?? 100;
  const retryMax = opts.retryMaxMs ?? 5_000;
  const stats: WorkerStats = {
    received: 0,
    handled: 0,
    malformed: 0,
    refused: 0,
    failed: 0,
    retries: 0,
    eventsStored: 0,
    eventsDuplicate: 0,
  };
  let closing = false;
  let current: Promise<void> | null = null;
  // Bumped when the connection drops: a message from an earlier connection is never acknowledged on a
  // later one (its packet id would name another message); the broker redelivers it instead.
  let epoch = 0;
  const onClose = () => {
    epoch++;
  };
  client.on("close", onClose);

  // Never awaited inside a handler: the broker's PUBACK is read only after the handler returns (mqtt.js
  // handles incoming packets one at a time), so awaiting it here would deadlock. mqtt.js keeps QoS 1
  // publishes in its outgoing store and resends them after a reconnect.
  const publish = (topic: string, msg: unknown | Buffer) => {
    const payload = Buffer.isBuffer(msg) ? msg : encodeSync(msg);
    client.publish(topic, payload, { qos: 1 }, (err) => {
      if (err) log?.(`worker: publish to ${topic} failed: ${err.message}`);
    });
  };

  // ---------------------------------------------------------------- handlers (each idempotent)

  async function onHubStatus(siteId: string, payload: Uint8Array): Promise<Handled> {
    const msg = decodeSync(HubStatusSchema, payload, "hub/status");
    if (msg.deviceId !== siteId)
      throw new LatchkeyError("LK_SYNC_MALFORMED", "hub/status: deviceId is not the topic's site");
    await db.transaction(async (tx) => {
      // Only a newer status moves the site, so a redelivered or retained copy changes nothing.
      const r = await tx.query<{ tenant_id: string }>(
        `UPDATE sites SET online = $2, status_at = $3
         WHERE id = $1 AND (status_at IS NULL OR status_at < $3) RETURNING tenant_id`,
        [siteId, msg.online, msg.at],
      );
      const site = r.rows[0];
      if (!site) {
        const known = await tx.query("SELECT 1 FROM sites WHERE id = $1", [siteId]);
        if (known.rows.length === 0)
          throw new LatchkeyError("LK_SITE_UNKNOWN", `site ${siteId} is not registered`);
        return;
      }
      if (!msg.online) {
        await tx.query(
          `INSERT INTO notifications (tenant_id, site_id, lock_id, kind, seq, data, created_at)
           VALUES ($1, $2, NULL, 'hub.offline', NULL, $3, $4)`,
          [site.tenant_id, siteId, JSON.stringify({ at: msg.at, version: msg.version }), clock()],
        );
      }
    });
    return {};
  }

  async function onLockState(siteId: string, lockId: string, payload: Uint8Array): Promise<Handled> {
    const msg = decodeSync(LockStateSchema, payload, "lock/state");
    if (msg.lockId !== lockId)
      throw new LatchkeyError("LK_SYNC_MALFORMED", "lock/state: lockId is not the topic's lock");
    const r = await db.query(
      `INSERT INTO locks (site_id, lock_id, state, updated_at)
       SELECT id, $2, $3, $4 FROM sites WHERE id = $1
       ON CONFLICT (site_id, lock_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
       WHERE locks.updated_at <= excluded.updated_at
       RETURNING 1`,
      [siteId, lockId, JSON.stringify(msg.status), msg.at],
    );
    if (r.rows.length === 0) {
      const known = await db.query("SELECT 1 FROM sites WHERE id = $1", [siteId]);
      if (known.rows.length === 0)
        throw new LatchkeyError("LK_SITE_UNKNOWN", `site ${siteId} is not registered`);
    }
    return {};
  }

  async function onHello(siteId: string, payload: Uint8Array): Promise<Handled> {
    const msg = decodeSync(HelloSchema, payload, "sync/hello");
    if (msg.deviceId !== siteId)
      throw new LatchkeyError("LK_SYNC_MALFORMED", "sync/hello: deviceId is not the topic's site");
    const r = await db.query(
      "UPDATE sites SET last_hello_at = GREATEST(COALESCE(last_hello_at, 0), $2) WHERE id = $1 RETURNING id",
      [siteId, clock()],
    );
    if (r.rows.length === 0) throw new LatchkeyError("LK_SITE_UNKNOWN", `site ${siteId} is not registered`);
    const head = await db.query<{ seq: number }>("SELECT seq FROM audit_heads WHERE site_id = $1", [siteId]);
    const ack: AuditAckMsg = { v: 1, deviceId: siteId, through: head.rows[0]?.seq ?? 0, problem: null };
    publish(siteTopics(siteId).auditAck, ack);
    const missing = await db.query<{ cose: Uint8Array }>(
      `SELECT o.cose FROM ops o
       WHERE o.site_id = $1 AND NOT EXISTS (SELECT 1 FROM op_acks a WHERE a.site_id = o.site_id AND a.op_id = o.op_id)
       ORDER BY o.hlc, o.op_id`,
      [siteId],
    );
    const topic = siteTopics(siteId).opsDown;
    for (const payload of opsDownPayloads(missing.rows.map((x) => x.cose))) publish(topic, payload);
    return {};
  }

  async function onAuditUp(siteId: string, payload: Uint8Array): Promise<Handled> {
    const msg = decodeAuditUp(payload);
    const r = await ingestAuditBatch(db, crypto, siteId, msg, clock());
    if (r.problem)
      log?.(`worker: site ${siteId} audit chain problem at seq ${r.problem.seq}: ${r.problem.what}`);
    const ack: AuditAckMsg = { v: 1, deviceId: siteId, through: r.through, problem: r.problem };
    publish(siteTopics(siteId).auditAck, ack);
    return { stored: r.stored, duplicates: r.duplicates };
  }

  async function onOpsUp(siteId: string, payload: Uint8Array): Promise<Handled> {
    const msg = decodeSync(OpsBatchSchema, payload, "ops/up");
    const envelopes = msg.ops.map(opFromB64);
    const now = clock();
    const ack = await db.transaction(async (tx): Promise<OpsAckMsg> => {
      // The site row lock serialises admissions of one site (the key directory grows with each batch).
      const site = await tx.query<{ genesis: unknown }>(
        "SELECT genesis FROM sites WHERE id = $1 FOR UPDATE",
        [siteId],
      );
      const row = site.rows[0];
      if (!row) throw new LatchkeyError("LK_SITE_UNKNOWN", `site ${siteId} is not registered`);
      const heldRows = await tx.query<{ op_id: string; cose: Uint8Array }>(
        "SELECT op_id, cose FROM ops WHERE site_id = $1 ORDER BY hlc, op_id",
        [siteId],
      );
      const held = new Set<string>();
      const heldOps: Operation[] = [];
      for (const h of heldRows.rows) {
        held.add(h.op_id);
        heldOps.push(decodeHeldOp(crypto, h.cose));
      }
      const dir = keyDirectoryFrom(genesisFromJson(crypto, row.genesis), heldOps);
      // Operations the cloud already holds are acknowledged without admitting them again.
      const have: string[] = [];
      const toAdmit: number[] = [];
      const idOf: (string | null)[] = envelopes.map((bytes) => {
        try {
          return decodeHeldOp(crypto, bytes).id;
        } catch {
          return null;
        }
      });
      envelopes.forEach((_, i) => {
        const id = idOf[i];
        if (id != null && held.has(id)) {
          if (!have.includes(id)) have.push(id);
        } else toAdmit.push(i);
      });
      const admission = admitOps(
        crypto,
        dir,
        toAdmit.map((i) => envelopes[i]!),
        { nowMs: now },
      );
      const accepted = admission.accepted;
      if (accepted.length > 0) {
        await tx.query(
          `INSERT INTO ops (site_id, op_id, hlc, kind, target, actor, cose, origin, received_at)
           SELECT $1, u.op_id, u.hlc, u.kind, u.target, u.actor, decode(u.cose, 'hex'), 'hub', $8
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
             AS u(op_id, hlc, kind, target, actor, cose)
           ON CONFLICT DO NOTHING`,
          [
            siteId,
            accepted.map((a) => a.op.id),
            accepted.map((a) => hlcToText(a.op.hlc)),
            accepted.map((a) => a.op.kind),
            accepted.map((a) => a.op.target),
            accepted.map((a) => a.op.actor),
            accepted.map((a) => toHex(a.bytes)),
            now,
          ],
        );
        for (const a of accepted) if (!have.includes(a.op.id)) have.push(a.op.id);
      }
      if (have.length > 0) {
        // The hub holds what it sent: no drift for these.
        await tx.query(
          `INSERT INTO op_acks (site_id, op_id, acked_at) SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING`,
          [siteId, have, now],
        );
      }
      const refused = admission.refused.map((r) => ({ index: toAdmit[r.index]!, code: r.code }));
      const refusedIds = refused.filter((r) => idOf[r.index] != null);
      if (refusedIds.length > 0) {
        await tx.query(
          `INSERT INTO op_refusals (site_id, op_id, code, refused_at)
           SELECT $1, * , $4 FROM unnest($2::text[], $3::text[])
           ON CONFLICT (site_id, op_id) DO UPDATE SET code = excluded.code, refused_at = excluded.refused_at`,
          [siteId, refusedIds.map((r) => idOf[r.index]!), refusedIds.map((r) => r.code), now],
        );
      }
      return { v: 1, have, refused };
    });
    publish(siteTopics(siteId).opsUpAck, ack);
    return {};
  }

  async function onOpsDownAck(siteId: string, payload: Uint8Array): Promise<Handled> {
    const msg = decodeSync(OpsAckSchema, payload, "ops/down/ack");
    // `have` is authoritative. `refused` indexes point into an ops/down message this worker may not have
    // sent (another worker may have), so they cannot be mapped to operations and are ignored.
    if (msg.have.length > 0) {
      await db.query(
        `INSERT INTO op_acks (site_id, op_id, acked_at)
         SELECT site_id, op_id, $3 FROM ops WHERE site_id = $1 AND op_id = ANY($2::text[])
         ON CONFLICT DO NOTHING`,
        [siteId, msg.have, clock()],
      );
    }
    return {};
  }

  async function dispatch(topic: string, payload: Uint8Array): Promise<Handled> {
    const t = parseTopic(topic);
    if (t === null) throw new LatchkeyError("LK_SYNC_MALFORMED", "topic is not of the sync protocol");
    switch (t.kind) {
      case "hubStatus":
        return onHubStatus(t.siteId, payload);
      case "lockState":
        return onLockState(t.siteId, t.lockId, payload);
      case "hello":
        return onHello(t.siteId, payload);
      case "auditUp":
        return onAuditUp(t.siteId, payload);
      case "opsUp":
        return onOpsUp(t.siteId, payload);
      case "opsDownAck":
        return onOpsDownAck(t.siteId, payload);
      default:
        throw new LatchkeyError("LK_SYNC_MALFORMED", `${t.kind} is a cloud → hub topic`);
    }
  }

  /** Handle one message; resolves true when it may be acknowledged. */
  async function handle(packet: IPublishPacket): Promise<boolean> {
    const started = epoch;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    let wait = retryFirst;
    for (;;) {
      try {
        const r = await dispatch(packet.topic, payload);
        stats.handled++;
        stats.eventsStored += r.stored ?? 0;
        stats.eventsDuplicate += r.duplicates ?? 0;
        return epoch === started;
      } catch (e) {
        if (isLatchkeyError(e) && e.code === "LK_SYNC_MALFORMED") {
          stats.malformed++;
          log?.(`worker: malformed message on ${packet.topic}: ${e.message}`);
          return epoch === started;
        }
        if (isLatchkeyError(e) && e.code === "LK_SITE_UNKNOWN") {
          stats.refused++;
          log?.(`worker: ${packet.topic}: ${e.code}`);
          return epoch === started;
        }
        if (!isTransientDbError(e)) {
          stats.failed++;
          const code = (e as { code?: unknown }).code;
          log?.(
            `worker: ${packet.topic} failed for good (${String(code ?? (e as Error).name)}): ${(e as Error).message}`,
          );
          return epoch === started;
        }
        if (closing || epoch !== started) return false;
        stats.retries++;
        log?.(
          `worker: ${packet.topic}: database unavailable, retrying in ${wait} ms (${(e as Error).message})`,
        );
        await sleep(wait);
        wait = Math.min(retryMax, wait * 2);
        if (closing || epoch !== started) return false;
      }
    }
  }

  client.handleMessage = (packet, done) => {
    stats.received++;
    if (closing) return; // not acknowledged: the broker redelivers to the session later
    const p = handle(packet).then(
      (ack) => {
        if (ack) done();
      },
      (e: unknown) => {
        // handle() catches everything; this is a bug: leave the message unacknowledged.
        log?.(`worker: internal error on ${packet.topic}: ${(e as Error).message}`);
      },
    );
    current = p;
    void p.then(() => {
      if (current === p) current = null;
    });
  };

  const prefix = opts.shared ? `$share/${opts.group ?? SHARED_GROUP}/` : "";
  const filters = Object.values(CLOUD_FILTERS).map((f) => prefix + f);
  // The map form with `resubscribe`: mqtt.js skips topics it believes subscribed, and a broker that
  // restores a persistent session after a restart may not restore its shared subscriptions
  // (Mosquitto 2.0): subscribe again on every (re)connection, or the worker goes deaf.
  // (mqtt.js deletes the `resubscribe` key from the map it is given: a fresh map every time.)
  const subscription = () =>
    ({
      ...Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }])),
      resubscribe: true,
    }) as unknown as ISubscriptionMap;
  const onConnect = () => {
    client.subscribe(subscription(), (err) => {
      if (err) log?.(`worker: re-subscribing failed: ${err.message}`);
    });
  };
  client.on("connect", onConnect);
  const granted = await client.subscribeAsync(subscription());
  const bad = granted.filter((g) => g.qos > 2);
  if (bad.length > 0) {
    client.off("close", onClose);
    throw new LatchkeyError(
      "LK_CLOUD_UNAVAILABLE",
      `the broker refused the subscription to ${bad.map((g) => g.topic).join(", ")} (reason ${bad[0]!.qos})`,
    );
  }

  return {
    stats: () => ({ ...stats }),
    async close(timeoutMs = 10_000): Promise<void> {
      closing = true;
      const pending = current;
      if (pending) await Promise.race([pending, sleep(timeoutMs)]);
      client.off("close", onClose);
      client.off("connect", onConnect);
    },
  };
}
