/**
 * The hub API's response shapes as the console reads them (src/hub/api.ts, src/hub/schemas.ts and the
 * views in src/hub/hub.ts). Hand-written: the console is a separate bundle and imports nothing from src/.
 * Times are ms since the epoch unless the field says "local" (a lock-local `YYYY-MM-DDTHH:MM`).
 */

export const ROLES = ["owner", "admin", "member", "guest", "service"] as const;
export type Role = (typeof ROLES)[number];

export const USER_TYPES = [
  "unrestricted",
  "weekDaySchedule",
  "yearDaySchedule",
  "scheduleRestricted",
  "programming",
  "nonAccess",
  "disposable",
  "expiringDisposable",
] as const;
export type UserType = (typeof USER_TYPES)[number];

export type UserStatus = "occupiedEnabled" | "occupiedDisabled";

export const OPERATING_MODES = ["normal", "vacation", "privacy", "noRemoteLockUnlock", "passage"] as const;
export type OperatingMode = (typeof OPERATING_MODES)[number];

/** Matter DaysMaskMap: bit 0 Sunday … bit 6 Saturday. */
export interface WeekDaySchedule {
  daysMask: number;
  startHour: number;
  startMinute: number;
  endHour: number;
  endMinute: number;
}

/** Lock-local date-times, `start` inclusive, `end` exclusive. */
export interface YearDaySchedule {
  start: string;
  end: string;
}

export interface User {
  id: string;
  name: string;
  role: Role;
  userType: UserType;
  userStatus: UserStatus;
  weekDaySchedules: WeekDaySchedule[];
  yearDaySchedules: YearDaySchedule[];
  /** Seconds. */
  expiringTimeout: number | null;
  firstUsedAt: number | null;
  createdAt: number;
}

interface CredentialBase {
  id: string;
  userId: string;
  locks: "all" | string[];
  label: string | null;
  createdAt: number;
  lastUsedAt: number | null;
}

export type Credential =
  | (CredentialBase & { type: "pin"; pinLength: number; duress: boolean })
  | (CredentialBase & { type: "rfid"; cardId: string })
  | (CredentialBase & { type: "fingerprint"; slot: number })
  | (CredentialBase & { type: "totp"; algorithm: string; digits: number; step: number; requirePin: boolean });

export type UserWithCredentials = User & { credentials: Credential[] };

export interface TotpEnrolment {
  credential: Credential;
  otpauthUri: string;
  qrSvg: string;
}

export interface BatteryStatus {
  percent: number;
  millivolts: number;
  level: "ok" | "low" | "critical";
}

export interface PhoneGateStatus {
  ready: boolean;
  /** Age of the newest revocation list, ms; null with none. */
  revocationHorizon: number | null;
  lists: { scope: string; version: number; issuedAt: number }[];
  refusedObjects: number;
}

export interface LockStatus {
  lockId: string;
  name: string;
  lockState: "locked" | "unlocking" | "unlocked" | "locking" | "jammed" | "unknown";
  doorState: "closed" | "open" | "ajar" | "forced";
  operatingMode: OperatingMode;
  battery: BatteryStatus;
  tampered: boolean;
  clock: { now: number; rtc: number; trusted: boolean; distrust: string | null };
  lockouts: Record<string, { failures: number; strikes: number; disabledUntil: number | null }>;
  autoRelockTime: number;
  phoneKeys: PhoneGateStatus;
}

export interface LockRecord {
  id: string;
  name: string;
  timeZone: string;
  operatingMode: OperatingMode;
  settings: Record<string, number>;
  createdAt: number;
  status: LockStatus;
}

export interface HubInfo {
  deviceId: string;
  claimed: boolean;
  locks: { id: string; name: string }[];
  keysReady: boolean;
}

/** `POST /api/v1/claim` and `POST /api/v1/recover`. `recoveryCode` is shown once. */
export interface ClaimResult {
  user: User;
  token: string;
  recoveryCode?: string;
}

