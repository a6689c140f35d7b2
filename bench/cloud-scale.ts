/**
 * Cloud scale: a fleet returning from an outage (part of `npm run bench` as `cloud.scale_drain`).
 *
 *   1,000 sites (a site = one hub with its locks), each coming back after a 3-week outage with its backlog:
 *   3 weeks × 25 events a day = 525 events per site, 525,000 in all. The sites run in 4 child processes
 *   (250 each), every site on its own MQTT connection (1,000 hub connections, as a real fleet has; set
 *   `sitesPerConnection` to multiplex instead) with the hub's sender logic (src/hub/cloud-sync.ts):
 *   connect → subscribe audit/ack → hello → batches of 500 after its last acknowledgement, at most 4 out →
 *   resume from each audit/ack (the cloud's word) → rewind and resend after 5 s without an ack (stall).
 *   Against the real path: Mosquitto (127.0.0.1:1883) → 2 sync worker processes on one MQTT 5 shared
 *   subscription (test/support/cloud-worker-proc.ts, the product's startWorker) → PostgreSQL (127.0.0.1:5432)
 *   in a fresh schema (dropped afterwards), the 1,000 sites registered first with one SQL insert.
 *
 *   Reported: drain time (from "go" — the sites start connecting — until every site holds the cloud's
 *   acknowledgement of its whole backlog), events/s, lost (expected − stored), duplicated (rows beyond one
 *   per (site, seq), which the primary key forbids, checked with SQL per site: count = count(distinct seq) =
 *   max(seq), min(seq) = 1), events the workers were delivered but ingest skipped as already held or out of
 *   order (`redundant`: delivered − stored, counted by the worker processes), stall rewinds, chain problems,
 *   and a chain verification (verifyChain over the cloud's rows) of a sample of sites.
 *
 * The hubs' events are built and their batches encoded before timing (a real hub's CPU is its own; here the
 * hubs share the machine with the cloud). Sizes: LK_SCALE_SITES, LK_SCALE_PER_SITE, LK_SCALE_PROCS,
 * LK_SCALE_WORKERS. `node --import tsx bench/cloud-scale.ts` runs it alone and prints the result.
 */
import { type ChildProcess, fork } from "node:child_process";
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import mqtt, { type MqttClient } from "mqtt";
import { migrateCloud } from "../src/cloud/db/migrate.ts";
import { openPg } from "../src/cloud/db/pg.ts";
import type { SqlClient } from "../src/cloud/db/sql.ts";
import { canonicalJson, type JsonValue } from "../src/core/audit/canonical.ts";
import {
  type AuditCheckpoint,
  type AuditEvent,
  AuditKind,
  GENESIS_HASH,
  hashEvent,
  signCheckpoint,
  verifyChain,
} from "../src/core/audit/chain.ts";
import { EpochMs } from "../src/core/units.ts";
import { nodeCrypto as c } from "../src/platform/node-crypto.ts";
import {
  type AuditAckMsg,
  AuditAckSchema,
  type AuditUpMsg,
  decodeSync,
  encodeSync,
  MAX_AUDIT_BATCH,
  parseTopic,
  siteTopics,
} from "../src/sync/messages.ts";
import type { ThroughputMetric } from "./stats.ts";

const DAY_MS = 86_400_000;
/** The hub's default checkpoint interval (src/device/audit-log.ts). */
export const CHECKPOINT_EVERY = 256;
const WORKER_SCRIPT = fileURLToPath(new URL("../test/support/cloud-worker-proc.ts", import.meta.url));
const THIS_FILE = fileURLToPath(import.meta.url);

// ==================================================================== a hub's audit chain

/** A site's device key and id: deterministic from the id, so a parent and its children agree on it. */
export function siteIdentity(siteId: string): { seed: Uint8Array; publicKey: Uint8Array } {
  const seed = new Uint8Array(createHash("sha256").update(`latchkey-sim-site/${siteId}`).digest());
  return { seed, publicKey: c.ed25519PublicKey(seed) };
}

/**
 * A simulated hub's audit log: hash-chained events with a signed checkpoint every {@link CHECKPOINT_EVERY}
 * events, exactly as the hub's store builds them (same hash, same checkpoint signature, keys in the order
 * the hub's store returns them). Grows with {@link append}.
 */
