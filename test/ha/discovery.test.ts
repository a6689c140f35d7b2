/**
 * Home Assistant over MQTT against a real Mosquitto (docs/protocol/home-assistant.md): a real hub, the
 * bridge, and a plain mqtt.js client doing what Home Assistant does — read the discovery configs and the
 * retained state, send commands rendered from the configured `command_template`. Each run uses its own
 * discovery prefix and base topic and clears every retained message it left. In CI (CI=true) an
 * unreachable broker fails the run; elsewhere it skips.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Milliseconds } from "../../src/core/units.ts";
import {
  CODE_FORMAT,
  COMMAND_TEMPLATE,
  type HomeAssistantBridge,
  startHomeAssistant,
} from "../../src/ha/discovery.ts";
import type { Actor } from "../../src/hub/hub.ts";
import { type RunningHub, startHub } from "../../src/hub/server.ts";
import { MOSQUITTO_URL, serviceAvailable } from "../cloud/cloud-fixtures.ts";

const available = await serviceAvailable("Mosquitto", MOSQUITTO_URL);

const RUN = `t${process.pid}_${Date.now().toString(36)}`;
const PREFIX = `lk-test-ha/${RUN}/homeassistant`;
const BASE = `lk-test-ha/${RUN}/latchkey`;
const LOCK = "front-door";
const PIN = "480613";

/** Render {@link COMMAND_TEMPLATE} as Home Assistant does (`code` is `None` when none was typed). */
function render(value: "LOCK" | "UNLOCK", code: string | null): string {
  return COMMAND_TEMPLATE.replace("{{ value }}", value).replace("{{ code }}", code ?? "None");
}

let running: RunningHub;
let dir: string;
let owner: Actor;
let bridge: HomeAssistantBridge;
let bridgeClient: MqttClient | null = null;
let ha: MqttClient;
const logs: string[] = [];
/** Latest payload per topic as the Home Assistant side saw it, and every topic seen (to clear after). */
const latest = new Map<string, string>();
const seen = new Set<string>();
const waiters: (() => void)[] = [];

function waitFor(topic: string, ok: (payload: string) => boolean, ms = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const v = latest.get(topic);
      if (v !== undefined && ok(v)) {
        clearTimeout(timer);
        resolve(v);
        return true;
      }
      return false;
    };
    const timer = setTimeout(() => {
      const i = waiters.indexOf(poll);
      if (i >= 0) waiters.splice(i, 1);
      reject(new Error(`timed out waiting on ${topic}; last: ${latest.get(topic)}`));
    }, ms);
    const poll = () => {
      if (check()) waiters.splice(waiters.indexOf(poll), 1);
    };
    if (!check()) waiters.push(poll);
  });
}

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const json = (topic: string) => JSON.parse(latest.get(topic) ?? "null") as Record<string, unknown>;
const stateTopic = `${BASE}/lock/${LOCK}/state`;
const eventTopic = `${BASE}/lock/${LOCK}/event`;
const commandTopic = `${BASE}/lock/${LOCK}/set`;
const availabilityTopic = `${BASE}/ha/availability`;

