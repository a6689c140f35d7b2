/**
 * The hub: one site with one or more doors. It owns the edge store, the durable audit log, a lock
 * runtime per door (driving simulated hardware in this build), the credential index, and every
 * management operation (users, credentials, schedules, modes, locks, API tokens). The HTTP API and
 * the CLI are thin layers over this class.
 */
import { rmSync, writeFileSync } from "node:fs";
import type { JsonValue } from "../core/audit/canonical.ts";
import {
  type AuditEvent,
  type AuditEventInput,
  AuditKind,
  type ChainVerification,
} from "../core/audit/chain.ts";
import type { Clock } from "../core/clock.ts";
import { buildCredentialIndex, type MutableCredentialIndex } from "../core/credential-index.ts";
import { normalizeUid, parseCardId } from "../core/credentials/card-id.ts";
import {
  assertRevocation,
  deriveIssuerKey,
  dropAfterOf,
  formatLocalMinutes,
  GUEST_CODE_DEFAULT_DIGITS,
  GUEST_CODE_DEFAULT_DRIFT_MINUTES,
  GUEST_CODE_MAX_ISSUER_KEYS,
  type GuestCodeRequest,
  type GuestCodeRevocation,
  type IssuerKey,
  issueGuestCode,
  planGuestCode,
  revocationMac,
} from "../core/credentials/guest-code.ts";
import { describeIssued, shareText } from "../core/credentials/guest-code-text.ts";
import { assertPinAcceptable, effectiveMinLength, pinDigest } from "../core/credentials/pin-policy.ts";
import {
  newTotpSecret,
  otpauthUri,
  TOTP_DEFAULT_ALGORITHM,
  TOTP_DEFAULT_DIGITS,
  TOTP_DEFAULT_STEP_SECONDS,
} from "../core/credentials/totp.ts";
import {
  type CryptoPort,
  fromHex,
  timingSafeEqual,
  timingSafeEqualHex,
  toHex,
  utf8,
} from "../core/crypto.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import { assertDisplayName, newId, normalizeCode, randomBase32 } from "../core/ids.ts";
import type { PublicKey } from "../core/keys/digital-key.ts";
import { decodeMessage, encodeAbort, MessageType } from "../core/link/messages.ts";
import {
  type Credential,
  inScope,
  type LockScope,
  OperatingMode,
  Role,
  type User,
  UserStatus,
  UserType,
  type WeekDaySchedule,
  type YearDaySchedule,
} from "../core/model.ts";
import { SealedKind, type SealedSecret, sealContext, sealToLock } from "../core/ops/seal.ts";
import {
  assertTimeZone,
  assertWeekDaySchedule,
  assertYearDaySchedule,
  localTimeIn,
} from "../core/schedule.ts";
import { EpochMs, Milliseconds, Seconds } from "../core/units.ts";
import { AuditLog } from "../device/audit-log.ts";
import { type AttemptResult, LockRuntime, type LockStatus } from "../device/lock-runtime.ts";
import { PhoneGate, type PhoneGateStatus } from "../device/phone-gate.ts";
import type { Scheduler } from "../device/ports.ts";
import { SimulatedLockHardware, type SimulatorState } from "../device/simulator/simulated-hardware.ts";
import type { MessageLink } from "../link/message-link.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import type { AuditQuery } from "../store/audit-store.ts";
import { aesGcmSealer } from "../store/secret-seal.ts";
import {
  type ApiTokenRecord,
  type GuestCodeIssuerRecord,
  type GuestCodeLedgerRecord,
  type LockRecord,
  type LockSettings,
  SqliteEdgeStore,
} from "../store/sqlite/edge-store.ts";
import type { CloudSync } from "./cloud-sync.ts";
import { type DataDir, setupCodeFile } from "./data-dir.ts";
import {
  type ExportSecretMaterial,
  type RestorableKey,
  replaceDataDirSecret,
  type SecretRestore,
} from "./export.ts";
import { type MaterializeResult, materialize } from "./materialize.ts";
import { HubKeys } from "./phone-keys.ts";
import { HubReplica, type LocalChange } from "./replica.ts";

/** What `latchkey code enrol` stores on the admin's machine (src/cli/issuer-wallet.ts IssuerFile, without the ledger). */
export interface IssuerFileView {
  readonly format: "latchkey-issuer/1";
  readonly lockId: string;
  readonly lockName: string;
  readonly timeZone: string;
  readonly digits: number;
  readonly driftMinutes: number;
  readonly issuerId: string;
  readonly epoch: number;
  /** The issuer key (HKDF output, 32 bytes hex): a secret. */
  readonly keyHex: string;
}

/** A code issued through the hub: the digits appear here once and nowhere else. */
export interface HubIssuedGuestCode {
  readonly code: string;
  readonly codeId: string;
  readonly issuerId: string;
  readonly epoch: number;
  readonly kind: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly exact: boolean;
  readonly dropAfter: number;
  readonly description: string;
  readonly shareText: string;
}

export type GuestCodeListEntry = GuestCodeLedgerRecord & { readonly uses: number; readonly revoked: boolean };

export const DEFAULT_LOCK_SETTINGS: LockSettings = {
  autoRelockTime: Seconds(30),
  wrongCodeEntryLimit: 5,
  userCodeTemporaryDisableTime: Seconds(60),
  maxDisableTime: Seconds(3840),
  doorAjarTime: Seconds(60),
  batteryLowPercent: 20,
  batteryCriticalPercent: 5,
  pinMinLength: 6,
  guestCodeDigits: GUEST_CODE_DEFAULT_DIGITS,
  guestCodeDriftMinutes: GUEST_CODE_DEFAULT_DRIFT_MINUTES,
};

export interface HubOptions {
  readonly dataDir: DataDir;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly crypto?: CryptoPort;
  /** IANA zone for new locks. Default: the host's zone. */
  readonly timeZone?: string;
  /** RTC drift tolerated behind the time floor. Default 2 minutes. */
  readonly clockTolerance?: Milliseconds;
  /** Checkpoint interval and retention bound of the audit log. */
  readonly checkpointEvery?: number;
  readonly maxAuditEvents?: number;
  /** Simulated motor travel time (ms). */
  readonly motorTime?: Milliseconds;
  /** Monotonic milliseconds (lockout periods, clock-jump detection). Default performance.now. */
  readonly monotonic?: () => number;
  /** Phone-link settings of every lock (round-trip bound, passive unlock). */
  readonly phoneLink?: { readonly roundTripBound?: Milliseconds; readonly allowPassive?: boolean };
  /** Called when the audit log cannot be made durable. Default: print and exit(70). */
  readonly onFatal?: (e: LatchkeyError) => void;
}

/** The caller of a management operation (resolved from an API token or the local CLI). */
export interface Actor {
  readonly userId: string;
  readonly role: Role;
  /**
   * Where the request came from when that is not the API or CLI, recorded in the audit event of every
   * management change it makes (e.g. the Matter bridge: `{ via: "matter", fabricIndex: 1 }`).
   * The change's own fields win over these.
   */
  readonly attribution?: Readonly<Record<string, JsonValue>>;
}

export interface NewUser {
  readonly name: string;
  readonly role?: Role;
  readonly userType?: UserType;
  readonly weekDaySchedules?: readonly WeekDaySchedule[];
  readonly yearDaySchedules?: readonly YearDaySchedule[];
  readonly expiringTimeout?: number | null;
}

export type UserPatch = Partial<NewUser> & { readonly userStatus?: UserStatus };

/** A credential as the API shows it: never the PIN digest, never a TOTP secret (nor its last step). */
export type CredentialView =
  | (Omit<Extract<Credential, { type: "pin" }>, "pinDigest"> & { lastUsedAt: number | null })
  | (Extract<Credential, { type: "rfid" }> & { lastUsedAt: number | null })
  | (Extract<Credential, { type: "fingerprint" }> & { lastUsedAt: number | null })
  | (Omit<Extract<Credential, { type: "totp" }>, "secret" | "lastStep"> & { lastUsedAt: number | null });

