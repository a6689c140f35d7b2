/**
 * The seeds' router-unplugged test, with the cloud (issue 5): a hub synced to a cloud through a real
 * MQTT broker (Mosquitto) and a real PostgreSQL. The hub's uplink is cut; over a simulated week the door
 * is used, an admin changes users at the hub and another admin changes users in the cloud; the uplink
 * comes back. Then every event is in the cloud exactly once and its chain verifies, both replicas hold
 * identical state, and a credential revoked on either side is refused at the door.
 *
 * The hub and the cloud share one fake clock (a week passes in milliseconds); MQTT and the database run
 * on real time.
 */

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateCloud } from "../../src/cloud/db/migrate.ts";
import { type CloudService, startCloud } from "../../src/cloud/service.ts";
import { createTenant } from "../../src/cloud/tenants.ts";
import { type AuditCheckpoint, type AuditEvent, verifyChain } from "../../src/core/audit/chain.ts";
import { toHex } from "../../src/core/crypto.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { ALL_KEY_RIGHTS, issueKey, keyId, type PublicKey } from "../../src/core/keys/digital-key.ts";
import { decodeHeldOp } from "../../src/core/ops/admit.ts";
import { hlc } from "../../src/core/ops/hlc.ts";
import { encodeReplicaState, foldOps } from "../../src/core/ops/merge.ts";
import { type OperationBody, signOperation } from "../../src/core/ops/operation.ts";
import { EpochMs } from "../../src/core/units.ts";
import { CloudSync } from "../../src/hub/cloud-sync.ts";
import { runReadinessCheck } from "../../src/hub/readiness.ts";
import { MOSQUITTO_URL, PG_URL, serviceAvailable, until } from "../cloud/cloud-fixtures.ts";
import { type Harness, makeHub, settle } from "../support/hub-harness.ts";
import { c, ed, type Party } from "../support/link-fixtures.ts";

const DAY = 86_400_000;
const schema = `lk_unplugged_${process.pid}_${Date.now().toString(36)}`;
let ok = false;
let h: Harness;
let cloud: CloudService;
let sync: CloudSync;
let token = "";

beforeAll(async () => {
  ok = (await serviceAvailable("PostgreSQL", PG_URL)) && (await serviceAvailable("Mosquitto", MOSQUITTO_URL));
  if (!ok) return;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  h = makeHub();
  const dir = `${h.dir}/cloud`;
  cloud = await startCloud({
    databaseUrl: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    dataDir: dir,
    mqttUrl: MOSQUITTO_URL,
    sessionExpirySeconds: 5,
    apiPort: 0,
    clock: () => h.clock.now(),
    log: () => {},
  });
  await migrateCloud(cloud.db);
  token = (await createTenant(cloud.db, c, "Unplugged Flats", h.clock.now())).ownerToken;
}, 60_000);

