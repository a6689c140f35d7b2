/**
 * Matter's slot numbers for Latchkey's records. A Door Lock endpoint addresses users, credentials and
 * schedules by index (Matter 1.4 § 5.2.10: UserIndex 1…NumberOfTotalUsersSupported, CredentialIndex
 * 1…NumberOfPINUsersSupported, WeekDayIndex/YearDayIndex 1…N per user); Latchkey's records have ids.
 * This table is the only state the bridge keeps of its own: which slot shows which record, which fabric
 * created and last changed it, and the UserUniqueID a controller gave. Users, PINs and schedules
 * themselves live only in Latchkey (one model, not two).
 *
 * Slots are per lock and stable: a record keeps its slot until it is removed; a new record takes the slot
 * a Matter command named, else the lowest free one. A record beyond the capacity gets no slot (it is not
 * visible over Matter but works as usual). Persisted as JSON (mode 0600) beside the matter.js storage,
 * written whole to a temporary file and renamed, once per burst of changes (after the synchronous work
 * that made them; `flush` at close).
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";

/** What Matter knows about one occupied slot beyond the Latchkey record (§ 5.2.10.18 GetUserResponse). */
export interface SlotEntry {
  /** The Latchkey user or credential id. */
  readonly id: string;
  /** The fabric whose command created the record; null when it was created outside Matter. */
  readonly creatorFabricIndex: number | null;
  /** The fabric of the last change; null when the last change came from outside Matter. */
  readonly lastModifiedFabricIndex: number | null;
}

export interface UserSlotEntry extends SlotEntry {
  /** The controller's UserUniqueID (uint32), if one gave it. */
  readonly userUniqueId: number | null;
}

export type ScheduleKind = "weekDay" | "yearDay";

interface LockTables {
  users: Map<number, UserSlotEntry>;
  pins: Map<number, SlotEntry>;
  /** userId → schedule slot → schedule key (see mapping.ts `scheduleKeys`). */
  weekDay: Map<string, Map<number, string>>;
  yearDay: Map<string, Map<number, string>>;
}

interface FileV2 {
  version: 2;
  locks: Record<
    string,
    {
      users: Record<string, UserSlotEntry>;
      pins: Record<string, SlotEntry>;
      weekDay: Record<string, Record<string, string>>;
      yearDay: Record<string, Record<string, string>>;
    }
  >;
}

/** The lowest slot in 1…max not in `taken`, or null. */
function lowestFree(taken: ReadonlyMap<number, unknown>, max: number): number | null {
  for (let i = 1; i <= max; i++) if (!taken.has(i)) return i;
  return null;
}

function slotOf<E extends SlotEntry>(table: ReadonlyMap<number, E>, id: string): number | null {
  for (const [slot, e] of table) if (e.id === id) return slot;
  return null;
}

const toObject = <V>(m: ReadonlyMap<number | string, V>): Record<string, V> =>
  Object.fromEntries([...m].map(([k, v]) => [String(k), v]));

const toMap = <V>(o: Record<string, V> | undefined): Map<number, V> =>
  new Map(Object.entries(o ?? {}).map(([k, v]) => [Number(k), v]));

export class MatterSlots {
  private readonly locks = new Map<string, LockTables>();

  /**
   * @param file where the table is kept; null keeps it in memory only
   * @param legacyFile the first bridge's user map (lockId → user slot → user id), read when `file` is absent
   */
  constructor(
    private readonly file: string | null,
    legacyFile?: string,
  ) {
    if (file === null) return;
    let raw: unknown;
    for (const f of legacyFile ? [file, legacyFile] : [file]) {
      try {
        raw = JSON.parse(readFileSync(f, "utf8"));
        break;
      } catch {
        // absent or unreadable: slots are handed out afresh
      }
    }
    if (raw && typeof raw === "object" && (raw as { version?: unknown }).version === 2) {
      for (const [lockId, t] of Object.entries((raw as FileV2).locks)) {
        this.locks.set(lockId, {
          users: toMap(t.users),
          pins: toMap(t.pins),
          weekDay: new Map(Object.entries(t.weekDay ?? {}).map(([u, m]) => [u, toMap(m)])),
          yearDay: new Map(Object.entries(t.yearDay ?? {}).map(([u, m]) => [u, toMap(m)])),
        });
      }
    } else if (raw && typeof raw === "object") {
      // The legacy user map.
      for (const [lockId, m] of Object.entries(raw as Record<string, Record<string, string>>)) {
        const t = this.tables(lockId);
        for (const [slot, id] of Object.entries(m))
          t.users.set(Number(slot), {
            id,
            creatorFabricIndex: null,
            lastModifiedFabricIndex: null,
            userUniqueId: null,
          });
      }
    }
  }

