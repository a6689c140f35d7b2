/**
 * The cloud service in one process (`latchkey cloud start`): database (PostgreSQL at `databaseUrl`, or
 * the embedded PGlite under `<dataDir>/pgdata`), migrations, an MQTT broker (the embedded Aedes unless
 * `mqttUrl` names one), the sync workers, and the REST API on 127.0.0.1.
 *
 * Files in `dataDir`:
 *   pgdata/               the embedded database (when no `databaseUrl`)
 *   secrets/cloud-signer  the cloud's Ed25519 signing seed: 32 random bytes, mode 0600, created once
 *   instance-id           names this installation's MQTT sessions, so a restart resumes them
 *   cloud.json            { apiUrl, mqttUrl, pid } while running, so CLIs can find the service
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { serve } from "@hono/node-server";
import mqtt, { type MqttClient } from "mqtt";
import { toHex } from "../core/crypto.ts";
import { LatchkeyError } from "../core/errors.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import { SHARED_GROUP } from "../sync/messages.ts";
import { createCloudApi } from "./api.ts";
import { type EmbeddedBroker, startEmbeddedBroker } from "./broker.ts";
import { migrateCloud } from "./db/migrate.ts";
import { openPg } from "./db/pg.ts";
import { openPglite } from "./db/pglite.ts";
import type { SqlClient } from "./db/sql.ts";
import { startWebhookDispatcher } from "./webhooks.ts";
import { type CloudWorker, connectWorkerMqtt, publishOpsDown, startWorker } from "./worker.ts";

/** Options of {@link startCloud}. */
export interface CloudOptions {
  /** PostgreSQL URL (e.g. from DATABASE_URL); absent: the embedded PGlite in `<dataDir>/pgdata`. */
  readonly databaseUrl?: string;
  /** The service's directory (created if missing, mode 0700). */
  readonly dataDir: string;
  /** An external MQTT 5 broker (e.g. `mqtt://127.0.0.1:1883`); absent: the embedded Aedes broker. */
  readonly mqttUrl?: string;
  /** Port of the embedded broker (default 1883; 0 picks a free one). Ignored with `mqttUrl`. */
  readonly mqttPort?: number;
  /** Port of the REST API (0 picks a free one). */
  readonly apiPort: number;
  /** Address to bind the API and the embedded broker (default 127.0.0.1). */
  readonly host?: string;
  /**
   * Sync workers (default 1). Several share one MQTT 5 shared subscription, which needs an external broker
   * that has them; with the embedded broker there is always exactly one.
   */
  readonly workers?: number;
  /**
   * The MQTT 5 shared-subscription group of this deployment's workers. Default: `latchkey-ingest-` and
   * 12 hex digits of SHA-256 of the database URL (or the embedded database's path), so every worker of
   * one deployment joins the same group and two deployments on one broker never take each other's
   * messages.
   */
  readonly group?: string;
  /**
   * How long the broker keeps a worker's session (and queues its messages) after a disconnect, s.
   * Default one day: a worker that crashes or restarts finds its unacknowledged messages waiting. Tests
   * on a shared broker use a short one so their sessions do not pile up.
   */
  readonly sessionExpirySeconds?: number;
  /** Where service lines go (never a secret). Default: stderr. */
  readonly log?: (line: string) => void;
  /** Wall clock, ms since the Unix epoch (default Date.now). */
  readonly clock?: () => number;
}

/** A running cloud service. */
export interface CloudService {
  /** `http://127.0.0.1:<port>` of the REST API. */
  readonly apiUrl: string;
  /** The broker hubs connect to. */
  readonly mqttUrl: string;
  readonly db: SqlClient;
  /** The running workers (for their counters). */
  readonly workers: readonly CloudWorker[];
  /** Stop everything, in reverse order of starting. Idempotent. */
  close(): Promise<void>;
}

const SIGNER_BYTES = 32;

/**
 * Load the cloud's signing seed from `<dataDir>/secrets/cloud-signer`, creating it (32 random bytes,
 * mode 0600, exclusive create) on first start.
 *
 * @throws LatchkeyError `LK_DATA_DIR_INVALID` when the file has the wrong size or is readable by others.
 */
