/**
 * The cloud sync worker (src/cloud/worker.ts) over real brokers: the embedded Aedes broker with PGlite
 * (the zero-setup default), and Mosquitto with PostgreSQL and two workers sharing one MQTT 5 shared
 * subscription. A test "hub" is a plain mqtt.js client publishing what a hub publishes.
 */
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EmbeddedBroker, startEmbeddedBroker } from "../../src/cloud/broker.ts";
import type { SqlClient } from "../../src/cloud/db/sql.ts";
import { type CloudWorker, connectWorkerMqtt, startWorker } from "../../src/cloud/worker.ts";
import { toHex } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { keyId, type PublicKey } from "../../src/core/keys/digital-key.ts";
import { decodeHeldOp, genesisToJson } from "../../src/core/ops/admit.ts";
import { hlc, hlcToText } from "../../src/core/ops/hlc.ts";
import { genesisOf } from "../../src/core/ops/merge.ts";
import { type OperationBody, signOperation } from "../../src/core/ops/operation.ts";
import { nodeCrypto as c } from "../../src/platform/node-crypto.ts";
import {
  type AuditAckMsg,
  encodeSync,
  type OpsAckMsg,
  opFromB64,
  opToB64,
  siteTopics,
} from "../../src/sync/messages.ts";
import {
  freshPg,
  freshPglite,
  MOSQUITTO_URL,
  newHub,
  PG_URL,
  registerSite,
  serviceAvailable,
  T0,
  TestChain,
  type TestDb,
  type TestHub,
  until,
} from "./cloud-fixtures.ts";

const pgUp = await serviceAvailable("PostgreSQL", PG_URL);
const mosquittoUp = await serviceAvailable("Mosquitto", MOSQUITTO_URL);
const NOW = T0 + 3_600_000;
const clock = () => NOW;

const ownerSeed = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 3) & 0xff);
const ownerKey: PublicKey = { alg: CoseAlg.EdDSA, key: c.ed25519PublicKey(ownerSeed) };
const ownerId = toHex(keyId(c, ownerKey));
const GENESIS = genesisToJson(genesisOf(c, [ownerKey]));

function signedOp(siteId: string, n: number): Uint8Array {
  return signOperation(c, { alg: CoseAlg.EdDSA, kid: keyId(c, ownerKey), privateKey: ownerSeed }, {
    kind: "user.upsert",
    target: `usr_${n}`,
    payload: { name: `User ${n}` },
    hlc: hlc(T0 + n, 0, "00000000000000a1"),
    actor: ownerId,
    scope: { kind: "site", id: siteId },
  } as OperationBody);
}

/** A test hub on the broker: publishes, and collects what the cloud sends its site. */
class HubClient {
  readonly inbox: { topic: string; msg: unknown }[] = [];
  private constructor(
    readonly client: MqttClient,
    readonly hub: TestHub,
  ) {}
  static async connect(url: string, hub: TestHub, v5: boolean): Promise<HubClient> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: v5 ? 5 : 4,
      clean: true,
      reconnectPeriod: 0,
    });
    const h = new HubClient(client, hub);
    client.on("message", (topic, payload) => h.inbox.push({ topic, msg: JSON.parse(payload.toString()) }));
    await client.subscribeAsync(`lk/v1/${hub.siteId}/#`, { qos: 1 });
    return h;
  }
  get topics() {
    return siteTopics(this.hub.siteId);
  }
  async send(topic: string, msg: unknown, retain = false): Promise<void> {
    await this.client.publishAsync(topic, typeof msg === "string" ? msg : encodeSync(msg), {
      qos: 1,
      retain,
    });
  }
  received<T>(topic: string): T[] {
    return this.inbox.filter((m) => m.topic === topic).map((m) => m.msg as T);
  }
  async waitFor<T>(topic: string, n = 1): Promise<T[]> {
    await until(() => this.received(topic).length >= n, `${n} message(s) on ${topic}`);
    return this.received<T>(topic);
  }
  close() {
    return this.client.endAsync();
  }
}

async function endSession(client: MqttClient, v5: boolean): Promise<void> {
  // Leave no persistent session behind on a shared broker (MQTT 5: expire it at disconnect).
  if (!v5) return client.endAsync().then(() => {});
  await new Promise<void>((r) => client.end(false, { properties: { sessionExpiryInterval: 0 } }, () => r()));
}

