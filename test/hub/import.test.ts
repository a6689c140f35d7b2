/** Import (docs/formats/export.md § "Import"): plan first, apply through the hub, never resurrect a removal. */
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { type ErrorCode, isLatchkeyError } from "../../src/core/errors.ts";
import { OperatingMode, Role, UserType } from "../../src/core/model.ts";
import type { Hub } from "../../src/hub/hub.ts";
import {
  applyImport,
  exportJsonSchema,
  parseUsersCsv,
  planCsvImport,
  planImport,
} from "../../src/hub/import.ts";
import { type Harness, makeHub } from "../support/hub-harness.ts";

const harnesses: Harness[] = [];
function hub(): Harness {
  const h = makeHub();
  harnesses.push(h);
  return h;
}
afterEach(() => {
  for (const h of harnesses.splice(0)) h.cleanup();
});

/** The export without the instant it was taken: equal before and after means nothing changed. */
function snapshot(h: Harness): unknown {
  const { exportedAt: _at, ...rest } = h.hub.exportData(h.owner);
  return rest;
}

function codeOf(f: () => unknown): { code: ErrorCode; message: string } {
  try {
    f();
  } catch (e) {
    if (isLatchkeyError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected a LatchkeyError");
}

/** A source hub with a back door in vacation mode, a scheduled cleaner with a PIN and a card, a fingerprint. */
function populated(): { h: Harness; doc: Record<string, unknown> } {
  const h = hub();
  const hb: Hub = h.hub;
  hb.addLock(h.owner, { id: "back-door", name: "Back door", timeZone: "Europe/Berlin" });
  hb.updateLockSettings(h.owner, "back-door", { autoRelockTime: 10 as never, pinMinLength: 7 });
  hb.setOperatingMode(h.owner, "back-door", OperatingMode.Vacation);
  const cleaner = hb.addUser(h.owner, {
    name: "Cleaner",
    role: Role.Guest,
    userType: UserType.WeekDaySchedule,
    weekDaySchedules: [{ daysMask: 2, startHour: 9, startMinute: 0, endHour: 12, endMinute: 0 }],
  });
  const bob = hb.addUser(h.owner, { name: "Bob", role: Role.Member });
  hb.setPin(h.owner, cleaner.id, "480613", { locks: ["front-door"] });
  hb.addCard(h.owner, cleaner.id, { cardId: "h10301:123:45678" }, { locks: ["back-door"] });
  hb.addCard(h.owner, bob.id, { uid: "04a1b2c3" }, { label: "blue tag" });
  hb.addFingerprint(h.owner, bob.id, 7, { locks: ["front-door"] });
  const doc = JSON.parse(JSON.stringify(hb.exportData(h.owner)));
  // Order carries no meaning: sort so tamper tests can name paths (users by name, credentials by type).
  doc.users.sort((a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name));
  doc.credentials.sort((a: { type: string }, b: { type: string }) => a.type.localeCompare(b.type));
  return { h, doc };
}

/** Users, credentials and locks without ids and times, comparable across hubs. */
function shape(h: Harness) {
  const d = h.hub.exportData(h.owner) as unknown as {
    users: { id: string; name: string; createdAt: number }[];
    credentials: Record<string, unknown>[];
    locks: unknown[];
  };
  const nameOf = new Map(d.users.map((u) => [u.id, u.name]));
  return {
    locks: d.locks,
    users: d.users.map(({ id: _id, createdAt: _c, ...u }) => u).sort((a, b) => a.name.localeCompare(b.name)),
    credentials: d.credentials
      .filter((c) => c.type === "rfid" || c.type === "fingerprint")
      .map(({ id: _id, createdAt: _c, lastUsedAt: _l, userId, ...c }) => ({
        ...c,
        user: nameOf.get(String(userId)),
      }))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
  };
}

describe("import of an export document", () => {
  it("round trip: a fresh hub gets the same users, cards, fingerprints, schedules and modes", () => {
    const { h: src, doc } = populated();
    const dst = hub();
    const plan = planImport(dst.hub, doc, { actor: dst.owner });
    expect(plan.counts).toMatchObject({
      locksAdded: 1,
      usersAdded: 2,
      usersUnchanged: 1,
      credentialsAdded: 3,
    });
    expect(plan.reEnrol).toEqual([expect.objectContaining({ name: "Cleaner", needs: ["pin"] })]);
    expect(plan.notImported).toEqual({ guestCodeIssuers: 0, guestCodes: 0, phoneKeys: 0 });
    const result = applyImport(dst.hub, dst.owner, plan);
    expect(result.applied).toBe(plan.steps.length);
    expect(shape(dst)).toEqual(shape(src));
    // each change went through the hub: audited
    const actions = dst.hub.store
      .query({ kinds: ["admin.change"], limit: 1000 })
      .map((e) => (e.data as { action: string }).action);
    expect(actions).toEqual(expect.arrayContaining(["lock.add", "mode.set", "user.add", "credential.add"]));
    // importing the same document again changes nothing
    const again = planImport(dst.hub, doc, { actor: dst.owner });
    expect(again.steps).toEqual([]);
  });

  it("accepts the document as JSON text, and the hub's export validates against the committed JSON Schema", () => {
    const { h, doc } = populated();
    const committed = JSON.parse(readFileSync("docs/formats/export.schema.json", "utf8"));
    expect(committed).toEqual(JSON.parse(JSON.stringify(exportJsonSchema())));
    // Version 1 is the first branch of the schema's oneOf (version 2 is checked in export-v2.test.ts).
    const v1 = committed.oneOf[0];
    expect(v1.properties.version.const).toBe(1);
    for (const key of v1.required as string[]) expect(doc).toHaveProperty(key);
    expect(Object.keys(doc).sort()).toEqual(Object.keys(v1.properties).sort());
    const plan = planImport(h.hub, JSON.stringify(doc));
    expect(plan.steps).toEqual([]);
  });

  // biome-ignore lint/suspicious/noExplicitAny: a tampered document can be any shape
  const tampered: [string, (d: any) => unknown, ErrorCode, string][] = [
    [
      "a field of the wrong type",
      (d) => {
        d.users[1].role = 7;
      },
      "LK_INVALID_INPUT",
      "$.users[1].role",
    ],
    [
      "a schedule out of range",
      (d) => {
        d.users[1].weekDaySchedules[0].endHour = 25;
      },
      "LK_INVALID_INPUT",
      "$.users[1].weekDaySchedules[0].endHour",
    ],
    [
      "an unknown field",
      (d) => {
        d.credentials[0].pinDigest = "00";
      },
      "LK_INVALID_INPUT",
      "$.credentials[0]",
    ],
    [
      "an unknown top-level field",
      (d) => {
        d.extra = 1;
      },
      "LK_INVALID_INPUT",
      "$",
    ],
    [
      "a credential on a missing lock",
      (d) => {
        d.credentials[1].locks = ["garage"];
      },
      "LK_INVALID_INPUT",
      "$.credentials[1].locks[0]",
    ],
    [
      "a credential of a missing user",
      (d) => {
        d.credentials[1].userId = "usr_nobody";
      },
      "LK_INVALID_INPUT",
      "$.credentials[1].userId",
    ],
    [
      "duplicate user ids",
      (d) => {
        d.users[2].id = d.users[1].id;
      },
      "LK_INVALID_INPUT",
      "$.users[2].id",
    ],
    [
      "duplicate names",
      (d) => {
        d.users[2].name = d.users[1].name.toUpperCase();
      },
      "LK_CONFLICT",
      "$.users[2]",
    ],
    [
      "a malformed card id",
      (d) => {
        d.credentials[2].cardId = "uid:XYZ";
      },
      "LK_INVALID_INPUT",
      "$.credentials[2].cardId",
    ],
    [
      "an unknown version",
      (d) => {
        d.version = 9;
      },
      "LK_INVALID_INPUT",
      "$.version",
    ],
    [
      "a bad time zone",
      (d) => {
        d.locks[1].timeZone = "Mars/Olympus";
      },
      "LK_INVALID_INPUT",
      "$.locks[1].timeZone",
    ],
  ];
  for (const [what, tamper, code, path] of tampered) {
    it(`refuses ${what} with ${code} at ${path}, changing nothing`, () => {
      const { doc } = populated();
      const dst = hub();
      const d = structuredClone(doc);
      tamper(d);
      const before = snapshot(dst);
      const err = codeOf(() => applyImport(dst.hub, dst.owner, planImport(dst.hub, d)));
      expect(err.code).toBe(code);
      expect(err.message).toContain(`${path}`);
      expect(snapshot(dst)).toEqual(before);
    });
  }

  it("refuses truncated JSON", () => {
    const { doc } = populated();
    const dst = hub();
    const text = JSON.stringify(doc);
    expect(codeOf(() => planImport(dst.hub, text.slice(0, text.length / 2))).code).toBe("LK_INVALID_INPUT");
  });

  it("stale: an export taken before a removal never brings the user or the card back", () => {
    const { h, doc } = populated();
    const before = snapshot(h);
    const users = doc.users as { id: string; name: string }[];
    const creds = doc.credentials as { id: string; type: string; userId: string }[];
    const bob = users.find((u) => u.name === "Bob")!;
    const cleaner = users.find((u) => u.name === "Cleaner")!;
    const cleanerCard = creds.find((c) => c.type === "rfid" && c.userId === cleaner.id)!;
    expect(planImport(h.hub, doc).steps).toEqual([]); // nothing removed yet: nothing to do

    h.hub.removeCredential(h.owner, cleanerCard.id);
    const afterCard = snapshot(h);
    expect(afterCard).not.toEqual(before);
    const e1 = codeOf(() => planImport(h.hub, doc, { mode: "merge" }));
    expect(e1.code).toBe("LK_IMPORT_STALE");
    expect(e1.message).toContain("$.credentials[");

    h.hub.removeUser(h.owner, bob.id);
    const afterUser = snapshot(h);
    const e2 = codeOf(() => planImport(h.hub, doc, { mode: "merge" }));
    expect(e2.code).toBe("LK_IMPORT_STALE");
    expect(e2.message).toContain("$.users[");
    expect(snapshot(h)).toEqual(afterUser);
  });

  it("same hub: identical entries are skipped, a changed one is LK_CONFLICT unless merge", () => {
    const { h, doc } = populated();
    const d = structuredClone(doc) as { users: { name: string; weekDaySchedules: unknown[] }[] };
    const cleaner = d.users.find((u) => u.name === "Cleaner")!;
    cleaner.weekDaySchedules = [{ daysMask: 62, startHour: 8, startMinute: 0, endHour: 18, endMinute: 0 }];
    const before = snapshot(h);
    expect(codeOf(() => planImport(h.hub, d)).code).toBe("LK_CONFLICT");
    expect(snapshot(h)).toEqual(before);
    const plan = planImport(h.hub, d, { mode: "merge" });
    expect(plan.steps).toEqual([expect.objectContaining({ op: "user.update" })]);
    applyImport(h.hub, h.owner, plan);
    expect(h.hub.users().find((u) => u.name === "Cleaner")!.weekDaySchedules[0]!.daysMask).toBe(62);
  });

  it("a step that fails midway leaves nothing changed", () => {
    const { doc } = populated();
    const dst = hub();
    const before = snapshot(dst);
    const plan = planImport(dst.hub, doc);
    // Simulate a failure after users and a card were added (e.g. the disk fails).
    dst.hub.addFingerprint = () => {
      throw new Error("disk on fire");
    };
    expect(() => applyImport(dst.hub, dst.owner, plan)).toThrow("disk on fire");
    const after = snapshot(dst) as { locks: { id: string }[] };
    // The lock added stays (a hub cannot remove a lock); everything else is back.
    const { locks: _la, ...restAfter } = after;
    const { locks: _lb, ...restBefore } = before as typeof after;
    expect(restAfter).toEqual(restBefore);
    expect(after.locks.find((l) => l.id === "front-door")).toEqual(
      (before as typeof after).locks.find((l) => l.id === "front-door"),
    );
  });

  it("refuses a plan the hub no longer matches, and an admin importing an owner", () => {
    const { doc } = populated();
    const dst = hub();
    const plan = planImport(dst.hub, doc);
    dst.hub.addUser(dst.owner, { name: "Bob" });
    expect(codeOf(() => applyImport(dst.hub, dst.owner, plan)).code).toBe("LK_CONFLICT");
    const admin = dst.hub.addUser(dst.owner, { name: "Ada", role: Role.Admin });
    const d = structuredClone(doc) as { users: { name: string; role: string }[] };
    d.users.find((u) => u.name === "Cleaner")!.role = "admin";
    expect(codeOf(() => planImport(dst.hub, d, { actor: { userId: admin.id, role: Role.Admin } })).code).toBe(
      "LK_FORBIDDEN",
    );
  });
});

describe("CSV bulk users", () => {
  const good = [
    "name,role,card,schedule",
    "Alice,member,h10301:123:45678,mon-fri 08:00-18:00",
    '"Smith, Jo",guest,uid:04a1b2c3,"sat,sun 10:00-14:00"',
    '"The ""Boss""",admin,,',
    "",
  ].join("\r\n");

  it("parses RFC 4180 quoting", () => {
    const rows = parseUsersCsv(good);
    expect(rows.map((r) => r.name)).toEqual(["Alice", "Smith, Jo", 'The "Boss"']);
    expect(rows[0]).toMatchObject({ row: 2, role: "member", cardId: "h10301:123:45678" });
    expect(rows[0]!.weekDaySchedules).toEqual([
      { daysMask: 0b0111110, startHour: 8, startMinute: 0, endHour: 18, endMinute: 0 },
    ]);
    expect(rows[1]!.weekDaySchedules[0]!.daysMask).toBe(0b1000001);
    expect(rows[2]).toMatchObject({ cardId: null, weekDaySchedules: [] });
  });

  it("imports a good file through the same plan and apply", () => {
    const h = hub();
    applyImport(h.hub, h.owner, planCsvImport(h.hub, good, { actor: h.owner }));
    const alice = h.hub.users().find((u) => u.name === "Alice")!;
    expect(alice.userType).toBe(UserType.WeekDaySchedule);
    expect(h.hub.credentialViews(alice.id)).toEqual([
      expect.objectContaining({ type: "rfid", cardId: "h10301:123:45678", locks: "all" }),
    ]);
  });

  const bad: [string, string][] = [
    ["a bad card", "Carol,member,uid:zz,"],
    ["a bad schedule", "Carol,member,,mon-fri 18:00"],
    ["a bad role", "Carol,janitor,,"],
    ["a missing field", "Carol,member"],
    ["a duplicate name", "alice,member,,"],
  ];
  for (const [what, line] of bad) {
    it(`a file with ${what} in row 3 is refused naming row 3, changing nothing`, () => {
      const h = hub();
      const text = `name,role,card,schedule\nAlice,member,,\n${line}\nDan,member,,\n`;
      const before = snapshot(h);
      const err = codeOf(() => applyImport(h.hub, h.owner, planCsvImport(h.hub, text)));
      expect(["LK_INVALID_INPUT", "LK_CONFLICT"]).toContain(err.code);
      expect(err.message).toContain("row 3");
      expect(snapshot(h)).toEqual(before);
    });
  }

  it("requires a header and refuses unknown columns and broken quoting", () => {
    expect(codeOf(() => parseUsersCsv("")).message).toContain("row 1");
    expect(codeOf(() => parseUsersCsv("Alice,member\n")).message).toContain("unknown column");
    expect(codeOf(() => parseUsersCsv('name\n"Alice\n')).message).toContain("not closed");
    expect(codeOf(() => parseUsersCsv('name\nAl"ice\n')).message).toContain("row 2");
  });
});