  private tables(lockId: string): LockTables {
    let t = this.locks.get(lockId);
    if (!t) {
      t = { users: new Map(), pins: new Map(), weekDay: new Map(), yearDay: new Map() };
      this.locks.set(lockId, t);
    }
    return t;
  }

  private flushQueued = false;

  /** Write the table once the current synchronous work is done (a bulk import writes it once). */
  private save(): void {
    if (this.file === null || this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  /** Write the table now if a change is pending. */
  flush(): void {
    if (this.file === null || !this.flushQueued) return;
    this.flushQueued = false;
    const out: FileV2 = { version: 2, locks: {} };
    for (const [lockId, t] of this.locks) {
      out.locks[lockId] = {
        users: toObject(t.users),
        pins: toObject(t.pins),
        weekDay: Object.fromEntries([...t.weekDay].map(([u, m]) => [u, toObject(m)])),
        yearDay: Object.fromEntries([...t.yearDay].map(([u, m]) => [u, toObject(m)])),
      };
    }
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(out), { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  // ------------------------------------------------------------------ users

  userSlot(lockId: string, userId: string): number | null {
    return slotOf(this.tables(lockId).users, userId);
  }

  userAt(lockId: string, slot: number): UserSlotEntry | undefined {
    return this.tables(lockId).users.get(slot);
  }

  /** The occupied user slots, ascending. */
  userSlots(lockId: string): number[] {
    return [...this.tables(lockId).users.keys()].sort((a, b) => a - b);
  }

  /**
   * Give `userId` a slot: the one it has, else `want` when free, else the lowest free slot; null when
   * the table is full. `fabricIndex` is the creating fabric (null from outside Matter).
   */
  placeUser(
    lockId: string,
    userId: string,
    opts: { want?: number | null; max: number; fabricIndex: number | null; userUniqueId?: number | null },
  ): number | null {
    const t = this.tables(lockId).users;
    const have = slotOf(t, userId);
    if (have !== null) return have;
    const slot = opts.want != null && !t.has(opts.want) ? opts.want : lowestFree(t, opts.max);
    if (slot === null) return null;
    t.set(slot, {
      id: userId,
      creatorFabricIndex: opts.fabricIndex,
      lastModifiedFabricIndex: opts.fabricIndex,
      userUniqueId: opts.userUniqueId ?? null,
    });
    this.save();
    return slot;
  }

  /** Record a change to the user in `slot` (by `fabricIndex`, null from outside Matter). */
  touchUser(lockId: string, slot: number, fabricIndex: number | null, userUniqueId?: number | null): void {
    const t = this.tables(lockId).users;
    const e = t.get(slot);
    if (!e) return;
    t.set(slot, {
      ...e,
      lastModifiedFabricIndex: fabricIndex,
      userUniqueId: userUniqueId === undefined ? e.userUniqueId : userUniqueId,
    });
    this.save();
  }

  /** Free the user's slot (and their schedule slots); returns the slot it had. */
  removeUser(lockId: string, userId: string): number | null {
    const t = this.tables(lockId);
    const slot = slotOf(t.users, userId);
    t.weekDay.delete(userId);
    t.yearDay.delete(userId);
    if (slot === null) return null;
    t.users.delete(slot);
    this.save();
    return slot;
  }

  // ------------------------------------------------------------------ PIN credentials

  pinSlot(lockId: string, credentialId: string): number | null {
    return slotOf(this.tables(lockId).pins, credentialId);
  }

  pinAt(lockId: string, slot: number): SlotEntry | undefined {
    return this.tables(lockId).pins.get(slot);
  }

  /** The occupied PIN slots, ascending. */
  pinSlots(lockId: string): number[] {
    return [...this.tables(lockId).pins.keys()].sort((a, b) => a - b);
  }

  /** Give a PIN credential a slot, as {@link placeUser}. */
  placePin(
    lockId: string,
    credentialId: string,
    opts: { want?: number | null; max: number; fabricIndex: number | null },
  ): number | null {
    const t = this.tables(lockId).pins;
    const have = slotOf(t, credentialId);
    if (have !== null) return have;
    const slot = opts.want != null && !t.has(opts.want) ? opts.want : lowestFree(t, opts.max);
    if (slot === null) return null;
    t.set(slot, {
      id: credentialId,
      creatorFabricIndex: opts.fabricIndex,
      lastModifiedFabricIndex: opts.fabricIndex,
    });
    this.save();
    return slot;
  }

  /**
   * A PIN replaced by another (a changed PIN is a new Latchkey credential): the new one takes the old
   * one's slot and creator. Returns the slot, or null when the old one had none here.
   */
  replacePin(lockId: string, oldId: string, newId: string, fabricIndex: number | null): number | null {
    const t = this.tables(lockId).pins;
    const slot = slotOf(t, oldId);
    if (slot === null) return null;
    const e = t.get(slot)!;
    t.set(slot, {
      id: newId,
      creatorFabricIndex: e.creatorFabricIndex,
      lastModifiedFabricIndex: fabricIndex,
    });
    this.save();
    return slot;
  }

  /** Free a PIN's slot; returns the slot it had. */
  removePin(lockId: string, credentialId: string): number | null {
    const t = this.tables(lockId).pins;
    const slot = slotOf(t, credentialId);
    if (slot === null) return null;
    t.delete(slot);
    this.save();
    return slot;
  }

  // ------------------------------------------------------------------ catching up

  /**
   * Make the lock's tables agree with Latchkey: drop slots of records that are gone, give records that
   * have none the lowest free slot, in the order given (oldest first keeps slots predictable). Catches up
   * with changes made while the bridge was not running. Returns what changed.
   */
  reconcile(
    lockId: string,
    users: readonly string[],
    pins: readonly string[],
    max: { users: number; pins: number },
  ): { usersAdded: number[]; usersRemoved: number[]; pinsAdded: number[]; pinsRemoved: number[] } {
    const t = this.tables(lockId);
    const out = {
      usersAdded: [] as number[],
      usersRemoved: [] as number[],
      pinsAdded: [] as number[],
      pinsRemoved: [] as number[],
    };
    const liveUsers = new Set(users);
    for (const [slot, e] of t.users) {
      if (liveUsers.has(e.id)) continue;
      t.users.delete(slot);
      t.weekDay.delete(e.id);
      t.yearDay.delete(e.id);
      out.usersRemoved.push(slot);
    }
    const livePins = new Set(pins);
    for (const [slot, e] of t.pins) {
      if (livePins.has(e.id)) continue;
      t.pins.delete(slot);
      out.pinsRemoved.push(slot);
    }
    const mappedUsers = new Set([...t.users.values()].map((e) => e.id));
    for (const id of users) {
      if (mappedUsers.has(id)) continue;
      const slot = lowestFree(t.users, max.users);
      if (slot === null) break;
      t.users.set(slot, { id, creatorFabricIndex: null, lastModifiedFabricIndex: null, userUniqueId: null });
      out.usersAdded.push(slot);
    }
    const mappedPins = new Set([...t.pins.values()].map((e) => e.id));
    for (const id of pins) {
      if (mappedPins.has(id)) continue;
      const slot = lowestFree(t.pins, max.pins);
      if (slot === null) break;
      t.pins.set(slot, { id, creatorFabricIndex: null, lastModifiedFabricIndex: null });
      out.pinsAdded.push(slot);
    }
    if (Object.values(out).some((l) => l.length > 0)) this.save();
    return out;
  }

  // ------------------------------------------------------------------ schedules

  /**
   * The user's schedule slots, made to agree with `keys` (the user's schedules in Latchkey order, see
   * mapping.ts `scheduleKeys`): slots of schedules that are gone are freed, schedules without one take the
   * lowest free slot (none beyond `max`). `want` puts one schedule at the slot a Matter command named.
   * Returns slot → position in `keys`, and the slots whose schedule appeared, changed or went.
   */
  syncSchedules(
    lockId: string,
    kind: ScheduleKind,
    userId: string,
    keys: readonly string[],
    max: number,
    want?: { readonly slot: number; readonly key: string },
  ): { slots: Map<number, number>; added: number[]; modified: number[]; removed: number[] } {
    const byUser = this.tables(lockId)[kind];
    const before = byUser.get(userId) ?? new Map<number, string>();
    const m = new Map(before);
    if (want && keys.includes(want.key)) {
      for (const [slot, k] of m) if (k === want.key) m.delete(slot);
      m.set(want.slot, want.key);
    }
    const live = new Set(keys);
    for (const [slot, k] of m) if (!live.has(k)) m.delete(slot);
    const mapped = new Set(m.values());
    for (const k of keys) {
      if (mapped.has(k)) continue;
      const slot = lowestFree(m, max);
      if (slot === null) break;
      m.set(slot, k);
    }
    const added: number[] = [];
    const modified: number[] = [];
    const removed: number[] = [];
    for (const [slot, k] of m) {
      const was = before.get(slot);
      if (was === undefined) added.push(slot);
      else if (was !== k) modified.push(slot);
    }
    for (const slot of before.keys()) if (!m.has(slot)) removed.push(slot);
    if (added.length + modified.length + removed.length > 0) {
      if (m.size === 0) byUser.delete(userId);
      else byUser.set(userId, m);
      this.save();
    }
    const slots = new Map<number, number>();
    for (const [slot, k] of m) slots.set(slot, keys.indexOf(k));
    return { slots, added: added.sort((a, b) => a - b), modified: modified.sort((a, b) => a - b), removed };
  }
}