describe.skipIf(!available)("Home Assistant MQTT discovery (Mosquitto)", () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "latchkey-ha-"));
    running = await startHub({
      dataDir: dir,
      port: 0,
      host: "127.0.0.1",
      timeZone: "UTC",
      motorTime: Milliseconds(5),
      linkPort: null,
      print: () => {},
    });
    const claimed = running.hub.claim(running.setupCode!, "Olive Owner");
    owner = { userId: claimed.user.id, role: claimed.user.role };
    running.hub.setPin(owner, owner.userId, PIN);

    ha = mqtt.connect(MOSQUITTO_URL, { protocolVersion: 5, clean: true, reconnectPeriod: 0 });
    ha.on("message", (topic, payload) => {
      seen.add(topic);
      latest.set(topic, payload.toString("utf8"));
      for (const w of [...waiters]) w();
    });
    await new Promise<void>((resolve, reject) => {
      ha.once("connect", () => resolve());
      ha.once("error", reject);
    });
    await ha.subscribeAsync([`${PREFIX}/#`, `${BASE}/#`], { qos: 1 });

    bridge = startHomeAssistant(running.hub, {
      url: MOSQUITTO_URL,
      prefix: PREFIX,
      baseTopic: BASE,
      actor: owner,
      reconnectMs: 200,
      log: (l) => logs.push(l),
      connect: (url, o) => {
        bridgeClient = mqtt.connect(url, o);
        return bridgeClient;
      },
    });
    await until(() => bridge.status().connected);
  });

  afterAll(async () => {
    await bridge?.close();
    if (ha?.connected) {
      // Leave nothing retained behind: an empty retained payload deletes a retained message.
      for (const topic of seen) await ha.publishAsync(topic, "", { qos: 1, retain: true });
      await ha.endAsync();
    }
    await running?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("publishes Home Assistant discovery configs for each lock (lock, door, battery, alarm, last event)", async () => {
    const node = `latchkey_${running.hub.deviceId}`;
    const cfg = (component: string, object: string) => `${PREFIX}/${component}/${node}/${object}/config`;
    const topics = {
      lock: cfg("lock", "front-door_lock"),
      door: cfg("binary_sensor", "front-door_door"),
      battery: cfg("sensor", "front-door_battery"),
      alarm: cfg("sensor", "front-door_alarm"),
      lastEvent: cfg("sensor", "front-door_last_event"),
    };
    for (const t of Object.values(topics)) await waitFor(t, () => true);

    const lock = json(topics.lock);
    expect(lock).toMatchObject({
      name: null,
      command_topic: commandTopic,
      command_template: COMMAND_TEMPLATE,
      code_format: CODE_FORMAT,
      payload_lock: "LOCK",
      payload_unlock: "UNLOCK",
      state_topic: stateTopic,
      value_template: "{{ value_json.lock }}",
      state_locked: "LOCKED",
      state_unlocked: "UNLOCKED",
      state_jammed: "JAMMED",
      state_locking: "LOCKING",
      state_unlocking: "UNLOCKING",
      availability_topic: availabilityTopic,
      payload_available: "online",
      payload_not_available: "offline",
      device: { name: "Front door", manufacturer: "Latchkey" },
    });
    expect(new RegExp(CODE_FORMAT).test(PIN)).toBe(true);
    expect(json(topics.door)).toMatchObject({
      device_class: "door",
      state_topic: stateTopic,
      payload_on: "ON",
      payload_off: "OFF",
    });
    expect(json(topics.battery)).toMatchObject({
      device_class: "battery",
      unit_of_measurement: "%",
      state_topic: stateTopic,
    });
    expect(json(topics.alarm)).toMatchObject({ device_class: "enum", state_topic: stateTopic });
    expect((json(topics.alarm).options as string[]).includes("none")).toBe(true);
    expect(json(topics.lastEvent)).toMatchObject({
      state_topic: eventTopic,
      json_attributes_topic: eventTopic,
    });

    // One device per lock, every entity with its own unique_id and the same availability.
    const all = Object.values(topics).map(json);
    expect(new Set(all.map((c) => c.unique_id)).size).toBe(all.length);
    const ids = all.map((c) => JSON.stringify((c.device as { identifiers: unknown }).identifiers));
    expect(new Set(ids).size).toBe(1);
    for (const c of all) expect(c.availability_topic).toBe(availabilityTopic);
  });

  it("reports availability online and retained state", async () => {
    await waitFor(availabilityTopic, (p) => p === "online");
    const s = JSON.parse(await waitFor(stateTopic, () => true)) as Record<string, unknown>;
    expect(s).toMatchObject({ lock: "LOCKED", door: "OFF", alarm: "none" });
    expect(s.battery).toBeGreaterThan(0);
  });

  it("UNLOCK with a valid PIN is decided, audited and reported unlocked", async () => {
    const head = running.hub.store.head().seq;
    await ha.publishAsync(commandTopic, render("UNLOCK", PIN), { qos: 1 });
    await waitFor(stateTopic, (p) => JSON.parse(p).lock === "UNLOCKED");
    const events = running.hub.store.query({ afterSeq: head, limit: 50 });
    expect(events.find((e) => e.kind === "access.granted")).toMatchObject({
      lockId: LOCK,
      data: { source: "keypad", userId: owner.userId, credentialType: "pin" },
    });
    expect(events.some((e) => e.kind === "lock.state" && e.data.to === "unlocked")).toBe(true);
    // Never the digits anywhere in the log.
    expect(JSON.stringify(events)).not.toContain(PIN);
    expect(running.hub.verifyAudit().ok).toBe(true);
  });

  it("LOCK runs as the actor through remoteLock and is audited", async () => {
    const head = running.hub.store.head().seq;
    await ha.publishAsync(commandTopic, render("LOCK", PIN), { qos: 1 });
    await waitFor(stateTopic, (p) => JSON.parse(p).lock === "LOCKED");
    const events = running.hub.store.query({ afterSeq: head, limit: 50 });
    expect(events.find((e) => e.kind === "lock.state")).toMatchObject({
      data: { to: "locked", source: "remote", userId: owner.userId },
    });
  });

  it("a wrong PIN is denied and audited; the lock stays locked and the last event shows the denial", async () => {
    const head = running.hub.store.head().seq;
    await ha.publishAsync(commandTopic, render("UNLOCK", "135792"), { qos: 1 });
    const ev = JSON.parse(await waitFor(eventTopic, (p) => JSON.parse(p).kind === "access.denied"));
    expect(ev).toMatchObject({ source: "keypad", reason: "unknown_credential" });
    expect(ev.seq).toBeGreaterThan(head);
    const events = running.hub.store.query({ afterSeq: head, limit: 50 });
    expect(events.map((e) => e.kind)).toEqual(["access.denied"]);
    expect(running.hub.status(LOCK).lockState).toBe("locked");
    expect(json(stateTopic).lock).toBe("LOCKED");
  });

  it("malformed payloads are ignored with a coded log line and change nothing", async () => {
    const head = running.hub.store.head().seq;
    const before = bridge.status().commands.ignored;
    const bad = [
      "OPEN",
      "{not json",
      JSON.stringify({ action: "UNLOCK", code: "12ab34" }),
      JSON.stringify({ action: "UNLOCK", code: PIN, extra: 1 }),
      JSON.stringify({ action: "DANCE" }),
      render("UNLOCK", null), // no code, and codeless unlock is off
      "x".repeat(1000),
    ];
    for (const p of bad) await ha.publishAsync(commandTopic, p, { qos: 1 });
    await until(() => bridge.status().commands.ignored === before + bad.length);
    expect(running.hub.store.head().seq).toBe(head);
    expect(running.hub.status(LOCK).lockState).toBe("locked");
    expect(
      logs.filter((l) => l.includes("ignored a command") && l.includes("LK_INVALID_INPUT")),
    ).toHaveLength(bad.length);
    expect(logs.join("\n")).not.toContain(PIN);
  });

  it("goes offline by Last Will when its connection dies, and online again on reconnect", async () => {
    await waitFor(availabilityTopic, (p) => p === "online");
    // Kill the TCP connection without DISCONNECT: the broker publishes the Last Will.
    bridgeClient!.stream.destroy();
    await waitFor(availabilityTopic, (p) => p === "offline");
    await waitFor(availabilityTopic, (p) => p === "online", 5_000);
    await until(() => bridge.status().connected);
  });

  it("publishes offline on close", async () => {
    await bridge.close();
    await waitFor(availabilityTopic, (p) => p === "offline");
  });
});
