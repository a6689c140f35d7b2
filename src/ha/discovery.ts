/**
 * Home Assistant over MQTT (docs/protocol/home-assistant.md). Publishes Home Assistant's MQTT discovery
 * configs (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery) so each lock shows up as a
 * device with a lock entity (PIN-code entry), a door binary sensor, a battery sensor, an alarm sensor and
 * a last-event sensor; keeps their retained state topics current from the audit log and
 * `hub.status(lockId)`; and takes lock/unlock commands from Home Assistant.
 *
 * Commands are never a side door: an UNLOCK with a code goes through the lock's keypad path
 * (`LockRuntime.keypadEntry`: PIN, PIN + authenticator code, guest code, wrong-code lockout), an UNLOCK
 * without one (only with {@link HomeAssistantOptions.allowCodelessUnlock}) and every LOCK go through
 * `hub.remoteUnlock` / `hub.remoteLock` as {@link HomeAssistantOptions.actor}. Each is decided by
 * `decide()` and written to the signed audit log before the bolt moves. A payload that does not parse is
 * ignored with a coded log line and changes nothing.
 *
 * Availability: a retained `online` on connect, a retained `offline` as the Last Will (and on close).
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { z } from "zod";
import type { JsonValue } from "../core/audit/canonical.ts";
import type { AuditEvent } from "../core/audit/chain.ts";
import { isLatchkeyError, LatchkeyError } from "../core/errors.ts";
import type { Actor, Hub } from "../hub/hub.ts";

// ------------------------------------------------------------------ names and defaults

/** Home Assistant's default discovery prefix (its MQTT integration's "Discovery prefix" option). */
export const DEFAULT_DISCOVERY_PREFIX = "homeassistant";

/** The payloads on the availability topic (Home Assistant's defaults `payload_available`/`payload_not_available`). */
export const Availability = { Online: "online", Offline: "offline" } as const;

/** Command payloads (Home Assistant's defaults `payload_lock` / `payload_unlock`). */
export const HaCommand = { Lock: "LOCK", Unlock: "UNLOCK" } as const;
export type HaCommand = (typeof HaCommand)[keyof typeof HaCommand];

/**
 * Lock states on the state topic: Home Assistant's defaults `state_locked`, `state_unlocked`,
 * `state_jammed`, `state_locking`, `state_unlocking`; `None` is its "unknown" payload.
 */
export const HaLockState = {
  locked: "LOCKED",
  unlocked: "UNLOCKED",
  jammed: "JAMMED",
  locking: "LOCKING",
  unlocking: "UNLOCKING",
  unknown: "None",
} as const;

/**
 * What the alarm sensor shows: the most serious condition the lock is in now, `none` when all is well.
 * Listed most serious first (the order the sensor picks in).
 */
export const HaAlarm = [
  "forced_open",
  "tamper",
  "jammed",
  "lockout",
  "door_ajar",
  "battery_critical",
  "battery_low",
  "none",
] as const;
export type HaAlarm = (typeof HaAlarm)[number];

/**
 * The code Home Assistant asks for before it sends a command (`code_format`, a regex it checks in the UI):
 * a PIN (4–12 digits), a PIN + 6-digit authenticator code (up to 18), or a guest code.
 */
export const CODE_FORMAT = "^\\d{4,18}$";

/**
 * The `command_template` Home Assistant renders for each command. `value` is `LOCK` or `UNLOCK`, `code` the
 * code typed in the UI (Home Assistant renders `None` when there is none).
 */
export const COMMAND_TEMPLATE = '{"action":"{{ value }}","code":"{{ code }}"}';

/** Longest command payload read (bytes); longer ones are ignored. */
export const MAX_COMMAND_BYTES = 256;