afterAll(async () => {
  if (!ok) return;
  const t0 = Date.now();
  await sync?.close();
  if (process.env.LK_DEBUG) process.stderr.write(`sync closed ${Date.now() - t0} ms\n`);
  await cloud?.close();
  if (process.env.LK_DEBUG) process.stderr.write(`cloud closed ${Date.now() - t0} ms\n`);
  h?.cleanup();
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const send = () =>
    fetch(`${cloud.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  // A kept-alive connection the server closed while idle fails once (undici); a fresh one does not.
  const res = await send().catch(send);
  const j = (await res.json()) as { data: T };
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(j)}`);
  return j.data;
}

function sign(by: Party, body: Pick<OperationBody, "kind" | "target" | "payload">, i: number) {
  const kid = keyId(c, by.pk);
  return signOperation(c, { alg: by.alg, kid, privateKey: by.privateKey }, {
    ...body,
    hlc: hlc(h.clock.now(), i, toHex(kid).slice(0, 16)),
    actor: toHex(kid),
    scope: { kind: "site", id: h.hub.deviceId },
  } as OperationBody);
}

/** What the cloud holds for the site: its events in order, checkpoints, and the fold of its operations. */
async function cloudView() {
  const site = h.hub.deviceId;
  const ev = await cloud.db.query<Record<string, unknown>>(
    "SELECT seq, at, lock_id, kind, data, prev_hash, hash FROM audit_events WHERE site_id = $1 ORDER BY seq",
    [site],
  );
  const events: AuditEvent[] = ev.rows.map((r) => ({
    seq: Number(r.seq),
    at: EpochMs(Number(r.at)),
    lockId: (r.lock_id as string | null) ?? null,
    kind: r.kind as AuditEvent["kind"],
    data: r.data as AuditEvent["data"],
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  }));
  const cps = await cloud.db.query<Record<string, unknown>>(
    "SELECT seq, hash, at, signature FROM audit_checkpoints WHERE site_id = $1",
    [site],
  );
  const checkpoints = new Map<number, AuditCheckpoint>(
    cps.rows.map((r) => [
      Number(r.seq),
      {
        seq: Number(r.seq),
        hash: r.hash as string,
        at: EpochMs(Number(r.at)),
        signature: r.signature as string,
      },
    ]),
  );
  const ops = await cloud.db.query<{ cose: Uint8Array }>("SELECT cose FROM ops WHERE site_id = $1", [site]);
  const state = foldOps(
    h.hub.replica.log()!.genesis,
    ops.rows.map((r) => decodeHeldOp(c, r.cose)),
  );
  const problems = await cloud.db.query("SELECT seq, what FROM chain_problems WHERE site_id = $1", [site]);
  return { events, checkpoints, state, problems: problems.rows };
}

describe("router unplugged, with a cloud (real Mosquitto and PostgreSQL)", () => {
  it("a week offline on both sides converges with no lost or duplicated event", async (t) => {
    // Only outside CI: serviceAvailable() throws under CI=true when a service is missing.
    if (!ok) return t.skip();
    // ---- set up: the owner's root, the hub and cloud keys granted, the site registered at the cloud.
    const root = ed();
    const nowS = Math.floor(h.clock.now() / 1000);
    h.hub.keys.register(
      h.owner,
      root.pk,
      issueKey(c, root, {
        serial: c.randomBytes(16),
        holder: h.hub.keys.signerKey,
        scope: { kind: "site", id: h.hub.deviceId },
        nbf: NumericDate(nowS - 60),
        exp: NumericDate(nowS + 3650 * 86_400),
        rights: ALL_KEY_RIGHTS,
        schedule: null,
        leaseSeconds: null,
      }),
    );
    const ident = await api<{ algId: number; publicKey: string }>("GET", "/api/v1/cloud/identity");
    const cloudKey: PublicKey = {
      alg: ident.algId as -8,
      key: new Uint8Array(Buffer.from(ident.publicKey, "hex")),
    };
    const grants = h.hub.applyOps(
      h.owner,
      [
        sign(
          root,
          {
            kind: "role.set",
            target: h.hub.replica.hubKeyId,
            payload: { role: "admin", key: h.hub.replica.hubKey },
          },
          0,
        ),
        sign(
          root,
          { kind: "role.set", target: toHex(keyId(c, cloudKey)), payload: { role: "admin", key: cloudKey } },
          1,
        ),
      ],
      false,
    );
    expect(grants.refused).toEqual([]);
    await api("POST", "/api/v1/sites", {
      siteId: h.hub.deviceId,
      name: "Flat 3B",
      devicePublicKey: toHex(h.hub.publicKey),
      sealPublicKey: toHex(h.hub.sealPublicKey),
      genesis: [{ alg: root.pk.alg, publicKey: toHex(root.pk.key) }],
    });
    const ana = h.hub.addUser(h.owner, { name: "Ana" });
    const anaPin = h.hub.setPin(h.owner, ana.id, "480613");
    const carl = h.hub.addUser(h.owner, { name: "Carl" });
    h.hub.setPin(h.owner, carl.id, "715320");

    sync = new CloudSync(h.hub, {
      url: MOSQUITTO_URL,
      stallMs: 1000,
      reconnectMs: 200,
      log: (l) => {
        if (process.env.LK_DEBUG) process.stderr.write(`${l}\n`);
      },
    });
    sync.start();
    const site = `/api/v1/sites/${h.hub.deviceId}`;
    await until(async () => sync.status().connected && sync.status().pendingEvents === 0, "first sync");
    await until(async () => sync.status().pendingOps === 0, "operations acknowledged");
    const users0 = await api<{ id: string; name: string }[]>("GET", `${site}/users`);
    expect(users0.map((u) => u.name).sort()).toEqual(["Ana", "Carl", "Olivia Owner"]);

    // ---- the router is unplugged: the hub loses the broker.
    await sync.pause();
    expect(sync.status().connected).toBe(false);
    let granted = 0;
    let denied = 0;
    const door = h.hub.lock("front-door");
    for (let day = 0; day < 7; day++) {
      await h.clock.advance(DAY);
      for (const pin of ["480613", "715320", "000000"]) {
        const r = await settle(h, door.keypadEntry(pin));
        if (r.decision?.outcome === "grant") granted++;
        else denied++;
      }
      if (day === 1) {
        // At the hub: a new user with a PIN, and Carl's PIN revoked (he moved out).
        const ben = h.hub.addUser(h.owner, { name: "Ben" });
        h.hub.setPin(h.owner, ben.id, "592641");
        for (const cr of h.hub.credentialsOf(carl.id)) h.hub.removeCredential(h.owner, cr.id);
      }
      if (day === 3) {
        // In the cloud, meanwhile: Dana with a PIN, Ana's PIN revoked, Ana renamed.
        const dana = await api<{ userId: string }>("POST", `${site}/users`, { name: "Dana" });
        await api("POST", `${site}/credentials`, { type: "pin", userId: dana.userId, pin: "864209" });
        await api("DELETE", `${site}/credentials/${anaPin.id}`);
        await api("PATCH", `${site}/users/${ana.id}`, { name: "Ana Maria" });
      }
    }
    // Offline, the door used only what the hub knew: Ana's PIN still opened (the cloud's revocation had
    // not arrived), Carl's was refused from day 2.
    expect(granted).toBeGreaterThan(7);
    expect(denied).toBeGreaterThan(7);
    const headOffline = h.hub.store.head().seq;
    expect(sync.status().pendingEvents).toBeGreaterThan(20);

    // ---- the router is back.
    sync.resume();
    await until(async () => sync.status().connected, "reconnected", 10_000);
    await until(
      async () => sync.status().connected && sync.status().pendingEvents === 0,
      "audit drained",
      30_000,
    );
    await until(async () => sync.status().pendingOps === 0, "hub operations acknowledged", 30_000);
    await until(
      async () => (await api<{ total: number }>("GET", `${site}/drift`)).total === 0,
      "cloud operations acknowledged by the hub (no drift)",
      30_000,
    );
    // Let the audit events of applying the cloud's changes drain too.
    await until(async () => sync.status().pendingEvents === 0, "audit drained after the merge", 30_000);

    // Every event reached the cloud exactly once, in order, and the chain verifies with the device key.
    const view = await cloudView();
    const head = h.hub.store.head().seq;
    expect(head).toBeGreaterThan(headOffline);
    expect(view.events.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    expect(view.problems).toEqual([]);
    const v = verifyChain(c, h.hub.deviceId, h.hub.publicKey, null, view.events, view.checkpoints);
    expect(v.ok, JSON.stringify(v.problem)).toBe(true);
    expect(v.checkpointsChecked).toBeGreaterThan(0);

    // Both replicas hold identical state.
    expect(toHex(encodeReplicaState(view.state))).toBe(toHex(encodeReplicaState(h.hub.replica.state()!)));
    const names = (await api<{ name: string }[]>("GET", `${site}/users`)).map((u) => u.name).sort();
    expect(names).toEqual(["Ana Maria", "Ben", "Carl", "Dana", "Olivia Owner"]);
    expect(
      h.hub
        .users()
        .map((u) => u.name)
        .sort(),
    ).toEqual(names);

    // A credential revoked on either side is refused at the door; the ones added on either side open.
    const at = async (pin: string) => (await settle(h, door.keypadEntry(pin))).decision?.outcome;
    expect(await at("480613")).not.toBe("grant"); // Ana's PIN, revoked in the cloud
    expect(await at("715320")).not.toBe("grant"); // Carl's PIN, revoked at the hub
    expect(await at("592641")).toBe("grant"); // Ben, added at the hub
    expect(await at("864209")).toBe("grant"); // Dana, added in the cloud (PIN sealed to the hub)
    const creds = await api<{ id: string }[]>("GET", `${site}/credentials`);
    expect(creds.some((x) => x.id === anaPin.id)).toBe(false);
    console.log(
      `router unplugged: ${head} events (${granted} grants, ${denied} refusals offline) in the cloud once each; ` +
        `${view.state.applied} operations applied on both sides; states identical`,
    );
  }, 120_000);

  it("the readiness check cuts this uplink for real, decides locally, and sees its events reach the cloud", async (t) => {
    // As above outside CI; `sync` is missing only when the first case failed (that failure is reported).
    if (!ok || !sync) return t.skip();
    h.hub.cloud = sync;
    let done = false;
    const run = runReadinessCheck(h.hub, h.owner, { cloudWaitMs: 30_000 }).finally(() => {
      done = true;
    });
    // The motor runs on the fake clock; the broker on real sockets: move both.
    for (let i = 0; i < 3000 && !done; i++) {
      await h.clock.advance(100);
      await new Promise((r) => setTimeout(r, 10));
    }
    const report = await run;
    for (const s of report.steps) expect(s.ok, `${s.id}: ${s.detail}`).toBe(true);
    const ids = report.steps.map((s) => s.id);
    expect(ids).toEqual(
      expect.arrayContaining(["uplink.cut", "kind.pin", "user.add", "user.remove", "uplink.restore"]),
    );
    expect(report.facts.cloud).toBe("reached");
    expect(sync.status().connected).toBe(true);
    // The cloud holds every event of the check, the temporary person's removal included.
    const head = h.hub.store.head().seq;
    const n = await cloud.db.query<{ n: string }>(
      "SELECT count(*) AS n FROM audit_events WHERE site_id = $1",
      [h.hub.deviceId],
    );
    expect(Number(n.rows[0]!.n)).toBeGreaterThanOrEqual(head);
  }, 90_000);
});
