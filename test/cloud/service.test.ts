/**
 * The cloud service in one process (src/cloud/service.ts): embedded defaults (PGlite + Aedes) from an
 * empty directory, the signer file, cloud.json, a restart on the same directory, and, when the machine has
 * them, PostgreSQL + Mosquitto with two workers on a shared subscription.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { loadCloudMigrations } from "../../src/cloud/db/migrate.ts";
import { openPg } from "../../src/cloud/db/pg.ts";
import { startCloud } from "../../src/cloud/service.ts";
import { MOSQUITTO_URL, newHub, PG_URL, serviceAvailable, until } from "./cloud-fixtures.ts";

const pgUp = await serviceAvailable("PostgreSQL", PG_URL);
const mosquittoUp = await serviceAvailable("Mosquitto", MOSQUITTO_URL);
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "latchkey-cloud-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("startCloud", () => {
  it("starts from an empty directory with the embedded database and broker, and restarts on it", async () => {
    const dir = tmp();
    const lines: string[] = [];
    const cloud = await startCloud({
      dataDir: dir,
      apiPort: 0,
      mqttPort: 0,
      workers: 3,
      log: (l) => lines.push(l),
    });
    try {
      expect(cloud.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(cloud.mqttUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
      expect(cloud.workers).toHaveLength(1);
      expect(lines.join("\n")).toMatch(/running 1 worker, not 3/);
      const info = JSON.parse(readFileSync(join(dir, "cloud.json"), "utf8"));
      expect(info).toMatchObject({ apiUrl: cloud.apiUrl, mqttUrl: cloud.mqttUrl });
      const signer = join(dir, "secrets", "cloud-signer");
      expect(statSync(signer).mode & 0o777).toBe(0o600);
      expect(readFileSync(signer)).toHaveLength(32);
      const res = await fetch(`${cloud.apiUrl}/api/v1/cloud/identity`);
      expect(res.status).toBe(200);
      // A hub of an unknown site: refused, nothing stored, the worker goes on.
      const hub = newHub();
      const client = await mqtt.connectAsync(cloud.mqttUrl, { protocolVersion: 4, reconnectPeriod: 0 });
      await client.publishAsync(
        `lk/v1/${hub.siteId}/sync/hello`,
        JSON.stringify({
          v: 1,
          deviceId: hub.siteId,
          at: 1,
          auditHead: { seq: 0, hash: "0".repeat(64) },
          opCount: 0,
        }),
        { qos: 1 },
      );
      await until(() => cloud.workers[0]!.stats().refused === 1, "refusal");
      await client.endAsync();
      expect(lines.join("\n")).not.toMatch(/[0-9a-f]{64}/); // no key material in the log
    } finally {
      await cloud.close();
    }
    expect(existsSync(join(dir, "cloud.json"))).toBe(false);
    const before = readFileSync(join(dir, "secrets", "cloud-signer"));
    const again = await startCloud({ dataDir: dir, apiPort: 0, mqttPort: 0, log: () => {} });
    await again.close();
    expect(readFileSync(join(dir, "secrets", "cloud-signer"))).toEqual(before);
  });

  it("refuses a port in use and stops what it started", async () => {
    const dir = tmp();
    const a = await startCloud({ dataDir: dir, apiPort: 0, mqttPort: 0, log: () => {} });
    try {
      const port = Number(new URL(a.apiUrl).port);
      await expect(
        startCloud({ dataDir: tmp(), apiPort: port, mqttPort: 0, log: () => {} }),
      ).rejects.toMatchObject({
        code: "LK_CLOUD_UNAVAILABLE",
      });
    } finally {
      await a.close();
    }
  });

  it.skipIf(!pgUp || !mosquittoUp)(
    "runs two workers on a shared subscription with PostgreSQL and Mosquitto",
    async () => {
      const dir = tmp();
      const lines: string[] = [];
      // Its own schema, through the URL's options (as a deployment could set search_path).
      const schema = `lk_test_svc_${process.pid}`;
      const admin = await openPg(PG_URL, { schema });
      const url = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      try {
        const cloud = await startCloud({
          dataDir: dir,
          databaseUrl: url,
          mqttUrl: MOSQUITTO_URL,
          sessionExpirySeconds: 5,
          apiPort: 0,
          workers: 2,
          log: (l) => lines.push(l),
        });
        try {
          expect(cloud.workers).toHaveLength(2);
          expect(cloud.db.kind).toBe("pg");
          expect(lines.join("\n")).toMatch(/2 sync workers .*shared subscription/);
          const t = await admin.query("SELECT count(*)::int AS n FROM schema_migrations");
          expect(t.rows[0]).toEqual({ n: loadCloudMigrations().length });
        } finally {
          await cloud.close();
        }
      } finally {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        await admin.close();
      }
    },
  );
});
