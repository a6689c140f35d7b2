/**
 * The README's cloud walk-through with real processes and the embedded defaults (PGlite, the embedded
 * MQTT broker): create a tenant, start the cloud, start a hub with --cloud, claim it, link it to the cloud
 * with the owner's root key; a user added at the hub appears in the cloud, and a user added in the cloud
 * appears at the hub.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, cli, startHubProcess, waitExit } from "../support/processes.ts";

const ENV = { LATCHKEY_KEY_PASSPHRASE: "owner root passphrase" };
let dir: string;
let cloudDir: string;
let hubDir: string;
let cfg: string;
let cloud: ChildProcess | null = null;
let cloudOut = "";
let hub: Awaited<ReturnType<typeof startHubProcess>> | null = null;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function until<T>(
  f: () => Promise<T | null | undefined | false>,
  what: string,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => null);
    if (v) return v;
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}\ncloud: ${cloudOut}\nhub: ${hub?.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-cloud-cli-"));
  cloudDir = join(dir, "cloud");
  hubDir = join(dir, "hub");
  cfg = join(dir, "config");
});
afterAll(async () => {
  for (const child of [hub?.child, cloud]) {
    if (child && child.exitCode === null) {
      child.kill("SIGTERM");
      await waitExit(child);
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("latchkey cloud (README walk-through, embedded defaults)", () => {
  it("starts the cloud, links a hub, and changes travel both ways", async () => {
    const tenant = await cli(["--data-dir", cloudDir, "cloud", "tenant", "create", "Home", "--json"]);
    expect(tenant.code, tenant.stderr).toBe(0);
    const token = (JSON.parse(tenant.stdout) as { ownerToken: string }).ownerToken;
    expect(token.length).toBeGreaterThan(20);

    const mqttPort = await freePort();
    cloud = spawn(
      process.execPath,
      [BIN, "--data-dir", cloudDir, "cloud", "start", "--port", "0", "--mqtt-port", String(mqttPort)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    cloud.stdout!.on("data", (d) => (cloudOut += d));
    cloud.stderr!.on("data", (d) => (cloudOut += d));
    const info = await until(async () => {
      const f = join(cloudDir, "cloud.json");
      return existsSync(f) && cloudOut.includes("Cloud API")
        ? (JSON.parse(readFileSync(f, "utf8")) as { apiUrl: string; mqttUrl: string })
        : null;
    }, "the cloud to start");
    const cloudApi = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${info.apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const j = (await res.json()) as { data: T };
      if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(j)}`);
      return j.data;
    };

    hub = await startHubProcess(hubDir, ["--cloud", info.mqttUrl]);
    const run = (...args: string[]) =>
      cli(["--data-dir", hubDir, "--config-dir", cfg, ...args], undefined, ENV);
    const claim = await run("claim", "--name", "Olivia Owner");
    expect(claim.code, claim.stderr).toBe(0);
    const link = await run(
      "cloud",
      "link",
      "--cloud-api",
      info.apiUrl,
      "--cloud-token",
      token,
      "--name",
      "Flat 3B",
    );
    expect(link.code, link.stderr).toBe(0);
    expect(link.stdout).toMatch(/Registered site hub_[0-9a-f]+/);
    const siteId = /site (hub_[0-9a-f]+)/.exec(link.stdout)![1]!;

    // At the hub → in the cloud.
    const add = await run("user", "add", "Ben");
    expect(add.code, add.stderr).toBe(0);
    await until(
      async () =>
        (await cloudApi<{ name: string }[]>("GET", `/api/v1/sites/${siteId}/users`)).some(
          (u) => u.name === "Ben",
        ),
      "Ben in the cloud",
    );
    // The hub's audit log reaches the cloud too (from seq 1: the hub connected before the site was
    // registered, and resends from the cloud's resume point).
    await until(async () => {
      const a = await cloudApi<{ events: { seq: number }[] }>(
        "GET",
        `/api/v1/audit?site=${siteId}&limit=500`,
      );
      return a.events.some((e) => e.seq === 1);
    }, "the audit log in the cloud");

    // In the cloud → at the hub.
    await cloudApi("POST", `/api/v1/sites/${siteId}/users`, { name: "Dana" });
    await until(async () => {
      const list = await run("user", "list", "--json");
      return (
        list.code === 0 && (JSON.parse(list.stdout) as { name: string }[]).some((u) => u.name === "Dana")
      );
    }, "Dana at the hub");
    const sync = await run("status", "--json");
    expect(sync.code, sync.stderr).toBe(0);
  }, 120_000);
});