/** Options of {@link startHomeAssistant}. */
export interface HomeAssistantOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883` (Home Assistant needs an MQTT 5 broker; we speak 5). */
  readonly url: string;
  /** Discovery prefix; default {@link DEFAULT_DISCOVERY_PREFIX}. */
  readonly prefix?: string;
  /** Root of Latchkey's own topics; default `latchkey/<deviceId>`. */
  readonly baseTopic?: string;
  /** Whom LOCK commands (and codeless UNLOCKs) run as: decided and audited under this user. */
  readonly actor: Actor;
  /**
   * Let Home Assistant UNLOCK without a code, as {@link actor}. Default false: Home Assistant asks for a
   * code (`code_format`) and an UNLOCK without one is refused at the boundary.
   */
  readonly allowCodelessUnlock?: boolean;
  /** Wait between reconnect attempts; default 1,000 ms. */
  readonly reconnectMs?: number;
  /** Re-read every lock's status this often (battery drains without an event); default 60,000 ms. */
  readonly refreshMs?: number;
  /** Software version shown on the devices; default "0.1.0". */
  readonly version?: string;
  /** A line of log (never a code or a secret). */
  readonly log?: (line: string) => void;
  /** How to open the MQTT connection (tests pass one that keeps the client); default `mqtt.connect`. */
  readonly connect?: (url: string, opts: IClientOptions) => MqttClient;
}

/** What `status()` reports. */
export interface HomeAssistantStatus {
  readonly url: string;
  readonly connected: boolean;
  /** Ms since the Unix epoch of the last connection. */
  readonly lastConnectedAt: number | null;
  /** Locks announced to Home Assistant. */
  readonly locks: readonly string[];
  /** Commands decided (granted or refused), and payloads ignored as malformed. */
  readonly commands: { readonly decided: number; readonly ignored: number };
}

export interface HomeAssistantBridge {
  status(): HomeAssistantStatus;
  /** Publish `offline`, disconnect, stop listening to the hub. The discovery configs stay (retained). */
  close(): Promise<void>;
}

/** Every topic Latchkey uses with Home Assistant, in one place. */
export interface HaTopics {
  /** `<base>/ha/availability`: `online` / `offline`, retained. */
  readonly availability: string;
  /** `<base>/lock/<lockId>/state`: the lock's state as JSON, retained. */
  state(lockId: string): string;
  /** `<base>/lock/<lockId>/event`: the lock's last audit event as JSON, retained. */
  event(lockId: string): string;
  /** `<base>/lock/<lockId>/set`: commands from Home Assistant. */
  command(lockId: string): string;
  /** `<base>/lock/+/set`: what the bridge subscribes to. */
  readonly commandFilter: string;
  /** `<prefix>/<component>/<node_id>/<object_id>/config`, retained. */
  config(component: HaComponent, lockId: string, entity: string): string;
}

export type HaComponent = "lock" | "binary_sensor" | "sensor";

/** Discovery ids may use only `[a-zA-Z0-9_-]` (Home Assistant's discovery topic format). */
export function discoveryId(s: string): string {
  return s.replace(/[^a-zA-Z0-9_-]/g, "_");
}

export function haTopics(deviceId: string, prefix: string, base: string): HaTopics {
  const node = discoveryId(`latchkey_${deviceId}`);
  return {
    availability: `${base}/ha/availability`,
    state: (id) => `${base}/lock/${id}/state`,
    event: (id) => `${base}/lock/${id}/event`,
    command: (id) => `${base}/lock/${id}/set`,
    commandFilter: `${base}/lock/+/set`,
    config: (component, id, entity) =>
      `${prefix}/${component}/${node}/${discoveryId(`${id}_${entity}`)}/config`,
  };
}

// ------------------------------------------------------------------ payloads

/** The retained JSON on `<base>/lock/<lockId>/state`; each entity picks its field with a `value_template`. */
export interface HaLockStateMsg {
  readonly lock: (typeof HaLockState)[keyof typeof HaLockState];
  /** `ON` = open (Home Assistant's `payload_on`), `OFF` = closed. */
  readonly door: "ON" | "OFF";
  /** The door sensor's own word: closed, open, ajar, forced. */
  readonly doorState: string;
  /** Battery percent, 0–100. */
  readonly battery: number;
  readonly batteryLevel: string;
  readonly alarm: HaAlarm;
  readonly operatingMode: string;
  readonly tampered: boolean;
}

/** The retained JSON on `<base>/lock/<lockId>/event`: the last audit event, never a code or a digest. */
export interface HaEventMsg {
  readonly kind: string;
  readonly seq: number;
  /** ISO 8601 UTC. */
  readonly at: string;
  readonly [field: string]: JsonValue;
}

/** Fields of an audit event's data shown as attributes of the last-event sensor (all are ids or words). */
const EVENT_FIELDS = [
  "source",
  "action",
  "reason",
  "userId",
  "credentialId",
  "credentialType",
  "from",
  "to",
  "door",
  "input",
  "tampered",
  "percent",
] as const;

/** The command payload: `LOCK`/`UNLOCK` alone, or {@link COMMAND_TEMPLATE}'s JSON. */
const CommandJsonSchema = z.strictObject({
  action: z.enum([HaCommand.Lock, HaCommand.Unlock]),
  code: z.string().max(64).optional(),
});

export interface ParsedCommand {
  readonly action: HaCommand;
  /** The code typed in Home Assistant, or null when none was entered. */
  readonly code: string | null;
}

/**
 * Parse a command payload at the boundary. Throws LK_INVALID_INPUT (the message never repeats the code).
 * Home Assistant renders a missing code as `None` (or an empty string): both read as no code.
 */
export function parseCommand(payload: Buffer): ParsedCommand {
  if (payload.length === 0 || payload.length > MAX_COMMAND_BYTES)
    throw new LatchkeyError("LK_INVALID_INPUT", `command payload of ${payload.length} bytes`);
  const text = payload.toString("utf8").trim();
  if (text === HaCommand.Lock || text === HaCommand.Unlock) return { action: text, code: null };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new LatchkeyError("LK_INVALID_INPUT", "command is neither LOCK, UNLOCK nor JSON");
  }
  const r = CommandJsonSchema.safeParse(json);
  if (!r.success)
    throw new LatchkeyError("LK_INVALID_INPUT", 'command JSON must be {"action":"LOCK"|"UNLOCK","code"?}');
  const raw = r.data.code?.trim() ?? "";
  const code = raw === "" || raw === "None" ? null : raw;
  if (code !== null && !/^\d{4,18}$/.test(code))
    throw new LatchkeyError("LK_INVALID_INPUT", "the code must be 4 to 18 decimal digits");
  return { action: r.data.action, code };
}

function alarmOf(s: ReturnType<Hub["status"]>): HaAlarm {
  const locked = Object.values(s.lockouts).some(
    (l) => l.disabledUntil !== null && l.disabledUntil > s.clock.now,
  );
  const active: Record<HaAlarm, boolean> = {
    forced_open: s.doorState === "forced",
    tamper: s.tampered,
    jammed: s.lockState === "jammed",
    lockout: locked,
    door_ajar: s.doorState === "ajar",
    battery_critical: s.battery.level === "critical",
    battery_low: s.battery.level === "low",
    none: true,
  };
  return HaAlarm.find((a) => active[a]) ?? "none";
}

/** A lock's status as the state topic carries it. */
export function stateMessage(s: ReturnType<Hub["status"]>): HaLockStateMsg {
  return {
    lock: HaLockState[s.lockState],
    door: s.doorState === "closed" ? "OFF" : "ON",
    doorState: s.doorState,
    battery: Math.round(s.battery.percent),
    batteryLevel: s.battery.level,
    alarm: alarmOf(s),
    operatingMode: s.operatingMode,
    tampered: s.tampered,
  };
}

/** An audit event as the event topic carries it: kind, seq, time and the allow-listed fields. */
export function eventMessage(e: AuditEvent): HaEventMsg {
  const out: Record<string, JsonValue> = { kind: e.kind, seq: e.seq, at: new Date(e.at).toISOString() };
  for (const f of EVENT_FIELDS) {
    const v = e.data[f];
    if (v !== undefined && (v === null || typeof v !== "object")) out[f] = v;
  }
  return out as HaEventMsg;
}

/** The discovery configs of one lock: [topic, config] pairs (docs/protocol/home-assistant.md § Discovery). */
export function discoveryConfigs(
  hub: Hub,
  lock: { id: string; name: string },
  t: HaTopics,
  o: { version: string; allowCodelessUnlock: boolean },
): [string, Record<string, unknown>][] {
  const uid = (entity: string) => discoveryId(`latchkey_${hub.deviceId}_${lock.id}_${entity}`);
  const device = {
    identifiers: [discoveryId(`latchkey_${hub.deviceId}_${lock.id}`)],
    name: lock.name,
    manufacturer: "Latchkey",
    model: "Latchkey lock",
    sw_version: o.version,
  };
  const common = {
    availability_topic: t.availability,
    payload_available: Availability.Online,
    payload_not_available: Availability.Offline,
    device,
    origin: { name: "Latchkey", sw_version: o.version },
  };
  const state = t.state(lock.id);
  return [
    [
      t.config("lock", lock.id, "lock"),
      {
        ...common,
        name: null, // the lock is the device's main feature: it takes the device's name
        unique_id: uid("lock"),
        command_topic: t.command(lock.id),
        command_template: COMMAND_TEMPLATE,
        ...(o.allowCodelessUnlock ? {} : { code_format: CODE_FORMAT }),
        payload_lock: HaCommand.Lock,
        payload_unlock: HaCommand.Unlock,
        state_topic: state,
        value_template: "{{ value_json.lock }}",
        state_locked: HaLockState.locked,
        state_unlocked: HaLockState.unlocked,
        state_jammed: HaLockState.jammed,
        state_locking: HaLockState.locking,
        state_unlocking: HaLockState.unlocking,
        optimistic: false,
        retain: false,
        qos: 1,
      },
    ],
    [
      t.config("binary_sensor", lock.id, "door"),
      {
        ...common,
        name: "Door",
        unique_id: uid("door"),
        device_class: "door",
        state_topic: state,
        value_template: "{{ value_json.door }}",
        payload_on: "ON",
        payload_off: "OFF",
        json_attributes_topic: state,
        json_attributes_template: '{{ {"doorState": value_json.doorState} | tojson }}',
        qos: 1,
      },
    ],
    [
      t.config("sensor", lock.id, "battery"),
      {
        ...common,
        name: "Battery",
        unique_id: uid("battery"),
        device_class: "battery",
        unit_of_measurement: "%",
        state_class: "measurement",
        entity_category: "diagnostic",
        state_topic: state,
        value_template: "{{ value_json.battery }}",
        qos: 1,
      },
    ],
    [
      t.config("sensor", lock.id, "alarm"),
      {
        ...common,
        name: "Alarm",
        unique_id: uid("alarm"),
        device_class: "enum",
        options: [...HaAlarm],
        icon: "mdi:alarm-light",
        state_topic: state,
        value_template: "{{ value_json.alarm }}",
        qos: 1,
      },
    ],
    [
      t.config("sensor", lock.id, "last_event"),
      {
        ...common,
        name: "Last event",
        unique_id: uid("last_event"),
        icon: "mdi:history",
        state_topic: t.event(lock.id),
        value_template: "{{ value_json.kind }}",
        json_attributes_topic: t.event(lock.id),
        qos: 1,
      },
    ],
  ];
}

// ------------------------------------------------------------------ the bridge

/**
 * Connect to the broker and keep the connection (reconnecting after any drop); announce every lock,
 * keep its state topics current and take commands. Returns at once; the hub works the same without it.
 */
export function startHomeAssistant(hub: Hub, opts: HomeAssistantOptions): HomeAssistantBridge {
  const o = {
    prefix: opts.prefix ?? DEFAULT_DISCOVERY_PREFIX,
    base: opts.baseTopic ?? `latchkey/${hub.deviceId}`,
    allowCodelessUnlock: opts.allowCodelessUnlock ?? false,
    reconnectMs: opts.reconnectMs ?? 1_000,
    refreshMs: opts.refreshMs ?? 60_000,
    version: opts.version ?? "0.1.0",
    log: opts.log ?? (() => {}),
  };
  const t = haTopics(hub.deviceId, o.prefix, o.base);
  const announced = new Set<string>();
  /** Last payload published per state/event topic: republish only on change. */
  const published = new Map<string, string>();
  const lastEvent = new Map<string, AuditEvent>();
  const pending = new Set<string>();
  let flushTimer: NodeJS.Timeout | null = null;
  let connected = false;
  let lastConnectedAt: number | null = null;
  let decided = 0;
  let ignored = 0;
  let closed = false;

  const client = (opts.connect ?? mqtt.connect)(opts.url, {
    protocolVersion: 5,
    clientId: `lk-ha-${hub.deviceId}-${Math.random().toString(16).slice(2, 10)}`,
    clean: true,
    reconnectPeriod: o.reconnectMs,
    connectTimeout: 5_000,
    will: { topic: t.availability, payload: Buffer.from(Availability.Offline), qos: 1, retain: true },
  });

  const publish = async (topic: string, payload: string, dedupe: boolean): Promise<void> => {
    if (!client.connected) return;
    if (dedupe && published.get(topic) === payload) return;
    await client.publishAsync(topic, payload, { qos: 1, retain: true });
    if (dedupe) published.set(topic, payload);
  };

  const announce = async (lockId: string): Promise<void> => {
    const rec = hub.locks().find((l) => l.id === lockId);
    if (!rec) return;
    for (const [topic, config] of discoveryConfigs(hub, rec, t, o))
      await publish(topic, JSON.stringify(config), false);
    announced.add(lockId);
  };

  const publishState = async (lockId: string): Promise<void> => {
    let s: ReturnType<Hub["status"]>;
    try {
      s = hub.status(lockId);
    } catch {
      return; // removed meanwhile
    }
    await publish(t.state(lockId), JSON.stringify(stateMessage(s)), true);
    const e = lastEvent.get(lockId);
    if (e) await publish(t.event(lockId), JSON.stringify(eventMessage(e)), true);
  };

  const flush = (): void => {
    flushTimer = null;
    const ids = [...pending];
    pending.clear();
    void (async () => {
      for (const id of ids) {
        if (!announced.has(id)) await announce(id);
        await publishState(id);
      }
    })().catch((e: Error) => o.log(`home assistant: state not published: ${e.message}`));
  };

  const soon = (lockId: string): void => {
    pending.add(lockId);
    // Coalesce a burst (access event, lock.state, door.state) into one publish per topic.
    flushTimer ??= setTimeout(flush, 20);
  };

  // The last event per lock, for the last-event sensor (from the log, so a restart shows it too).
  for (const l of hub.locks()) {
    const [e] = hub.store.query({ lockId: l.id, limit: 1, descending: true });
    if (e) lastEvent.set(l.id, e);
  }
  const unsubscribe = hub.audit.subscribe((events) => {
    for (const e of events) {
      if (!e.lockId) continue;
      lastEvent.set(e.lockId, e);
      soon(e.lockId);
    }
  });
  const refresh = setInterval(() => {
    for (const l of hub.locks()) soon(l.id);
  }, o.refreshMs);
  refresh.unref();

  client.on("connect", () => {
    void (async () => {
      published.clear();
      await client.publishAsync(t.availability, Availability.Online, { qos: 1, retain: true });
      for (const l of hub.locks()) {
        await announce(l.id);
        await publishState(l.id);
      }
      // Retain Handling 2: a command retained on the broker is never replayed to us on (re)subscribe.
      await client.subscribeAsync(t.commandFilter, { qos: 1, rh: 2 });
      connected = true;
      lastConnectedAt = hub.now();
      o.log(`home assistant: connected to ${opts.url}; ${announced.size} lock(s) announced`);
    })().catch((e: Error) => o.log(`home assistant: connect failed: ${e.message}`));
  });
  client.on("close", () => {
    if (connected) o.log("home assistant: disconnected from the broker; the hub keeps working");
    connected = false;
  });
  client.on("error", (e) => o.log(`home assistant: ${e.message}`));
  client.on("message", (topic, payload, packet) => {
    void onCommand(topic, payload, packet.retain).catch((e: unknown) => {
      o.log(`home assistant: command failed: ${isLatchkeyError(e) ? e.message : String(e)}`);
    });
  });

  const ignore = (topic: string, why: string): void => {
    ignored++;
    o.log(`home assistant: ignored a command on ${topic}: ${why}`);
  };

  async function onCommand(topic: string, payload: Buffer, retained: boolean): Promise<void> {
    const prefix = `${o.base}/lock/`;
    if (!topic.startsWith(prefix) || !topic.endsWith("/set")) return;
    const lockId = topic.slice(prefix.length, -"/set".length);
    if (retained) return ignore(topic, "LK_INVALID_INPUT: a retained command is never acted on");
    if (!hub.locks().some((l) => l.id === lockId))
      return ignore(topic, `LK_NOT_FOUND: no lock ${JSON.stringify(lockId)}`);
    let cmd: ParsedCommand;
    try {
      cmd = parseCommand(payload);
    } catch (e) {
      return ignore(topic, isLatchkeyError(e) ? e.message : String(e));
    }
    if (cmd.action === HaCommand.Lock) {
      // Locking secures the door: it runs as the actor whatever code was typed (Home Assistant's
      // code_format asks for a code for every command).
      const r = await hub.remoteLock(opts.actor, lockId);
      decided++;
      o.log(`home assistant: LOCK ${lockId}: ${"refused" in r ? `refused (${r.refused})` : r.result}`);
    } else if (cmd.code !== null) {
      const r = await hub.lock(lockId).keypadEntry(cmd.code);
      decided++;
      const d = r.decision;
      o.log(
        `home assistant: UNLOCK ${lockId} with a code: ${r.feedback}${d && d.outcome === "deny" ? ` (${d.reason})` : ""}, audit seq ${r.seq ?? "-"}`,
      );
    } else if (o.allowCodelessUnlock) {
      const r = await hub.remoteUnlock(opts.actor, lockId);
      decided++;
      const d = r.decision;
      o.log(
        `home assistant: UNLOCK ${lockId}: ${r.feedback}${d && d.outcome === "deny" ? ` (${d.reason})` : ""}, audit seq ${r.seq ?? "-"}`,
      );
    } else {
      return ignore(topic, "LK_INVALID_INPUT: UNLOCK needs a code (codeless unlock is not allowed)");
    }
    soon(lockId);
  }

  return {
    status: () => ({
      url: opts.url,
      connected,
      lastConnectedAt,
      locks: [...announced],
      commands: { decided, ignored },
    }),
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(refresh);
      if (flushTimer) clearTimeout(flushTimer);
      try {
        if (client.connected)
          await client.publishAsync(t.availability, Availability.Offline, { qos: 1, retain: true });
      } catch {
        // going away anyway
      }
      await client.endAsync();
    },
  };
}