export class SimChain {
  readonly events: AuditEvent[] = [];
  readonly checkpoints = new Map<number, AuditCheckpoint>();
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  #hash = GENESIS_HASH;
  readonly #payloads = new Map<string, Buffer>();

  constructor(
    readonly siteId: string,
    readonly every = CHECKPOINT_EVERY,
  ) {
    const id = siteIdentity(siteId);
    this.seed = id.seed;
    this.publicKey = id.publicKey;
  }

  get head(): { seq: number; hash: string } {
    return { seq: this.events.length, hash: this.#hash };
  }

  /**
   * Append `n` events, the i-th at `atOf(i)` (ms since the epoch). The mix is a day at a door: a grant,
   * unlock, open, close, lock; now and then a refused code; a battery warning once in a while (an alarm:
   * the cloud writes a notification for it).
   */
  append(n: number, atOf: (i: number) => number = () => Date.now()): this {
    for (let i = 0; i < n; i++) {
      const seq = this.events.length + 1;
      const at = EpochMs(Math.round(atOf(i)));
      const lockId = seq % 3 === 0 ? "back-door" : "front-door";
      let kind: AuditKind;
      let data: { [k: string]: JsonValue };
      if (seq % 400 === 333) {
        kind = AuditKind.AlarmBatteryLow;
        data = { percent: 19 };
      } else if (seq % 40 === 7) {
        kind = AuditKind.AccessDenied;
        data = { source: "keypad", reason: "unknown_credential" };
      } else {
        switch (seq % 5) {
          case 0:
            kind = AuditKind.AccessGranted;
            data = {
              source: "keypad",
              credentialType: "pin",
              userId: `usr_${seq % 7}`,
              credentialId: `cred_${seq % 7}`,
            };
            break;
          case 1:
            kind = AuditKind.LockState;
            data = { state: "unlocked", cause: "access" };
            break;
          case 2:
            kind = AuditKind.DoorState;
            data = { state: "open" };
            break;
          case 3:
            kind = AuditKind.DoorState;
            data = { state: "closed" };
            break;
          default:
            kind = AuditKind.LockState;
            data = { state: "locked", cause: "auto_relock" };
        }
      }
      const input = { at, lockId, kind, data };
      const hash = hashEvent(c, seq, this.#hash, input, canonicalJson(data));
      // The key order of the hub's store rows (src/store/sqlite), so payloads look like a hub's.
      const e: AuditEvent = { seq, at, lockId, kind, data, prevHash: this.#hash, hash } as AuditEvent;
      this.events.push(e);
      this.#hash = hash;
      if (seq % this.every === 0) this.checkpoints.set(seq, signCheckpoint(c, this.siteId, this.seed, e, at));
    }
    return this;
  }

  /** The `audit/up` payload of up to `size` events after `seq` (cached), or null when there are none. */
  payloadAfter(seq: number, size: number): { payload: Buffer; last: number; count: number } | null {
    const head = this.events.length;
    if (seq >= head) return null;
    const last = Math.min(head, seq + size);
    const key = `${seq}:${last}`;
    let payload = this.#payloads.get(key);
    if (!payload) {
      const cps: AuditCheckpoint[] = [];
      for (let s = Math.ceil((seq + 1) / this.every) * this.every; s <= last; s += this.every) {
        const cp = this.checkpoints.get(s);
        if (cp) cps.push(cp);
      }
      const msg: AuditUpMsg = {
        v: 1,
        deviceId: this.siteId,
        events: this.events.slice(seq, last) as AuditUpMsg["events"],
        checkpoints: cps,
        anchor: null,
      };
      payload = encodeSync(msg);
      // Only full batches are worth keeping: a growing chain's tail batch changes.
      if (last - seq === size) this.#payloads.set(key, payload);
    }
    return { payload, last, count: last - seq };
  }
}

// ==================================================================== a hub's sender

/** Timers and sizes of the sender; the defaults are the hub's (src/hub/cloud-sync.ts). */
export interface SenderOptions {
  readonly batchSize?: number;
  readonly window?: number;
  readonly stallMs?: number;
  readonly reconnectMs?: number;
}

/** Counters of one site's sender. */
export interface SenderStats {
  /** Events published in audit/up messages (resends included). */
  eventsPublished: number;
  batchesPublished: number;
  /** Rewinds to the last acknowledgement after `stallMs` without one. */
  stallRewinds: number;
  /** Connections made (the first included). */
  connects: number;
  acks: number;
}

export const emptySenderStats = (): SenderStats => ({
  eventsPublished: 0,
  batchesPublished: 0,
  stallRewinds: 0,
  connects: 0,
  acks: 0,
});

export function addSenderStats(into: SenderStats, s: SenderStats): SenderStats {
  into.eventsPublished += s.eventsPublished;
  into.batchesPublished += s.batchesPublished;
  into.stallRewinds += s.stallRewinds;
  into.connects += s.connects;
  into.acks += s.acks;
  return into;
}

/**
 * One site's audit uplink, the algorithm of the hub's CloudSync (src/hub/cloud-sync.ts) over a
 * {@link SimChain}: on every connect a hello, then batches after the last acknowledgement, at most `window`
 * ahead; each audit/ack moves the resume point (the cloud's word, also when it is behind what was sent); a
 * stall (no ack for `stallMs` with batches out) rewinds to it. A chain problem stops the uplink.
 */
export class SiteSender {
  readonly stats = emptySenderStats();
  acked = 0;
  problem: { seq: number; what: string } | null = null;
  #sent = 0;
  #connected = false;
  #pumping = false;
  #client: MqttClient | null = null;
  #stall: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #o: Required<SenderOptions>;
  readonly topics: ReturnType<typeof siteTopics>;
  /** Called whenever an acknowledgement reaches the chain's head. */
  onCaughtUp: (() => void) | null = null;

  constructor(
    readonly chain: SimChain,
    opts: SenderOptions = {},
  ) {
    this.#o = {
      batchSize: Math.min(opts.batchSize ?? 500, MAX_AUDIT_BATCH),
      window: opts.window ?? 4,
      stallMs: opts.stallMs ?? 5_000,
      reconnectMs: opts.reconnectMs ?? 1_000,
    };
    this.topics = siteTopics(chain.siteId);
  }

  get caughtUp(): boolean {
    return this.acked >= this.chain.head.seq;
  }

  /** The connection (re)connected and subscribed: say hello and resume from the last acknowledgement. */
  async connected(client: MqttClient): Promise<void> {
    this.#client = client;
    this.stats.connects++;
    const head = this.chain.head;
    await client.publishAsync(
      this.topics.hello,
      encodeSync({ v: 1, deviceId: this.chain.siteId, at: Date.now(), auditHead: head, opCount: 0 }),
      { qos: 1 },
    );
    this.#connected = true;
    this.#sent = this.acked;
    this.pump();
  }

  disconnected(): void {
    this.#connected = false;
    this.#pumping = false;
  }

  ack(m: AuditAckMsg): void {
    const through = Math.min(m.through, this.chain.head.seq);
    this.stats.acks++;
    this.acked = through;
    if (through > this.#sent) this.#sent = through;
    if (m.problem) {
      this.problem = m.problem;
      return;
    }
    this.problem = null;
    this.#armStall();
    if (this.caughtUp) this.onCaughtUp?.();
    this.pump();
  }

  #armStall(): void {
    if (this.#stall) clearTimeout(this.#stall);
    this.#stall = null;
    if (this.#sent > this.acked && !this.#closed) {
      this.#stall = setTimeout(() => {
        this.#stall = null;
        if (this.#connected && this.#sent > this.acked) {
          this.stats.stallRewinds++;
          this.#sent = this.acked;
          this.pump();
        }
      }, this.#o.stallMs);
    }
  }

  /** Send batches while the window allows (new events call this too). Re-entrant calls coalesce. */
  pump(): void {
    if (!this.#connected || this.#pumping || this.problem || !this.#client || this.#closed) return;
    this.#pumping = true;
    const client = this.#client;
    void (async () => {
      try {
        const limit = this.#o.batchSize * this.#o.window;
        while (this.#connected && !this.#closed && this.#sent - this.acked < limit) {
          const b = this.chain.payloadAfter(this.#sent, this.#o.batchSize);
          if (!b) break;
          await client.publishAsync(this.topics.auditUp, b.payload, { qos: 1 });
          this.stats.eventsPublished += b.count;
          this.stats.batchesPublished++;
          this.#sent = Math.max(this.#sent, b.last);
          this.#armStall();
        }
      } catch {
        // the connection dropped: the next connect resumes from the last acknowledgement
      } finally {
        this.#pumping = false;
      }
    })();
  }

  close(): void {
    this.#closed = true;
    if (this.#stall) clearTimeout(this.#stall);
    this.#stall = null;
  }
}

/**
 * One MQTT connection carrying one site (as a hub) or several (multiplexed): MQTT 5, clean session,
 * reconnecting every `reconnectMs`; on each connect it subscribes to its sites' audit/ack and hands over to
 * their senders. No retained messages (hub/status, lock state) are published: the shared broker keeps
 * nothing of a run.
 */
export class SiteConnection {
  readonly client: MqttClient;
  readonly #bySite = new Map<string, SiteSender>();

  constructor(url: string, clientId: string, senders: readonly SiteSender[], reconnectMs = 1_000) {
    for (const s of senders) this.#bySite.set(s.chain.siteId, s);
    this.client = mqtt.connect(url, {
      protocolVersion: 5,
      clientId,
      clean: true,
      reconnectPeriod: reconnectMs,
      connectTimeout: 5_000,
      keepalive: 30,
    });
    this.client.on("connect", () => void this.#onConnect());
    this.client.on("close", () => {
      for (const s of this.#bySite.values()) s.disconnected();
    });
    this.client.on("error", () => {}); // reconnects on its own
    this.client.on("message", (topic, payload) => {
      const t = parseTopic(topic);
      if (t?.kind !== "auditAck") return;
      const s = this.#bySite.get(t.siteId);
      if (!s) return;
      try {
        s.ack(decodeSync(AuditAckSchema, payload, "audit/ack"));
      } catch {
        // a malformed ack is ignored, as the hub does
      }
    });
  }

  async #onConnect(): Promise<void> {
    try {
      const senders = [...this.#bySite.values()];
      await this.client.subscribeAsync(
        senders.map((s) => s.topics.auditAck),
        { qos: 1 },
      );
      await Promise.all(senders.map((s) => s.connected(this.client)));
    } catch {
      // dropped while connecting: the next connect starts over
    }
  }

  async close(): Promise<void> {
    for (const s of this.#bySite.values()) s.close();
    await this.client.endAsync(true);
  }
}

// ==================================================================== the fleet in child processes

/** What the parent sends a site process. */
interface SitesConfig {
  type: "config";
  ids: string[];
  perSite: number;
  /** End of the outage (ms since the epoch): the backlog's events are spread over the 3 weeks before it. */
  endMs: number;
  mqttUrl: string;
  sender: SenderOptions;
  sitesPerConnection: number;
  tag: string;
  proc: number;
}

/** A site process: build the backlogs, wait for "go", drain them, report, and stop on "stop". */
async function sitesProcess(): Promise<void> {
  const cfg = await new Promise<SitesConfig>((resolve) =>
    process.once("message", (m) => resolve(m as SitesConfig)),
  );
  const t0 = performance.now();
  const span = 21 * DAY_MS;
  const senders = cfg.ids.map((id) => {
    const chain = new SimChain(id).append(cfg.perSite, (i) => cfg.endMs - span + (i * span) / cfg.perSite);
    // Encode the first batches before timing, as a hub's events are already on its disk.
    for (let s = 0; s < cfg.perSite; s += cfg.sender.batchSize ?? 500)
      chain.payloadAfter(s, cfg.sender.batchSize ?? 500);
    return new SiteSender(chain, cfg.sender);
  });
  process.send?.({ type: "built", ms: performance.now() - t0 });
  await new Promise<void>((resolve) => process.once("message", () => resolve()));
  let left = senders.length;
  const report = () =>
    process.send?.({
      type: "stats",
      left,
      stats: senders.reduce((a, s) => addSenderStats(a, s.stats), emptySenderStats()),
      problems: senders.filter((s) => s.problem).map((s) => ({ site: s.chain.siteId, ...s.problem! })),
    });
  for (const s of senders) {
    s.onCaughtUp = () => {
      if (s.onCaughtUp === null) return;
      s.onCaughtUp = null;
      if (--left === 0) {
        report();
        process.send?.({ type: "done" });
      }
    };
  }
  const timer = setInterval(report, 500);
  const conns: SiteConnection[] = [];
  for (let i = 0; i < senders.length; i += cfg.sitesPerConnection) {
    const group = senders.slice(i, i + cfg.sitesPerConnection);
    const clientId =
      cfg.sitesPerConnection === 1
        ? `lk-hub-${group[0]!.chain.siteId}`
        : `lk-hubs-${cfg.tag}-${cfg.proc}-${i}`;
    conns.push(new SiteConnection(cfg.mqttUrl, clientId, group, cfg.sender.reconnectMs ?? 1_000));
  }
  process.on("message", (m) => {
    if (m !== "stop") return;
    void (async () => {
      clearInterval(timer);
      report();
      await Promise.all(conns.map((k) => k.close()));
      process.exit(0);
    })();
  });
  process.on("disconnect", () => process.exit(0));
}

/** Options of {@link runCloudScale}. */
export interface ScaleOptions {
  readonly sites: number;
  readonly perSite: number;
  /** Child processes the sites are spread over. */
  readonly processes: number;
  /** Worker processes (one worker each) sharing one MQTT 5 subscription. */
  readonly workers: number;
  readonly pgUrl: string;
  readonly mqttUrl: string;
  readonly sender?: SenderOptions;
  /** 1: every site on its own connection, as hubs are; more multiplexes sites on fewer connections. */
  readonly sitesPerConnection?: number;
  /** Sites whose chain is verified (verifyChain over the cloud's rows) afterwards; default all ≤ 200, else 50. */
  readonly verifySites?: number;
  /** Bound on the drain (ms): past it the run fails with where it stands. Default 120,000. */
  readonly drainTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

/** What {@link runCloudScale} measured. */
export interface ScaleResult {
  sites: number;
  perSite: number;
  events: number;
  processes: number;
  workers: number;
  connections: number;
  buildSeconds: number;
  drainSeconds: number;
  eventsPerSecond: number;
  stored: number;
  lost: number;
  /** Rows beyond one per (site, seq): structurally 0 (primary key), checked per site with SQL. */
  duplicated: number;
  /** Sites whose seq set is not exactly 1..perSite. */
  badSites: number;
  /** Events in audit/up messages the workers were delivered (redeliveries included). */
  delivered: number;
  /** delivered − stored: events ingest skipped as already held (or ahead of a gap). */
  redundant: number;
  sent: number;
  stallRewinds: number;
  connects: number;
  chainProblems: number;
  verifiedSites: number;
  workerStats: {
    handled: number;
    failed: number;
    malformed: number;
    refused: number;
    retries: number;
    eventsStored: number;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Fork `file` under tsx with an IPC channel, stderr collected (last 20 kB) for failure messages. */
function forkTs(file: string, env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  let out = "";
  const child = fork(file, [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return { child, output: () => out };
}

/** Wait for a child's IPC message of `type`, bounded; fails with its output if it exits or times out. */
function waitFor(
  p: { child: ChildProcess; output: () => string },
  type: string,
  ms: number,
  what: string,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no "${type}" within ${ms} ms; output:\n${p.output()}`));
    }, ms);
    const onMsg = (m: unknown) => {
      if ((m as { type?: string })?.type === type) {
        cleanup();
        resolve(m as Record<string, unknown>);
      }
    };
    const onExit = (code: number | null, sig: string | null) => {
      cleanup();
      reject(new Error(`${what}: exited (${code ?? sig}) before "${type}"; output:\n${p.output()}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      p.child.off("message", onMsg);
      p.child.off("exit", onExit);
    };
    p.child.on("message", onMsg);
    p.child.once("exit", onExit);
  });
}

/** Stop a child: "stop" over IPC, SIGKILL if it has not exited within `ms`. */
async function stopChild(child: ChildProcess, ms = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    child.send("stop");
  } catch {
    // channel closed
  }
  const t = setTimeout(() => child.kill("SIGKILL"), ms);
  await exited;
  clearTimeout(t);
}

/** Per-site check of the cloud's rows: lost, duplicated and sites whose seq set is not 1..expected. */
export async function checkStoredSets(
  db: SqlClient,
  expected: ReadonlyMap<string, number>,
): Promise<{ stored: number; lost: number; duplicated: number; badSites: string[] }> {
  const r = await db.query<{ site_id: string; n: number; d: number; lo: number; hi: number }>(
    `SELECT site_id, count(*)::int AS n, count(DISTINCT seq)::int AS d, min(seq)::int AS lo, max(seq)::int AS hi
     FROM audit_events WHERE site_id = ANY($1::text[]) GROUP BY site_id`,
    [[...expected.keys()]],
  );
  const got = new Map(r.rows.map((x) => [x.site_id, x]));
  let stored = 0;
  let lost = 0;
  let duplicated = 0;
  const badSites: string[] = [];
  for (const [site, want] of expected) {
    const x = got.get(site) ?? { n: 0, d: 0, lo: 0, hi: 0 };
    stored += x.n;
    duplicated += x.n - x.d;
    lost += Math.max(0, want - x.d);
    if (x.n !== want || x.d !== want || (want > 0 && (x.lo !== 1 || x.hi !== want))) badSites.push(site);
  }
  return { stored, lost, duplicated, badSites };
}

/** verifyChain over the cloud's rows of one site (events and checkpoints as stored). */
export async function verifyStoredChain(
  db: SqlClient,
  siteId: string,
  publicKey: Uint8Array,
): Promise<{ ok: boolean; lastSeq: number; problem: string | null }> {
  const ev = await db.query<{
    seq: number;
    at: number;
    lock_id: string | null;
    kind: string;
    data: Record<string, JsonValue>;
    prev_hash: string;
    hash: string;
  }>(
    "SELECT seq, at, lock_id, kind, data, prev_hash, hash FROM audit_events WHERE site_id = $1 ORDER BY seq",
    [siteId],
  );
  const cps = await db.query<{ seq: number; hash: string; at: number; signature: string }>(
    "SELECT seq, hash, at, signature FROM audit_checkpoints WHERE site_id = $1",
    [siteId],
  );
  const events: AuditEvent[] = ev.rows.map(
    (r) =>
      ({
        seq: r.seq,
        at: r.at,
        lockId: r.lock_id,
        kind: r.kind,
        data: r.data,
        prevHash: r.prev_hash,
        hash: r.hash,
      }) as AuditEvent,
  );
  const checkpoints = new Map(cps.rows.map((x) => [x.seq, { ...x, at: EpochMs(x.at) } as AuditCheckpoint]));
  const v = verifyChain(c, siteId, publicKey, null, events, checkpoints);
  return {
    ok: v.ok,
    lastSeq: v.lastSeq,
    problem: v.problem ? `seq ${v.problem.seq}: ${v.problem.what}` : null,
  };
}

/**
 * Run the scale scenario (see the module doc) and check it: throws only when it cannot run or does not
 * finish within its bound; lost, duplicated and problems are returned for the caller to judge.
 */
export async function runCloudScale(o: ScaleOptions): Promise<ScaleResult> {
  const log = o.log ?? (() => {});
  const tag = `${process.pid.toString(36)}${Math.random().toString(36).slice(2, 7)}`;
  const schema = `lk_scale_${tag}`;
  const group = `lk-scale-${tag}`;
  const sender: SenderOptions = {
    batchSize: 500,
    window: 4,
    stallMs: 5_000,
    reconnectMs: 1_000,
    ...o.sender,
  };
  const perConn = Math.max(1, o.sitesPerConnection ?? 1);
  const ids = Array.from({ length: o.sites }, (_, i) => `hub_sc${tag}${String(i).padStart(5, "0")}`);
  const db = await openPg(o.pgUrl, { schema, max: 4 });
  const workers: { child: ChildProcess; output: () => string; last: Record<string, number> }[] = [];
  const procs: { child: ChildProcess; output: () => string }[] = [];
  try {
    await migrateCloud(db, Date.now());
    const tenant = `ten_scale_${tag}`;
    await db.query("INSERT INTO tenants (id, name, created_at) VALUES ($1, 'Scale bench', $2)", [
      tenant,
      Date.now(),
    ]);
    await db.query(
      `INSERT INTO sites (id, tenant_id, name, device_public_key, genesis, created_at)
       SELECT id, $3, id, decode(k, 'hex'), '[]', $4 FROM unnest($1::text[], $2::text[]) AS u(id, k)`,
      [ids, ids.map((id) => Buffer.from(siteIdentity(id).publicKey).toString("hex")), tenant, Date.now()],
    );
    log(`scale: ${o.sites} sites registered in schema ${schema}`);

    for (let i = 0; i < o.workers; i++) {
      const w = {
        ...forkTs(WORKER_SCRIPT, {
          LK_WORKER_DB_URL: o.pgUrl,
          LK_WORKER_DB_SCHEMA: schema,
          LK_WORKER_MQTT_URL: o.mqttUrl,
          LK_WORKER_CLIENT_ID: `${group}-w${i}`,
          LK_WORKER_GROUP: group,
          LK_WORKER_SESSION_S: "60",
          LK_WORKER_SITE_PREFIX: `hub_sc${tag}`,
        }),
        last: {} as Record<string, number>,
      };
      w.child.on("message", (m) => {
        if ((m as { type?: string }).type === "stats") w.last = m as Record<string, number>;
      });
      workers.push(w);
    }
    await Promise.all(workers.map((w, i) => waitFor(w, "ready", 30_000, `worker ${i}`)));

    const endMs = Date.now();
    const t0 = performance.now();
    const per = Math.ceil(o.sites / o.processes);
    const progress = new Map<number, { left: number; stats: SenderStats; problems: unknown[] }>();
    for (let p = 0; p < o.processes; p++) {
      const slice = ids.slice(p * per, (p + 1) * per);
      if (slice.length === 0) continue;
      const proc = forkTs(THIS_FILE, { LK_SCALE_ROLE: "sites" });
      proc.child.on("message", (m) => {
        const x = m as { type: string; left: number; stats: SenderStats; problems: unknown[] };
        if (x.type === "stats") progress.set(p, x);
      });
      procs.push(proc);
      const cfg: SitesConfig = {
        type: "config",
        ids: slice,
        perSite: o.perSite,
        endMs,
        mqttUrl: o.mqttUrl,
        sender,
        sitesPerConnection: perConn,
        tag,
        proc: p,
      };
      proc.child.send(cfg);
    }
    await Promise.all(procs.map((p, i) => waitFor(p, "built", 120_000, `site process ${i}`)));
    const buildSeconds = (performance.now() - t0) / 1000;
    log(`scale: ${o.sites * o.perSite} events built in ${buildSeconds.toFixed(1)} s; go`);

    const drainBound = o.drainTimeoutMs ?? 120_000;
    const go = performance.now();
    const done = Promise.all(procs.map((p, i) => waitFor(p, "done", drainBound, `site process ${i}`)));
    for (const p of procs) p.child.send("go");
    const ticker = setInterval(() => {
      const left = [...progress.values()].reduce((a, x) => a + x.left, 0);
      log(`scale: ${((performance.now() - go) / 1000).toFixed(1)} s, sites still draining: ${left}`);
    }, 5_000);
    try {
      await done;
    } catch (e) {
      const left = [...progress.values()].reduce((a, x) => a + x.left, 0);
      const n = await db
        .query<{ n: number }>("SELECT count(*)::int AS n FROM audit_events")
        .catch(() => null);
      throw new Error(
        `scale: not drained within ${drainBound} ms (${left} sites left, ${n?.rows[0]?.n ?? "?"} of ${o.sites * o.perSite} events stored): ${(e as Error).message.slice(0, 2000)}`,
      );
    } finally {
      clearInterval(ticker);
    }
    const drainSeconds = (performance.now() - go) / 1000;

    await Promise.all(procs.map((p) => stopChild(p.child)));
    await Promise.all(workers.map((w) => stopChild(w.child)));

    const expected = new Map(ids.map((id) => [id, o.perSite]));
    const sets = await checkStoredSets(db, expected);
    const problems = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM chain_problems");
    const verifyN = Math.min(o.sites, o.verifySites ?? (o.sites <= 200 ? o.sites : 50));
    let verified = 0;
    for (let k = 0; k < verifyN; k++) {
      const id = ids[Math.floor((k * o.sites) / verifyN)]!;
      const v = await verifyStoredChain(db, id, siteIdentity(id).publicKey);
      if (!v.ok || v.lastSeq !== o.perSite)
        throw new Error(`scale: site ${id} chain at the cloud: ${v.problem ?? `ends at ${v.lastSeq}`}`);
      verified++;
    }
    const senderTotals = [...progress.values()].reduce(
      (a, x) => addSenderStats(a, x.stats),
      emptySenderStats(),
    );
    const ws = workers.map((w) => w.last);
    const sum = (k: string) => ws.reduce((a, x) => a + (Number(x[k]) || 0), 0);
    const events = o.sites * o.perSite;
    const delivered = sum("delivered");
    return {
      sites: o.sites,
      perSite: o.perSite,
      events,
      processes: procs.length,
      workers: o.workers,
      connections: procs.length === 0 ? 0 : Math.ceil(o.sites / perConn),
      buildSeconds: Math.round(buildSeconds * 10) / 10,
      drainSeconds: Math.round(drainSeconds * 100) / 100,
      eventsPerSecond: Math.round(events / drainSeconds),
      stored: sets.stored,
      lost: sets.lost,
      duplicated: sets.duplicated,
      badSites: sets.badSites.length,
      delivered,
      redundant: delivered - sum("eventsStored"),
      sent: senderTotals.eventsPublished,
      stallRewinds: senderTotals.stallRewinds,
      connects: senderTotals.connects,
      chainProblems: problems.rows[0]?.n ?? -1,
      verifiedSites: verified,
      workerStats: {
        handled: sum("handled"),
        failed: sum("failed"),
        malformed: sum("malformed"),
        refused: sum("refused"),
        retries: sum("retries"),
        eventsStored: sum("eventsStored"),
      },
    };
  } finally {
    for (const p of [...procs, ...workers]) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    }
    await sleep(50);
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await db.close();
  }
}

/** Whether a TCP service answers (1 s). */
function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port) });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/**
 * `cloud.scale_drain` for bench/run.ts: 1,000 sites × 525 events (env overrides in the module doc). Needs
 * Mosquitto and PostgreSQL: without them it is skipped (`context` null). Lost, duplicated and chain
 * problems are returned in `context` and logged; bench/run.ts turns them into a target.
 */
export async function benchCloudScale(): Promise<{
  metrics: ThroughputMetric[];
  context: ScaleResult | null;
}> {
  const pgUrl = process.env.BENCH_PG_URL ?? "postgres://root@127.0.0.1:5432/test";
  const mqttUrl = process.env.BENCH_MQTT_URL ?? "mqtt://127.0.0.1:1883";
  if (!(await reachable(pgUrl)) || !(await reachable(mqttUrl))) {
    console.error(`cloud.scale_drain: skipped (needs PostgreSQL at ${pgUrl} and Mosquitto at ${mqttUrl})`);
    return { metrics: [], context: null };
  }
  const r = await runCloudScale({
    sites: Number(process.env.LK_SCALE_SITES ?? 1000),
    perSite: Number(process.env.LK_SCALE_PER_SITE ?? 525),
    processes: Number(process.env.LK_SCALE_PROCS ?? 4),
    workers: Number(process.env.LK_SCALE_WORKERS ?? 2),
    pgUrl,
    mqttUrl,
    drainTimeoutMs: 150_000,
    log: (l) => console.error(l),
  });
  console.error(
    `cloud.scale_drain: ${r.sites} sites × ${r.perSite} = ${r.events} events drained in ${r.drainSeconds} s ` +
      `(${r.eventsPerSecond} events/s); lost ${r.lost}, duplicated ${r.duplicated}, chain problems ${r.chainProblems}; ` +
      `sent ${r.sent} (stall rewinds ${r.stallRewinds}), delivered ${r.delivered}, skipped as held ${r.redundant}`,
  );
  return {
    metrics: [{ name: "cloud.scale_drain", unit: "events/s", value: r.eventsPerSecond, n: r.events }],
    context: r,
  };
}

if (process.env.LK_SCALE_ROLE === "sites") {
  await sitesProcess();
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchCloudScale();
  console.log(JSON.stringify(r, null, 2));
}