/** A new authenticator-app enrolment: the only time its secret leaves the hub (inside `otpauthUri`). */
export interface TotpEnrolment {
  readonly credential: CredentialView;
  /** `otpauth://totp/Latchkey:NAME?secret=...`: show it once (as a QR code); never log or store it. */
  readonly otpauthUri: string;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const ROLE_RANK: Record<Role, number> = { owner: 4, admin: 3, member: 2, service: 1, guest: 1 };

function defaultTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export class Hub {
  readonly store: SqliteEdgeStore;
  readonly audit: AuditLog;
  readonly crypto: CryptoPort;
  readonly deviceId: string;
  readonly publicKey: Uint8Array;
  private readonly runtimes = new Map<string, LockRuntime>();
  private readonly gates = new Map<string, PhoneGate>();
  /** Phone keys: the owner's root, issuing, revocation and wallet sync (src/hub/phone-keys.ts). */
  readonly keys: HubKeys;
  /** The site's management operations: local changes signed, remote ones admitted (src/hub/replica.ts). */
  readonly replica: HubReplica;
  /** X25519 public key that PINs and TOTP secrets set elsewhere are sealed to (src/core/ops/seal.ts). */
  readonly sealPublicKey: Uint8Array;
  private readonly sims = new Map<string, SimulatedLockHardware>();
  private index: MutableCredentialIndex;
  private readonly o: HubOptions;
  private cancelFloorTimer: (() => void) | null = null;
  /** Last grant per credential since the last flush (the audit log holds the full history). */
  private readonly lastUsed = new Map<string, EpochMs>();
  private closed = false;

  constructor(opts: HubOptions) {
    this.o = opts;
    this.crypto = opts.crypto ?? nodeCrypto;
    this.store = new SqliteEdgeStore({
      path: opts.dataDir.dbPath,
      crypto: this.crypto,
      sealer: aesGcmSealer(opts.dataDir.totpSealKey),
    });
    this.publicKey = this.crypto.ed25519PublicKey(opts.dataDir.deviceKey);
    let deviceId = this.store.getMeta("hub.device_id");
    if (!deviceId) {
      deviceId = `hub_${toHex(this.crypto.sha256(this.publicKey)).slice(0, 16)}`;
      this.store.setMeta("hub.device_id", deviceId);
    }
    this.deviceId = deviceId;
    this.audit = new AuditLog({
      store: this.store,
      crypto: this.crypto,
      clock: opts.clock,
      deviceId,
      deviceKey: opts.dataDir.deviceKey,
      defer: (fn) => void opts.scheduler.setTimer(Milliseconds(0), fn),
      ...(opts.checkpointEvery !== undefined ? { checkpointEvery: opts.checkpointEvery } : {}),
      ...(opts.maxAuditEvents !== undefined ? { maxEvents: opts.maxAuditEvents } : {}),
      onFatal:
        opts.onFatal ??
        ((e) => {
          console.error(`latchkey: FATAL ${e.message}; stopping so a supervisor can restart the hub`);
          process.exit(70);
        }),
    });
    this.index = buildCredentialIndex(this.store.users(), this.store.credentials());
    this.keys = new HubKeys({
      crypto: this.crypto,
      clock: opts.clock,
      tables: this.store.phoneKeys,
      siteId: deviceId,
      signerSeed: opts.dataDir.keySignerSeed,
      lockIds: () => [...this.runtimes.keys()],
      user: (id) => this.user(id),
      requireRole: (actor, min) => this.requireRole(actor, min),
      adminCommit: (actor, data, apply, lockId, changes) =>
        this.adminCommit(actor, data, apply, lockId ?? null, changes),
      gates: () => [...this.gates.values()],
    });
    this.replica = new HubReplica({
      crypto: this.crypto,
      now: () => this.o.clock.now(),
      store: this.store,
      siteId: deviceId,
      signerSeed: opts.dataDir.keySignerSeed,
    });
    this.sealPublicKey = this.crypto.x25519PublicKey(opts.dataDir.sealKey);
    // Settings added by later versions take their defaults on a database written by an earlier one.
    for (const lock of this.store.locks())
      this.startRuntime({ ...lock, settings: { ...DEFAULT_LOCK_SETTINGS, ...lock.settings } });
  }

  // ------------------------------------------------------------------ lifecycle

  /** First run: create the default lock and a one-time owner setup code. Returns the code (print it once). */
  initialize(): { setupCode: string | null; firstRun: boolean } {
    const firstRun = this.store.locks().length === 0;
    if (firstRun) this.createLock("front-door", "Front door", this.o.timeZone ?? defaultTimeZone(), null);
    if (this.isClaimed()) return { setupCode: null, firstRun };
    if (this.store.getMeta("setup.code_hash")) return { setupCode: null, firstRun };
    const code = randomBase32((n) => this.crypto.randomBytes(n), 12);
    const pretty = `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8, 12)}`;
    // The file first: if it cannot be written, no hash is stored and the next start tries again.
    writeFileSync(setupCodeFile(this.o.dataDir.path), `${pretty}\n`, { mode: 0o600 });
    this.store.setMeta("setup.code_hash", this.hashSecret(code));
    return { setupCode: pretty, firstRun };
  }

  /** Forget an unclaimed setup code that was never shown (the first start failed); the next start makes a new one. */
  discardSetupCode(): void {
    if (this.isClaimed()) return;
    this.store.deleteMeta("setup.code_hash");
    rmSync(setupCodeFile(this.o.dataDir.path), { force: true });
  }

  /** Start background duties: power-up events and periodic clock-floor persistence. */
  start(): void {
    for (const rt of this.runtimes.values()) {
      const reading = rt.readClock();
      this.audit.append({
        at: reading.now,
        lockId: rt.id,
        kind: AuditKind.PowerUp,
        data: { lockState: rt.status().lockState },
      });
      rt.resume();
    }
    // A log activated while the hub was stopped (or by an older version) gets its snapshot now.
    this.recordSnapshot();
    const tick = () => {
      if (this.closed) return;
      this.persistHousekeeping();
      this.cancelFloorTimer = this.o.scheduler.setTimer(Milliseconds(60_000), tick);
    };
    tick();
  }

  /**
   * Persist what is kept off the unlock path: each lock's time floor (at most 60 s old, well inside the
   * 2-minute drift tolerance) and credentials' last-use times; sign a checkpoint of the audit head.
   */
  private persistHousekeeping(): void {
    this.store.transaction(() => {
      for (const rt of this.runtimes.values()) rt.persistFloor();
      for (const [id, at] of this.lastUsed) this.store.markCredentialUsed(id, at);
    });
    this.lastUsed.clear();
    // Guest-code rows that can no longer matter (bounded state), and ledger entries 90 days after that.
    for (const rt of this.runtimes.values()) {
      rt.pruneGuestCodes();
      const r = rt.readClock();
      if (r.trusted) {
        const local = localTimeIn(rt.record.timeZone, r.now).localEpochMinutes;
        this.store.pruneGuestCodeLedger(rt.id, local - 90 * 1440);
      }
    }
    this.sampleBatteries();
    // A quiet hub still signs its head once a minute, so the unsigned tail stays short.
    this.audit.checkpoint();
    this.store.compact();
  }

  /**
   * Record each lock's battery for the console's chart and forecast (src/core/battery-forecast.ts): a
   * sample when there is none yet, an hour after the last one, or when the level moved by a point or more.
   */
  sampleBatteries(): void {
    const now = this.o.clock.now();
    for (const rt of this.runtimes.values()) {
      const b = rt.status().battery;
      const last = this.store.console.lastBatterySample(rt.id);
      if (last && now - last.at < 3_600_000 && Math.abs(last.percent - b.percent) < 1 && now >= last.at)
        continue;
      this.store.console.addBatterySample(rt.id, { at: now, percent: b.percent, millivolts: b.millivolts });
    }
  }

  /** Stop timers, sign a final checkpoint, close the database. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelFloorTimer?.();
    for (const rt of this.runtimes.values()) rt.stop();
    try {
      this.persistHousekeeping();
      this.audit.checkpoint();
    } finally {
      this.audit.close();
      this.store.close();
    }
  }

  private hashSecret(s: string): string {
    return toHex(this.crypto.sha256(utf8(s)));
  }

  // ------------------------------------------------------------------ locks

  private startRuntime(lock: LockRecord): LockRuntime {
    const sim = new SimulatedLockHardware({
      clock: this.o.clock,
      scheduler: this.o.scheduler,
      ...(this.o.motorTime !== undefined ? { motorTime: this.o.motorTime } : {}),
      initial: (this.store.deviceState(lock.id) as SimulatorState | null) ?? undefined,
      onStateChange: (s) => {
        if (!this.closed) this.store.setDeviceState(lock.id, s);
      },
    } as ConstructorParameters<typeof SimulatedLockHardware>[0]);
    const rt = new LockRuntime(
      lock,
      sim,
      {
        store: this.store,
        audit: this.audit,
        crypto: this.crypto,
        pinSecret: this.o.dataDir.pinSecret,
        index: () => this.index,
        scheduler: this.o.scheduler,
        clockTolerance: this.o.clockTolerance ?? Milliseconds(120_000),
        monotonic: this.o.monotonic ?? (() => performance.now()),
        noteCredentialUse: (id, at) => this.lastUsed.set(id, at),
        guestCodeKeys: (lockId) => this.guestCodeKeys(lockId),
      },
      sim.snapshot().bolt,
    );
    this.runtimes.set(lock.id, rt);
    this.sims.set(lock.id, sim);
    const tables = this.store.phoneKeys;
    this.gates.set(
      lock.id,
      new PhoneGate(
        this.crypto,
        rt,
        {
          root: () => tables.authority()?.root ?? null,
          appliedLists: (lockId) => tables.revocationLists(lockId),
          putAppliedList: (lockId, l) => tables.putRevocationList(lockId, l),
          keyUser: (serial) => tables.keyUser(serial),
        },
        { siteId: this.deviceId, ...(this.o.phoneLink ?? {}) },
      ),
    );
    return rt;
  }

  private createLock(id: string, name: string, timeZone: string, actor: Actor | null): LockRecord {
    assertTimeZone(timeZone);
    assertDisplayName(name, "lock name");
    const rec: LockRecord = {
      id,
      name,
      timeZone,
      operatingMode: OperatingMode.Normal,
      settings: DEFAULT_LOCK_SETTINGS,
      createdAt: this.o.clock.now(),
    };
    this.adminCommit(actor, { action: "lock.add", lockId: id, name, timeZone }, () =>
      this.store.insertLock(rec),
    );
    this.startRuntime(rec);
    return rec;
  }

  /** Add a simulated lock (a door) to the site. Throws LK_INVALID_INPUT / LK_CONFLICT / LK_SCHEDULE_INVALID. */
  addLock(actor: Actor, input: { id: string; name?: string; timeZone?: string }): LockRecord {
    this.requireRole(actor, Role.Admin);
    if (!/^[a-z0-9][a-z0-9-]{0,39}$/.test(input.id)) {
      throw new LatchkeyError("LK_INVALID_INPUT", "lock id must be 1–40 lowercase letters, digits or dashes");
    }
    if (this.runtimes.has(input.id))
      throw new LatchkeyError("LK_CONFLICT", `lock ${input.id} already exists`);
    const tz = input.timeZone ?? this.o.timeZone ?? defaultTimeZone();
    assertTimeZone(tz);
    return this.createLock(input.id, input.name ?? input.id, tz, actor);
  }

  locks(): LockRecord[] {
    return [...this.runtimes.values()].map((r) => r.record);
  }

  /** The runtime of `lockId`. Throws LK_NOT_FOUND. */
  lock(lockId: string): LockRuntime {
    const rt = this.runtimes.get(lockId);
    if (!rt) throw new LatchkeyError("LK_NOT_FOUND", `no lock ${lockId}`);
    return rt;
  }

  /** The simulated hardware of `lockId` (simulator mode). Throws LK_NOT_FOUND. */
  simulator(lockId: string): SimulatedLockHardware {
    const s = this.sims.get(lockId);
    if (!s) throw new LatchkeyError("LK_NOT_FOUND", `no lock ${lockId}`);
    return s;
  }

  status(lockId: string): LockStatus & { phoneKeys: PhoneGateStatus } {
    return { ...this.lock(lockId).status(), phoneKeys: this.gate(lockId).status() };
  }

  /** A lock's phone-key gate. Throws LK_NOT_FOUND. */
  gate(lockId: string): PhoneGate {
    const g = this.gates.get(lockId);
    if (!g) throw new LatchkeyError("LK_NOT_FOUND", `no lock ${lockId}`);
    return g;
  }

  /** The monotonic clock the locks use (links that feed a gate stamp arrivals with it). */
  monotonic(): number {
    return (this.o.monotonic ?? (() => performance.now()))();
  }

  /**
   * Serve one phone on a link of the hub's bridge (docs/protocol/link.md § "Transports"): the phone first
   * names the lock with a Select, then that lock's gate runs the handshake. Resolves when the exchange is
   * over (the caller closes the transport); never rejects.
   */
  async serveLink(link: MessageLink, selectTimeout = Milliseconds(5000)): Promise<void> {
    try {
      const first = await link.next(selectTimeout);
      const msg = decodeMessage(first.message);
      if (msg.type !== MessageType.Select) {
        link.send(encodeAbort("LK_LINK_PROTOCOL"));
        return;
      }
      const gate = this.gates.get(msg.lockId);
      if (!gate || this.closed) {
        link.send(encodeAbort("LK_NOT_FOUND"));
        return;
      }
      await gate.serve(link);
    } catch (e) {
      // A phone that went away or sent garbage: nothing to do but close (the gate audited what it judged).
      if (!isLatchkeyError(e)) throw e;
      try {
        if (!link.transport.closed) link.send(encodeAbort(e.code));
      } catch {
        // closed meanwhile
      }
    }
  }

  /** Change a lock's OperatingMode (Matter § 5.2.9.24). */
  setOperatingMode(actor: Actor, lockId: string, mode: OperatingMode): LockRecord {
    this.requireRole(actor, Role.Admin);
    const rt = this.lock(lockId);
    if (mode === OperatingMode.Privacy && rt.status().lockState !== "locked") {
      throw new LatchkeyError(
        "LK_MODE_FORBIDS",
        "Privacy mode can only be set while the door is locked (Matter § 5.2.6.13)",
      );
    }
    const next = { ...rt.record, operatingMode: mode };
    this.adminCommit(
      actor,
      { action: "mode.set", lockId, mode },
      () => this.store.updateLock(next),
      lockId,
      () => [{ kind: "mode.set", target: lockId, payload: { mode } } as LocalChange],
    );
    rt.updateRecord(next);
    return next;
  }

  /** Change lock settings (AutoRelockTime, WrongCodeEntryLimit, ...). Values are validated by the API schema. */
  updateLockSettings(
    actor: Actor,
    lockId: string,
    patch: Partial<LockSettings> & { name?: string; timeZone?: string },
  ): LockRecord {
    this.requireRole(actor, Role.Admin);
    const rt = this.lock(lockId);
    if (patch.timeZone !== undefined) assertTimeZone(patch.timeZone);
    const { name, timeZone, ...settings } = patch;
    if (name !== undefined) assertDisplayName(name, "lock name");
    const next: LockRecord = {
      ...rt.record,
      name: name ?? rt.record.name,
      timeZone: timeZone ?? rt.record.timeZone,
      settings: { ...rt.record.settings, ...settings },
    };
    if (next.settings.batteryCriticalPercent >= next.settings.batteryLowPercent) {
      throw new LatchkeyError("LK_INVALID_INPUT", "batteryCriticalPercent must be below batteryLowPercent");
    }
    this.adminCommit(
      actor,
      { action: "lock.update", lockId, changes: patch as unknown as JsonValue },
      () => this.store.updateLock(next),
      lockId,
    );
    rt.updateRecord(next);
    return next;
  }

  // ------------------------------------------------------------------ claim and tokens

  isClaimed(): boolean {
    return this.store.getMeta("setup.claimed_at") !== null;
  }

  /**
   * Claim the hub with the one-time setup code: creates the first owner and an API token for them.
   * Throws LK_ALREADY_CLAIMED or LK_SETUP_CODE_INVALID. The code stops working once used.
   */
  claim(
    setupCode: string,
    ownerName: string,
    keyAuthority?: { root: PublicKey; hubLink: Uint8Array },
  ): { user: User; token: string; recoveryCode: string } {
    if (this.isClaimed()) throw new LatchkeyError("LK_ALREADY_CLAIMED", "this hub already has an owner");
    const expected = this.store.getMeta("setup.code_hash");
    if (!expected || !timingSafeEqualHex(this.hashSecret(normalizeCode(setupCode)), expected)) {
      throw new LatchkeyError("LK_SETUP_CODE_INVALID", "the setup code is not valid");
    }
    if (keyAuthority) this.keys.checkAuthority(keyAuthority.root, keyAuthority.hubLink);
    const user = this.newUserRecord({ name: ownerName, role: Role.Owner, userType: UserType.Programming });
    const now = this.o.clock.now();
    let token = "";
    let recoveryCode = "";
    this.adminCommit(
      { userId: user.id, role: Role.Owner },
      { action: "hub.claim", userId: user.id, name: ownerName },
      () => {
        this.store.upsertUser(user);
        this.store.setMeta("setup.claimed_at", String(now));
        this.store.deleteMeta("setup.code_hash");
        token = this.issueTokenInTransaction(user.id, "setup");
        recoveryCode = this.newRecoveryCode(user.id);
        // The owner's root key for phone keys, registered with the claim (docs/protocol/digital-keys.md).
        if (keyAuthority) {
          this.keys.register(
            { userId: user.id, role: Role.Owner },
            keyAuthority.root,
            keyAuthority.hubLink,
            false,
            true,
          );
        }
      },
    );
    rmSync(setupCodeFile(this.o.dataDir.path), { force: true });
    this.rebuildIndex();
    return { user, token, recoveryCode };
  }

  /**
   * A fresh recovery code for `userId` (an owner), replacing any earlier one: 25 base32 characters
   * (125 bits) in five groups, `LKR-XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`. Only its keyed hash is stored; the
   * code itself is returned once, for the printed recovery kit.
   */
  private newRecoveryCode(userId: string): string {
    const code = randomBase32((n) => this.crypto.randomBytes(n), 25);
    this.store.setMeta("recovery.code_hash", this.hashSecret(`recovery:${code}`));
    this.store.setMeta("recovery.user_id", userId);
    return `LKR-${code.match(/.{5}/g)!.join("-")}`;
  }

  /**
   * Exchange the recovery code for a new owner API token (the owner lost theirs). The code is spent: a new
   * one is returned with the token. Audited as `hub.recover`. Throws LK_RECOVERY_INVALID for a wrong,
   * spent or absent code, or when its owner was removed or disabled.
   */
  recover(code: string, label = "recovery"): { user: User; token: string; recoveryCode: string } {
    const raw = normalizeCode(code.replace(/^LKR-?/i, ""));
    const expected = this.store.getMeta("recovery.code_hash");
    const userId = this.store.getMeta("recovery.user_id");
    if (!expected || !userId || !timingSafeEqualHex(this.hashSecret(`recovery:${raw}`), expected)) {
      throw new LatchkeyError("LK_RECOVERY_INVALID", "the recovery code is not valid (or was already used)");
    }
    const user = this.users().find((u) => u.id === userId);
    if (!user || user.role !== Role.Owner || user.userStatus !== UserStatus.OccupiedEnabled) {
      throw new LatchkeyError(
        "LK_RECOVERY_INVALID",
        "the recovery code's owner is no longer an enabled owner",
      );
    }
    let token = "";
    let recoveryCode = "";
    this.adminCommit({ userId, role: Role.Owner }, { action: "hub.recover", userId, label }, () => {
      token = this.issueTokenInTransaction(userId, label);
      recoveryCode = this.newRecoveryCode(userId);
    });
    return { user, token, recoveryCode };
  }

  /** A new recovery code for the calling owner (the old one stops working). Owner only. */
  rotateRecoveryCode(actor: Actor): { recoveryCode: string } {
    this.requireRole(actor, Role.Owner);
    let recoveryCode = "";
    this.adminCommit(actor, { action: "hub.recovery_rotate", userId: actor.userId }, () => {
      recoveryCode = this.newRecoveryCode(actor.userId);
    });
    return { recoveryCode };
  }

  private issueTokenInTransaction(userId: string, label: string): string {
    assertDisplayName(label, "token label");
    const token = `lk_${toHex(this.crypto.randomBytes(24))}`;
    const rec: ApiTokenRecord = {
      id: newId((n) => this.crypto.randomBytes(n), "tok"),
      userId,
      label,
      createdAt: this.o.clock.now(),
    };
    this.store.insertToken(rec, this.hashSecret(token));
    return token;
  }

  static readonly MAX_TOKENS_PER_USER = 20;

  /**
   * Issue an API token for `userId`: anyone for themselves, only an owner for someone else (a token
   * acts as its user, so issuing one for another person is impersonation). Stored hashed; shown once.
   * Throws LK_FORBIDDEN, LK_CONFLICT (too many tokens).
   */
  issueToken(actor: Actor, userId: string, label: string): { token: string; record: ApiTokenRecord } {
    this.user(userId);
    if (actor.userId !== userId && actor.role !== Role.Owner) {
      throw new LatchkeyError("LK_FORBIDDEN", "only an owner can issue a token for another user");
    }
    if (this.store.tokensOf(userId).length >= Hub.MAX_TOKENS_PER_USER) {
      throw new LatchkeyError(
        "LK_CONFLICT",
        `a user can hold at most ${Hub.MAX_TOKENS_PER_USER} tokens: revoke one first`,
      );
    }
    let token = "";
    this.adminCommit(actor, { action: "token.issue", userId, label }, () => {
      token = this.issueTokenInTransaction(userId, label);
    });
    const record = this.store.tokenByHash(this.hashSecret(token))!;
    return { token, record };
  }

  /** A user's tokens (ids and labels, never the secrets): themselves, or an owner. */
  tokens(actor: Actor, userId: string): ApiTokenRecord[] {
    this.user(userId);
    if (actor.userId !== userId) this.requireRole(actor, Role.Owner);
    return this.store.tokensOf(userId);
  }

  /** Revoke a token: its user, or an owner. Throws LK_NOT_FOUND / LK_FORBIDDEN. */
  revokeToken(actor: Actor, tokenId: string): void {
    const rec = this.store.tokenById(tokenId);
    if (!rec) throw new LatchkeyError("LK_NOT_FOUND", `no token ${tokenId}`);
    if (actor.userId !== rec.userId) this.requireRole(actor, Role.Owner);
    this.adminCommit(actor, { action: "token.revoke", userId: rec.userId, tokenId }, () =>
      this.store.deleteToken(tokenId),
    );
  }

  /** Resolve a bearer token. Throws LK_UNAUTHENTICATED. */
  authenticate(token: string): Actor & { user: User } {
    const rec = /^lk_[0-9a-f]{48}$/.test(token) ? this.store.tokenByHash(this.hashSecret(token)) : null;
    const user = rec ? this.index.users.get(rec.userId) : undefined;
    if (!rec || !user) throw new LatchkeyError("LK_UNAUTHENTICATED", "missing or invalid API token");
    if (user.userStatus !== UserStatus.OccupiedEnabled) {
      throw new LatchkeyError("LK_UNAUTHENTICATED", "the token's user is disabled");
    }
    return { userId: user.id, role: user.role, user };
  }

  /**
   * Sign out: revoke the token presented (the console's "Sign out"). Audited as `token.revoke` with
   * `signout: true`. Throws LK_UNAUTHENTICATED for an invalid token.
   */
  signOut(token: string): { revoked: true; tokenId: string } {
    const actor = this.authenticate(token);
    const rec = this.store.tokenByHash(this.hashSecret(token))!;
    this.adminCommit(
      actor,
      { action: "token.revoke", userId: rec.userId, tokenId: rec.id, signout: true },
      () => this.store.deleteToken(rec.id),
    );
    return { revoked: true, tokenId: rec.id };
  }

  // ------------------------------------------------------------------ permissions

  /** Throw LK_FORBIDDEN unless the actor's role is at least `min`. */
  requireRole(actor: Actor, min: Role): void {
    if (ROLE_RANK[actor.role] < ROLE_RANK[min]) {
      throw new LatchkeyError("LK_FORBIDDEN", `this needs the ${min} role (you are ${actor.role})`);
    }
  }

  /** Owners manage everyone; admins manage members, guests and service users; nobody else manages users. */
  private requireManage(actor: Actor, target: { role: Role }): void {
    this.requireRole(actor, Role.Admin);
    if (actor.role !== Role.Owner && ROLE_RANK[target.role] >= ROLE_RANK[Role.Admin]) {
      throw new LatchkeyError("LK_FORBIDDEN", "only an owner can manage owners and admins");
    }
  }

  // ------------------------------------------------------------------ users

  private newUserRecord(input: NewUser): User {
    const name = input.name.trim();
    assertDisplayName(name, "name");
    const userType = input.userType ?? UserType.Unrestricted;
    const weekDaySchedules = input.weekDaySchedules ?? [];
    const yearDaySchedules = input.yearDaySchedules ?? [];
    for (const s of weekDaySchedules) assertWeekDaySchedule(s);
    for (const s of yearDaySchedules) assertYearDaySchedule(s);
    const expiringTimeout = input.expiringTimeout ?? null;
    if (userType === UserType.ExpiringDisposable && (expiringTimeout === null || expiringTimeout <= 0)) {
      throw new LatchkeyError(
        "LK_INVALID_INPUT",
        "an expiringDisposable user needs expiringTimeout (seconds > 0)",
      );
    }
    return {
      id: newId((n) => this.crypto.randomBytes(n), "usr"),
      name,
      role: input.role ?? Role.Member,
      userType,
      userStatus: UserStatus.OccupiedEnabled,
      weekDaySchedules,
      yearDaySchedules,
      expiringTimeout: expiringTimeout === null ? null : Seconds(expiringTimeout),
      firstUsedAt: null,
      createdAt: this.o.clock.now(),
    };
  }

  users(): User[] {
    return [...this.index.users.values()];
  }

  /** Throws LK_NOT_FOUND. */
  user(id: string): User {
    const u = this.index.users.get(id);
    if (!u) throw new LatchkeyError("LK_NOT_FOUND", `no user ${id}`);
    return u;
  }

  /** Programming users share the owners' door privileges (Vacation keypad, battery reserve): owners only. */
  private requireTypeAllowed(actor: Actor, userType: UserType | undefined): void {
    if (userType === UserType.Programming && actor.role !== Role.Owner) {
      throw new LatchkeyError("LK_FORBIDDEN", "only an owner can make a programming user");
    }
  }

  /** Users are found by name at the CLI and in the console: a name is unique per hub (case-insensitive). */
  private assertNameFree(name: string, exceptId: string | null): void {
    const lower = name.toLowerCase();
    if (this.users().some((u) => u.id !== exceptId && u.name.toLowerCase() === lower)) {
      throw new LatchkeyError("LK_CONFLICT", "another user already has this name: add a surname or initial");
    }
  }

  addUser(actor: Actor, input: NewUser): User {
    const user = this.newUserRecord(input);
    this.assertNameFree(user.name, null);
    this.requireManage(actor, user);
    this.requireTypeAllowed(actor, user.userType);
    this.adminCommit(
      actor,
      { action: "user.add", userId: user.id, name: user.name, role: user.role, userType: user.userType },
      () => this.store.upsertUser(user),
      null,
      () => this.userChanges(user, user.weekDaySchedules.length + user.yearDaySchedules.length > 0),
    );
    this.index.users.set(user.id, user);
    return user;
  }

  updateUser(actor: Actor, id: string, patch: UserPatch): User {
    const cur = this.user(id);
    this.requireManage(actor, cur);
    if (patch.role) this.requireManage(actor, { role: patch.role });
    this.requireTypeAllowed(
      actor,
      patch.userType ?? (cur.userType === UserType.Programming ? cur.userType : undefined),
    );
    const merged = this.newUserRecord({
      name: patch.name ?? cur.name,
      role: patch.role ?? cur.role,
      userType: patch.userType ?? cur.userType,
      weekDaySchedules: patch.weekDaySchedules ?? cur.weekDaySchedules,
      yearDaySchedules: patch.yearDaySchedules ?? cur.yearDaySchedules,
      expiringTimeout: patch.expiringTimeout !== undefined ? patch.expiringTimeout : cur.expiringTimeout,
    });
    const next: User = {
      ...merged,
      id: cur.id,
      createdAt: cur.createdAt,
      firstUsedAt: cur.firstUsedAt,
      userStatus: patch.userStatus ?? cur.userStatus,
    };
    if (patch.name !== undefined) this.assertNameFree(next.name, cur.id);
    if (cur.role === Role.Owner && next.role !== Role.Owner) this.assertAnotherOwner(cur.id);
    if (cur.role === Role.Owner && next.userStatus !== UserStatus.OccupiedEnabled)
      this.assertAnotherOwner(cur.id);
    const changes: Record<string, JsonValue> = {};
    for (const k of Object.keys(patch)) changes[k] = (patch as Record<string, JsonValue>)[k] ?? null;
    this.adminCommit(
      actor,
      { action: "user.update", userId: id, changes },
      () => this.store.upsertUser(next),
      null,
      () =>
        this.userChanges(next, patch.weekDaySchedules !== undefined || patch.yearDaySchedules !== undefined),
    );
    this.index.users.set(id, next);
    return next;
  }

  private assertAnotherOwner(exceptId: string): void {
    const others = this.users().filter(
      (u) => u.id !== exceptId && u.role === Role.Owner && u.userStatus === UserStatus.OccupiedEnabled,
    );
    if (others.length === 0) {
      throw new LatchkeyError(
        "LK_CONFLICT",
        "this is the last enabled owner: add another owner first so the lock is never stranded",
      );
    }
  }

  /** Remove a user with all their credentials and tokens. The last owner cannot be removed. */
  removeUser(actor: Actor, id: string): void {
    const cur = this.user(id);
    this.requireManage(actor, cur);
    if (cur.role === Role.Owner) this.assertAnotherOwner(id);
    const credentialIds = this.credentialsOf(id).map((c) => c.id);
    // Phone keys travel with the phone: revoke them (the list reaches other locks with wallets).
    this.keys.revokeUserKeys(actor, id);
    this.adminCommit(
      actor,
      { action: "user.remove", userId: id, name: cur.name, credentialIds },
      () => this.store.deleteUser(id),
      null,
      () => [{ kind: "user.remove", target: id, payload: {} } as LocalChange],
    );
    this.rebuildIndex();
  }

  /**
   * Offboarding in one step ("revoke everything this person has"): every credential (PINs, cards,
   * fingerprints, authenticator apps), every API token, every phone key, and the guest-code issuers
   * enrolled for them (their codes stop working); then the user is disabled, or removed with `remove`.
   * Each revocation is its own audited, signed change, so a failure part-way leaves what was revoked
   * revoked. Counts in the result. Throws LK_NOT_FOUND, LK_FORBIDDEN (who may manage whom), and refuses
   * to offboard the last owner.
   */
  offboardUser(
    actor: Actor,
    userId: string,
    opts: { remove?: boolean } = {},
  ): {
    userId: string;
    credentials: number;
    tokens: number;
    phoneKeys: number;
    guestCodeIssuers: number;
    removed: boolean;
  } {
    const cur = this.user(userId);
    this.requireManage(actor, cur);
    if (actor.userId === userId) throw new LatchkeyError("LK_FORBIDDEN", "you cannot offboard yourself");
    if (cur.role === Role.Owner) this.assertAnotherOwner(userId);
    const creds = this.credentialsOf(userId);
    for (const c of creds) this.removeCredential(actor, c.id);
    // Tokens: offboarding is the manager's call (requireManage above), not only the owner's.
    const tokens = this.store.tokensOf(userId);
    for (const t of tokens)
      this.adminCommit(actor, { action: "token.revoke", userId, tokenId: t.id }, () =>
        this.store.deleteToken(t.id),
      );
    const keysBefore = this.store.phoneKeys
      .keys()
      .filter((k) => k.userId === userId && k.revokedAt === null).length;
    this.keys.revokeUserKeys(actor, userId);
    let issuers = 0;
    for (const lock of this.locks()) {
      for (const rec of this.store.guestCodeIssuers(lock.id)) {
        if (rec.userId !== userId) continue;
        this.removeIssuer(actor, lock.id, rec.issuerId);
        issuers++;
      }
    }
    if (opts.remove) this.removeUser(actor, userId);
    else if (cur.userStatus !== UserStatus.OccupiedDisabled)
      this.updateUser(actor, userId, { userStatus: UserStatus.OccupiedDisabled });
    return {
      userId,
      credentials: creds.length,
      tokens: tokens.length,
      phoneKeys: keysBefore,
      guestCodeIssuers: issuers,
      removed: opts.remove === true,
    };
  }

  // ------------------------------------------------------------------ credentials

  private allCredentials(): Credential[] {
    return this.store.credentials().filter((c) => this.index.users.has(c.userId));
  }

  credentialsOf(userId: string): Credential[] {
    return this.allCredentials().filter((c) => c.userId === userId);
  }

  /** All credentials as the API shows them (no PIN digests). */
  credentialViews(userId?: string): CredentialView[] {
    const lastUsed = this.store.credentialLastUsed();
    for (const [id, at] of this.lastUsed) lastUsed.set(id, at);
    const list = userId ? this.credentialsOf(userId) : this.allCredentials();
    return list.map((c) => {
      const lu = lastUsed.get(c.id) ?? null;
      if (c.type === "pin") {
        const { pinDigest: _omit, ...rest } = c;
        return { ...rest, lastUsedAt: lu };
      }
      if (c.type === "totp") {
        const { secret: _secret, lastStep: _lastStep, ...rest } = c;
        return { ...rest, lastUsedAt: lu };
      }
      return { ...c, lastUsedAt: lu };
    });
  }

  private resolveScope(locks: LockScope | undefined): LockScope {
    if (locks === undefined || locks === "all") return "all";
    if (locks.length === 0)
      throw new LatchkeyError("LK_INVALID_INPUT", 'locks must be "all" or a non-empty list');
    for (const id of locks) this.lock(id);
    return [...new Set(locks)];
  }

  private scopesOverlap(a: LockScope, b: LockScope): boolean {
    if (a === "all" || b === "all") return true;
    return a.some((id) => b.includes(id));
  }

  private scopeLocks(scope: LockScope): LockRecord[] {
    return this.locks().filter((l) => inScope(scope, l.id));
  }

  /**
   * Set a PIN for a user. Enforces 4–12 digits, the lock's minimum length (raised with the number of
   * codes per IEC 60839-11-1), the weak-PIN rules, and no shared codes on an overlapping lock.
   * Stores only HMAC-SHA-256(pinSecret, PIN). Throws LK_PIN_FORMAT / LK_PIN_TOO_SHORT / LK_PIN_WEAK / LK_PIN_IN_USE.
   */
  setPin(
    actor: Actor,
    userId: string,
    pin: string,
    opts: { locks?: LockScope; duress?: boolean; label?: string | null; replace?: boolean } = {},
  ): CredentialView {
    const user = this.user(userId);
    // Only owners and admins set PINs (their own included): "no shared codes" means a collision answer
    // reveals that someone has that PIN, so that answer is kept away from members and guests.
    if (actor.userId === userId) this.requireRole(actor, Role.Admin);
    else this.requireManage(actor, user);
    this.assertCollisionBudget(actor);
    const scope = this.resolveScope(opts.locks);
    const duress = opts.duress ?? false;
    const all = this.allCredentials();
    const pinsOnScope = all.filter((c) => c.type === "pin" && this.scopesOverlap(c.locks, scope));
    const minLength = Math.max(
      ...this.scopeLocks(scope).map((l) =>
        effectiveMinLength(
          { minLength: l.settings.pinMinLength },
          pinsOnScope.filter((c) => inScope(c.locks, l.id)).length,
        ),
      ),
    );
    assertPinAcceptable(pin, minLength);
    const digest = pinDigest(this.crypto, this.o.dataDir.pinSecret, pin);
    // Setting a PIN replaces the user's PIN of the same kind (normal or duress) unless asked to add one.
    const replaced =
      (opts.replace ?? true)
        ? all.filter(
            (c) =>
              c.type === "pin" &&
              c.userId === userId &&
              c.duress === duress &&
              this.scopesOverlap(c.locks, scope),
          )
        : [];
    const clash = pinsOnScope.find(
      (c) => c.type === "pin" && c.pinDigest === digest && !replaced.includes(c),
    );
    if (clash) {
      this.recordCollision(actor, userId);
      throw new LatchkeyError(
        "LK_PIN_IN_USE",
        clash.userId === userId
          ? "this user already has this PIN"
          : "another user already has this PIN on this lock: choose a different one",
      );
    }
    return this.enrol(
      actor,
      {
        userId,
        type: "pin",
        pinDigest: digest,
        pinLength: pin.length,
        duress,
        locks: scope,
        label: opts.label ?? null,
      },
      { duress },
      replaced.map((c) => c.id),
      { kind: SealedKind.Pin, pin },
    );
  }

  /**
   * Store a new credential (replacing `replaces`) with its `credential.add` audit event in one durable
   * transaction, refresh the index, and return the API view (never a PIN digest).
   */
  private enrol(
    actor: Actor,
    fields: DistributiveOmit<Credential, "id" | "createdAt">,
    auditExtra: Record<string, JsonValue>,
    replaces: readonly string[] = [],
    secret: SealedSecret | null = null,
  ): CredentialView & { replaced: string[] } {
    if (fields.label !== null) assertDisplayName(fields.label, "label");
    const cred = {
      ...fields,
      id: newId((n) => this.crypto.randomBytes(n), "cred"),
      createdAt: this.o.clock.now(),
    } as Credential;
    this.adminCommit(
      actor,
      {
        action: "credential.add",
        userId: cred.userId,
        credentialId: cred.id,
        credentialType: cred.type,
        locks: cred.locks as JsonValue,
        ...auditExtra,
        ...(replaces.length ? { replaced: [...replaces] } : {}),
      },
      () => {
        for (const id of replaces) this.store.deleteCredential(id);
        this.store.insertCredential(cred);
      },
      null,
      () => [
        ...replaces.map((id) => ({ kind: "credential.remove", target: id, payload: {} }) as LocalChange),
        this.credentialChange(cred, secret),
      ],
    );
    this.rebuildIndex();
    return { ...this.credentialViews(cred.userId).find((c) => c.id === cred.id)!, replaced: [...replaces] };
  }

  /** PIN collisions per actor in the current window (an oracle for other users' PINs if unbounded). */
  private readonly collisions = new Map<string, { count: number; since: number }>();
  static readonly MAX_PIN_COLLISIONS = 5;
  static readonly COLLISION_WINDOW_MS = 3_600_000;

  private assertCollisionBudget(actor: Actor): void {
    const c = this.collisions.get(actor.userId);
    if (!c || this.o.clock.now() - c.since > Hub.COLLISION_WINDOW_MS) return;
    if (c.count >= Hub.MAX_PIN_COLLISIONS) {
      throw new LatchkeyError(
        "LK_FORBIDDEN",
        "too many PINs already in use were tried: wait an hour before setting PINs again",
      );
    }
  }

  private recordCollision(actor: Actor, userId: string): void {
    const now = this.o.clock.now();
    const c = this.collisions.get(actor.userId);
    const next =
      !c || now - c.since > Hub.COLLISION_WINDOW_MS
        ? { count: 1, since: now }
        : { count: c.count + 1, since: c.since };
    this.collisions.set(actor.userId, next);
    // Refused changes leave state untouched but are part of the record (never the digits).
    this.audit.append({
      at: now,
      lockId: null,
      kind: AuditKind.Admin,
      data: { action: "pin.refused_in_use", userId, actorId: actor.userId, count: next.count },
    });
  }

  /** Enrol an RFID card by ISO 14443 UID (hex) or by a normalised card id (e.g. `h10301:123:45678`). */
  addCard(
    actor: Actor,
    userId: string,
    card: { uid?: string; cardId?: string },
    opts: { locks?: LockScope; label?: string | null } = {},
  ): CredentialView {
    const user = this.user(userId);
    this.requireManage(actor, user);
    if ((card.uid === undefined) === (card.cardId === undefined)) {
      throw new LatchkeyError("LK_CARD_FORMAT", "give exactly one of uid or cardId");
    }
    const cardId = card.uid !== undefined ? normalizeUid(card.uid) : parseCardId(card.cardId!);
    const scope = this.resolveScope(opts.locks);
    if (
      this.allCredentials().some(
        (c) => c.type === "rfid" && c.cardId === cardId && this.scopesOverlap(c.locks, scope),
      )
    ) {
      throw new LatchkeyError("LK_CONFLICT", "this card is already enrolled on this lock");
    }
    return this.enrol(
      actor,
      { userId, type: "rfid", cardId, locks: scope, label: opts.label ?? null },
      { cardId },
    );
  }

  /** Enrol a fingerprint by the sensor slot (1–1000) holding its template. */
  addFingerprint(
    actor: Actor,
    userId: string,
    slot: number,
    opts: { locks?: LockScope; label?: string | null } = {},
  ): CredentialView {
    const user = this.user(userId);
    this.requireManage(actor, user);
    if (!Number.isInteger(slot) || slot < 1 || slot > 1000) {
      throw new LatchkeyError("LK_INVALID_INPUT", "fingerprint slot must be an integer 1–1000");
    }
    const scope = this.resolveScope(opts.locks);
    if (
      this.allCredentials().some(
        (c) => c.type === "fingerprint" && c.slot === slot && this.scopesOverlap(c.locks, scope),
      )
    ) {
      throw new LatchkeyError("LK_CONFLICT", `fingerprint slot ${slot} is already enrolled on this lock`);
    }
    return this.enrol(
      actor,
      { userId, type: "fingerprint", slot, locks: scope, label: opts.label ?? null },
      { slot },
    );
  }

  /** Authenticator codes that open without a PIN, per lock: each is a target for every random 6-digit guess. */
  static readonly MAX_TOTP_ALONE_PER_LOCK = 10;
  /** The service name authenticator apps show next to the code. */
  static readonly TOTP_ISSUER = "Latchkey";

  /**
   * Enrol an authenticator app (RFC 6238 TOTP) for a user: a fresh 160-bit secret (RFC 4226 § 4 R6) with
   * the parameters every app supports (SHA-1, 6 digits, 30 s). Returns the credential and the
   * `otpauth://` URI, the only time the secret leaves the hub (the caller shows it once, as a QR code);
   * the store keeps it sealed. Authorised like a PIN: owners and admins, for themselves or for the users
   * they manage. `requirePin` (default true) is Matter's Dual credential rule: the PIN, then the code, in
   * one entry; the PIN alone then stops opening. `requirePin: false` (the code alone) is for owners and
   * admins to grant, at most {@link MAX_TOTP_ALONE_PER_LOCK} per lock.
   * Throws LK_NOT_FOUND, LK_FORBIDDEN, LK_TOTP_ALONE_LIMIT.
   */
  addTotp(
    actor: Actor,
    userId: string,
    opts: { locks?: LockScope; requirePin?: boolean; label?: string | null } = {},
  ): TotpEnrolment {
    const user = this.user(userId);
    if (actor.userId === userId) this.requireRole(actor, Role.Admin);
    else this.requireManage(actor, user);
    const requirePin = opts.requirePin ?? true;
    if (!requirePin) this.requireRole(actor, Role.Admin);
    const scope = this.resolveScope(opts.locks);
    if (!requirePin) {
      const alone = this.allCredentials().filter((c) => c.type === "totp" && !c.requirePin);
      for (const l of this.scopeLocks(scope)) {
        if (alone.filter((c) => inScope(c.locks, l.id)).length >= Hub.MAX_TOTP_ALONE_PER_LOCK) {
          throw new LatchkeyError(
            "LK_TOTP_ALONE_LIMIT",
            `lock ${l.id} already has ${Hub.MAX_TOTP_ALONE_PER_LOCK} authenticator codes that open without a PIN: enrol this one with the PIN (the default) or remove one`,
            { lockId: l.id },
          );
        }
      }
    }
    const secret = newTotpSecret(this.crypto);
    // The account is the user's name as the app shows it (a ':' would split the otpauth label).
    const account = user.name.replaceAll(":", " ").trim() || user.id;
    const uri = otpauthUri({ issuer: Hub.TOTP_ISSUER, account, secret });
    const { replaced: _none, ...credential } = this.enrol(
      actor,
      {
        userId,
        type: "totp",
        secret,
        algorithm: TOTP_DEFAULT_ALGORITHM,
        digits: TOTP_DEFAULT_DIGITS,
        step: Seconds(TOTP_DEFAULT_STEP_SECONDS),
        requirePin,
        lastStep: null,
        locks: scope,
        label: opts.label ?? null,
      },
      { requirePin },
    );
    return { credential: credential as CredentialView, otpauthUri: uri };
  }

  removeCredential(actor: Actor, credentialId: string): void {
    const cred = this.allCredentials().find((c) => c.id === credentialId);
    if (!cred) throw new LatchkeyError("LK_NOT_FOUND", `no credential ${credentialId}`);
    if (actor.userId !== cred.userId) this.requireManage(actor, this.user(cred.userId));
    // Removing one's own authenticator app would let one's PIN open alone again: like enrolling it,
    // that is for owners and admins.
    else if (cred.type === "totp") this.requireRole(actor, Role.Admin);
    this.adminCommit(
      actor,
      { action: "credential.remove", userId: cred.userId, credentialId, credentialType: cred.type },
      () => this.store.deleteCredential(credentialId),
      null,
      () => [{ kind: "credential.remove", target: credentialId, payload: {} } as LocalChange],
    );
    this.rebuildIndex();
  }

  /** Re-read users and credentials from the store (after a bulk load, e.g. the benchmark or an import). */
  reload(): void {
    this.rebuildIndex();
  }

  private rebuildIndex(): void {
    this.index = buildCredentialIndex(this.store.users(), this.store.credentials());
  }

  // ------------------------------------------------------------------ guest codes

  /** Issuer keys per lock, derived on demand; cleared by every management change (adminCommit). */
  private readonly guestKeysCache = new Map<string, IssuerKey[]>();

  /**
   * The issuer keys a lock tries (docs/protocol/guest-codes.md § 1): issuers whose user is still an
   * enabled owner or admin, each at its current epoch; at most 8.
   */
  guestCodeKeys(lockId: string): IssuerKey[] {
    const hit = this.guestKeysCache.get(lockId);
    if (hit) return hit;
    const keys = this.store
      .guestCodeIssuers(lockId)
      .filter((i) => this.mayIssue(i.userId))
      .slice(0, GUEST_CODE_MAX_ISSUER_KEYS)
      .map((i) => ({
        issuerId: i.issuerId,
        epoch: i.epoch,
        key: deriveIssuerKey(this.crypto, this.o.dataDir.guestCodeSecret, lockId, i.issuerId, i.epoch),
      }));
    this.guestKeysCache.set(lockId, keys);
    return keys;
  }

  private mayIssue(userId: string): boolean {
    const u = this.index.users.get(userId);
    return (
      u !== undefined &&
      (u.role === Role.Owner || u.role === Role.Admin) &&
      u.userStatus === UserStatus.OccupiedEnabled
    );
  }

  private issuerOf(lockId: string, issuerId: string): GuestCodeIssuerRecord {
    const i = this.store.guestCodeIssuers(lockId).find((x) => x.issuerId === issuerId);
    if (!i)
      throw new LatchkeyError("LK_ISSUER_UNKNOWN", `no guest-code issuer ${issuerId} on lock ${lockId}`);
    return i;
  }

  /** Only an owner, or the issuer's own user, may change an issuer. */
  private requireIssuerControl(actor: Actor, issuer: GuestCodeIssuerRecord): void {
    this.requireRole(actor, Role.Admin);
    if (actor.role !== Role.Owner && actor.userId !== issuer.userId) {
      throw new LatchkeyError(
        "LK_FORBIDDEN",
        "only an owner or the issuer's own admin can change this issuer",
      );
    }
  }

  /** The issuer file an admin's machine keeps: everything needed to issue codes offline. */
  private issuerFile(lockId: string, i: GuestCodeIssuerRecord): IssuerFileView {
    const lock = this.lock(lockId).record;
    return {
      format: "latchkey-issuer/1",
      lockId,
      lockName: lock.name,
      timeZone: lock.timeZone,
      digits: lock.settings.guestCodeDigits,
      driftMinutes: lock.settings.guestCodeDriftMinutes,
      issuerId: i.issuerId,
      epoch: i.epoch,
      keyHex: toHex(
        deriveIssuerKey(this.crypto, this.o.dataDir.guestCodeSecret, lockId, i.issuerId, i.epoch),
      ),
    };
  }

  /**
   * Make `userId` (default: the caller) a guest-code issuer on `lockId`, or return its current key when it
   * already is one (after an epoch change). The key is a secret: show it once, store it 0600.
   * Owners may enrol any owner or admin; an admin only itself. At most 8 issuers per lock.
   * Throws LK_FORBIDDEN, LK_NOT_FOUND, LK_CONFLICT (8 issuers already).
   */
  enrolIssuer(actor: Actor, lockId: string, userId?: string): IssuerFileView {
    return this.ensureIssuer(actor, lockId, userId, true);
  }

  /** enrolIssuer; `handout` audits a key handed out again (the API's own issuing path does not hand one out). */
  private ensureIssuer(
    actor: Actor,
    lockId: string,
    userId: string | undefined,
    handout: boolean,
  ): IssuerFileView {
    this.requireRole(actor, Role.Admin);
    this.lock(lockId);
    const target = userId ?? actor.userId;
    if (target !== actor.userId) this.requireRole(actor, Role.Owner);
    this.user(target);
    if (!this.mayIssue(target)) {
      throw new LatchkeyError("LK_FORBIDDEN", "only an enabled owner or admin can issue guest codes");
    }
    const issuers = this.store.guestCodeIssuers(lockId);
    let issuer = issuers.find((i) => i.userId === target);
    if (!issuer) {
      if (issuers.filter((i) => this.mayIssue(i.userId)).length >= GUEST_CODE_MAX_ISSUER_KEYS) {
        throw new LatchkeyError(
          "LK_CONFLICT",
          `a lock has at most ${GUEST_CODE_MAX_ISSUER_KEYS} guest-code issuers: remove one first`,
        );
      }
      const rec: GuestCodeIssuerRecord = {
        lockId,
        issuerId: `iss_${toHex(this.crypto.randomBytes(6))}`,
        userId: target,
        name: this.user(target).name,
        epoch: 0,
        createdAt: this.o.clock.now(),
      };
      issuer = rec;
      this.adminCommit(
        actor,
        { action: "guestCode.issuer.add", lockId, issuerId: rec.issuerId, userId: target },
        () => this.store.upsertGuestCodeIssuer(rec),
        lockId,
      );
    } else if (handout) {
      this.adminCommit(
        actor,
        { action: "guestCode.issuer.key", lockId, issuerId: issuer.issuerId },
        () => {},
        lockId,
      );
    }
    return this.issuerFile(lockId, issuer);
  }

  /** The issuers of a lock (never their keys), with whether each is active. Admins only. */
  guestCodeIssuers(actor: Actor, lockId: string): (GuestCodeIssuerRecord & { active: boolean })[] {
    this.requireRole(actor, Role.Admin);
    this.lock(lockId);
    return this.store.guestCodeIssuers(lockId).map((i) => ({ ...i, active: this.mayIssue(i.userId) }));
  }

  /**
   * Revoke every code an issuer has issued so far: raise its epoch. Its admin fetches the new key with
   * enrolIssuer (`latchkey code enrol`). Throws LK_ISSUER_UNKNOWN, LK_FORBIDDEN, LK_CONFLICT (epoch 65535).
   */
  raiseIssuerEpoch(actor: Actor, lockId: string, issuerId: string): { issuerId: string; epoch: number } {
    const issuer = this.issuerOf(lockId, issuerId);
    this.requireIssuerControl(actor, issuer);
    return this.bumpEpoch(actor, lockId, issuer);
  }

  private bumpEpoch(
    actor: Actor,
    lockId: string,
    issuer: GuestCodeIssuerRecord,
  ): { issuerId: string; epoch: number } {
    if (issuer.epoch >= 0xffff)
      throw new LatchkeyError("LK_CONFLICT", "this issuer's epochs are used up: remove it");
    const next = { ...issuer, epoch: issuer.epoch + 1 };
    this.adminCommit(
      actor,
      { action: "guestCode.issuer.epoch", lockId, issuerId: issuer.issuerId, epoch: next.epoch },
      () => {
        this.store.upsertGuestCodeIssuer(next);
        this.store.deleteGuestCodeStateBelowEpoch(lockId, issuer.issuerId, next.epoch);
      },
      lockId,
    );
    this.lock(lockId).forgetGuestCodeRows(issuer.issuerId, next.epoch);
    return { issuerId: issuer.issuerId, epoch: next.epoch };
  }

  /** Revoke everything issued on a lock until now, by every issuer (raise every epoch). Admins. */
  revokeAllGuestCodes(actor: Actor, lockId: string): { issuerId: string; epoch: number }[] {
    this.requireRole(actor, Role.Admin);
    this.lock(lockId);
    return this.store.guestCodeIssuers(lockId).map((i) => this.bumpEpoch(actor, lockId, i));
  }

  /** Cut an issuer off: its key is no longer derived, so none of its codes opens. Owner or the issuer's admin. */
  removeIssuer(actor: Actor, lockId: string, issuerId: string): void {
    const issuer = this.issuerOf(lockId, issuerId);
    this.requireIssuerControl(actor, issuer);
    this.adminCommit(
      actor,
      { action: "guestCode.issuer.remove", lockId, issuerId },
      () => this.store.deleteGuestCodeIssuer(lockId, issuerId),
      lockId,
    );
    this.lock(lockId).forgetGuestCodeRows(issuerId);
  }

  /**
   * Revoke one guest code (docs/protocol/guest-codes.md § 5). With an actor (owner or admin), any code;
   * without one, the request must carry the issuer's MAC. Idempotent; a code of an older epoch is already
   * revoked. Throws LK_GUESTCODE_INVALID, LK_ISSUER_UNKNOWN, LK_UNAUTHENTICATED (bad or missing MAC),
   * LK_FORBIDDEN, LK_GUESTCODE_STATE_FULL.
   */
  revokeGuestCode(
    actor: Actor | null,
    lockId: string,
    r: GuestCodeRevocation & { mac?: string | undefined },
  ): { status: "revoked" | "alreadyRevoked" } {
    assertRevocation(r);
    this.lock(lockId);
    if (actor) this.requireRole(actor, Role.Admin);
    else {
      // Without a token the MAC is checked first, so an unauthenticated caller learns nothing about which
      // issuers or epochs exist (an unknown issuer fails exactly like a wrong MAC).
      const known = this.store.guestCodeIssuers(lockId).find((x) => x.issuerId === r.issuerId);
      const key = deriveIssuerKey(this.crypto, this.o.dataDir.guestCodeSecret, lockId, r.issuerId, r.epoch);
      const expected = revocationMac(this.crypto, key, r);
      const ok =
        typeof r.mac === "string" && /^[0-9a-f]{64}$/.test(r.mac) && timingSafeEqualHex(expected, r.mac);
      if (!ok || !known)
        throw new LatchkeyError("LK_UNAUTHENTICATED", "the revocation's issuer MAC does not verify");
    }
    const issuer = this.issuerOf(lockId, r.issuerId);
    if (r.epoch > issuer.epoch)
      throw new LatchkeyError("LK_GUESTCODE_INVALID", "no such epoch for this issuer yet");
    if (r.epoch < issuer.epoch) return { status: "alreadyRevoked" };
    const rt = this.lock(lockId);
    if (rt.guestCodeState(r.issuerId, r.epoch, r.codeId)?.revoked) return { status: "alreadyRevoked" };
    rt.revokeGuestCode(r, {
      action: "guestCode.revoke",
      lockId,
      issuerId: r.issuerId,
      epoch: r.epoch,
      codeId: r.codeId,
      actorId: actor ? actor.userId : `issuer:${r.issuerId}`,
    });
    // The revocation as an operation too, so it reaches the cloud (and wins there, for good).
    try {
      this.store.transaction(() =>
        this.replica.record([
          {
            kind: "guestcode.revoke",
            target: r.codeId,
            payload: { issuerId: r.issuerId, epoch: r.epoch, dropAfter: r.dropAfter },
          } as LocalChange,
        ]),
      );
      this.onOpsRecorded?.();
    } catch (e) {
      // The lock applied the revocation already; only its copy for the cloud failed (logged, not fatal).
      this.replica.invalidate();
      console.error(`latchkey: guest-code revocation not recorded as an operation: ${(e as Error).message}`);
    }
    return { status: "revoked" };
  }

  /**
   * Check a request to issue a guest code without changing anything: the code name, the LK-GC1 grids, and
   * that the window is not already over on the lock's clock. The API calls it before
   * {@link issueGuestCode}, which enrols the caller's issuer (an audited change) before it plans the code,
   * so that a rejected request changes nothing. Throws LK_INVALID_INPUT, LK_GUESTCODE_INVALID, LK_NOT_FOUND.
   */
  checkGuestCodeRequest(lockId: string, req: GuestCodeRequest, name: string): void {
    assertDisplayName(name, "code name");
    const rt = this.lock(lockId);
    const p = planGuestCode(req)[0]!.params;
    const nowLocal = localTimeIn(rt.record.timeZone, rt.readClock().now).localEpochMinutes;
    if (p.kind !== "firstUse" && dropAfterOf(p, rt.record.settings.guestCodeDriftMinutes) <= nowLocal) {
      throw new LatchkeyError("LK_GUESTCODE_INVALID", "this window is already over on the lock's clock");
    }
  }

  /**
   * Issue a code through the hub (the API's path; the CLI issues offline from its issuer file). Uses the
   * caller's issuer on the lock, enrolling it if needed, and records the code in the hub's ledger (never
   * its digits). Returns the digits once. Throws LK_GUESTCODE_INVALID, LK_CONFLICT, LK_FORBIDDEN.
   */
  issueGuestCode(actor: Actor, lockId: string, req: GuestCodeRequest, name: string): HubIssuedGuestCode {
    // Everything that can refuse the request first, so a refused request changes nothing.
    this.requireRole(actor, Role.Admin);
    this.checkGuestCodeRequest(lockId, req, name);
    const file = this.ensureIssuer(actor, lockId, undefined, false);
    const ledger = this.store.guestCodeLedger(lockId);
    const avoid = new Set(
      ledger.filter((e) => e.issuerId === file.issuerId && e.epoch === file.epoch).map((e) => e.codeId),
    );
    const issued = issueGuestCode(this.crypto, fromHex(file.keyHex), req, { digits: file.digits, avoid });
    const p = issued.plan.params;
    const rt = this.lock(lockId);
    const now = rt.readClock().now;
    const nowLocal = localTimeIn(rt.record.timeZone, now).localEpochMinutes;
    const dropAfter = dropAfterOf(p, file.driftMinutes, p.kind === "firstUse" ? p.to : null);
    if (p.kind !== "firstUse" && dropAfter <= nowLocal) {
      throw new LatchkeyError("LK_GUESTCODE_INVALID", "this window is already over on the lock's clock");
    }
    const entry: GuestCodeLedgerRecord = {
      lockId,
      issuerId: file.issuerId,
      epoch: file.epoch,
      codeId: issued.codeId,
      name,
      kind: p.kind,
      validFrom: formatLocalMinutes(p.from),
      validTo: formatLocalMinutes(p.to),
      dropAfter,
      issuedAt: now,
    };
    this.adminCommit(
      actor,
      {
        action: "guestCode.issue",
        lockId,
        issuerId: file.issuerId,
        epoch: file.epoch,
        codeId: issued.codeId,
        kind: p.kind,
        name,
      },
      () => this.store.putGuestCodeLedger(entry),
      lockId,
    );
    return {
      code: issued.code,
      codeId: issued.codeId,
      issuerId: file.issuerId,
      epoch: file.epoch,
      kind: p.kind,
      validFrom: entry.validFrom,
      validTo: entry.validTo,
      exact: issued.plan.exact,
      dropAfter,
      description: describeIssued(issued),
      shareText: shareText(issued, name, rt.record.name, rt.record.timeZone),
    };
  }

  /** The hub's ledger of a lock with each code's state (uses, revoked). Admins. */
  guestCodes(actor: Actor, lockId: string): GuestCodeListEntry[] {
    this.requireRole(actor, Role.Admin);
    const rt = this.lock(lockId);
    const issuers = new Map(this.store.guestCodeIssuers(lockId).map((i) => [i.issuerId, i]));
    const ledger = this.store.guestCodeLedger(lockId);
    // The lock keeps a row only for codes whose uses it must count (one-time, limited, first-use); the
    // audit log has every grant, so the list counts from it (bounded: the ledger's oldest entry on).
    const grants = new Map<string, number>();
    if (ledger.length > 0) {
      const from = Math.min(...ledger.map((e) => e.issuedAt));
      let after = 0;
      for (let page = 0; page < 20; page++) {
        const events = this.store.query({
          lockId,
          kinds: [AuditKind.AccessGranted],
          from,
          afterSeq: after,
          limit: 5_000,
        });
        for (const ev of events) {
          const id = ev.data.codeId;
          if (typeof id === "string") grants.set(id, (grants.get(id) ?? 0) + 1);
        }
        if (events.length < 5_000) break;
        after = events.at(-1)!.seq;
      }
    }
    return ledger.map((e) => {
      const st = rt.guestCodeState(e.issuerId, e.epoch, e.codeId);
      const issuer = issuers.get(e.issuerId);
      const revoked = st?.revoked === true || !issuer || issuer.epoch > e.epoch;
      return { ...e, uses: Math.max(st?.uses ?? 0, grants.get(e.codeId) ?? 0), revoked };
    });
  }

  // ------------------------------------------------------------------ door operations

  /** Remote unlock by an authenticated user: decided by decide() like any other attempt. */
  remoteUnlock(actor: Actor, lockId: string): Promise<AttemptResult> {
    return this.lock(lockId).remoteUnlock(actor.userId);
  }

  remoteLock(actor: Actor, lockId: string): ReturnType<LockRuntime["remoteLock"]> {
    return this.lock(lockId).remoteLock(actor.userId);
  }

  // ------------------------------------------------------------------ audit

  queryAudit(actor: Actor, q: AuditQuery): AuditEvent[] {
    // Members, guests and service users see only their own events.
    const scoped = ROLE_RANK[actor.role] >= ROLE_RANK[Role.Admin] ? q : { ...q, userId: actor.userId };
    return this.store.query(scoped);
  }

  verifyAudit(): ChainVerification {
    return this.audit.verify(this.publicKey);
  }

  /** Commit an admin change with its audit event in one durable transaction. */
  private adminCommit(
    actor: Actor | null,
    data: Record<string, JsonValue>,
    apply: () => void,
    lockId: string | null = null,
    changes?: () => LocalChange[],
  ): void {
    this.guestKeysCache.clear();
    const event: AuditEventInput = {
      at: this.o.clock.now(),
      lockId,
      kind: AuditKind.Admin,
      data: actor ? { ...actor.attribution, ...data, actorId: actor.userId } : { ...data, actorId: "system" },
    };
    try {
      this.audit.commit([event], () => {
        apply();
        // The same change as a signed operation, in the same transaction (nothing when the log is inactive).
        if (changes) this.replica.record(changes());
      });
    } catch (e) {
      this.replica.invalidate();
      throw e;
    }
    if (changes) this.onOpsRecorded?.();
  }

  /** The cloud sync when the hub was started with one (src/hub/cloud-sync.ts), else null. */
  cloud: CloudSync | null = null;

  /** Called after local changes were recorded as operations (the cloud sync sends them). */
  onOpsRecorded: (() => void) | null = null;

  // ------------------------------------------------------------------ operations (docs/protocol/sync.md)

  /** A user's fields as `user.upsert` (+ `schedule.set` when asked). */
  private userChanges(u: User, schedules: boolean): LocalChange[] {
    const out: LocalChange[] = [
      {
        kind: "user.upsert",
        target: u.id,
        payload: {
          name: u.name,
          userType: u.userType,
          userStatus: u.userStatus,
          expiringTimeout: u.expiringTimeout,
          role: u.role,
        },
      } as LocalChange,
    ];
    if (schedules) {
      out.push({
        kind: "schedule.set",
        target: u.id,
        payload: { weekDay: u.weekDaySchedules, yearDay: u.yearDaySchedules },
      } as LocalChange);
    }
    return out;
  }

  /** A credential as `credential.upsert`; a PIN or TOTP secret sealed to this hub's own key (or `held`). */
  private credentialChange(c: Credential, secret: SealedSecret | null): LocalChange {
    const common = {
      userId: c.userId,
      locks: c.locks === "all" ? "all" : [...new Set(c.locks)].sort(),
      label: c.label,
    };
    const seal = (x: SealedSecret) =>
      sealToLock(this.crypto, this.sealPublicKey, x, sealContext(this.deviceId, c.id));
    let payload: unknown;
    switch (c.type) {
      case "pin":
        payload = {
          ...common,
          type: "pin",
          sealed: seal(secret ?? { kind: SealedKind.Held }),
          duress: c.duress,
        };
        break;
      case "totp":
        payload = {
          ...common,
          type: "totp",
          sealed: seal({ kind: SealedKind.TotpSecret, secret: c.secret }),
          requirePin: c.requirePin,
        };
        break;
      case "rfid":
        payload = { ...common, type: "rfid", cardId: c.cardId };
        break;
      case "fingerprint":
        payload = { ...common, type: "fingerprint", slot: c.slot };
        break;
    }
    return { kind: "credential.upsert", target: c.id, payload } as LocalChange;
  }

  /**
   * Record every user, schedule, credential and lock mode as operations, once, when the log becomes
   * active (the hub's key was granted the admin role). Idempotent: a marker in meta.
   */
  private recordSnapshot(): number {
    if (!this.replica.active() || this.store.getMeta("ops.snapshot") === "1") return 0;
    const changes: LocalChange[] = [];
    for (const u of this.users()) changes.push(...this.userChanges(u, true));
    for (const c of this.allCredentials()) changes.push(this.credentialChange(c, null));
    for (const l of this.locks())
      changes.push({ kind: "mode.set", target: l.id, payload: { mode: l.operatingMode } } as LocalChange);
    this.adminCommit(
      null,
      { action: "ops.snapshot", operations: changes.length },
      () => this.store.setMeta("ops.snapshot", "1"),
      null,
      () => changes,
    );
    return changes.length;
  }

  /**
   * Admit signed operations (from the cloud, or submitted at the API by an owner's or admin's own key),
   * fold them in and make the hub's tables follow the new state, in one transaction with an audit event.
   * Returns what was accepted and refused (per input index, with its code) and what changed.
   * @throws LatchkeyError `LK_KEYS_NOT_SET_UP` before an owner root is registered.
   */
  applyOps(
    actor: Actor | null,
    envelopes: readonly Uint8Array[],
    fromCloud: boolean,
  ): {
    accepted: string[];
    refused: { index: number; code: string }[];
    fresh: number;
    changed: MaterializeResult | null;
  } {
    let result!: ReturnType<HubReplica["admit"]>;
    let changed: MaterializeResult | null = null;
    const wasActive = this.replica.active();
    try {
      this.audit.commit(
        () => {
          const c = changed;
          if (result.fresh === 0 || c === null) return [];
          return [
            {
              at: this.o.clock.now(),
              lockId: null,
              kind: AuditKind.Admin,
              data: {
                action: "ops.applied",
                actorId: actor ? actor.userId : fromCloud ? "cloud" : "system",
                operations: result.fresh,
                signers: [...new Set(result.accepted.map((a) => a.op.actor))],
                usersWritten: c.usersWritten,
                usersRemoved: c.usersRemoved,
                credentialsWritten: c.credentialsWritten,
                credentialsRemoved: c.credentialsRemoved,
                credentialsRefused: c.credentialsRefused.map((x) => `${x.id}:${x.code}`),
                modesSet: c.modesSet,
              },
            },
          ];
        },
        () => {
          result = this.replica.admit(envelopes, fromCloud);
          if (result.fresh === 0) return;
          changed = materialize(
            {
              crypto: this.crypto,
              store: this.store,
              siteId: this.deviceId,
              pinSecret: this.o.dataDir.pinSecret,
              sealKey: this.o.dataDir.sealKey,
              now: () => this.o.clock.now(),
              locks: () => this.store.locks(),
              updateLock: (next) => this.store.updateLock(next),
            },
            this.replica.state()!,
          );
        },
      );
    } catch (e) {
      this.replica.invalidate();
      throw e;
    }
    if (result.fresh > 0) {
      this.guestKeysCache.clear();
      this.rebuildIndex();
      for (const l of this.store.locks()) this.runtimes.get(l.id)?.updateRecord(l);
    }
    if (result.fresh > 0) {
      // Phone keys revoked elsewhere: a new signed revocation list for the locks and the wallets.
      const revoked = this.replica.state()?.revokedKeys ?? new Set<string>();
      const live = this.store.phoneKeys
        .keys()
        .filter((k) => k.revokedAt === null && revoked.has(k.serial.toLowerCase()))
        .map((k) => k.serial);
      if (live.length > 0) this.keys.revokeSerials(actor, live, "keys.revoke_remote", [], false);
    }
    if (result.fresh > 0) {
      // Guest codes revoked elsewhere: revoke them at the lock whose issuer made them.
      for (const g of this.replica.state()?.revokedGuestCodes.values() ?? []) {
        for (const l of this.store.locks()) {
          const issuer = this.store.guestCodeIssuers(l.id).find((x) => x.issuerId === g.issuerId);
          if (!issuer || g.epoch !== issuer.epoch) continue;
          const rt = this.lock(l.id);
          if (rt.guestCodeState(g.issuerId, g.epoch, g.codeId)?.revoked) continue;
          try {
            rt.revokeGuestCode(g, {
              action: "guestCode.revoke",
              lockId: l.id,
              issuerId: g.issuerId,
              epoch: g.epoch,
              codeId: g.codeId,
              actorId: actor ? actor.userId : fromCloud ? "cloud" : "system",
            });
          } catch (e) {
            console.error(
              `latchkey: guest-code revocation from an operation not applied: ${(e as Error).message}`,
            );
          }
        }
      }
    }
    if (!wasActive && this.replica.active()) this.recordSnapshot();
    return {
      accepted: result.accepted.map((a) => a.op.id),
      refused: result.refused,
      fresh: result.fresh,
      changed,
    };
  }

  /** Operations held, not yet acknowledged by the cloud, and whether the hub signs its changes. */
  opsStatus(): {
    enabled: boolean;
    active: boolean;
    hubKeyId: string;
    total: number;
    unacked: number;
    skipped: number;
  } {
    const st = this.replica.state();
    return {
      enabled: st !== null,
      active: this.replica.active(),
      hubKeyId: this.replica.hubKeyId,
      ...this.store.ops.counts(),
      skipped: st?.skipped.size ?? 0,
    };
  }

  /** Export users, credentials (without secrets) and rules as documented JSON (docs/formats/export.md). */
  exportData(actor: Actor): Record<string, JsonValue> {
    this.requireRole(actor, Role.Admin);
    return {
      format: "latchkey-export",
      version: 1,
      exportedAt: new Date(this.o.clock.now()).toISOString(),
      hub: { deviceId: this.deviceId },
      locks: this.locks().map((l) => ({
        id: l.id,
        name: l.name,
        timeZone: l.timeZone,
        operatingMode: l.operatingMode,
        settings: l.settings as unknown as JsonValue,
      })),
      users: this.users().map((u) => ({ ...u }) as unknown as JsonValue),
      credentials: this.credentialViews().map((c) => ({ ...c }) as unknown as JsonValue),
      guestCodeIssuers: this.store.guestCodeIssuers().map((i) => ({ ...i }) as unknown as JsonValue),
      guestCodes: this.locks().flatMap((l) =>
        this.store.guestCodeLedger(l.id).map((e) => ({ ...e }) as unknown as JsonValue),
      ),
      // Phone keys by serial, holder key id, scope, rights and validity (their signed chains stay here).
      phoneKeys: this.store.phoneKeys.authority()
        ? this.keys.keys(actor).map((k) => ({ ...k }) as unknown as JsonValue)
        : [],
      secretsIncluded: false,
      note:
        "PINs, authenticator (TOTP) secrets and guest-code keys are never exported: users re-enrol them " +
        "after an import, and issuers re-enrol (codes issued before do not carry over). Phone keys are " +
        "listed without their signed chains; the hub's signing key and the owner's root are not exported.",
    };
  }

  // ------------------------------------------------------------------ export with secrets, restore (src/hub/export.ts)

  /**
   * The secret material an export version 2 seals to a passphrase (docs/formats/export.md § "Version 2"):
   * the PIN key and every PIN digest, authenticator secrets (opened from their seal) with their last
   * accepted step, the guest-code secret, and the guest-code rows of each issuer's current epoch.
   * Owner only. Copies: the caller seals them at once and never logs them. Throws LK_FORBIDDEN.
   */
  exportSecretMaterial(actor: Actor): ExportSecretMaterial {
    this.requireRole(actor, Role.Owner);
    const creds = this.allCredentials();
    const current = new Map(this.store.guestCodeIssuers().map((i) => [`${i.lockId}/${i.issuerId}`, i.epoch]));
    return {
      pinKey: new Uint8Array(this.o.dataDir.pinSecret),
      guestCodeKey: new Uint8Array(this.o.dataDir.guestCodeSecret),
      pins: creds.flatMap((c) => (c.type === "pin" ? [{ credentialId: c.id, digest: c.pinDigest }] : [])),
      totp: creds.flatMap((c) =>
        c.type === "totp" ? [{ credentialId: c.id, secret: c.secret, lastStep: c.lastStep }] : [],
      ),
      guestCodeState: this.locks().flatMap((l) =>
        this.store
          .guestCodeStates(l.id)
          .filter((u) => current.get(`${l.id}/${u.issuerId}`) === u.epoch)
          .map((u) => ({ ...u, lockId: l.id })),
      ),
    };
  }

  /**
   * Whether `key` is this hub's PIN key or guest-code secret (`same`), could become it because nothing
   * depends on the current one yet (`free`: no PIN credential, or no guest-code issuer), or neither
   * (`differs`). Constant-time comparison; reveals nothing else.
   */
  secretKeyStatus(which: RestorableKey, key: Uint8Array): "same" | "free" | "differs" {
    const mine = which === "pin" ? this.o.dataDir.pinSecret : this.o.dataDir.guestCodeSecret;
    if (timingSafeEqual(key, mine)) return "same";
    const inUse =
      which === "pin"
        ? this.store.credentials().some((c) => c.type === "pin")
        : this.store.guestCodeIssuers().length > 0;
    return inUse ? "differs" : "free";
  }

  /**
   * Restore what an opened export version 2 carries (src/hub/import.ts applies it as its last step):
   * adopt the exporting hub's PIN key and/or guest-code secret (only while nothing depends on this hub's
   * own, see {@link secretKeyStatus}), then store the PIN and authenticator credentials (new ids) and the
   * guest-code issuers with their ledger in one transaction, audited as `credential.add` and
   * `guestCode.issuer.add` events marked `restoredFrom` (never a secret), and recorded as operations.
   * Codes used or revoked at the exporting hub are then revoked here. Owner only. On a failure nothing
   * stays (keys put back, rows removed). Returns document credential id → new credential id.
   * Throws LK_FORBIDDEN, LK_CONFLICT (a key in use, an issuer that exists), LK_PIN_IN_USE, LK_NOT_FOUND.
   */
  restoreSecrets(actor: Actor, r: SecretRestore): { credentials: Record<string, string> } {
    this.requireRole(actor, Role.Owner);
    const undoKeys: (() => void)[] = [];
    const adopted: RestorableKey[] = [];
    const toAdopt: [RestorableKey, Uint8Array][] = [];
    const ids: Record<string, string> = {};
    const fromOf = new Map<string, string>();
    const now = this.o.clock.now();
    const creds: Credential[] = [];
    try {
      for (const [which, key] of [
        ["pin", r.pinKey],
        ["guestCode", r.guestCodeKey],
      ] as const) {
        if (key === null) continue;
        const status = this.secretKeyStatus(which, key);
        if (status === "differs")
          throw new LatchkeyError(
            "LK_CONFLICT",
            `this hub's ${which} key is in use and differs from the export's`,
          );
        if (status === "free") toAdopt.push([which, key]);
      }
      const pins = this.store.credentials().filter((c) => c.type === "pin");
      for (const c of r.credentials) {
        const { from, ...fields } = c;
        this.user(fields.userId);
        const locks = this.resolveScope(fields.locks);
        const cred = {
          ...fields,
          locks,
          id: newId((n) => this.crypto.randomBytes(n), "cred"),
          createdAt: now,
        } as Credential;
        if (cred.type === "pin") {
          if (
            pins.some(
              (p) => p.type === "pin" && p.pinDigest === cred.pinDigest && this.scopesOverlap(p.locks, locks),
            )
          )
            throw new LatchkeyError(
              "LK_PIN_IN_USE",
              "a restored PIN is already in use on an overlapping lock",
            );
          pins.push(cred);
        }
        ids[from] = cred.id;
        fromOf.set(cred.id, from);
        creds.push(cred);
      }
      for (const i of r.issuers) {
        this.lock(i.record.lockId);
        this.user(i.record.userId);
        if (this.store.guestCodeIssuers(i.record.lockId).some((x) => x.issuerId === i.record.issuerId))
          throw new LatchkeyError(
            "LK_CONFLICT",
            `issuer ${i.record.issuerId} already exists on ${i.record.lockId}`,
          );
      }
      // Everything checked: now the keys (a file each), then one transaction.
      for (const [which, key] of toAdopt) {
        undoKeys.push(replaceDataDirSecret(this.o.dataDir, which, key));
        adopted.push(which);
      }
      this.guestKeysCache.clear();
      const events: AuditEventInput[] = adopted.map((key) => ({
        at: now,
        lockId: null,
        kind: AuditKind.Admin,
        data: { action: "secret.adopt", key, actorId: actor.userId },
      }));
      for (const c of creds) {
        events.push({
          at: now,
          lockId: null,
          kind: AuditKind.Admin,
          data: {
            action: "credential.add",
            userId: c.userId,
            credentialId: c.id,
            credentialType: c.type,
            locks: c.locks as JsonValue,
            ...(c.type === "pin" ? { duress: c.duress } : {}),
            ...(c.type === "totp" ? { requirePin: c.requirePin } : {}),
            restoredFrom: fromOf.get(c.id) ?? null,
            actorId: actor.userId,
          },
        });
      }
      for (const i of r.issuers) {
        events.push({
          at: now,
          lockId: i.record.lockId,
          kind: AuditKind.Admin,
          data: {
            action: "guestCode.issuer.add",
            lockId: i.record.lockId,
            issuerId: i.record.issuerId,
            userId: i.record.userId,
            epoch: i.record.epoch,
            restoredFrom: i.record.issuerId,
            actorId: actor.userId,
          },
        });
      }
      try {
        this.audit.commit(events, () => {
          for (const c of creds) this.store.insertCredential(c);
          for (const i of r.issuers) {
            this.store.upsertGuestCodeIssuer(i.record);
            for (const e of i.ledger) this.store.putGuestCodeLedger(e);
          }
          this.replica.record(creds.map((c) => this.credentialChange(c, null)));
        });
      } catch (e) {
        this.replica.invalidate();
        throw e;
      }
    } catch (e) {
      for (const undo of undoKeys.reverse()) undo();
      this.guestKeysCache.clear();
      throw e;
    }
    this.guestKeysCache.clear();
    this.rebuildIndex();
    if (creds.length > 0) this.onOpsRecorded?.();
    try {
      for (const i of r.issuers) {
        const rt = this.lock(i.record.lockId);
        for (const s of i.spent) {
          rt.revokeGuestCode(
            { issuerId: i.record.issuerId, epoch: i.record.epoch, codeId: s.codeId, dropAfter: s.dropAfter },
            {
              action: "guestCode.revoke",
              lockId: i.record.lockId,
              issuerId: i.record.issuerId,
              epoch: i.record.epoch,
              codeId: s.codeId,
              reason: "used or revoked before the export",
              actorId: actor.userId,
            },
          );
        }
      }
    } catch (e) {
      this.undoRestore(actor, creds, r.issuers);
      for (const undo of undoKeys.reverse()) undo();
      this.guestKeysCache.clear();
      throw e;
    }
    return { credentials: ids };
  }

  /** Take back what {@link restoreSecrets} stored (its spent-code revocations could not all be made). */
  private undoRestore(actor: Actor, creds: readonly Credential[], issuers: SecretRestore["issuers"]): void {
    this.adminCommit(
      actor,
      {
        action: "import.undo",
        credentialIds: creds.map((c) => c.id),
        issuerIds: issuers.map((i) => i.record.issuerId),
      },
      () => {
        for (const c of creds) this.store.deleteCredential(c.id);
        for (const i of issuers) this.store.deleteGuestCodeIssuer(i.record.lockId, i.record.issuerId);
      },
      null,
      () => creds.map((c) => ({ kind: "credential.remove", target: c.id, payload: {} }) as LocalChange),
    );
    for (const i of issuers) this.lock(i.record.lockId).forgetGuestCodeRows(i.record.issuerId);
    this.rebuildIndex();
  }

  /** Used by tests and the bench: now on the hub's clock. */
  now(): EpochMs {
    return EpochMs(this.o.clock.now());
  }
}
