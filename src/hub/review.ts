/**
 * The console's access review and lock health (issue 7): read-only views over the hub's users,
 * credentials, phone keys, audit log and battery samples. Nothing here changes state; the cleanup
 * buttons call the ordinary management routes.
 */
import type { JsonValue } from "../core/audit/canonical.ts";
import { AuditKind } from "../core/audit/chain.ts";
import { type BatteryForecast, forecastBattery } from "../core/battery-forecast.ts";
import { Role } from "../core/model.ts";
import type { Actor, Hub } from "./hub.ts";

const DAY_MS = 86_400_000;
/** Keys and schedules ending within this many days are "near expiry". */
export const NEAR_EXPIRY_DAYS = 14;

export interface AccessReview {
  readonly generatedAt: string;
  readonly days: number;
  readonly ghostUsers: {
    userId: string;
    name: string;
    role: Role;
    lastEntryAt: string | null;
    daysSinceEntry: number | null;
  }[];
  readonly neverWorked: {
    credentialId: string;
    userId: string;
    userName: string;
    kind: string;
    label: string | null;
    createdAt: string;
    refusals: number;
  }[];
  readonly sharedCodes: { kind: string; credentialIds: string[]; userIds: string[]; note: string }[];
  readonly keysNearExpiry: {
    kind: "phoneKey" | "user";
    id: string;
    userId: string | null;
    userName: string | null;
    expiresAt: string;
    daysLeft: number;
  }[];
  readonly admins: {
    userId: string;
    name: string;
    role: Role;
    createdAt: string;
    tokens: number;
    credentials: number;
    phoneKeys: number;
  }[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The access review ("regularly review user access, remove unused credentials"): people with no entry in
 * `days` days (ghosts; a person added less than `days` ago is not one), credentials never used (older than
 * a day) with the refusals they caused, codes shared between people, phone keys and date-range users
 * ending within {@link NEAR_EXPIRY_DAYS} days, and the owners and admins with what they hold.
 * Admin only (LK_FORBIDDEN). `days` 1–3650.
 */
export function accessReview(hub: Hub, actor: Actor, days: number): AccessReview {
  hub.requireRole(actor, Role.Admin);
  const now = hub.now();
  const since = now - days * DAY_MS;
  const users = hub.users();
  const names = new Map(users.map((u) => [u.id, u.name]));
  const creds = hub.credentialViews();

  // Refusals per credential in the window (a schedule, a disabled user, a lockout...).
  const refusals = hub.store.console.refusalsByCredential(since);

  // Last entry per person: credentials' last use, and access grants (phone keys and remote unlocks too).
  const last = new Map<string, number>();
  for (const c of creds)
    if (c.lastUsedAt !== null) last.set(c.userId, Math.max(last.get(c.userId) ?? 0, c.lastUsedAt));
  for (const u of users) {
    const at = hub.store.console.lastGrantAt(u.id);
    if (at !== null) last.set(u.id, Math.max(last.get(u.id) ?? 0, at));
  }
  const ghostUsers: AccessReview["ghostUsers"] = [];
  for (const u of users) {
    const l = last.get(u.id) ?? null;
    const idle = l === null ? u.createdAt < since : l < since;
    if (!idle) continue;
    ghostUsers.push({
      userId: u.id,
      name: u.name,
      role: u.role,
      lastEntryAt: l === null ? null : iso(l),
      daysSinceEntry: l === null ? null : Math.floor((now - l) / DAY_MS),
    });
  }

  const neverWorked: AccessReview["neverWorked"] = creds
    .filter((c) => c.lastUsedAt === null && c.createdAt < now - DAY_MS)
    .map((c) => ({
      credentialId: c.id,
      userId: c.userId,
      userName: names.get(c.userId) ?? c.userId,
      kind: c.type,
      label: c.label,
      createdAt: iso(c.createdAt),
      refusals: refusals.get(c.id) ?? 0,
    }));

  // Shared codes: the same card number held by different people (PINs are refused when shared; a card
  // can arrive shared through an import or a merge of offline edits).
  const byCard = new Map<string, { credentialIds: string[]; userIds: Set<string> }>();
  for (const c of creds) {
    if (c.type !== "rfid") continue;
    const g = byCard.get(c.cardId) ?? { credentialIds: [], userIds: new Set<string>() };
    g.credentialIds.push(c.id);
    g.userIds.add(c.userId);
    byCard.set(c.cardId, g);
  }
  const sharedCodes: AccessReview["sharedCodes"] = [...byCard.values()]
    .filter((g) => g.userIds.size > 1)
    .map((g) => ({
      kind: "rfid",
      credentialIds: g.credentialIds,
      userIds: [...g.userIds],
      note: "one card is enrolled for several people: the audit trail cannot tell them apart",
    }));

  const horizon = now + NEAR_EXPIRY_DAYS * DAY_MS;
  const keysNearExpiry: AccessReview["keysNearExpiry"] = [];
  for (const k of hub.store.phoneKeys.keys()) {
    const exp = k.exp * 1000;
    if (k.revokedAt !== null || exp < now || exp > horizon) continue;
    keysNearExpiry.push({
      kind: "phoneKey",
      id: k.serial,
      userId: k.userId,
      userName: k.userId ? (names.get(k.userId) ?? null) : null,
      expiresAt: iso(exp),
      daysLeft: Math.floor((exp - now) / DAY_MS),
    });
  }
  for (const u of users) {
    for (const y of u.yearDaySchedules) {
      const end = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(y.end) ? y.end : `${y.end}Z`);
      if (!Number.isFinite(end) || end < now || end > horizon) continue;
      keysNearExpiry.push({
        kind: "user",
        id: u.id,
        userId: u.id,
        userName: u.name,
        expiresAt: iso(end),
        daysLeft: Math.floor((end - now) / DAY_MS),
      });
    }
  }
  keysNearExpiry.sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));

  const admins: AccessReview["admins"] = users
    .filter((u) => u.role === Role.Owner || u.role === Role.Admin)
    .map((u) => ({
      userId: u.id,
      name: u.name,
      role: u.role,
      createdAt: iso(u.createdAt),
      tokens: hub.store.tokensOf(u.id).length,
      credentials: creds.filter((c) => c.userId === u.id).length,
      phoneKeys: hub.store.phoneKeys.keys().filter((k) => k.userId === u.id && k.revokedAt === null).length,
    }));

  return { generatedAt: iso(now), days, ghostUsers, neverWorked, sharedCodes, keysNearExpiry, admins };
}

