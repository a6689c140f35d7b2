/**
 * Cloud ingest throughput (part of `npm run bench`; DESIGN.md budget: ≥ 50,000 events/s into PostgreSQL
 * and ≥ 50 % of a raw COPY on the same machine):
 *
 *   cloud.ingest       audit events per second through the real path: 100 simulated hubs (one mqtt.js
 *                      publisher) → broker (Mosquitto at 127.0.0.1:1883 when reachable, else the embedded
 *                      Aedes) → sync workers (zod validation, hash-chain and checkpoint verification, one
 *                      transaction per batch) → PostgreSQL at 127.0.0.1:5432 when reachable, else PGlite.
 *                      200,000 events, 2,000 per site in batches of 500, a signed checkpoint every 256
 *                      events (the hub's default); each hub keeps one batch in flight and sends the next on its audit/ack, as
 *                      a hub draining its backlog does. Timed from the first publish to the last ack.
 *   baseline.pg_copy   the same rows COPY'd (pg-copy-streams, text format) into the same table in a fresh
 *                      schema, in the same run: the database's raw write speed for this table.
 *
 * Which broker and database were used is returned in `context` (and written to latest.json).
 */
import { type ChildProcess, fork } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { startEmbeddedBroker } from "../src/cloud/broker.ts";
import { migrateCloud } from "../src/cloud/db/migrate.ts";
import { openPg } from "../src/cloud/db/pg.ts";
import { openPglite } from "../src/cloud/db/pglite.ts";
import type { SqlClient } from "../src/cloud/db/sql.ts";
import { type CloudWorker, connectWorkerMqtt, startWorker } from "../src/cloud/worker.ts";
import { canonicalJson } from "../src/core/audit/canonical.ts";
import {
  type AuditCheckpoint,
  type AuditEvent,
  AuditKind,
  chainEvent,
  GENESIS_HASH,
  signCheckpoint,
} from "../src/core/audit/chain.ts";
import { EpochMs } from "../src/core/units.ts";
import { nodeCrypto as c } from "../src/platform/node-crypto.ts";
import { type AuditAckMsg, encodeSync, siteTopics } from "../src/sync/messages.ts";
import type { ThroughputMetric } from "./stats.ts";

const PG_URL = process.env.BENCH_PG_URL ?? "postgres://root@127.0.0.1:5432/test";
const MQTT_URL = process.env.BENCH_MQTT_URL ?? "mqtt://127.0.0.1:1883";
const SITES = Number(process.env.BENCH_CLOUD_SITES ?? 100);
const PER_SITE = Number(process.env.BENCH_CLOUD_PER_SITE ?? 2000);
const BATCH = 500;
/** The hub's default (src/device/audit-log.ts). */
const CHECKPOINT_EVERY = 256;
const WORKERS = Number(process.env.BENCH_CLOUD_WORKERS ?? 3);
const T0 = Date.UTC(2026, 4, 1);

/** Where the figures were measured. */
export interface CloudBenchContext {
  broker: "mosquitto" | "aedes";
  database: "postgresql" | "pglite";
  workers: number;
  events: number;
  sites: number;
  batch: number;
  "cloud.ingest/baseline.pg_copy": number | null;
}

async function reachable(url: string): Promise<boolean> {
  const { connect } = await import("node:net");
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

interface Site {
  id: string;
  seed: Uint8Array;
  events: AuditEvent[];
  dataJson: string[];
  checkpoints: AuditCheckpoint[];
  payloads: Buffer[];
}

function buildSite(i: number): Site {
  const id = `hub_bench${String(i).padStart(4, "0")}`;
  const seed = c.randomBytes(32);
  const events: AuditEvent[] = [];
  const dataJson: string[] = [];
  const checkpoints: AuditCheckpoint[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= PER_SITE; seq++) {
    // As a hub holds it: parsed back from its canonical form (keys in canonical order).
    const dj = canonicalJson({
      source: "keypad",
      credentialType: "pin",
      userId: `usr_${seq % 97}`,
      credentialId: `cred_pin${seq % 97}`,
    });
    const data = JSON.parse(dj) as Record<string, string>;
    const e = chainEvent(
      c,
      seq - 1,
      prev,
      { at: EpochMs(T0 + seq * 1000), lockId: `lock-${seq % 4}`, kind: AuditKind.AccessGranted, data },
      dj,
    );
    events.push(e);
    dataJson.push(dj);
    prev = e.hash;
    if (seq % CHECKPOINT_EVERY === 0)
      checkpoints.push(signCheckpoint(c, id, seed, e, EpochMs(T0 + seq * 1000)));
  }
  const payloads: Buffer[] = [];
  for (let from = 1; from <= PER_SITE; from += BATCH) {
    const to = from + BATCH - 1;
    payloads.push(
      encodeSync({
        v: 1,
        deviceId: id,
        events: events.slice(from - 1, to),
        checkpoints: checkpoints.filter((cp) => cp.seq >= from && cp.seq <= to),
        anchor: null,
      }),
    );
  }
  return { id, seed, events, dataJson, checkpoints, payloads };
}

async function registerSites(db: SqlClient, sites: Site[]): Promise<void> {
  await db.query("INSERT INTO tenants (id, name, created_at) VALUES ('ten_bench', 'Bench', $1)", [T0]);
  await db.query(
    `INSERT INTO sites (id, tenant_id, name, device_public_key, genesis, created_at)
     SELECT id, 'ten_bench', id, decode(k, 'hex'), '[]', $3 FROM unnest($1::text[], $2::text[]) AS u(id, k)`,
    [sites.map((s) => s.id), sites.map((s) => Buffer.from(c.ed25519PublicKey(s.seed)).toString("hex")), T0],
  );
}

/** COPY text-format escaping of one field (backslash, tab, newline, carriage return). */
function copyField(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (ch) =>
    ch === "\\" ? "\\\\" : ch === "\t" ? "\\t" : ch === "\n" ? "\\n" : "\\r",
  );
}

