/**
 * The hub's side of the cloud sync over MQTT 5 (spec: docs/protocol/sync.md; messages:
 * src/sync/messages.ts). The hub never waits for the cloud: every decision, change and audit event is
 * local and durable first; this module only copies them out and takes changes in when a broker is
 * reachable, and resumes where the cloud says it stands after any outage.
 *
 * - **Outbox = the audit log itself.** The resume point is the cloud's last `audit/ack` (kept in meta
 *   `sync.audit_through`); events after it are sent in batches, at most {@link SyncOptions.window}
 *   batches ahead of the acknowledgements. Nothing is deleted on acknowledgement; trimming keeps
 *   unacknowledged events (src/device/audit-log.ts `keepFrom`).
 * - **Operations** the cloud has not acknowledged (`ops.cloud_acked = 0`) go up in batches; operations
 *   from the cloud are admitted and applied (Hub.applyOps) and acknowledged with the ids now held.
 * - **State**: `hub/status` retained, with a Last Will that publishes `online: false`; each lock's
 *   state retained under `lock/<id>/state`.
 * - **Stalls**: if acknowledgements stop while batches are out (a message lost with a cloud worker, or
 *   reordered by a shared subscription), the sender rewinds to the last acknowledgement and resends;
 *   the cloud's ingest is idempotent on (site, seq).
 */
import mqtt, { type MqttClient } from "mqtt";
import type { AuditAnchor, AuditCheckpoint, AuditEvent } from "../core/audit/chain.ts";
import { isLatchkeyError } from "../core/errors.ts";
import {
  AuditAckSchema,
  type AuditUpMsg,
  decodeSync,
  encodeSync,
  type HubStatusMsg,
  MAX_AUDIT_BATCH,
  MAX_OPS_BATCH,
  OpsAckSchema,
  OpsBatchSchema,
  opFromB64,
  opToB64,
  parseTopic,
  type SiteTopics,
  siteTopics,
} from "../sync/messages.ts";
import type { Hub } from "./hub.ts";

/** Options of {@link CloudSync}. */
export interface SyncOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  readonly url: string;
  /** Events per `audit/up` batch (≤ {@link MAX_AUDIT_BATCH}); default 500. */
  readonly batchSize?: number;
  /** Batches sent ahead of the acknowledgements; default 4. */
  readonly window?: number;
  /** Rewind and resend when no acknowledgement came for this long with batches out (ms); default 5,000. */
  readonly stallMs?: number;
  /** Wait between reconnect attempts (ms); default 1,000. */
  readonly reconnectMs?: number;
  /** The software version in `hub/status`. */
  readonly version?: string;
  /** A line of log (never a secret). */
  readonly log?: (line: string) => void;
}

/** What `latchkey status` and the API show about the sync. */
export interface SyncStatus {
  readonly url: string;
  readonly connected: boolean;
  /** Ms since the Unix epoch of the last connection, and of the last acknowledgement. */
  readonly lastConnectedAt: number | null;
  readonly lastAckAt: number | null;
  /** The cloud holds every event through this seq. */
  readonly auditAcked: number;
  readonly auditHead: number;
  /** Events not yet acknowledged. */
  readonly pendingEvents: number;
  /** Operations the cloud has not acknowledged. */
  readonly pendingOps: number;
  /** A problem the cloud reported with the chain (tampering, a gap it cannot fill), or null. */
  readonly problem: { readonly seq: number; readonly what: string } | null;
  /** True while the uplink is deliberately cut (`latchkey check`). */
  readonly paused: boolean;
}

const AUDIT_META = "sync.audit_through";

/** The hub's MQTT sync client. `start()` connects (and keeps reconnecting); the hub works without it. */
export class CloudSync {
  readonly #hub: Hub;
  readonly #o: Required<Omit<SyncOptions, "log">> & { log: (line: string) => void };
  readonly #t: SiteTopics;
  #client: MqttClient | null = null;
  #connected = false;
  #paused = false;
  #lastConnectedAt: number | null = null;
  #lastAckAt: number | null = null;
  #acked: number;
  #sent: number;
  #problem: { seq: number; what: string } | null = null;
  /** Whether the cloud answered anything since the last connection. */
  #heard = false;
  /** Consecutive stalls (no acknowledgement in time), for the resend backoff. */
  #stalls = 0;
  /** First seq of each batch sent and not yet answered, oldest first. */
  #inflight: number[] = [];
  #pumping = false;
  #opsInFlight = false;
  #stallTimer: NodeJS.Timeout | null = null;
  #lockTimers = new Map<string, NodeJS.Timeout>();
  #unsubscribe: (() => void) | null = null;
  #closed = false;
  /** MQTT 5 first; 3.1.1 when the broker refuses 5 (the embedded Aedes broker speaks 3.1.1 only). */
  #protocol: 5 | 4 = 5;