export interface LockHealth {
  readonly lockId: string;
  readonly name: string;
  readonly lockState: string;
  readonly doorState: string;
  readonly operatingMode: string;
  readonly tampered: boolean;
  readonly battery: {
    percent: number;
    millivolts: number;
    level: string;
    history: { at: string; percent: number }[];
    forecast: BatteryForecast;
  };
  readonly alarms: { kind: string; at: string; seq: number; data: Record<string, JsonValue> }[];
  readonly clock: { trusted: boolean; distrust: string | null; rtc: string; now: string };
  readonly sync: JsonValue | null;
  readonly revocationHorizon: number | null;
}

/** How far back the battery chart and the forecast look: 90 days. */
export const BATTERY_HISTORY_MS = 90 * DAY_MS;

/**
 * One lock's health: state, battery with its 90-day history and replacement forecast, the alarms of the
 * last 7 days (newest first), clock trust, the cloud sync's status (null without a cloud), and the
 * revocation horizon (ms; age of the newest revocation list). Admin only. Throws LK_NOT_FOUND.
 */
export function lockHealth(hub: Hub, actor: Actor, lockId: string): LockHealth {
  hub.requireRole(actor, Role.Admin);
  const st = hub.status(lockId);
  const now = hub.now();
  hub.sampleBatteries();
  const samples = hub.store.console.batterySamples(lockId, now - BATTERY_HISTORY_MS);
  const alarmKinds = Object.values(AuditKind).filter((k) => k.startsWith("alarm."));
  const alarms = hub
    .queryAudit(actor, { lockId, kinds: alarmKinds, from: now - 7 * DAY_MS, limit: 200, descending: true })
    .map((e) => ({ kind: e.kind, at: iso(e.at), seq: e.seq, data: e.data }));
  return {
    lockId,
    name: st.name,
    lockState: st.lockState,
    doorState: st.doorState,
    operatingMode: st.operatingMode,
    tampered: st.tampered,
    battery: {
      ...st.battery,
      history: samples.map((s) => ({ at: iso(s.at), percent: s.percent })),
      forecast: forecastBattery(samples, now),
    },
    alarms,
    clock: {
      trusted: st.clock.trusted,
      distrust: st.clock.distrust,
      rtc: iso(st.clock.rtc),
      now: iso(st.clock.now),
    },
    sync: hub.cloud ? (JSON.parse(JSON.stringify(hub.cloud.status())) as JsonValue) : null,
    revocationHorizon: st.phoneKeys.revocationHorizon,
  };
}