export interface AuditEvent {
  seq: number;
  at: number;
  lockId: string | null;
  kind: string;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditPage {
  events: AuditEvent[];
  next: number | null;
}

export interface ChainVerification {
  ok: boolean;
  firstSeq: number | null;
  lastSeq: number | null;
  eventsChecked: number;
  checkpointsChecked: number;
  unsignedTail: number;
  problem: string | null;
  deviceId: string;
  publicKey: string;
}

export interface IssuedGuestCode {
  code: string;
  codeId: string;
  issuerId: string;
  epoch: number;
  kind: string;
  validFrom: string;
  validTo: string;
  exact: boolean;
  dropAfter: number;
  description: string;
  shareText: string;
}

export interface GuestCodeEntry {
  lockId: string;
  issuerId: string;
  epoch: number;
  codeId: string;
  name: string;
  kind: string;
  validFrom: string;
  validTo: string;
  dropAfter: number;
  issuedAt: number;
  uses: number;
  revoked: boolean;
}

export type GuestCodeRequest =
  | { kind: "window" | "oneTime"; name: string; from: string; to: string }
  | { kind: "uses"; name: string; from: string; to: string; uses: number }
  | { kind: "firstUse"; name: string; from: string; to: string; durationMinutes: number }
  | {
      kind: "recurring";
      name: string;
      daysMask: number;
      startHour: number;
      lengthHours: number;
      fromDate: string;
      toDate: string;
    };

export interface PhoneKey {
  serial: string;
  name: string;
  userId: string | null;
  holderKeyId: string;
  scope: string;
  rights: string[];
  nbf: number;
  exp: number;
  lease: number | null;
  issuedBy: string;
  issuedAt: number;
  revokedAt: number | null;
}

export interface CloudStatus {
  url: string;
  connected: boolean;
  lastConnectedAt: number | null;
  lastAckAt: number | null;
  auditAcked: number;
  auditHead: number;
  pendingEvents: number;
  pendingOps: number;
  problem: string | null;
  paused: boolean;
}

export interface SyncStatus {
  siteId: string;
  ops: {
    enabled: boolean;
    active: boolean;
    hubKeyId: string;
    total: number;
    unacked: number;
    skipped: number;
  };
  cloud: CloudStatus | null;
}

/** `POST /api/v1/users/{userId}/offboard`. */
export interface OffboardResult {
  userId: string;
  credentials: number;
  tokens: number;
  phoneKeys: number;
  guestCodeIssuers: number;
  removed: boolean;
}

/** `GET /api/v1/review?days=N`. */
export interface AccessReview {
  generatedAt: string | number;
  days: number;
  ghostUsers: {
    userId: string;
    name: string;
    role: Role;
    lastEntryAt: string | number | null;
    daysSinceEntry: number | null;
  }[];
  neverWorked: {
    credentialId: string;
    userId: string;
    userName: string;
    kind: string;
    label: string | null;
    createdAt: string | number;
    refusals: number;
  }[];
  sharedCodes: { kind: string; credentialIds: string[]; userIds: string[]; note: string }[];
  keysNearExpiry: {
    kind: "phoneKey" | "user" | "guestCode";
    id: string;
    userId: string | null;
    userName: string | null;
    expiresAt: string | number;
    daysLeft: number;
  }[];
  admins: {
    userId: string;
    name: string;
    role: Role;
    createdAt: string | number;
    tokens: number;
    credentials: number;
    phoneKeys: number;
  }[];
}

/** `GET /api/v1/locks/{lockId}/health`. */
export interface LockHealth {
  lockId: string;
  name: string;
  lockState: LockStatus["lockState"];
  doorState: LockStatus["doorState"];
  operatingMode: OperatingMode;
  battery: BatteryStatus & {
    history: { at: string | number; percent: number }[];
    forecast: {
      replaceAt: string | number | null;
      percentPerDay: number | null;
      thresholdPercent: number;
      basis: string;
    };
  };
  alarms: { kind: string; at: string | number; seq: number; data: Record<string, unknown> }[];
  clock: { trusted: boolean; distrust: string | null; rtc: string | number };
  sync: SyncStatus | null;
  revocationHorizon: PhoneGateStatus | null;
}

/** `POST /api/v1/check`, `GET /api/v1/checks/{id}`. */
export interface ReadinessReport {
  id: string;
  startedAt: string | number;
  finishedAt: string | number;
  passed: boolean;
  steps: { id: string; title: string; ok: boolean; detail: string }[];
  facts?: Record<string, unknown>;
}

export interface ReadinessSummary {
  id: string;
  startedAt: string | number;
  finishedAt?: string | number;
  passed: boolean;
}
