/**
 * The bridge's slot table (src/matter/slots.ts) and Latchkey ↔ Matter conversions (src/matter/mapping.ts),
 * without a Matter node: slots are stable across restarts, follow Latchkey's records, and schedules and
 * names convert within Matter's limits.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DoorLock } from "@matter/main/clusters/door-lock";
import { afterEach, describe, expect, it } from "vitest";
import {
  daysMaskFlags,
  daysMaskOf,
  fromMatterWeekDay,
  fromMatterYearDay,
  matterUserName,
  scheduleKeys,
  toMatterWeekDay,
  toMatterYearDay,
} from "../../src/matter/mapping.ts";
import { MatterSlots } from "../../src/matter/slots.ts";

let dir = "";
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = "";
});
const fresh = () => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-slots-"));
  return join(dir, "slots.json");
};
const max = { users: 3, pins: 3 };

describe("MatterSlots", () => {
  it("hands out the lowest free slot or the one asked for, keeps it across a restart, and stops when full", () => {
    const file = fresh();
    const s = new MatterSlots(file);
    expect(s.placeUser("door", "usr_a", { max: 3, fabricIndex: null })).toBe(1);
    expect(s.placeUser("door", "usr_b", { want: 3, max: 3, fabricIndex: 2, userUniqueId: 7 })).toBe(3);
    expect(s.placeUser("door", "usr_c", { want: 3, max: 3, fabricIndex: null })).toBe(2); // 3 is taken
    expect(s.placeUser("door", "usr_d", { max: 3, fabricIndex: null })).toBeNull();
    expect(s.placeUser("door", "usr_a", { want: 2, max: 3, fabricIndex: null })).toBe(1); // has one already
    expect(s.placeUser("garage", "usr_d", { max: 3, fabricIndex: null })).toBe(1); // per lock
    s.flush();

    const again = new MatterSlots(file);
    expect(again.userSlots("door")).toEqual([1, 2, 3]);
    expect(again.userAt("door", 3)).toEqual({
      id: "usr_b",
      creatorFabricIndex: 2,
      lastModifiedFabricIndex: 2,
      userUniqueId: 7,
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(again.removeUser("door", "usr_b")).toBe(3);
    expect(again.removeUser("door", "usr_b")).toBeNull();
  });

  it("catches up with Latchkey: gone records free their slots, new ones fill the lowest free, oldest first", () => {
    const s = new MatterSlots(null);
    s.placeUser("door", "usr_a", { max: 3, fabricIndex: null });
    s.placeUser("door", "usr_b", { max: 3, fabricIndex: null });
    s.placePin("door", "cred_1", { want: 2, max: 3, fabricIndex: 1 });
    const r = s.reconcile("door", ["usr_b", "usr_c", "usr_d", "usr_e"], ["cred_1", "cred_2"], max);
    expect(r).toEqual({ usersAdded: [1, 3], usersRemoved: [1], pinsAdded: [1], pinsRemoved: [] });
    expect(s.userSlot("door", "usr_b")).toBe(2); // unchanged
    expect(s.userSlot("door", "usr_c")).toBe(1);
    expect(s.userSlot("door", "usr_e")).toBeNull(); // beyond the capacity
    expect(s.pinSlot("door", "cred_1")).toBe(2);
  });

  it("gives a changed PIN (a new credential) the old one's slot and creator", () => {
    const s = new MatterSlots(null);
    s.placePin("door", "cred_old", { want: 2, max: 3, fabricIndex: 1 });
    expect(s.replacePin("door", "cred_old", "cred_new", null)).toBe(2);
    expect(s.pinAt("door", 2)).toEqual({
      id: "cred_new",
      creatorFabricIndex: 1,
      lastModifiedFabricIndex: null,
    });
    expect(s.replacePin("door", "cred_gone", "cred_x", null)).toBeNull();
  });

  it("reads the first bridge's user map", () => {
    const file = fresh();
    const legacy = join(dir, "latchkey-matter-users.json");
    writeFileSync(legacy, JSON.stringify({ door: { "4": "usr_a" } }));
    const s = new MatterSlots(file, legacy);
    expect(s.userSlot("door", "usr_a")).toBe(4);
    s.placeUser("door", "usr_b", { max: 5, fabricIndex: null });
    s.flush();
    expect(JSON.parse(readFileSync(file, "utf8")).version).toBe(2);
  });

  it("keeps schedule slots stable, puts a Matter schedule where it was asked, and reports what changed", () => {
    const s = new MatterSlots(null);
    const a = scheduleKeys([{ start: "2026-01-01T00:00", end: "2026-01-02T00:00" }])[0]!;
    const b = scheduleKeys([{ start: "2026-02-01T00:00", end: "2026-02-02T00:00" }])[0]!;
    expect(s.syncSchedules("door", "yearDay", "usr_a", [a], 7)).toMatchObject({ added: [1], removed: [] });
    const r = s.syncSchedules("door", "yearDay", "usr_a", [a, b], 7, { slot: 5, key: b });
    expect(r).toMatchObject({ added: [5], modified: [], removed: [] });
    expect([...r.slots]).toEqual([
      [1, 0],
      [5, 1],
    ]);
    expect(s.syncSchedules("door", "yearDay", "usr_a", [b], 7)).toMatchObject({ removed: [1], added: [] });
    const c = scheduleKeys([{ start: "2026-03-01T00:00", end: "2026-03-02T00:00" }])[0]!;
    expect(s.syncSchedules("door", "yearDay", "usr_a", [c], 7, { slot: 5, key: c })).toMatchObject({
      modified: [5],
    });
  });
});

describe("Latchkey ↔ Matter values", () => {
  it("cuts names to Matter's 10 bytes at a character boundary", () => {
    expect(matterUserName("Olivia Owner")).toBe("Olivia Own");
    expect(matterUserName("Zoë Ångström")).toBe("Zoë Ångs"); // ë and Å are two bytes each
    expect(matterUserName("Mia")).toBe("Mia");
  });

  it("converts week-day schedules: days mask bits, end of day, Matter's refusals", () => {
    expect(daysMaskOf({ sunday: true, monday: true, saturday: true })).toBe(0b1000011);
    expect(daysMaskFlags(0b10)).toMatchObject({ monday: true, sunday: false });
    expect(
      toMatterWeekDay({ daysMask: 0b100, startHour: 8, startMinute: 15, endHour: 24, endMinute: 0 }),
    ).toMatchObject({ daysMask: { tuesday: true }, endHour: 23, endMinute: 59 });
    const req = { daysMask: { friday: true }, startHour: 9, startMinute: 0, endHour: 17, endMinute: 30 };
    expect(fromMatterWeekDay(req)).toEqual({ ...req, daysMask: 0b100000 });
    expect(fromMatterWeekDay({ ...req, endHour: 8 })).toBeNull(); // end before start
    expect(fromMatterWeekDay({ ...req, daysMask: {} as DoorLock.DaysMask })).toBeNull();
  });

  it("converts year-day schedules to local epoch seconds and back, never widening a window", () => {
    const s = { start: "2026-01-20T09:00", end: "2026-01-20T11:30" };
    const m = toMatterYearDay(s);
    expect(m.localStartTime).toBe(Date.UTC(2026, 0, 20, 9, 0) / 1000);
    expect(fromMatterYearDay(m.localStartTime, m.localEndTime)).toEqual(s);
    expect(fromMatterYearDay(m.localStartTime + 30, m.localEndTime + 30)).toEqual({
      start: "2026-01-20T09:01",
      end: "2026-01-20T11:30",
    });
    expect(fromMatterYearDay(m.localStartTime + 1, m.localStartTime + 59)).toBeNull();
  });

  it("tells identical schedules apart", () => {
    const w = { daysMask: 2, startHour: 9, startMinute: 0, endHour: 12, endMinute: 0 };
    expect(scheduleKeys([w, w])).toEqual(["w:2:9:0:12:0", "w:2:9:0:12:0#1"]);
  });
});
