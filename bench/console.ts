/**
 * The console (issue 7), part of `npm run bench`:
 *
 *   console.bundle_gzip      bytes of the console as a browser downloads it, gzip -9 (index.html, JS, CSS)
 *   console.review           GET /api/v1/review over loopback HTTP on a hub with 1,000 people (PIN + card
 *                            each) and 20,000 audit events; baseline.api_users: GET /api/v1/users on the same
 *                            hub, interleaved one for one (the API stack's own cost)
 *   console.health           GET /api/v1/locks/front-door/health (battery history of 90 days, hourly)
 *   console.readiness_check  the whole readiness check (no cloud; 2 ms simulated motor), ms per run
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { AuditKind } from "../src/core/audit/chain.ts";
import { EpochMs, Milliseconds } from "../src/core/units.ts";
import { startHub } from "../src/hub/server.ts";
import { type Metric, percentiles } from "./stats.ts";

const PEOPLE = 1_000;
const EVENTS = 20_000;
const N = 200;
const CHECKS = 10;

type SizeMetric = { name: string; unit: "bytes"; value: number };

/** Gzipped size of the built console; builds it first when missing. */
function bundleSize(): number {
  const root = join(import.meta.dirname, "..", "dist", "console");
  if (!existsSync(join(root, "index.html")))
    execFileSync("npm", ["run", "build:console"], { stdio: "ignore", cwd: join(import.meta.dirname, "..") });
  const files = [join(root, "index.html")];
  const assets = join(root, "assets");
  for (const f of readdirSync(assets)) if (/\.(js|css)$/.test(f)) files.push(join(assets, f));
  return files.reduce((n, f) => n + gzipSync(readFileSync(f), { level: 9 }).length, 0);
}

export async function benchConsole(): Promise<(Metric | SizeMetric)[]> {
  const out: (Metric | SizeMetric)[] = [{ name: "console.bundle_gzip", unit: "bytes", value: bundleSize() }];
  const dir = mkdtempSync(join(tmpdir(), "latchkey-bench-console-"));
  const running = await startHub({
    dataDir: dir,
    port: 0,
    host: "127.0.0.1",
    timeZone: "UTC",
    motorTime: Milliseconds(2),
    linkPort: null,
    print: () => {},
  });
  try {
    const hub = running.hub;
    const { user, token } = hub.claim(running.setupCode!, "Bench Owner");
    const owner = { userId: user.id, role: user.role };
    const ids: string[] = [];
    for (let i = 0; i < PEOPLE; i++) {
      const u = hub.addUser(owner, { name: `Person ${i}`, role: "member" });
      hub.setPin(owner, u.id, String(20_000_000 + i * 7919).slice(0, 8));
      hub.addCard(owner, u.id, { uid: (0x04100000 + i * 13).toString(16).padStart(8, "0") });
      ids.push(u.id);
    }
    const t0 = hub.now() - 30 * 86_400_000;
    for (let i = 0; i < EVENTS; i += 500) {
      hub.audit.append(
        ...Array.from({ length: 500 }, (_, j) => ({
          at: EpochMs(t0 + (i + j) * 60_000),
          lockId: "front-door",
          kind: AuditKind.AccessGranted,
          data: { userId: ids[(i + j) % (PEOPLE / 2)]!, source: "keypad", credentialType: "pin" },
        })),
      );
    }
    for (let h = 0; h < 90 * 24; h++)
      hub.store.console.addBatterySample("front-door", {
        at: hub.now() - (90 * 24 - h) * 3_600_000,
        percent: 100 - h * 0.02,
        millivolts: 6000 - h,
      });
    const get = async (path: string) => {
      const s = process.hrtime.bigint();
      const res = await fetch(`${running.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
      return Number(process.hrtime.bigint() - s);
    };
    const review: number[] = [];
    const users: number[] = [];
    const health: number[] = [];
    for (let i = 0; i < 10; i++) await get("/api/v1/review?days=14"); // warm-up
    for (let i = 0; i < N; i++) {
      review.push(await get("/api/v1/review?days=14"));
      users.push(await get("/api/v1/users"));
      health.push(await get("/api/v1/locks/front-door/health"));
    }
    out.push({ name: "console.review", unit: "ms", ...percentiles(review), n: N });
    out.push({ name: "baseline.api_users", unit: "ms", ...percentiles(users), n: N });
    out.push({ name: "console.health", unit: "ms", ...percentiles(health), n: N });

    const { runReadinessCheck } = await import("../src/hub/readiness.ts");
    const checks: number[] = [];
    for (let i = 0; i < CHECKS; i++) {
      const s = process.hrtime.bigint();
      const r = await runReadinessCheck(hub, owner);
      checks.push(Number(process.hrtime.bigint() - s));
      if (!r.passed)
        throw new Error(`readiness check failed: ${JSON.stringify(r.steps.filter((x) => !x.ok))}`);
    }
    out.push({ name: "console.readiness_check", unit: "ms", ...percentiles(checks), n: CHECKS });
  } finally {
    await running.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const m of await benchConsole()) console.log(JSON.stringify(m));
}
