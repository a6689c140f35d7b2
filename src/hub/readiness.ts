/**
 * The readiness check: the seeds' "router-unplugged test", run on demand against the live hub
 * (`latchkey check`, POST /api/v1/check, the console's button). It really cuts the uplink (the cloud
 * sync drops its broker connection), then proves on the hub alone that:
 *
 * 1. a person can be added (a temporary "Readiness check" user),
 * 2. a credential of each kind enrolled on the hub (PIN, card, fingerprint, authenticator app, guest
 *    code) is decided locally: a temporary credential of that kind is presented through the lock's own
 *    input path (keypad, reader, sensor) and granted — the bolt really moves, and is locked again after,
 * 3. the person can be removed, after which they are refused,
 * 4. every one of those attempts is in the local audit log, and the hash chain verifies;
 *
 * then it restores the uplink and, when a cloud is configured, waits (bounded) until the cloud has
 * acknowledged every event of the check. The report also states the facts a property manager keeps:
 * clock trust, battery and its forecast, the revocation horizon, pending operations, and whether a
 * backup entry method exists. Reports are stored (the last 100) and rendered as printable HTML.
 *
 * A check changes nothing lasting: the temporary user and credentials are removed (and that removal is a
 * signed operation like any other, so the cloud sees it too); the lock's bolt is returned to its state.
 */
import { AuditKind } from "../core/audit/chain.ts";
import { forecastBattery } from "../core/battery-forecast.ts";
import { parseOtpauthUri, totpAt } from "../core/credentials/totp.ts";
import { toHex } from "../core/crypto.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { CredentialType, LockState, Role, UserStatus } from "../core/model.ts";
import { localTimeIn } from "../core/schedule.ts";
import { EpochMs } from "../core/units.ts";
import type { AttemptResult } from "../device/lock-runtime.ts";
import type { Actor, Hub } from "./hub.ts";
import { BATTERY_HISTORY_MS } from "./review.ts";

