/**
 * `npm run bench`: measures the decision path and writes bench/results/latest.json
 *   { "metrics": [ { "name", "unit", "p50", "p99", "n" } | { "name", "unit", "value" } ], "machine", "node", ... }
 *
 * Metrics (10,000 users on one lock, each with a PIN and a card):
 *   decision.pin          HMAC of the typed PIN + decide(), no audit append
 *   decision.card         UID normalisation + decide(), no audit append
 *   decision.fingerprint  decide() for a sensor slot, no audit append
 *   decision.pin.durable  the real keypad path up to the bolt: HMAC, decide(), durable audit commit
 *                         (SQLite WAL, synchronous=FULL, one transaction with the decision's effects)
 *   totp.validate         RFC 6238 verification (window ±1 step); baseline.totp_library: otplib doing the same
 *   guestcode.validate    LK-GC1 decode + state check, worst case (8 issuer keys, recurring code at an edge);
 *                         guestcode.validate.reject: a random guess; baseline.hmac_sha256: one HMAC (bench/guest-code.ts)
 *   key.verify_chain3     3-link key chain + one holder signature, cold and with cached links;
 *                         baseline.jwt_eddsa_verify: jose verifying three EdDSA JWTs (bench/keys.ts)
 *   link.unlock_roundtrip a whole phone↔lock unlock, in-memory and over loopback TCP (bench/link.ts)
 *   matter.unlock_roundtrip  a Matter UnlockDoor from the matter.js controller to Latchkey's Door Lock endpoint on
 *                         loopback (claimed hub, instant simulated motor); baseline.matter_plain: the same to
 *                         matter.js's own DoorLockServer, same run, interleaved (bench/matter.ts)
 *   ops.merge             10,000 concurrent management operations from 3 replicas, merged (ops/s; bench/ops.ts)
 *   cloud.ingest          audit events/s through publisher → MQTT broker → sync worker → PostgreSQL (bench/cloud.ts);
 *                         baseline.pg_copy: raw COPY of the same rows into the same table, same run
 *   cloud.scale_drain     events/s while 1,000 sites drain a 3-week backlog each (525 events) through Mosquitto,
 *                         2 worker processes and PostgreSQL, with drain time, lost and duplicated (bench/cloud-scale.ts;
 *                         needs both services, else skipped)
 *   console.*             the console's bundle (gzip bytes), access review and health over HTTP on a hub with
 *                         1,000 people (baseline.api_users: GET /api/v1/users, same hub, interleaved), and the
 *                         readiness check (bench/console.ts)
 *   baseline.sqlite_commit  a raw single-row SQLite WAL full-sync commit, measured in the same run,
 *                         alternating one-for-one with decision.pin.durable so both see the same disk noise
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { buildCredentialIndex } from "../src/core/credential-index.ts";
import { normalizeUid } from "../src/core/credentials/card-id.ts";
import { pinDigest } from "../src/core/credentials/pin-policy.ts";
import { type DecisionState, decide } from "../src/core/decide.ts";
import { INITIAL_LOCKOUT } from "../src/core/lockout.ts";
import type { Credential, User } from "../src/core/model.ts";
import { EpochMs, Milliseconds } from "../src/core/units.ts";
import { FakeClock } from "../src/device/fake-clock.ts";
import { openDataDir } from "../src/hub/data-dir.ts";
import { Hub } from "../src/hub/hub.ts";
import { nodeCrypto } from "../src/platform/node-crypto.ts";
import { benchCloud } from "./cloud.ts";
import { benchCloudScale } from "./cloud-scale.ts";
import { benchConsole } from "./console.ts";
import { benchGuestCode } from "./guest-code.ts";
import { benchKeys } from "./keys.ts";
import { benchLink } from "./link.ts";
import { benchMatter } from "./matter.ts";
import { benchOps } from "./ops.ts";
import { percentiles, round } from "./stats.ts";
import { benchTotp } from "./totp.ts";

const USERS = 10_000;
const N = Number(process.env.BENCH_N ?? 10_000);
const DURABLE_N = Number(process.env.BENCH_DURABLE_N ?? 5_000);

type Metric =
  | { name: string; unit: string; p50: number; p99: number; n: number }
  | { name: string; unit: string; value: number };

const now = () => process.hrtime.bigint();

function pinFor(i: number): string {
  // Distinct 8-digit PINs (10,000 codes need >= 7 digits by the 1,000x code-space rule).
  return String(10_000_000 + i * 7919).slice(0, 8);
}
function uidFor(i: number): string {
  return (0x04000000 + i * 13).toString(16).padStart(8, "0");
}

function fixtures(pinSecret: Uint8Array): { users: User[]; credentials: Credential[] } {
  const at = EpochMs(Date.UTC(2026, 0, 1));
  const users: User[] = [];
  const credentials: Credential[] = [];
  for (let i = 0; i < USERS; i++) {
    const id = `usr_bench${i}`;
    users.push({
      id,
      name: `User ${i}`,
      role: i === 0 ? "owner" : "member",
      userType: i % 10 === 0 ? "weekDaySchedule" : "unrestricted",
      userStatus: "occupiedEnabled",
      weekDaySchedules:
        i % 10 === 0 ? [{ daysMask: 127, startHour: 0, startMinute: 0, endHour: 24, endMinute: 0 }] : [],
      yearDaySchedules: [],
      expiringTimeout: null,
      firstUsedAt: null,
      createdAt: at,
    });
    credentials.push(
      {
        id: `cred_pin${i}`,
        userId: id,
        type: "pin",
        pinDigest: pinDigest(nodeCrypto, pinSecret, pinFor(i)),
        pinLength: 8,
        duress: false,
        locks: "all",
        label: null,
        createdAt: at,
      },
      {
        id: `cred_card${i}`,
        userId: id,
        type: "rfid",
        cardId: normalizeUid(uidFor(i)),
        locks: "all",
        label: null,
        createdAt: at,
      },
      {
        id: `cred_fp${i}`,
        userId: id,
        type: "fingerprint",
        slot: i + 1,
        locks: "all",
        label: null,
        createdAt: at,
      },
    );
  }
  return { users, credentials };
}

function benchPure(pinSecret: Uint8Array, users: User[], credentials: Credential[]): Metric[] {
  const state: DecisionState = {
    lockId: "front-door",
    timeZone: "Europe/Berlin",
    operatingMode: "normal",
    lockState: "locked",
    battery: "ok",
    clockTrusted: true,
    lockouts: { keypad: INITIAL_LOCKOUT, reader: INITIAL_LOCKOUT, fingerprint: INITIAL_LOCKOUT },
    index: buildCredentialIndex(users, credentials),
  };
  const t = EpochMs(Date.UTC(2026, 5, 3, 10, 0));
  const run = (name: string, f: (i: number) => unknown): Metric => {
    for (let i = 0; i < 2000; i++) f(i); // warm-up
    const samples: number[] = [];
    let granted = 0;
    for (let k = 0; k < N; k++) {
      const i = (k * 7477) % USERS;
      const t0 = now();
      const d = f(i) as { outcome: string };
      samples.push(Number(now() - t0));
      if (d.outcome === "grant") granted++;
    }
    if (granted !== N) throw new Error(`${name}: expected every attempt granted, got ${granted}/${N}`);
    return { name, unit: "ms", ...percentiles(samples), n: N };
  };
  return [
    run("decision.pin", (i) =>
      decide(state, { source: "keypad", pinDigest: pinDigest(nodeCrypto, pinSecret, pinFor(i)) }, t),
    ),
    run("decision.card", (i) => decide(state, { source: "rfid", cardId: normalizeUid(uidFor(i)) }, t)),
    run("decision.fingerprint", (i) => decide(state, { source: "biometric", slot: i + 1 }, t)),
  ];
}

async function benchDurable(dir: string, users: User[], credentials: Credential[]): Promise<Metric[]> {
  const clock = new FakeClock(Date.UTC(2026, 5, 3, 8, 0));
  const hub = new Hub({
    dataDir: openDataDir(dir),
    clock,
    scheduler: clock,
    monotonic: () => clock.now(),
    timeZone: "Europe/Berlin",
    motorTime: Milliseconds(300),
    onFatal: (e) => {
      throw e;
    },
  });
  hub.initialize();
  hub.store.transaction(() => {
    for (const u of users) hub.store.upsertUser(u);
    for (const c of credentials) hub.store.insertCredential(c);
  });
  hub.reload();
  const sim = hub.simulator("front-door");

  // The baseline: a raw single-row commit into another database file on the same disk, same pragmas.
  const raw = new BetterSqlite3(join(dir, "baseline.db"));
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = FULL");
  raw.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, data TEXT NOT NULL)");
  const insert = raw.prepare("INSERT INTO t (at, data) VALUES (?, ?)");
  const payload = JSON.stringify({
    source: "keypad",
    credentialType: "pin",
    userId: "usr_bench1234",
    credentialId: "cred_pin1234",
  });

  const durable: number[] = [];
  const baseline: number[] = [];
  let granted = 0;
  const WARMUP = 300;
  // Alternate one raw commit and one attempt so both series see the same disk and CPU conditions.
  for (let k = 0; k < DURABLE_N + WARMUP; k++) {
    const warm = k < WARMUP;
    const b0 = now();
    insert.run(Date.now(), payload);
    const b1 = now();
    const i = (k * 7477) % USERS;
    // Everything up to the first await runs synchronously: HMAC, decide(), durable commit, motor start.
    const t0 = now();
    const p = sim.enterPin(pinFor(i));
    const t1 = now();
    await clock.advance(400); // let the simulated motor finish (not timed)
    if ((await p) === "granted") granted++;
    if (!warm) {
      baseline.push(Number(b1 - b0));
      durable.push(Number(t1 - t0));
    }
  }
  raw.close();
  const v = hub.verifyAudit();
  hub.close();
  if (!v.ok) throw new Error(`audit chain broken after bench: ${v.problem?.what}`);
  if (granted < DURABLE_N) throw new Error(`expected grants, got ${granted}`);
  return [
    { name: "decision.pin.durable", unit: "ms", ...percentiles(durable), n: durable.length },
    { name: "baseline.sqlite_commit", unit: "ms", ...percentiles(baseline), n: baseline.length },
  ];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-bench-"));
  try {
    const dd = openDataDir(dir);
    const { users, credentials } = fixtures(dd.pinSecret);
    const metrics = [
      ...benchPure(dd.pinSecret, users, credentials),
      ...(await benchDurable(dir, users, credentials)),
      ...(await benchTotp()),
      ...benchGuestCode(),
      ...(await benchKeys()),
      ...(await benchLink()),
      ...(await benchMatter()),
      ...benchOps(),
      ...(await benchConsole()),
    ];
    const cloud = await benchCloud();
    metrics.push(...cloud.metrics);
    const scale = await benchCloudScale();
    metrics.push(...scale.metrics);
    const get = (n: string) => metrics.find((m) => m.name === n) as { p50: number; p99: number };
    const value = (n: string) => (metrics.find((m) => m.name === n) as { value?: number } | undefined)?.value;
    const ingest = value("cloud.ingest") ?? 0;
    const copy = value("baseline.pg_copy");
    const matterAdds = round(get("matter.unlock_roundtrip").p50 - get("baseline.matter_plain").p50);
    const ratio = round(get("decision.pin.durable").p99 / get("baseline.sqlite_commit").p99);
    const checks = {
      "decision.pin p99 < 1 ms": get("decision.pin").p99 < 1,
      "decision.card p99 < 1 ms": get("decision.card").p99 < 1,
      "decision.pin.durable p99 <= 1.25x baseline.sqlite_commit p99": ratio <= 1.25,
      "guestcode.validate p99 < 0.2 ms": get("guestcode.validate").p99 < 0.2,
      "key.verify_chain3 p50 < 0.5 ms (cached links)": get("key.verify_chain3").p50 < 0.5,
      "key.verify_chain3 p50 <= baseline.jwt_eddsa_verify p50":
        get("key.verify_chain3").p50 <= get("baseline.jwt_eddsa_verify").p50,
      "totp.validate p50 <= baseline.totp_library p50":
        get("totp.validate").p50 <= get("baseline.totp_library").p50,
      "Latchkey adds < 1 ms at p50 (matter.unlock_roundtrip - baseline.matter_plain)": matterAdds < 1,
      "console.bundle_gzip < 100 KiB (a modest hub serves it)":
        (value("console.bundle_gzip") ?? Infinity) < 100 * 1024,
      "cloud.ingest >= 50,000 events/s": ingest >= 50_000,
      "cloud.ingest >= 50% of baseline.pg_copy": copy !== undefined && ingest >= copy / 2,
      "cloud.scale_drain: 1,000 sites drained, 0 lost, 0 duplicated, 0 chain problems":
        scale.context !== null &&
        scale.context.sites >= 1000 &&
        scale.context.lost === 0 &&
        scale.context.duplicated === 0 &&
        scale.context.badSites === 0 &&
        scale.context.chainProblems === 0,
    };
    const result = {
      generatedAt: new Date().toISOString(),
      node: process.version,
      machine: {
        platform: process.platform,
        arch: process.arch,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? "unknown",
        totalMemGiB: round(totalmem() / 2 ** 30),
      },
      users: USERS,
      metrics,
      ratios: {
        "decision.pin.durable/baseline.sqlite_commit (p99)": ratio,
        "cloud.ingest/baseline.pg_copy": cloud.context["cloud.ingest/baseline.pg_copy"],
        "matter.unlock_roundtrip - baseline.matter_plain (p50, ms)": matterAdds,
        "console.review/baseline.api_users (p50)": round(
          get("console.review").p50 / get("baseline.api_users").p50,
        ),
      },
      cloud: cloud.context,
      cloudScale: scale.context,
      targets: checks,
    };
    const out = join(import.meta.dirname, "results", "latest.json");
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    for (const m of metrics)
      console.log(
        "p50" in m
          ? `${m.name.padEnd(24)} p50 ${m.p50} ms  p99 ${m.p99} ms  (n=${m.n})`
          : `${m.name} ${m.value} ${m.unit}`,
      );
    console.log(`ratio durable/baseline p99: ${ratio}`);
    for (const [k, ok] of Object.entries(checks)) console.log(`${ok ? "PASS" : "MISS"} ${k}`);
    console.log(`written to ${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