async function baselineCopy(sites: Site[]): Promise<number> {
  const schema = `lk_bench_copy_${process.pid}`;
  const db = await openPg(PG_URL, { schema });
  await migrateCloud(db, T0);
  const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    // Rows prepared before timing, as the ingest path's payloads are.
    const chunks: string[] = [];
    for (const s of sites) {
      let chunk = "";
      for (let i = 0; i < s.events.length; i++) {
        const e = s.events[i]!;
        chunk += `${s.id}\t${e.seq}\t${e.at}\t${e.lockId ?? "\\N"}\t${e.kind}\t${copyField(s.dataJson[i]!)}\t${e.prevHash}\t${e.hash}\n`;
      }
      chunks.push(chunk);
    }
    const n = sites.length * PER_SITE;
    const t0 = performance.now();
    await pipeline(
      Readable.from(chunks),
      client.query(
        copyFrom("COPY audit_events (site_id, seq, at, lock_id, kind, data, prev_hash, hash) FROM STDIN"),
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    const r = await client.query("SELECT count(*)::int AS n FROM audit_events");
    if (r.rows[0].n !== n) throw new Error(`baseline copy stored ${r.rows[0].n} rows, expected ${n}`);
    return n / seconds;
  } finally {
    await client.end();
    await db.query(`DROP SCHEMA ${schema} CASCADE`);
    await db.close();
  }
}

/** Run the cloud ingest benchmark; see the module doc. */
export async function benchCloud(): Promise<{ metrics: ThroughputMetric[]; context: CloudBenchContext }> {
  const usePg = await reachable(PG_URL);
  const useMosquitto = await reachable(MQTT_URL);
  const schema = `lk_bench_${process.pid}`;
  const db = usePg ? await openPg(PG_URL, { schema, max: WORKERS + 2 }) : await openPglite(null);
  const broker = useMosquitto ? null : await startEmbeddedBroker({ port: 0 });
  const url = broker ? broker.url : MQTT_URL;
  const v5 = broker === null;
  const workerCount = broker || !usePg ? 1 : WORKERS;
  const group = `lk-bench-${process.pid}`;
  const clients: mqtt.MqttClient[] = [];
  const workers: CloudWorker[] = [];
  const procs: ChildProcess[] = [];
  let publisher: mqtt.MqttClient | null = null;
  try {
    await migrateCloud(db, T0);
    const sites = Array.from({ length: SITES }, (_, i) => buildSite(i));
    await registerSites(db, sites);
    if (usePg && !broker) {
      // Workers are stateless processes sharing one subscription, as deployed: one per process.
      for (let i = 0; i < workerCount; i++) procs.push(await forkWorker(schema, group, i));
    } else {
      const client = await connectWorkerMqtt(url, `${group}-w0`, {
        protocolVersion: v5 ? 5 : 4,
        sessionExpirySeconds: 60,
      });
      clients.push(client);
      workers.push(await startWorker({ db, crypto: c, mqtt: client, shared: false, group, clock: Date.now }));
    }
    const pub = await mqtt.connectAsync(url, {
      protocolVersion: v5 ? 5 : 4,
      clean: true,
      reconnectPeriod: 0,
    });
    publisher = pub;
    const byId = new Map(sites.map((s) => [s.id, s]));
    const next = new Map(sites.map((s) => [s.id, 0]));
    let doneSites = 0;
    let problems = 0;
    const finished = new Promise<void>((resolve, reject) => {
      pub.on("message", (topic, payload) => {
        const ack = JSON.parse(payload.toString()) as AuditAckMsg;
        const s = byId.get(ack.deviceId);
        if (!s || !topic.endsWith("/audit/ack")) return;
        if (ack.problem) {
          problems++;
          reject(new Error(`chain problem at ${s.id} seq ${ack.problem.seq}: ${ack.problem.what}`));
          return;
        }
        // Resume from what the cloud holds (a hub resends from `through`).
        const k = Math.floor(ack.through / BATCH);
        if (ack.through >= PER_SITE) {
          if (next.get(s.id) !== -1) {
            next.set(s.id, -1);
            if (++doneSites === sites.length) resolve();
          }
          return;
        }
        next.set(s.id, k);
        pub.publish(siteTopics(s.id).auditUp, s.payloads[k]!, { qos: 1 });
      });
    });
    await pub.subscribeAsync("lk/v1/+/audit/ack", { qos: 1 });
    const cpu0 = process.cpuUsage();
    const { readFileSync } = await import("node:fs");
    const stat = () => readFileSync("/proc/stat", "utf8").split("\n")[0]!.split(/\s+/).slice(1).map(Number);
    const st0 = stat();
    let stopProfile: (() => Promise<void>) | null = null;
    if (process.env.BENCH_CLOUD_PROF) {
      const { Session } = await import("node:inspector/promises");
      const { writeFileSync } = await import("node:fs");
      const session = new Session();
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.start");
      stopProfile = async () => {
        const { profile } = await session.post("Profiler.stop");
        writeFileSync(process.env.BENCH_CLOUD_PROF!, JSON.stringify(profile));
      };
    }
    const t0 = performance.now();
    for (const s of sites) pub.publish(siteTopics(s.id).auditUp, s.payloads[0]!, { qos: 1 });
    await finished;
    const seconds = (performance.now() - t0) / 1000;
    await stopProfile?.();
    if (process.env.BENCH_CLOUD_DEBUG) {
      const cpu = process.cpuUsage(cpu0);
      const st1 = stat();
      const d = st1.map((x, i) => x - st0[i]!);
      const tot = d.reduce((a, b) => a + b, 0);
      console.error(
        `wall ${seconds.toFixed(2)} s, node cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, machine busy ${(((tot - d[3]! - d[4]!) / tot) * 100).toFixed(0)}% of ${tot / seconds / 100} cpus`,
      );
    }
    const n = SITES * PER_SITE;
    const stored = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_events");
    if (stored.rows[0]!.n !== n || problems > 0) {
      throw new Error(
        `cloud.ingest stored ${stored.rows[0]!.n} events, expected ${n} (${problems} problems)`,
      );
    }
    const ingest = n / seconds;
    const copy = usePg ? await baselineCopy(sites) : null;
    const metrics: ThroughputMetric[] = [
      { name: "cloud.ingest", unit: "events/s", value: Math.round(ingest), n },
    ];
    if (copy !== null)
      metrics.push({ name: "baseline.pg_copy", unit: "events/s", value: Math.round(copy), n });
    return {
      metrics,
      context: {
        broker: broker ? "aedes" : "mosquitto",
        database: usePg ? "postgresql" : "pglite",
        workers: workerCount,
        events: n,
        sites: SITES,
        batch: BATCH,
        "cloud.ingest/baseline.pg_copy": copy === null ? null : Math.round((ingest / copy) * 1000) / 1000,
      },
    };
  } finally {
    for (const p of procs) {
      const exited = new Promise((r) => p.once("exit", r));
      p.send("stop");
      await exited;
    }
    for (const w of workers) await w.close();
    for (const cl of clients) {
      if (v5)
        await new Promise<void>((r) =>
          cl.end(false, { properties: { sessionExpiryInterval: 0 } }, () => r()),
        );
      else await cl.endAsync();
    }
    await publisher?.endAsync();
    if (usePg) await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.close();
    await broker?.close();
  }
}

/** Start one worker process (this file, role "worker") and wait until it has subscribed. */
function forkWorker(schema: string, group: string, i: number): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: [
      "--import",
      "tsx",
      ...(process.env.BENCH_CLOUD_CHILD_PROF
        ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CLOUD_CHILD_PROF}`]
        : []),
    ],
    env: {
      ...process.env,
      BENCH_CLOUD_ROLE: "worker",
      BENCH_CLOUD_SCHEMA: schema,
      BENCH_CLOUD_GROUP: group,
      BENCH_CLOUD_INDEX: String(i),
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    child.once("message", () => resolve(child));
    child.once("exit", (code) => reject(new Error(`bench worker ${i} exited with ${code}`)));
  });
}

/** The worker process: one sync worker on the shared subscription until the parent says "stop". */
async function workerProcess(): Promise<void> {
  const schema = process.env.BENCH_CLOUD_SCHEMA!;
  const group = process.env.BENCH_CLOUD_GROUP!;
  const db = await openPg(PG_URL, { schema, max: 2 });
  const client = await connectWorkerMqtt(MQTT_URL, `${group}-w${process.env.BENCH_CLOUD_INDEX}`, {
    sessionExpirySeconds: 60,
  });
  const worker = await startWorker({ db, crypto: c, mqtt: client, shared: true, group, clock: Date.now });
  process.once("message", async () => {
    await worker.close();
    await new Promise<void>((r) =>
      client.end(false, { properties: { sessionExpiryInterval: 0 } }, () => r()),
    );
    await db.close();
    process.exit(0);
  });
  process.send?.("ready");
}

if (process.env.BENCH_CLOUD_ROLE === "worker") {
  await workerProcess();
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchCloud();
  console.log(JSON.stringify(r, null, 2));
}
