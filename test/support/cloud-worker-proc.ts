/**
 * One cloud sync worker in its own process, for tests and benches that kill it (SIGKILL) and start it again:
 * `node --import tsx test/support/cloud-worker-proc.ts`, forked with an IPC channel, configured by env:
 *
 *   LK_WORKER_DB_URL       PostgreSQL URL (required)
 *   LK_WORKER_DB_SCHEMA    schema to use (optional; the database's default search_path otherwise)
 *   LK_WORKER_MQTT_URL     MQTT 5 broker (required)
 *   LK_WORKER_CLIENT_ID    stable MQTT client id: a restart with the same id resumes the persistent session
 *   LK_WORKER_GROUP        shared-subscription group (default: the product's SHARED_GROUP)
 *   LK_WORKER_SESSION_S    session expiry in seconds (default 60)
 *   LK_WORKER_SITE_PREFIX  count only sites whose id starts with it (other runs share the machine's broker)
 *   LK_WORKER_EMULATE_FIXES  "1": NOT the product's behaviour, a diagnostic that emulates two fixes the fault
 *                          test asks for (test/cloud/faults.test.ts), off by default: subscribe again on every
 *                          reconnect (Mosquitto 2.0 restores a persistent session but not its shared
 *                          subscriptions, so the product's worker goes deaf after a broker restart), and survive
 *                          the 'error' a checked-out pg client emits when PostgreSQL dies (src/cloud/db/pg.ts
 *                          attaches no listener while a connection is checked out, so the process crashes)
 *
 * It runs the product's worker exactly as `startCloud` does (openPg → connectWorkerMqtt → startWorker with a
 * shared subscription); the database is expected to be migrated already. Until the broker and the database
 * answer it keeps trying (a worker restarted while either is down waits for it, as a supervised one would).
 *
 * IPC to the parent: `{ type: "ready" }` once subscribed, then every 100 ms (and on "stop")
 * `{ type: "stats", delivered, deliveredMessages, ...WorkerStats }`, where `delivered` counts the audit events
 * in every `audit/up` message the broker delivered to this worker (redeliveries included): delivered minus
 * stored is what ingest skipped as already held or out of order. On "stop" it closes the worker, ends its
 * session (expiry 0) and exits 0.
 */
import type { ISubscriptionMap, MqttClient } from "mqtt";
import { openPg } from "../../src/cloud/db/pg.ts";
import type { SqlClient } from "../../src/cloud/db/sql.ts";
import { type CloudWorker, connectWorkerMqtt, startWorker } from "../../src/cloud/worker.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { CLOUD_FILTERS, SHARED_GROUP } from "../../src/sync/messages.ts";

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`cloud-worker-proc: ${k} is required`);
  return v;
};
const dbUrl = env("LK_WORKER_DB_URL");
const schema = process.env.LK_WORKER_DB_SCHEMA || undefined;
const mqttUrl = env("LK_WORKER_MQTT_URL");
const clientId = env("LK_WORKER_CLIENT_ID");
const group = process.env.LK_WORKER_GROUP || SHARED_GROUP;
const sessionS = Number(process.env.LK_WORKER_SESSION_S ?? 60);
const sitePrefix = `lk/v1/${process.env.LK_WORKER_SITE_PREFIX ?? ""}`;
const START_BUDGET_MS = 60_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Events in an audit/up payload: from its first and last event seq when events start with `seq` (as the
 * hub's store writes them; no JSON.parse), else by parsing it. 0 for a payload that is not one.
 */
export function countAuditEvents(payload: Buffer): number {
  const s = payload.toString("latin1");
  const start = s.indexOf('"events":[{"seq":');
  const end = s.indexOf('],"checkpoints":');
  if (start >= 0 && end > start) {
    const first = Number.parseInt(s.slice(start + 17, start + 34), 10);
    const lastAt = s.lastIndexOf('{"seq":', end);
    const last = Number.parseInt(s.slice(lastAt + 7, lastAt + 24), 10);
    if (Number.isFinite(first) && Number.isFinite(last) && last >= first) return last - first + 1;
  }
  try {
    const events = (JSON.parse(payload.toString("utf8")) as { events?: unknown }).events;
    return Array.isArray(events) ? events.length : 0;
  } catch {
    return 0;
  }
}

async function retry<T>(what: string, f: () => Promise<T>): Promise<T> {
  const end = Date.now() + START_BUDGET_MS;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (Date.now() > end) throw new Error(`cloud-worker-proc: ${what}: ${(e as Error).message}`);
      await sleep(200);
    }
  }
}

const emulateFixes = process.env.LK_WORKER_EMULATE_FIXES === "1";

async function main(): Promise<void> {
  if (emulateFixes) {
    process.on("uncaughtException", (e) => {
      if (/Connection terminated|ECONNRESET|terminating connection/.test(e.message)) {
        process.stderr.write(
          `[${clientId}] (emulated fix) pg client error while checked out: ${e.message}\n`,
        );
        return;
      }
      process.stderr.write(`cloud-worker-proc: ${e.stack ?? String(e)}\n`);
      process.exit(1);
    });
  }
  const db: SqlClient = await retry("open PostgreSQL", () =>
    openPg(dbUrl, schema ? { schema, max: 4 } : { max: 4 }),
  );
  const client: MqttClient = await retry("connect to the broker", () =>
    connectWorkerMqtt(mqttUrl, clientId, { sessionExpirySeconds: sessionS }),
  );
  const worker: CloudWorker = await startWorker({
    db,
    crypto: nodeCrypto,
    mqtt: client,
    shared: true,
    group,
    clock: Date.now,
    log: (l) => process.stderr.write(`[${clientId}] ${l}\n`),
  });
  if (emulateFixes) {
    // mqtt.js skips topics it thinks are subscribed unless asked with `resubscribe: true`.
    const map: Record<string, { qos: 1 }> = {};
    for (const f of Object.values(CLOUD_FILTERS)) map[`$share/${group}/${f}`] = { qos: 1 };
    client.on("connect", () =>
      client.subscribe({ ...map, resubscribe: true } as unknown as ISubscriptionMap),
    );
  }
  let delivered = 0;
  let deliveredMessages = 0;
  const handle = client.handleMessage;
  client.handleMessage = (packet, done) => {
    if (packet.topic.endsWith("/audit/up") && packet.topic.startsWith(sitePrefix)) {
      deliveredMessages++;
      delivered += countAuditEvents(
        typeof packet.payload === "string" ? Buffer.from(packet.payload) : Buffer.from(packet.payload),
      );
    }
    handle.call(client, packet, done);
  };
  const report = () => process.send?.({ type: "stats", delivered, deliveredMessages, ...worker.stats() });
  const timer = setInterval(report, 100);
  process.on("message", (m) => {
    if (m !== "stop") return;
    void (async () => {
      clearInterval(timer);
      await worker.close(5_000);
      report();
      await new Promise<void>((r) =>
        client.end(false, { properties: { sessionExpiryInterval: 0 } }, () => r()),
      );
      await db.close();
      process.exit(0);
    })();
  });
  process.on("disconnect", () => process.exit(0)); // the parent went away: never linger
  process.send?.({ type: "ready" });
}

if (process.env.LK_WORKER_MQTT_URL) {
  main().catch((e: unknown) => {
    process.stderr.write(`cloud-worker-proc: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
