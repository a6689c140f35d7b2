/**
 * Malformed sync payloads never crash the worker and never change anything: 2,000 random and mutated
 * payloads per hub → cloud topic (random bytes, random JSON, truncations, wrong types at any path, unknown
 * keys, invalid UTF-8, oversize), each counted and logged as `LK_SYNC_MALFORMED`; afterwards the worker
 * still ingests a valid batch. Embedded broker and PGlite, seeded generators (reproducible).
 */
import fc from "fast-check";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { type EmbeddedBroker, startEmbeddedBroker } from "../../src/cloud/broker.ts";
import { type CloudWorker, connectWorkerMqtt, startWorker } from "../../src/cloud/worker.ts";
import { nodeCrypto as c } from "../../src/platform/node-crypto.ts";
import {
  AuditUpSchema,
  decodeSync,
  HelloSchema,
  HubStatusSchema,
  LockStateSchema,
  MAX_SYNC_PAYLOAD_BYTES,
  OpsAckSchema,
  OpsBatchSchema,
  siteTopics,
} from "../../src/sync/messages.ts";
import { freshPglite, newHub, registerSite, T0, TestChain, type TestDb, until } from "./cloud-fixtures.ts";

const PER_TOPIC = 2000;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path into a JSON value (object keys and array indexes). */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) out.push([...at, i], ...paths(x, [...at, i]));
  } else if (v !== null && typeof v === "object")
    for (const [k, x] of Object.entries(v)) out.push([...at, k], ...paths(x, [...at, k]));
  return out;
}
function setAt(v: Json, path: (string | number)[], value: Json): Json {
  if (path.length === 0) return value;
  const copy = structuredClone(v) as Record<string | number, Json>;
  let cur = copy;
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, Json>;
  cur[path[path.length - 1]!] = value;
  return copy as Json;
}

function payloads(base: Json, schema: z.ZodType<unknown>, seed: number): Uint8Array[] {
  const text = JSON.stringify(base);
  const all = paths(base);
  const enc = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
  const arb = fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    fc.jsonValue().map((v) => enc(JSON.stringify(v))),
    fc.nat({ max: text.length - 1 }).map((n) => enc(text.slice(0, n))),
    fc
      .tuple(fc.nat({ max: all.length - 1 }), fc.jsonValue())
      .map(([i, v]) => enc(JSON.stringify(setAt(base, all[i]!, v as Json)))),
    fc
      .tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue())
      .map(([k, v]) => enc(JSON.stringify({ ...(base as object), [`x${k}`]: v }))),
    fc
      .constantFrom(0, 1, 2, 3)
      .map((k) => enc(JSON.stringify({ ...(base as object), v: [2, "1", null, 1.5][k] }))),
    fc.nat({ max: text.length - 1 }).map((n) => {
      const b = enc(text);
      b[n] = 0xff; // invalid UTF-8 anywhere
      return b;
    }),
  );
  const out: Uint8Array[] = [];
  const valid = (p: Uint8Array) => {
    try {
      decodeSync(schema, p, "fuzz");
      return true;
    } catch {
      return false;
    }
  };
  for (const p of fc.sample(arb, { numRuns: PER_TOPIC * 2, seed })) {
    if (out.length === PER_TOPIC - 1) break;
    if (!valid(p)) out.push(p); // mutations that happen to stay valid are not "malformed"
  }
  // And one over the size limit.
  out.push(enc(`{"v":1,"pad":"${"x".repeat(MAX_SYNC_PAYLOAD_BYTES)}"}`));
  return out;
}

describe("cloud worker: malformed payload fuzz", () => {
  let broker: EmbeddedBroker;
  let t: TestDb;
  let worker: CloudWorker;
  let workerClient: mqtt.MqttClient;
  const logs: string[] = [];
  beforeAll(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
    t = await freshPglite();
    workerClient = await connectWorkerMqtt(broker.url, "lk-fuzz", { protocolVersion: 4 });
    worker = await startWorker({
      db: t.db,
      crypto: c,
      mqtt: workerClient,
      shared: false,
      clock: () => T0,
      log: (l) => logs.push(l),
    });
  });
  afterAll(async () => {
    await worker.close();
    await workerClient.endAsync();
    await t.dispose();
    await broker.close();
  });

  it(`counts ${PER_TOPIC} bad payloads per topic as malformed, stores nothing, stays alive`, async () => {
    const hub = newHub("fz");
    await registerSite(t.db, hub);
    const s = hub.siteId;
    const T = siteTopics(s);
    const chain = new TestChain(hub, { every: 2 }).add(4);
    const valid = chain.batch(1, 4) as unknown as Json;
    const cases: [string, Json, z.ZodType<unknown>][] = [
      [T.hubStatus, { v: 1, online: false, at: T0, deviceId: s, version: "0.1.0" }, HubStatusSchema],
      [
        T.hello,
        { v: 1, deviceId: s, at: T0, auditHead: { seq: 0, hash: "0".repeat(64) }, opCount: 0 },
        HelloSchema,
      ],
      [T.lockState("front-door"), { v: 1, at: T0, lockId: "front-door", status: { a: 1 } }, LockStateSchema],
      [T.auditUp, valid, AuditUpSchema],
      [T.opsUp, { v: 1, ops: ["AAAA"] }, OpsBatchSchema],
      [T.opsDownAck, { v: 1, have: ["0".repeat(32)], refused: [] }, OpsAckSchema],
    ];
    const hubClient = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    const acks: string[] = [];
    hubClient.on("message", (topic) => acks.push(topic));
    await hubClient.subscribeAsync(`lk/v1/${s}/#`, { qos: 1 });
    let sent = 0;
    for (const [topic, base, schema] of cases) {
      const list = payloads(base, schema, 20260501 + sent);
      for (let i = 0; i < list.length; i += 200) {
        await Promise.all(
          list.slice(i, i + 200).map((p) => hubClient.publishAsync(topic, Buffer.from(p), { qos: 1 })),
        );
      }
      sent += list.length;
    }
    await until(() => worker.stats().received >= sent, `${sent} deliveries`, 50_000);
    expect(worker.stats()).toMatchObject({
      received: sent,
      malformed: sent,
      handled: 0,
      failed: 0,
      refused: 0,
    });
    expect(logs.filter((l) => l.includes("LK_SYNC_MALFORMED"))).toHaveLength(sent);
    for (const table of [
      "audit_events",
      "audit_heads",
      "audit_checkpoints",
      "ops",
      "op_acks",
      "op_refusals",
      "locks",
      "notifications",
      "chain_problems",
    ]) {
      const r = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${table} WHERE site_id = $1`,
        [s],
      );
      expect(r.rows[0]!.n, table).toBe(0);
    }
    const site = await t.db.query("SELECT online, status_at, last_hello_at FROM sites WHERE id = $1", [s]);
    expect(site.rows[0]).toEqual({ online: false, status_at: null, last_hello_at: null });
    const fromCloud = [T.auditAck, T.opsUpAck, T.opsDown];
    expect(acks.filter((x) => fromCloud.includes(x))).toEqual([]);

    // Still alive: a valid batch goes through.
    await hubClient.publishAsync(T.auditUp, Buffer.from(JSON.stringify(valid)), { qos: 1 });
    await until(() => acks.includes(T.auditAck), "audit/ack");
    expect(worker.stats().handled).toBe(1);
    await hubClient.endAsync();
  });
});
