/**
 * The capability report (`GET /api/v1/capabilities`, `latchkey capabilities`): what this hub and its
 * locks actually support, stated from the code's own limits rather than a marketing sheet — the honest
 * answer that many locks do not give (issue 6). Every number here is the limit the code enforces.
 */
import { AuditKind } from "../core/audit/chain.ts";
import { MAX_CHAIN_LINKS } from "../core/keys/digital-key.ts";
import { OperatingMode, UserType } from "../core/model.ts";
import { MAX_SCHEDULES } from "../core/ops/operation.ts";
import { GUEST_CODE_STATE_CAP } from "../device/lock-runtime.ts";
import { Hub } from "./hub.ts";

/** The report. Stable keys; numbers are limits enforced by this build. */
export interface Capabilities {
  readonly format: "latchkey-capabilities";
  readonly version: 1;
  readonly software: { readonly name: "latchkey"; readonly version: string };
  readonly hardware: {
    readonly kind: "simulated";
    readonly doorPositionSensor: true;
    readonly locks: string[];
  };
  readonly credentials: Record<string, Record<string, unknown>>;
  readonly userTypes: string[];
  readonly schedules: Record<string, unknown>;
  readonly operatingModes: string[];
  readonly events: string[];
  readonly offline: Record<string, boolean | string>;
  readonly sync: Record<string, unknown>;
  readonly interfaces: Record<string, boolean | string>;
}

/** What `hub` supports now (the cloud line reflects whether it was started with one). */
export function capabilities(hub: Hub, version: string): Capabilities {
  return {
    format: "latchkey-capabilities",
    version: 1,
    software: { name: "latchkey", version },
    hardware: { kind: "simulated", doorPositionSensor: true, locks: hub.locks().map((l) => l.id) },
    credentials: {
      pin: {
        digits: "4-12",
        storedAs: "HMAC-SHA-256 digest",
        minLengthPerLock: "pinMinLength, raised with the number of codes",
        duress: true,
        sharedCodes: false,
        slots: "unlimited (database-bound)",
      },
      rfid: { formats: ["ISO 14443 UID (4, 7, 10 bytes)", "Wiegand 26/34/35/37"], slots: "unlimited" },
      fingerprint: { slots: "1-1000 (sensor template slots)" },
      totp: {
        standard: "RFC 6238 (SHA-1, 6 digits, 30 s)",
        withPin: true,
        aloneMaxPerLock: Hub.MAX_TOTP_ALONE_PER_LOCK,
      },
      guestCode: {
        offline: true,
        kinds: ["window", "one-time", "uses", "first-use", "recurring"],
        revocableOneByOne: true,
        revocationStateCapPerLock: GUEST_CODE_STATE_CAP,
      },
      phoneKey: {
        algorithms: ["ES256", "EdDSA"],
        offlineDelegation: true,
        maxChainLinks: MAX_CHAIN_LINKS,
        transport: "TCP link bridge (no Bluetooth adapter in this build)",
      },
    },
    userTypes: Object.values(UserType),
    schedules: {
      weekDayPerUser: MAX_SCHEDULES,
      yearDayPerUser: MAX_SCHEDULES,
      timeZones: "IANA, per lock",
      holiday: false,
    },
    operatingModes: Object.values(OperatingMode),
    events: Object.values(AuditKind),
    offline: {
      decisions: true,
      management: true,
      auditLog: true,
      guestCodes: true,
      phoneKeys: true,
      note: "every decision, change and record is local; the cloud is an optional replica",
    },
    sync: {
      cloud: hub.cloud ? "configured" : "not configured",
      signedOperations: hub.opsStatus().active,
      protocol: "MQTT 5 (3.1.1 fallback), docs/protocol/sync.md",
    },
    interfaces: {
      httpApi: true,
      cli: true,
      matter:
        "start --matter: Door Lock with PIN, USR, COTA, week-day/year-day schedules, door position sensor; lock/unlock, users, PIN credentials and schedules are Latchkey's own; events from the audit log (docs/protocol/matter.md)",
      homeAssistantDiscovery: "start --mqtt: lock (PIN code), door, battery, alarm and last-event entities",
      webConsole:
        "served by the hub at / (people, guest codes, schedules, activity, review, health, readiness check); no internet",
    },
  };
}