  constructor(hub: Hub, opts: SyncOptions) {
    this.#hub = hub;
    this.#o = {
      url: opts.url,
      batchSize: Math.min(opts.batchSize ?? 500, MAX_AUDIT_BATCH),
      window: opts.window ?? 4,
      stallMs: opts.stallMs ?? 5_000,
      reconnectMs: opts.reconnectMs ?? 1_000,
      version: opts.version ?? "0.1.0",
      log: opts.log ?? (() => {}),
    };
    this.#t = siteTopics(hub.deviceId);
    this.#acked = Number(hub.store.getMeta(AUDIT_META) ?? "0");
    this.#sent = this.#acked;
  }

  /** Connect and keep the connection (reconnecting after any drop). Returns at once. */
  start(): void {
    this.#hub.audit.keepFrom = () => this.#acked + 1;
    this.#unsubscribe = this.#hub.audit.subscribe((events) => {
      this.#pump();
      for (const e of events) {
        if (
          e.lockId &&
          (e.kind.startsWith("lock.") || e.kind.startsWith("door.") || e.kind.startsWith("alarm."))
        )
          this.#publishLockSoon(e.lockId);
      }
    });
    this.#hub.onOpsRecorded = () => this.#pumpOps();
    this.#connect();
  }

  #connect(): void {
    if (this.#closed || this.#paused) return;
    const will: HubStatusMsg = {
      v: 1,
      online: false,
      at: this.#hub.now(),
      deviceId: this.#hub.deviceId,
      version: this.#o.version,
    };
    const client = mqtt.connect(this.#o.url, {
      protocolVersion: this.#protocol,
      clientId: `lk-hub-${this.#hub.deviceId}`,
      clean: true,
      reconnectPeriod: this.#o.reconnectMs,
      connectTimeout: 5_000,
      will: { topic: this.#t.hubStatus, payload: encodeSync(will), qos: 1, retain: true },
    });
    this.#client = client;
    client.on("connect", () => void this.#onConnect(client));
    client.on("close", () => {
      if (this.#connected)
        this.#o.log("cloud sync: disconnected from the broker; the hub keeps working offline");
      this.#connected = false;
      this.#pumping = false;
      this.#opsInFlight = false;
    });
    client.on("error", (e) => {
      if (this.#protocol === 5 && /protocol version/i.test(e.message) && this.#client === client) {
        // Everything the sync uses (QoS 1, retained messages, the Last Will) is in MQTT 3.1.1 too.
        this.#o.log("cloud sync: the broker does not speak MQTT 5; using MQTT 3.1.1");
        this.#protocol = 4;
        this.#client = null;
        void client.endAsync(true).then(() => this.#connect());
        return;
      }
      this.#o.log(`cloud sync: ${e.message}`);
    });
    client.on("disconnect", (p) =>
      this.#o.log(`cloud sync: the broker disconnected the hub (reason ${p.reasonCode ?? "?"})`),
    );
    client.on("message", (topic, payload) => this.#onMessage(topic, payload));
    client.on("reconnect", () => this.#o.log("cloud sync: reconnecting"));
  }

  async #onConnect(client: MqttClient): Promise<void> {
    try {
      await client.subscribeAsync([this.#t.auditAck, this.#t.opsUpAck, this.#t.opsDown], { qos: 1 });
      this.#heard = false;
      await this.#introduce(client);
      this.#helloAgain(client, this.#o.stallMs);
      this.#connected = true;
      this.#lastConnectedAt = this.#hub.now();
      this.#o.log(`cloud sync: connected to ${this.#o.url}`);
      // Resume from the last acknowledgement (the hello's answer may move it).
      this.#sent = this.#acked;
      this.#inflight = [];
      this.#pump();
      this.#pumpOps();
    } catch (e) {
      this.#o.log(`cloud sync: connect failed: ${(e as Error).message}`);
    }
  }

  /** Status (retained), every lock's state (retained) and `hello`: who the hub is and where it stands. */
  async #introduce(client: MqttClient): Promise<void> {
    const online: HubStatusMsg = {
      v: 1,
      online: true,
      at: this.#hub.now(),
      deviceId: this.#hub.deviceId,
      version: this.#o.version,
    };
    await client.publishAsync(this.#t.hubStatus, encodeSync(online), { qos: 1, retain: true });
    for (const l of this.#hub.locks()) await this.#publishLock(l.id);
    await client.publishAsync(
      this.#t.hello,
      encodeSync({
        v: 1,
        deviceId: this.#hub.deviceId,
        at: this.#hub.now(),
        auditHead: this.#hub.store.head(),
        opCount: this.#hub.store.ops.counts().total,
      }),
      { qos: 1 },
    );
  }

  /**
   * Until the cloud answers anything, say hello again (backing off to a minute): a cloud that did not
   * know the site yet (the hub started syncing before `latchkey cloud link`) learns its status, locks
   * and resume point as soon as it does.
   */
  #helloAgain(client: MqttClient, delay: number): void {
    const t = setTimeout(() => {
      if (this.#heard || this.#client !== client || !this.#connected) return;
      void this.#introduce(client).catch(() => {});
      this.#helloAgain(client, Math.min(delay * 2, 60_000));
    }, delay);
    t.unref();
  }

  #onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t || t.siteId !== this.#hub.deviceId) return;
    this.#heard = true;
    try {
      if (t.kind === "auditAck") this.#onAuditAck(decodeSync(AuditAckSchema, payload, "audit/ack"));
      else if (t.kind === "opsUpAck") this.#onOpsUpAck(decodeSync(OpsAckSchema, payload, "ops/up/ack"));
      else if (t.kind === "opsDown") this.#onOpsDown(decodeSync(OpsBatchSchema, payload, "ops/down"));
    } catch (e) {
      this.#o.log(`cloud sync: ignored a message on ${topic}: ${isLatchkeyError(e) ? e.message : String(e)}`);
    }
  }

  #onAuditAck(m: { deviceId: string; through: number; problem: { seq: number; what: string } | null }): void {
    if (m.deviceId !== this.#hub.deviceId) return;
    const head = this.#hub.store.head().seq;
    const through = Math.min(m.through, head);
    this.#lastAckAt = this.#hub.now();
    if (through !== this.#acked) {
      this.#acked = through;
      this.#hub.store.setMeta(AUDIT_META, String(through));
    }
    // Acknowledgements answer batches in order (one worker; a shared subscription may reorder them, and
    // the stall rule covers that). One that stops short of its batch's start means the cloud has a gap
    // (a batch it refused or lost): resend from its point at once.
    const first = this.#inflight.shift();
    if (first !== undefined && through < first - 1) {
      this.#sent = through;
      this.#inflight = [];
    }
    if (through > this.#sent) this.#sent = through;
    if (m.problem) {
      if (!this.#problem)
        this.#o.log(
          `cloud sync: the cloud flagged the audit chain at seq ${m.problem.seq}: ${m.problem.what}`,
        );
      this.#problem = m.problem;
      return;
    }
    this.#problem = null;
    this.#stalls = 0;
    this.#armStall();
    this.#pump();
  }

  #armStall(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
    if (this.#sent > this.#acked) {
      // Exponential backoff with jitter across consecutive stalls: when a thousand hubs come back at
      // once and the cloud falls behind, they do not all resend their window at the same moment.
      const backoff = Math.min(this.#o.stallMs * 2 ** this.#stalls, 60_000);
      const delay = Math.round(backoff * (0.75 + Math.random() * 0.5));
      this.#stallTimer = setTimeout(() => {
        this.#stallTimer = null;
        if (this.#connected && this.#sent > this.#acked) {
          this.#stalls = Math.min(this.#stalls + 1, 16);
          this.#sent = this.#acked;
          this.#inflight = [];
          this.#pump();
        }
      }, delay);
      this.#stallTimer.unref();
    }
  }

  /** Send batches while the window allows. Re-entrant calls coalesce. */
  #pump(): void {
    if (!this.#connected || this.#pumping || this.#problem || !this.#client) return;
    this.#pumping = true;
    void (async () => {
      try {
        const client = this.#client!;
        const limit = this.#o.batchSize * this.#o.window;
        while (this.#connected && this.#sent - this.#acked < limit) {
          const batch = this.#batchAfter(this.#sent);
          if (!batch) break;
          const last = batch.events.at(-1)!.seq;
          await client.publishAsync(this.#t.auditUp, encodeSync(batch), { qos: 1 });
          this.#inflight.push(batch.events[0]!.seq);
          this.#sent = Math.max(this.#sent, last);
          this.#armStall();
        }
      } catch (e) {
        this.#o.log(`cloud sync: audit upload paused: ${(e as Error).message}`);
      } finally {
        this.#pumping = false;
      }
    })();
  }

  #batchAfter(seq: number): AuditUpMsg | null {
    const events: AuditEvent[] = this.#hub.store.query({ afterSeq: seq, limit: this.#o.batchSize });
    if (events.length === 0) return null;
    const first = events[0]!.seq;
    const last = events.at(-1)!.seq;
    const checkpoints: AuditCheckpoint[] = this.#hub.store.checkpointsBetween(first, last);
    const anchor: AuditAnchor | null = this.#hub.store.anchor();
    return {
      v: 1,
      deviceId: this.#hub.deviceId,
      events: events.map((e) => ({ ...e, data: { ...e.data } })),
      checkpoints,
      anchor: anchor && anchor.throughSeq + 1 === first ? anchor : null,
    };
  }

  #pumpOps(): void {
    if (!this.#connected || this.#opsInFlight || !this.#client) return;
    const rows = this.#hub.store.ops.unacked(MAX_OPS_BATCH);
    if (rows.length === 0) return;
    this.#opsInFlight = true;
    const client = this.#client;
    client
      .publishAsync(this.#t.opsUp, encodeSync({ v: 1, ops: rows.map((r) => opToB64(r.cose)) }), { qos: 1 })
      .catch((e: Error) => {
        this.#opsInFlight = false;
        this.#o.log(`cloud sync: operations upload paused: ${e.message}`);
      });
    // If no acknowledgement comes, try again later.
    setTimeout(() => {
      if (this.#opsInFlight) {
        this.#opsInFlight = false;
        this.#pumpOps();
      }
    }, this.#o.stallMs).unref();
  }

  #onOpsUpAck(m: { have: string[]; refused: { index: number; code: string }[] }): void {
    this.#lastAckAt = this.#hub.now();
    const n = this.#hub.store.ops.markAcked(m.have);
    this.#opsInFlight = false;
    if (m.refused.length > 0) {
      this.#o.log(
        `cloud sync: the cloud refused ${m.refused.length} operation(s): ${[...new Set(m.refused.map((r) => r.code))].join(", ")}`,
      );
    }
    if (n > 0) this.#pumpOps();
  }

  #onOpsDown(m: { ops: string[] }): void {
    const envelopes = m.ops.map(opFromB64);
    let have: string[] = [];
    let refused: { index: number; code: string }[] = [];
    try {
      const r = this.#hub.applyOps(null, envelopes, true);
      have = r.accepted;
      refused = r.refused;
      this.#hub.store.ops.markAcked(have);
    } catch (e) {
      const code = isLatchkeyError(e) ? e.code : "LK_INTERNAL";
      refused = envelopes.map((_, index) => ({ index, code }));
      this.#o.log(`cloud sync: operations from the cloud not applied: ${code}`);
    }
    this.#client
      ?.publishAsync(this.#t.opsDownAck, encodeSync({ v: 1, have, refused }), { qos: 1 })
      .catch(() => {});
  }

  #publishLockSoon(lockId: string): void {
    if (this.#lockTimers.has(lockId)) return;
    const t = setTimeout(() => {
      this.#lockTimers.delete(lockId);
      void this.#publishLock(lockId).catch(() => {});
    }, 250);
    t.unref();
    this.#lockTimers.set(lockId, t);
  }

  async #publishLock(lockId: string): Promise<void> {
    if (!this.#client?.connected) return;
    const status = JSON.parse(JSON.stringify(this.#hub.status(lockId))) as Record<string, unknown>;
    await this.#client.publishAsync(
      this.#t.lockState(lockId),
      encodeSync({ v: 1, at: this.#hub.now(), lockId, status }),
      { qos: 1, retain: true },
    );
  }

  /** Where the sync stands. */
  status(): SyncStatus {
    const head = this.#hub.store.head().seq;
    return {
      url: this.#o.url,
      connected: this.#connected,
      lastConnectedAt: this.#lastConnectedAt,
      lastAckAt: this.#lastAckAt,
      auditAcked: this.#acked,
      auditHead: head,
      pendingEvents: Math.max(0, head - this.#acked),
      pendingOps: this.#hub.store.ops.counts().unacked,
      problem: this.#problem,
      paused: this.#paused,
    };
  }

  /** Cut the uplink on purpose (the readiness check): disconnect and stay offline until {@link resume}. */
  async pause(): Promise<void> {
    this.#paused = true;
    const c = this.#client;
    this.#client = null;
    this.#connected = false;
    if (c) await c.endAsync(true);
  }

  /** Restore the uplink after {@link pause}. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#connect();
  }

  /** Disconnect for good (hub shutdown). Publishes `online: false` first when connected. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#hub.onOpsRecorded = null;
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    for (const t of this.#lockTimers.values()) clearTimeout(t);
    const c = this.#client;
    this.#client = null;
    if (!c) return;
    try {
      if (c.connected) {
        const off: HubStatusMsg = {
          v: 1,
          online: false,
          at: this.#hub.now(),
          deviceId: this.#hub.deviceId,
          version: this.#o.version,
        };
        await c.publishAsync(this.#t.hubStatus, encodeSync(off), { qos: 1, retain: true });
      }
    } catch {
      // going away anyway
    }
    await c.endAsync();
  }
}