export function loadOrCreateSigner(dataDir: string): Uint8Array {
  const dir = join(dataDir, "secrets");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, "cloud-signer");
  try {
    writeFileSync(path, nodeCrypto.randomBytes(SIGNER_BYTES), { flag: "wx", mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) {
    throw new LatchkeyError("LK_DATA_DIR_INVALID", `${path} is readable by other users: chmod 600 it`);
  }
  const seed = new Uint8Array(readFileSync(path));
  if (seed.length !== SIGNER_BYTES) {
    throw new LatchkeyError("LK_DATA_DIR_INVALID", `${path} must hold exactly ${SIGNER_BYTES} bytes`);
  }
  return seed;
}

function instanceId(dataDir: string): string {
  const path = join(dataDir, "instance-id");
  try {
    writeFileSync(path, `${toHex(nodeCrypto.randomBytes(8))}\n`, { flag: "wx", mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const id = readFileSync(path, "utf8").trim();
  if (!/^[0-9a-f]{16}$/.test(id))
    throw new LatchkeyError("LK_DATA_DIR_INVALID", `${path} is not an instance id`);
  return id;
}

/**
 * Start the cloud service. On failure, whatever was started is stopped again before the error is thrown.
 *
 * @throws LatchkeyError `LK_CLOUD_UNAVAILABLE` when the database or broker cannot be reached, or a port
 *   cannot be bound; `LK_STORE_FAILED` when the database schema is newer than this code;
 *   `LK_DATA_DIR_INVALID` for a bad signer file.
 */
export async function startCloud(opts: CloudOptions): Promise<CloudService> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const clock = opts.clock ?? Date.now;
  const host = opts.host ?? "127.0.0.1";
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (e) {
        log(`cloud: error while stopping: ${(e as Error).message}`);
      }
    }
    stops.length = 0;
  };
  try {
    const signer = loadOrCreateSigner(opts.dataDir);
    const id = instanceId(opts.dataDir);

    const db = opts.databaseUrl
      ? await openPg(opts.databaseUrl)
      : await openPglite(join(opts.dataDir, "pgdata"));
    stops.push(() => db.close());
    const migrated = await migrateCloud(db, clock());
    log(
      `cloud: database ${db.kind === "pg" ? "PostgreSQL" : "embedded PGlite"} at schema v${migrated.to}` +
        (migrated.applied.length > 0 ? ` (applied ${migrated.applied.join(", ")})` : ""),
    );

    let broker: EmbeddedBroker | null = null;
    let mqttUrl = opts.mqttUrl;
    if (!mqttUrl) {
      broker = await startEmbeddedBroker({ host, port: opts.mqttPort ?? 1883 });
      const b = broker;
      stops.push(() => b.close());
      mqttUrl = broker.url;
    }
    let count = Math.max(1, opts.workers ?? 1);
    if (broker && count > 1) {
      log(`cloud: the embedded broker has no shared subscriptions: running 1 worker, not ${count}`);
      count = 1;
    }
    // Aedes 1.2 accepts MQTT 3.1.1 only (its CONNECT handler refuses protocol level 5).
    if (broker) log("cloud: the embedded broker speaks MQTT 3.1.1; use an external broker for MQTT 5");
    const shared = broker === null;
    const group =
      opts.group ??
      `${SHARED_GROUP}-${createHash("sha256")
        .update(opts.databaseUrl ?? resolve(opts.dataDir, "pgdata"))
        .digest("hex")
        .slice(0, 12)}`;
    const workers: CloudWorker[] = [];
    for (let i = 0; i < count; i++) {
      let client: MqttClient;
      try {
        client = await connectWorkerMqtt(mqttUrl, `latchkey-cloud-${id}-w${i}`, {
          protocolVersion: broker ? 4 : 5,
          ...(opts.sessionExpirySeconds !== undefined
            ? { sessionExpirySeconds: opts.sessionExpirySeconds }
            : {}),
        });
      } catch (e) {
        throw new LatchkeyError(
          "LK_CLOUD_UNAVAILABLE",
          `cannot connect to the MQTT broker: ${(e as Error).message}`,
        );
      }
      // Forced: a message not yet acknowledged (manual acks) is redelivered to the persistent session.
      stops.push(() => client.endAsync(true));
      const worker = await startWorker({ db, crypto: nodeCrypto, mqtt: client, shared, group, clock, log });
      stops.push(() => worker.close());
      workers.push(worker);
    }
    log(
      `cloud: ${count} sync worker${count > 1 ? "s" : ""} on ${mqttUrl}${shared ? " (shared subscription)" : ""}`,
    );

    // The API publishes on its own connection: a worker's client waits on its message handling.
    let publisher: MqttClient;
    try {
      publisher = await mqtt.connectAsync(mqttUrl, {
        protocolVersion: broker ? 4 : 5,
        clientId: `latchkey-cloud-${id}-api`,
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
      });
    } catch (e) {
      throw new LatchkeyError(
        "LK_CLOUD_UNAVAILABLE",
        `cannot connect to the MQTT broker: ${(e as Error).message}`,
      );
    }
    const pub = publisher;
    stops.push(() => pub.endAsync());

    // Alarms and "hub offline" notifications to the tenants' webhooks (signed, retried).
    const dispatcher = startWebhookDispatcher({ db, clock, intervalMs: 1000, log });
    stops.push(() => dispatcher.close());

    const app = createCloudApi({
      db,
      crypto: nodeCrypto,
      clock,
      signer,
      publishOps: (siteId, ops) => publishOpsDown(pub, siteId, ops),
      log,
    });
    const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: opts.apiPort, hostname: host }, () => resolve(s));
      s.once("error", (e: NodeJS.ErrnoException) =>
        reject(
          new LatchkeyError(
            "LK_CLOUD_UNAVAILABLE",
            `cannot serve the API on ${host}:${opts.apiPort}: ${e.message}`,
          ),
        ),
      );
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
    );
    const addr = server.address();
    const apiPort = typeof addr === "object" && addr ? addr.port : opts.apiPort;
    const apiUrl = `http://${host.includes(":") ? `[${host}]` : host}:${apiPort}`;

    const infoPath = join(opts.dataDir, "cloud.json");
    writeFileSync(infoPath, `${JSON.stringify({ apiUrl, mqttUrl, pid: process.pid }, null, 2)}\n`, {
      mode: 0o644,
    });
    chmodSync(infoPath, 0o644);
    stops.push(async () => rmSync(infoPath, { force: true }));
    log(`cloud: API on ${apiUrl}`);

    let closed: Promise<void> | null = null;
    return {
      apiUrl,
      mqttUrl,
      db,
      workers,
      close(): Promise<void> {
        closed ??= stopAll();
        return closed;
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