function runWorkerTests(
  name: string,
  setup: () => Promise<{ url: string; v5: boolean; db: TestDb; workers: number; close(): Promise<void> }>,
) {
  describe(`cloud worker: ${name}`, () => {
    let url: string;
    let t: TestDb;
    let db: SqlClient;
    let close: () => Promise<void>;
    let v5 = true;
    const clients: MqttClient[] = [];
    const workers: CloudWorker[] = [];
    const group = `lk-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const total = (k: "handled" | "refused" | "malformed") => workers.reduce((a, w) => a + w.stats()[k], 0);

    beforeAll(async () => {
      const s = await setup();
      url = s.url;
      v5 = s.v5;
      t = s.db;
      db = t.db;
      close = s.close;
      for (let i = 0; i < s.workers; i++) {
        const client = await connectWorkerMqtt(url, `${group}-w${i}`, {
          protocolVersion: s.v5 ? 5 : 4,
          sessionExpirySeconds: 60,
        });
        clients.push(client);
        workers.push(await startWorker({ db, crypto: c, mqtt: client, shared: s.workers > 1, group, clock }));
      }
    });
    afterAll(async () => {
      for (const w of workers) await w.close();
      for (const cl of clients) await endSession(cl, v5);
      await t.dispose();
      await close();
    });

    async function hubFor(hub = newHub()): Promise<HubClient> {
      await registerSite(db, hub, GENESIS);
      return HubClient.connect(url, hub, v5);
    }

    it("ingests audit batches and acknowledges each with the head, exactly once", async () => {
      const h = await hubFor();
      const ch = new TestChain(h.hub, { every: 50 }).add(1000);
      // Pipelined: with several workers a later batch may overtake an earlier one and be answered with
      // the head (a gap); the hub then resends from the highest `through`, as the sync protocol says.
      for (let from = 1; from <= 1000; from += 250)
        await h.send(h.topics.auditUp, ch.batch(from, from + 249));
      let seen = 4;
      await h.waitFor<AuditAckMsg>(h.topics.auditAck, seen);
      const through = () => Math.max(...h.received<AuditAckMsg>(h.topics.auditAck).map((a) => a.through));
      while (through() < 1000) {
        await h.send(h.topics.auditUp, ch.batch(through() + 1, Math.min(1000, through() + 250)));
        await h.waitFor<AuditAckMsg>(h.topics.auditAck, ++seen);
      }
      if (workers.length === 1) {
        // One worker takes them in order.
        expect(h.received<AuditAckMsg>(h.topics.auditAck).map((a) => a.through)).toEqual([
          250, 500, 750, 1000,
        ]);
      }
      expect(h.received<AuditAckMsg>(h.topics.auditAck).every((a) => a.problem === null)).toBe(true);
      // A replayed batch (the hub missed the ack) changes nothing and is acknowledged again.
      await h.send(h.topics.auditUp, ch.batch(251, 500));
      const again = await h.waitFor<AuditAckMsg>(h.topics.auditAck, ++seen);
      expect(again[seen - 1]).toEqual({ v: 1, deviceId: h.hub.siteId, through: 1000, problem: null });
      const n = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM audit_events WHERE site_id = $1",
        [h.hub.siteId],
      );
      expect(n.rows[0]!.n).toBe(1000);
      // A tampered batch: the ack names the problem.
      const bad = { ...ch.batch(1000, 1000), checkpoints: [] };
      bad.events = [{ ...ch.events[999]!, seq: 1001, at: T0 } as never];
      await h.send(h.topics.auditUp, bad);
      const last = (await h.waitFor<AuditAckMsg>(h.topics.auditAck, ++seen))[seen - 1]!;
      expect(last.through).toBe(1000);
      expect(last.problem?.seq).toBe(1001);
      await h.close();
    });

    it("answers hello with the head and the operations the hub has not acknowledged", async () => {
      const h = await hubFor();
      const s = h.hub.siteId;
      const ops = [signedOp(s, 2), signedOp(s, 1), signedOp(s, 3)];
      for (const bytes of ops) {
        const op = decodeHeldOp(c, bytes);
        await db.query(
          `INSERT INTO ops (site_id, op_id, hlc, kind, target, actor, cose, origin, received_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'cloud', $8)`,
          [s, op.id, hlcToText(op.hlc), op.kind, op.target, op.actor, bytes, NOW],
        );
      }
      const hello = { v: 1, deviceId: s, at: NOW, auditHead: { seq: 0, hash: "0".repeat(64) }, opCount: 0 };
      await h.send(h.topics.hello, hello);
      const [ack] = await h.waitFor<AuditAckMsg>(h.topics.auditAck);
      expect(ack).toEqual({ v: 1, deviceId: s, through: 0, problem: null });
      const [down] = await h.waitFor<{ ops: string[] }>(h.topics.opsDown);
      // Ordered by HLC.
      expect(down!.ops.map((o) => decodeHeldOp(c, opFromB64(o)).target)).toEqual(["usr_1", "usr_2", "usr_3"]);
      const last = await db.query<{ last_hello_at: number }>(
        "SELECT last_hello_at FROM sites WHERE id = $1",
        [s],
      );
      expect(last.rows[0]!.last_hello_at).toBe(NOW);
      // The hub acknowledges two; the next hello sends only the third.
      const ids = down!.ops.map((o) => decodeHeldOp(c, opFromB64(o)).id);
      await h.send(h.topics.opsDownAck, {
        v: 1,
        have: ids.slice(0, 2),
        refused: [{ index: 2, code: "LK_OP_MALFORMED" }],
      });
      await until(
        async () => (await db.query("SELECT 1 FROM op_acks WHERE site_id = $1", [s])).rows.length === 2,
        "op_acks",
      );
      await h.send(h.topics.hello, hello);
      const downs = await h.waitFor<{ ops: string[] }>(h.topics.opsDown, 2);
      expect(downs[1]!.ops.map((o) => decodeHeldOp(c, opFromB64(o)).id)).toEqual([ids[2]]);
      await h.close();
    });

    it("admits operations from the hub, stores and acknowledges them, refuses bad ones with codes", async () => {
      const h = await hubFor();
      const s = h.hub.siteId;
      const good = signedOp(s, 10);
      const forged = good.slice();
      forged[forged.length - 1]! ^= 1;
      await h.send(h.topics.opsUp, { v: 1, ops: [opToB64(good), opToB64(forged), "AAAA"] });
      const [ack] = await h.waitFor<OpsAckMsg>(h.topics.opsUpAck);
      const id = decodeHeldOp(c, good).id;
      expect(ack!.have).toEqual([id]);
      expect(ack!.refused.map((r) => r.index)).toEqual([1, 2]);
      expect(ack!.refused[0]!.code).toMatch(/^LK_/);
      const row = await db.query<{ origin: string; cose: Uint8Array }>(
        "SELECT origin, cose FROM ops WHERE site_id = $1",
        [s],
      );
      expect(row.rows).toHaveLength(1);
      expect(row.rows[0]!.origin).toBe("hub");
      expect([...row.rows[0]!.cose]).toEqual([...good]);
      expect(
        (await db.query("SELECT 1 FROM op_acks WHERE site_id = $1 AND op_id = $2", [s, id])).rows,
      ).toHaveLength(1);
      expect((await db.query("SELECT code FROM op_refusals WHERE site_id = $1", [s])).rows).toHaveLength(1);
      // Sent again: already held, acknowledged, stored once.
      await h.send(h.topics.opsUp, { v: 1, ops: [opToB64(good)] });
      const acks = await h.waitFor<OpsAckMsg>(h.topics.opsUpAck, 2);
      expect(acks[1]).toEqual({ v: 1, have: [id], refused: [] });
      expect((await db.query("SELECT 1 FROM ops WHERE site_id = $1", [s])).rows).toHaveLength(1);
      await h.close();
    });

    it("tracks hub status (offline notifies once) and lock state; ignores unknown sites", async () => {
      const h = await hubFor();
      const s = h.hub.siteId;
      const before = total("handled");
      await h.send(h.topics.hubStatus, { v: 1, online: true, at: NOW, deviceId: s, version: "0.1.0" });
      await h.send(h.topics.lockState("front-door"), {
        v: 1,
        at: NOW,
        lockId: "front-door",
        status: { lockState: "locked", battery: 80 },
      });
      const offline = { v: 1, online: false, at: NOW + 1000, deviceId: s, version: "0.1.0" };
      await h.send(h.topics.hubStatus, offline);
      await h.send(h.topics.hubStatus, offline); // a redelivered copy
      await until(() => total("handled") >= before + 4, "four messages handled");
      const site = await db.query<{ online: boolean; status_at: number }>(
        "SELECT online, status_at FROM sites WHERE id = $1",
        [s],
      );
      expect(site.rows[0]).toEqual({ online: false, status_at: NOW + 1000 });
      const n = await db.query<{ kind: string; seq: number | null }>(
        "SELECT kind, seq FROM notifications WHERE site_id = $1",
        [s],
      );
      expect(n.rows).toEqual([{ kind: "hub.offline", seq: null }]);
      const lock = await db.query<{ state: unknown }>("SELECT state FROM locks WHERE site_id = $1", [s]);
      expect(lock.rows[0]!.state).toEqual({ lockState: "locked", battery: 80 });

      const stranger = await HubClient.connect(url, newHub("x"), v5);
      const refusedBefore = total("refused");
      const ch = new TestChain(stranger.hub).add(3);
      await stranger.send(stranger.topics.auditUp, ch.batch(1, 3));
      await stranger.send(stranger.topics.hubStatus, {
        v: 1,
        online: true,
        at: NOW,
        deviceId: stranger.hub.siteId,
        version: "x",
      });
      await until(() => total("refused") >= refusedBefore + 2, "two refusals");
      expect(stranger.received(stranger.topics.auditAck)).toEqual([]);
      expect(
        (await db.query("SELECT 1 FROM audit_heads WHERE site_id = $1", [stranger.hub.siteId])).rows,
      ).toHaveLength(0);
      await stranger.close();
      await h.close();
    });
  });
}

runWorkerTests("embedded Aedes + PGlite", async () => {
  const broker = await startEmbeddedBroker({ port: 0 });
  return { url: broker.url, v5: false, db: await freshPglite(), workers: 1, close: () => broker.close() };
});

describe.skipIf(!pgUp || !mosquittoUp)("Mosquitto + PostgreSQL", () => {
  runWorkerTests("Mosquitto + PostgreSQL, 2 workers on a shared subscription", async () => ({
    url: MOSQUITTO_URL,
    v5: true,
    db: await freshPg(),
    workers: 2,
    close: async () => {},
  }));
});

describe("cloud worker: failures (embedded broker)", () => {
  let broker: EmbeddedBroker;
  let t: TestDb;
  beforeAll(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
    t = await freshPglite();
  });
  afterAll(async () => {
    await t.dispose();
    await broker.close();
  });

  it("retries while the database is unavailable and acknowledges only after the commit", async () => {
    let failures = 3;
    const flaky: SqlClient = {
      kind: t.db.kind,
      query: (sql, params) => t.db.query(sql, params),
      transaction: (fn) => {
        if (failures > 0) {
          failures--;
          return Promise.reject(
            Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
          );
        }
        return t.db.transaction(fn);
      },
      close: () => t.db.close(),
    };
    const client = await connectWorkerMqtt(broker.url, "lk-flaky", { protocolVersion: 4 });
    const w = await startWorker({
      db: flaky,
      crypto: c,
      mqtt: client,
      shared: false,
      clock,
      retryFirstMs: 10,
    });
    const hub = newHub();
    await registerSite(t.db, hub);
    const h = await HubClient.connect(broker.url, hub, false);
    const ch = new TestChain(hub).add(100);
    await h.send(h.topics.auditUp, ch.batch(1, 100));
    const [ack] = await h.waitFor<AuditAckMsg>(h.topics.auditAck);
    expect(ack!.through).toBe(100);
    expect(w.stats()).toMatchObject({ retries: 3, handled: 1, failed: 0 });
    await w.close();
    await client.endAsync();
    await h.close();
  });

  it("loses nothing when a worker dies mid-batch: the broker redelivers to the session", async () => {
    let release: (() => void) | null = null;
    const stuck: SqlClient = {
      ...t.db,
      kind: t.db.kind,
      query: (sql, params) => t.db.query(sql, params),
      // The first worker's transaction never finishes (the process "dies" inside it).
      transaction: () => new Promise((_, reject) => (release = () => reject(new Error("killed")))),
      close: async () => {},
    };
    const a = await connectWorkerMqtt(broker.url, "lk-crash", {
      protocolVersion: 4,
      extra: { reconnectPeriod: 0 },
    });
    const wa = await startWorker({ db: stuck, crypto: c, mqtt: a, shared: false, clock });
    const hub = newHub();
    await registerSite(t.db, hub);
    const h = await HubClient.connect(broker.url, hub, false);
    const ch = new TestChain(hub).add(50);
    await h.send(h.topics.auditUp, ch.batch(1, 50));
    await until(() => wa.stats().received === 1, "delivery to the first worker");
    await a.endAsync(true); // SIGKILL: no PUBACK was sent
    (release as (() => void) | null)?.();
    const b = await connectWorkerMqtt(broker.url, "lk-crash", { protocolVersion: 4 });
    const wb = await startWorker({ db: t.db, crypto: c, mqtt: b, shared: false, clock });
    const [ack] = await h.waitFor<AuditAckMsg>(h.topics.auditAck);
    expect(ack!.through).toBe(50);
    expect(wb.stats().handled).toBeGreaterThanOrEqual(1);
    await wb.close();
    await endSession(b, false);
    await h.close();
  });
});