/** One step of the check. */
export interface CheckStep {
  readonly id: string;
  readonly title: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** A readiness report (stored as JSON; rendered by {@link renderReportHtml}). */
export interface ReadinessReport {
  readonly id: string;
  readonly siteId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly passed: boolean;
  readonly steps: readonly CheckStep[];
  readonly facts: {
    readonly locks: readonly {
      lockId: string;
      name: string;
      lockState: string;
      doorState: string;
      operatingMode: string;
      clock: { trusted: boolean; distrust: string | null; driftMs: number };
      battery: { percent: number; level: string; replaceAt: string | null; basis: string };
      revocationHorizonMs: number | null;
    }[];
    readonly pendingOperations: number;
    readonly pendingEvents: number | null;
    readonly backupEntry: { readonly ok: boolean; readonly methods: readonly string[] };
    readonly cloud: "none" | "reached" | "not reached";
    readonly enrolledKinds: readonly string[];
  };
}

export interface CheckOptions {
  /** Which lock to exercise. Default: the hub's first lock. */
  readonly lockId?: string;
  /** How long to wait for the cloud's acknowledgement after the uplink is restored, ms. Default 20 s. */
  readonly cloudWaitMs?: number;
  /** Sleep (tests pass a fake-clock-aware one). Default setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
}

const running = new WeakSet<Hub>();

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Run the readiness check as `actor` (admin or owner). Resolves with the stored report; a failed step
 * makes `passed` false but never throws. Throws LK_FORBIDDEN (role), LK_NOT_FOUND (lock),
 * LK_CHECK_RUNNING (one at a time per hub).
 */
export async function runReadinessCheck(
  hub: Hub,
  actor: Actor,
  opts: CheckOptions = {},
): Promise<ReadinessReport> {
  hub.requireRole(actor, Role.Admin);
  const lock = opts.lockId ? hub.locks().find((l) => l.id === opts.lockId) : hub.locks()[0];
  if (!lock) throw new LatchkeyError("LK_NOT_FOUND", `no lock ${opts.lockId ?? ""}`.trim());
  if (running.has(hub)) throw new LatchkeyError("LK_CHECK_RUNNING", "a readiness check is already running");
  running.add(hub);
  try {
    return await check(hub, actor, lock.id, opts);
  } finally {
    running.delete(hub);
  }
}

async function check(hub: Hub, actor: Actor, lockId: string, opts: CheckOptions): Promise<ReadinessReport> {
  const sleep = opts.sleep ?? realSleep;
  const started = hub.now();
  const id = `chk-${toHex(hub.crypto.randomBytes(8))}`;
  const steps: CheckStep[] = [];
  const step = (sid: string, title: string, ok: boolean, detail: string) => {
    steps.push({ id: sid, title, ok, detail });
  };
  const rt = hub.lock(lockId);
  /** Marks the check's access events, so views can tell them from real entries. */
  const mark = { readinessCheck: id };
  const seqs: number[] = [];
  const firstSeq = hub.store.head().seq;
  const enrolled = [...new Set(hub.credentialViews().map((c) => c.type as string))].sort();
  const issuers = hub.guestCodeIssuers(actor, lockId).filter((i) => i.active);
  if (issuers.length > 0) enrolled.push("guestCode");

  // 1. Cut the uplink.
  const cloud = hub.cloud;
  if (cloud) {
    await cloud.pause();
    step(
      "uplink.cut",
      "Cut the uplink",
      !cloud.status().connected,
      "the cloud connection was dropped on purpose",
    );
  } else {
    step("uplink.cut", "Cut the uplink", true, "no cloud is configured: this hub runs offline-only already");
  }

  const wasLocked = rt.status().lockState === LockState.Locked;
  const relock = async () => {
    if (wasLocked && rt.status().lockState !== LockState.Locked) await rt.remoteLock(actor.userId);
  };

  // 2. Add a person.
  let tempId: string | null = null;
  try {
    const u = hub.addUser(actor, {
      name: `Readiness check ${id.slice(4, 10)}`,
      role: Role.Member,
    });
    tempId = u.id;
    step("user.add", "Add a person", true, `added ${u.name} (${u.id}) with the uplink cut`);
  } catch (e) {
    step("user.add", "Add a person", false, errorText(e));
  }

  // 3. One temporary credential of each enrolled kind, decided at the lock.
  const tryAttempt = async (sid: string, title: string, attempt: () => Promise<AttemptResult>) => {
    try {
      const r = await attempt();
      if (r.seq !== null) seqs.push(r.seq);
      const ok = r.feedback === "granted";
      const why = r.decision && "reason" in r.decision ? String(r.decision.reason) : r.feedback;
      step(
        sid,
        title,
        ok,
        ok ? `granted locally (audit seq ${r.seq})` : `refused: ${why} (audit seq ${r.seq})`,
      );
      await relock();
    } catch (e) {
      step(sid, title, false, errorText(e));
    }
  };
  let pin: string | null = null;
  if (tempId) {
    const uid = tempId;
    if (enrolled.includes(CredentialType.Pin) || enrolled.includes(CredentialType.Totp)) {
      pin = setTemporaryPin(hub, actor, uid, lockId);
      if (pin === null) step("kind.pin", "PIN at the keypad", false, "could not enrol a temporary PIN");
      else if (enrolled.includes(CredentialType.Pin)) {
        const p = pin;
        await tryAttempt("kind.pin", "PIN at the keypad", () => rt.keypadEntry(p, mark));
      }
    }
    if (enrolled.includes(CredentialType.Rfid)) {
      const cardUid = toHex(hub.crypto.randomBytes(7)).toUpperCase();
      await tryAttempt("kind.rfid", "Card at the reader", async () => {
        const card = hub.addCard(actor, uid, { uid: cardUid }, { locks: [lockId], label: "readiness check" });
        return rt.attempt({ source: "rfid", cardId: card.type === "rfid" ? card.cardId : cardUid }, mark);
      });
    }
    if (enrolled.includes(CredentialType.Fingerprint)) {
      const used = new Set(
        hub
          .credentialViews()
          .filter((c) => c.type === "fingerprint")
          .map((c) => (c.type === "fingerprint" ? c.slot : 0)),
      );
      let slot = 1000;
      while (used.has(slot) && slot > 1) slot--;
      await tryAttempt("kind.fingerprint", "Fingerprint at the sensor", async () => {
        hub.addFingerprint(actor, uid, slot, { locks: [lockId], label: "readiness check" });
        return rt.attempt({ source: "biometric", slot }, mark);
      });
    }
    if (enrolled.includes(CredentialType.Totp) && pin !== null) {
      const p = pin;
      await tryAttempt("kind.totp", "PIN + authenticator code at the keypad", async () => {
        const e = hub.addTotp(actor, uid, { locks: [lockId], requirePin: true, label: "readiness check" });
        const params = parseOtpauthUri(e.otpauthUri);
        const code = totpAt(hub.crypto, params.secret, EpochMs(rt.readClock().now), params);
        return rt.keypadEntry(`${p}${code}`, mark);
      });
    }
    if (issuers.length > 0) {
      await tryAttempt("kind.guestCode", "Guest code at the keypad (issued offline)", async () => {
        const tz = lock(hub, lockId).timeZone;
        const local = localTimeIn(tz, EpochMs(hub.now())).localEpochMinutes;
        const fmt = (m: number) => new Date(m * 60_000).toISOString().slice(0, 16);
        // A window around now; each check shifts it by the minute so no two checks make the same code.
        let issued: ReturnType<Hub["issueGuestCode"]> | null = null;
        for (let shift = 0; issued === null; shift++) {
          try {
            issued = hub.issueGuestCode(
              actor,
              lockId,
              { kind: "window", from: fmt(local - 10 - shift), to: fmt(local + 50 - shift) },
              `Readiness check ${id}`,
            );
          } catch (e) {
            if (!isLatchkeyError(e) || e.code !== "LK_CONFLICT" || shift >= 40) throw e;
          }
        }
        const r = await rt.keypadEntry(issued.code, mark);
        try {
          hub.revokeGuestCode(actor, lockId, {
            issuerId: issued.issuerId,
            epoch: issued.epoch,
            codeId: issued.codeId,
            dropAfter: issued.dropAfter,
          });
        } catch {
          // A code of a window that ended is harmless; the revocation is best effort.
        }
        return r;
      });
    }
    if (enrolled.length === 0)
      step("kind.none", "Credentials", true, "no credential is enrolled yet: only the person was checked");
    if (hub.store.phoneKeys.keys().some((k) => k.revokedAt === null))
      step(
        "kind.phone",
        "Phone keys",
        true,
        "not presented by the check (a phone holds the key): the lock verifies each key's chain itself, with no hub; try one with `latchkey phone unlock`",
      );
  }

  // 4. Remove the person and show they are refused.
  if (tempId) {
    try {
      hub.removeUser(actor, tempId);
      const r = await rt.attempt({ source: "remote", userId: tempId }, mark);
      if (r.seq !== null) seqs.push(r.seq);
      step(
        "user.remove",
        "Remove the person",
        r.feedback !== "granted",
        r.feedback !== "granted"
          ? `removed; an unlock as them is refused (audit seq ${r.seq})`
          : "removed, but an unlock as them was still granted",
      );
      await relock();
    } catch (e) {
      step("user.remove", "Remove the person", false, errorText(e));
    }
  }

  // 5. The attempts are in the local audit log; the chain verifies.
  const logged = hub
    .queryAudit(actor, { afterSeq: firstSeq, limit: 10_000 })
    .filter((e) => e.kind === AuditKind.AccessGranted || e.kind === AuditKind.AccessDenied)
    .map((e) => e.seq);
  const missing = seqs.filter((s) => !logged.includes(s));
  const verification = hub.verifyAudit();
  step(
    "audit.local",
    "Attempts in the local audit log",
    missing.length === 0 && verification.ok,
    missing.length > 0
      ? `missing audit events: ${missing.join(", ")}`
      : `${seqs.length} attempts logged (seq ${seqs.join(", ") || "none"}); chain ${verification.ok ? "verifies" : `broken: ${JSON.stringify(verification)}`}`,
  );

  // 6. Restore the uplink; wait for the cloud.
  let cloudResult: ReadinessReport["facts"]["cloud"] = "none";
  if (cloud) {
    cloud.resume();
    const through = hub.store.head().seq;
    const deadline = Date.now() + (opts.cloudWaitMs ?? 20_000);
    while (cloud.status().auditAcked < through && Date.now() < deadline) await sleep(100);
    const st = cloud.status();
    cloudResult = st.auditAcked >= through ? "reached" : "not reached";
    step(
      "uplink.restore",
      "Restore the uplink; the cloud has the check's events",
      cloudResult === "reached",
      cloudResult === "reached"
        ? `the cloud acknowledged every event through seq ${through}`
        : `the cloud acknowledged through seq ${st.auditAcked} of ${through} (${st.connected ? "connected" : "not connected"}); the events stay queued and will be sent`,
    );
  }

  // Facts.
  const now = hub.now();
  hub.sampleBatteries();
  const locks = hub.locks().map((l) => {
    const st = hub.status(l.id);
    const f = forecastBattery(hub.store.console.batterySamples(l.id, now - BATTERY_HISTORY_MS), now);
    return {
      lockId: l.id,
      name: st.name,
      lockState: st.lockState,
      doorState: st.doorState,
      operatingMode: st.operatingMode,
      clock: { trusted: st.clock.trusted, distrust: st.clock.distrust, driftMs: st.clock.rtc - st.clock.now },
      battery: {
        percent: st.battery.percent,
        level: st.battery.level,
        replaceAt: f.replaceAt,
        basis: f.basis,
      },
      revocationHorizonMs: st.phoneKeys.revocationHorizon,
    };
  });
  const backup = backupEntry(hub);
  step("backup.entry", "A backup way in", backup.ok, backup.methods.join("; "));
  const ops = hub.opsStatus() as { pending?: number; unacked?: number };
  const report: ReadinessReport = {
    id,
    siteId: hub.deviceId,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(hub.now()).toISOString(),
    passed: steps.every((s) => s.ok),
    steps,
    facts: {
      locks,
      pendingOperations: cloud ? cloud.status().pendingOps : (ops.unacked ?? ops.pending ?? 0),
      pendingEvents: cloud ? cloud.status().pendingEvents : null,
      backupEntry: backup,
      cloud: cloudResult,
      enrolledKinds: enrolled,
    },
  };
  hub.store.console.putReport({
    id,
    startedAt: started,
    passed: report.passed,
    report: JSON.stringify(report),
  });
  return report;
}

function lock(hub: Hub, lockId: string) {
  const l = hub.locks().find((x) => x.id === lockId);
  if (!l) throw new LatchkeyError("LK_NOT_FOUND", `no lock ${lockId}`);
  return l;
}

/** A random 8-digit PIN for the temporary user that passes the hub's rules (a few tries at most). */
function setTemporaryPin(hub: Hub, actor: Actor, userId: string, lockId: string): string | null {
  for (let i = 0; i < 8; i++) {
    const bytes = hub.crypto.randomBytes(8);
    const pin = Array.from(bytes, (b) => String(b % 10)).join("");
    try {
      hub.setPin(actor, userId, pin, { locks: [lockId], label: "readiness check" });
      return pin;
    } catch (e) {
      if (!isLatchkeyError(e) || !["LK_PIN_WEAK", "LK_PIN_IN_USE"].includes(e.code)) throw e;
    }
  }
  return null;
}

/** Ways in that do not depend on the usual credential: the mechanical key, an owner's second kind. */
function backupEntry(hub: Hub): { ok: boolean; methods: string[] } {
  const methods: string[] = ["mechanical key (the lock has a key cylinder; its use is audited)"];
  const creds = hub.credentialViews();
  for (const u of hub.users()) {
    if (u.role !== Role.Owner || u.userStatus !== UserStatus.OccupiedEnabled) continue;
    const kinds = new Set(creds.filter((c) => c.userId === u.id).map((c) => c.type as string));
    if (hub.store.phoneKeys.keys().some((k) => k.userId === u.id && k.revokedAt === null))
      kinds.add("phone key");
    if (kinds.size > 0) methods.push(`${u.name}: ${[...kinds].sort().join(", ")}`);
  }
  if (methods.length === 1)
    methods.push(
      "no owner holds a credential at the door yet: enrol a PIN, card or fingerprint for an owner",
    );
  // The key cylinder is a way in that needs neither power nor the hub; owners' credentials add others.
  return { ok: true, methods };
}

function errorText(e: unknown): string {
  return isLatchkeyError(e) ? e.message : `unexpected error: ${(e as Error).message}`;
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** The report as a self-contained printable HTML page (no external assets). */
export function renderReportHtml(r: ReadinessReport): string {
  const rows = r.steps
    .map(
      (s) =>
        `<tr class="${s.ok ? "ok" : "fail"}"><td>${s.ok ? "✔ pass" : "✘ FAIL"}</td><td>${esc(s.title)}</td><td>${esc(s.detail)}</td></tr>`,
    )
    .join("\n");
  const locks = r.facts.locks
    .map(
      (l) =>
        `<tr><td>${esc(l.name)} <small>(${esc(l.lockId)})</small></td><td>${esc(l.lockState)}, door ${esc(l.doorState)}, ${esc(l.operatingMode)}</td>` +
        `<td>${l.clock.trusted ? "trusted" : `NOT trusted (${esc(l.clock.distrust ?? "")})`}, drift ${Math.round(l.clock.driftMs / 1000)} s</td>` +
        `<td>${l.battery.percent}% (${esc(l.battery.level)}); replace by ${esc(l.battery.replaceAt?.slice(0, 10) ?? "—")} <small>${esc(l.battery.basis)}</small></td>` +
        `<td>${l.revocationHorizonMs === null ? "no list" : `${Math.round(l.revocationHorizonMs / 3_600_000)} h`}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Latchkey readiness report ${esc(r.startedAt.slice(0, 10))}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#111}h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;margin:1rem 0}
td,th{border:1px solid #999;padding:.35rem .5rem;text-align:left;vertical-align:top}tr.fail td:first-child{color:#a00;font-weight:700}
tr.ok td:first-child{color:#064}.verdict{font-size:1.2rem;font-weight:700}small{color:#444}@media print{body{margin:0}}
</style></head><body data-report="${esc(r.id)}">
<h1>Latchkey readiness report</h1>
<p>Site <code>${esc(r.siteId)}</code> · started ${esc(r.startedAt)} · finished ${esc(r.finishedAt)} · report <code>${esc(r.id)}</code></p>
<p class="verdict">${r.passed ? "PASSED: this door works with the internet cut." : "NOT PASSED: see the failed steps."}</p>
<h2>Steps (uplink cut during the check)</h2>
<table><thead><tr><th>Result</th><th>Step</th><th>Detail</th></tr></thead><tbody>
${rows}
</tbody></table>
<h2>Locks</h2>
<table><thead><tr><th>Lock</th><th>State</th><th>Clock</th><th>Battery</th><th>Revocation horizon</th></tr></thead><tbody>
${locks}
</tbody></table>
<h2>Facts</h2>
<ul>
<li>Credential kinds enrolled: ${esc(r.facts.enrolledKinds.join(", ") || "none")}</li>
<li>Operations not yet acknowledged by the cloud: ${r.facts.pendingOperations}</li>
<li>Audit events not yet acknowledged: ${r.facts.pendingEvents ?? "— (no cloud)"}</li>
<li>Cloud: ${esc(r.facts.cloud)}</li>
<li>Backup entry: ${esc(r.facts.backupEntry.methods.join("; "))}</li>
</ul>
<p><small>Produced by the hub itself with no internet access. Keep this page with the building's records.</small></p>
</body></html>
`;
}
