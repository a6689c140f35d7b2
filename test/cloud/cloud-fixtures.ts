/**
 * Fixtures of the cloud tests: databases (real PostgreSQL in a throwaway schema, PGlite in memory),
 * whether the machine's services are reachable (in CI an unreachable service fails the run, never skips
 * it), a registered site, and hash-chained, signed audit batches as a hub would send them.
 */
import { connect } from "node:net";
import { migrateCloud } from "../../src/cloud/db/migrate.ts";
import { openPg } from "../../src/cloud/db/pg.ts";
import { openPglite } from "../../src/cloud/db/pglite.ts";
import type { SqlClient } from "../../src/cloud/db/sql.ts";
import { canonicalJson } from "../../src/core/audit/canonical.ts";
import {
  type AuditAnchor,
  type AuditCheckpoint,
  type AuditEvent,
  type AuditEventInput,
  AuditKind,
  chainEvent,
  GENESIS_HASH,
  signAnchor,
  signCheckpoint,
} from "../../src/core/audit/chain.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto as c } from "../../src/platform/node-crypto.ts";
import type { AuditUpMsg } from "../../src/sync/messages.ts";

export const PG_URL = process.env.LATCHKEY_TEST_PG_URL ?? "postgres://root@127.0.0.1:5432/test";
export const MOSQUITTO_URL = process.env.LATCHKEY_TEST_MQTT_URL ?? "mqtt://127.0.0.1:1883";
export const T0 = Date.UTC(2026, 4, 1, 12, 0);

/** Whether a TCP port answers within `ms`. */
export function reachable(url: string, ms = 1000): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port) });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(ms, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/**
 * Whether tests that need `name` at `url` can run. Outside CI an unreachable service skips them; in CI
 * (CI=true) it throws, so a missing service fails the run instead of passing it silently.
 */
export async function serviceAvailable(name: string, url: string): Promise<boolean> {
  const ok = await reachable(url);
  if (!ok && process.env.CI) throw new Error(`${name} at ${url} is unreachable, and CI needs it`);
  return ok;
}

/** A database for one test file: its kind, how to open a fresh migrated one, and cleanup. */
export interface TestDb {
  readonly db: SqlClient;
  dispose(): Promise<void>;
}

/** PostgreSQL in a fresh schema (dropped by dispose). */
export async function freshPg(migrate = true): Promise<TestDb> {
  const schema = `lk_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const db = await openPg(PG_URL, { schema, max: 8 });
  if (migrate) await migrateCloud(db, T0);
  return {
    db,
    async dispose() {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    },
  };
}

/** PGlite in memory. */
export async function freshPglite(migrate = true): Promise<TestDb> {
  const db = await openPglite(null);
  if (migrate) await migrateCloud(db, T0);
  return { db, dispose: () => db.close() };
}

/** A hub: its device key (the seed signs checkpoints and anchors) and id. */
export interface TestHub {
  readonly siteId: string;
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly tenantId: string;
}

let hubCounter = 0;

/** A new hub identity with a unique site id (unique across runs sharing one broker). */
export function newHub(label = "t"): TestHub {
  const seed = c.randomBytes(32);
  const rand = Math.random().toString(36).slice(2, 10);
  return {
    siteId: `hub_${label}${process.pid}${rand}${hubCounter++}`,
    seed,
    publicKey: c.ed25519PublicKey(seed),
    tenantId: `ten_${label}${rand}`,
  };
}

/** Register the hub's site (and its tenant) in `db`. */
export async function registerSite(db: SqlClient, hub: TestHub, genesis: unknown = []): Promise<void> {
  await db.query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [
    hub.tenantId,
    "Test tenant",
    T0,
  ]);
  await db.query(
    `INSERT INTO sites (id, tenant_id, name, device_public_key, genesis, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [hub.siteId, hub.tenantId, "Test site", hub.publicKey, JSON.stringify(genesis), T0],
  );
}

/** A hub's audit log, built as the hub's store builds it (hash chain, a checkpoint every `every`). */
export class TestChain {
  readonly events: AuditEvent[] = [];
  readonly checkpoints = new Map<number, AuditCheckpoint>();
  private seq: number;
  private hash: string;
  readonly anchor: AuditAnchor | null;

  constructor(
    readonly hub: TestHub,
    opts: { every?: number; startAfter?: { seq: number; hash: string } } = {},
  ) {
    this.every = opts.every ?? 100;
    this.seq = opts.startAfter?.seq ?? 0;
    this.hash = opts.startAfter?.hash ?? GENESIS_HASH;
    this.anchor = opts.startAfter
      ? signAnchor(c, hub.siteId, hub.seed, opts.startAfter, EpochMs(T0 - 1000))
      : null;
  }
  private readonly every: number;

  /** Append `n` events (kind chosen by `kindAt`, default access.granted). */
  add(n: number, kindAt: (seq: number) => AuditKind = () => AuditKind.AccessGranted): this {
    for (let i = 0; i < n; i++) {
      const seq = this.seq + 1;
      const input: AuditEventInput = {
        at: EpochMs(T0 + seq * 1000),
        lockId: "front-door",
        kind: kindAt(seq),
        data: { source: "keypad", userId: `usr_${seq % 17}`, credentialId: `cred_${seq % 17}`, n: seq },
      };
      const e = chainEvent(c, this.seq, this.hash, input, canonicalJson(input.data));
      this.events.push(e);
      this.seq = e.seq;
      this.hash = e.hash;
      if (seq % this.every === 0) {
        this.checkpoints.set(
          seq,
          signCheckpoint(c, this.hub.siteId, this.hub.seed, e, EpochMs(T0 + seq * 1000)),
        );
      }
    }
    return this;
  }

  /** The `audit/up` message of events `from..to` (inclusive) with their checkpoints. */
  batch(from: number, to: number, withAnchor = false): AuditUpMsg {
    const events = this.events.filter((e) => e.seq >= from && e.seq <= to);
    return {
      v: 1,
      deviceId: this.hub.siteId,
      events: events.map((e) => ({ ...e, data: { ...e.data } })) as AuditUpMsg["events"],
      checkpoints: [...this.checkpoints.values()].filter((cp) => cp.seq >= from && cp.seq <= to),
      anchor: withAnchor ? this.anchor : null,
    };
  }
}

/** Poll `f` until it returns true (every 20 ms, up to `ms`); throws with `what` on timeout. */
export async function until(f: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
