/**
 * The merge of management operations (src/core/ops/merge.ts, docs/protocol/operations.md § "Merge"):
 * scenarios read as the outage stories of issue 5, then properties over random operation sets —
 * convergence under any permutation, duplication and partition into replicas that gossip in any order;
 * removal and revocation winning over concurrent grants; the last owner never removed.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../../src/core/crypto.ts";
import { CoseAlg } from "../../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../../src/core/envelope/cwt.ts";
import { isLatchkeyError } from "../../src/core/errors.ts";
import { keyId, type PublicKey } from "../../src/core/keys/digital-key.ts";
import { compareHlc, hlc } from "../../src/core/ops/hlc.ts";
import {
  encodeReplicaState,
  foldOps,
  type Genesis,
  genesisOf,
  guestCodeKey,
  mergeOpSets,
  OpLog,
  type ReplicaState,
} from "../../src/core/ops/merge.ts";
import {
  makeOperation,
  type Operation,
  type OperationBody,
  type OpKind,
} from "../../src/core/ops/operation.ts";
import { nodeCrypto as c } from "../../src/platform/node-crypto.ts";
import { mulberry32 } from "../support/prng.ts";

const RUN = { seed: 4242 } as const;
const T0 = 1_767_225_600_000;
const NODES = ["0000000000000001", "0000000000000002", "0000000000000003"] as const;
const LOCK = "front-door";
const SEALED = Uint8Array.from({ length: 60 }, (_, i) => i);

function keyOf(n: number): { key: PublicKey; id: string } {
  const key: PublicKey = {
    alg: CoseAlg.EdDSA,
    key: c.ed25519PublicKey(Uint8Array.from({ length: 32 }, (_, i) => (n * 31 + i) & 0xff)),
  };
  return { key, id: toHex(keyId(c, key)) };
}
/** A: the owner who claimed the lock. B, C: later owners. D: an admin. E: a key with no role. */
const A = keyOf(1);
const B = keyOf(2);
const C = keyOf(3);
const D = keyOf(4);
const E = keyOf(5);
const KEYS = [A, B, C, D, E] as const;
const G: Genesis = genesisOf(c, [A.key]);

type Body<K extends OpKind> = Extract<OperationBody, { kind: K }>;

/** An operation by `actor` at (wall offset, counter, node). */
function op<K extends OpKind>(
  actor: { id: string },
  at: number,
  kind: K,
  target: string,
  payload: Body<K>["payload"],
  counter = 0,
  node: string = NODES[0],
): Operation {
  return makeOperation(c, {
    hlc: hlc(T0 + at, counter, node),
    actor: actor.id,
    scope: { kind: "lock", id: LOCK },
    kind,
    target,
    payload,
  } as OperationBody);
}

const hexState = (s: ReplicaState): string => toHex(encodeReplicaState(s));
const pinFor = (userId: string) => ({
  userId,
  type: "pin" as const,
  locks: "all" as const,
  label: null,
  sealed: SEALED,
  duress: false,
});

describe("merge scenarios", () => {
  it("a user removed at the lock while the cloud renames it offline stays removed after reconnecting", () => {
    const add = op(A, 0, "user.upsert", "usr_ana", { name: "Ana" });
    const pin = op(A, 1, "credential.upsert", "crd_ana", pinFor("usr_ana"));
    const lock = new OpLog(G);
    const cloud = new OpLog(G);
    lock.add([add, pin]);
    cloud.add([add, pin]);
    // Outage: the lock removes Ana; the cloud, with a later clock, renames her and adds a card.
    lock.add([op(A, 100, "user.remove", "usr_ana", {}, 0, NODES[0])]);
    cloud.add([
      op(A, 200, "user.upsert", "usr_ana", { name: "Ana B." }, 0, NODES[1]),
      op(
        A,
        201,
        "credential.upsert",
        "crd_thumb",
        { userId: "usr_ana", type: "fingerprint", locks: "all", label: null, slot: 1 },
        0,
        NODES[1],
      ),
    ]);
    lock.merge(cloud);
    cloud.merge(lock);
    expect(hexState(lock.state())).toBe(hexState(cloud.state()));
    const s = lock.state();
    expect(s.users.has("usr_ana")).toBe(false);
    expect(s.credentials.size).toBe(0);
    expect([...s.removedCredentials].sort()).toEqual(["crd_ana"]);
    expect([...s.skipped.values()].sort()).toEqual(["removed", "removed"]);
  });

  it("a revoked credential stays revoked even if re-enrolled under its old id; a new id works", () => {
    const s = foldOps(G, [
      op(A, 0, "user.upsert", "u", { name: "U" }),
      op(A, 1, "credential.upsert", "crd1", pinFor("u")),
      op(A, 5, "credential.remove", "crd1", {}, 0, NODES[0]),
      op(A, 9, "credential.upsert", "crd1", pinFor("u"), 0, NODES[1]),
      op(A, 9, "credential.upsert", "crd2", pinFor("u"), 0, NODES[1]),
    ]);
    expect([...s.credentials.keys()]).toEqual(["crd2"]);
  });

  it("edits of different fields of one user on both sides both survive (last writer wins per field)", () => {
    const add = op(A, 0, "user.upsert", "u", { name: "Ana", userType: "unrestricted" });
    const s = foldOps(G, [
      add,
      op(A, 10, "user.upsert", "u", { name: "Ana Lopez" }, 0, NODES[1]),
      op(A, 11, "user.upsert", "u", { userStatus: "occupiedDisabled" }, 0, NODES[2]),
      op(A, 12, "user.upsert", "u", { name: "Ana López" }, 0, NODES[2]),
    ]);
    expect(s.users.get("u")).toEqual({
      id: "u",
      name: "Ana López",
      userType: "unrestricted",
      userStatus: "occupiedDisabled",
      expiringTimeout: null,
      role: "member",
    });
  });

  it("ownership transfer: the new owner is added, then the old one removed; the old owner's later changes are refused", () => {
    const s = foldOps(G, [
      op(A, 0, "owner.add", B.id, { key: B.key }),
      op(A, 1, "owner.remove", A.id, {}),
      op(A, 2, "user.upsert", "late", { name: "Late" }),
      op(B, 3, "user.upsert", "ok", { name: "Ok" }),
    ]);
    expect([...s.owners.keys()]).toEqual([B.id]);
    expect([...s.users.keys()]).toEqual(["ok"]);
    expect([...s.skipped.values()]).toEqual(["unauthorized"]);
  });

  it("two owners leaving at once cannot strand the lock: the later departure is refused", () => {
    const base = [op(A, 0, "owner.add", B.id, { key: B.key })];
    const aLeaves = op(A, 10, "owner.remove", A.id, {}, 0, NODES[0]);
    const bLeaves = op(B, 10, "owner.remove", B.id, {}, 0, NODES[1]);
    const s = foldOps(G, [...base, bLeaves, aLeaves]);
    expect([...s.owners.keys()]).toEqual([B.id]); // A's remove sorts first (node 1 < node 2)
    expect(s.skipped.get(bLeaves.id)).toBe("last_owner");
    // Owners removing each other: the first remove in the order wins, the other owner lost its right.
    const aRemovesB = op(A, 10, "owner.remove", B.id, {}, 0, NODES[0]);
    const bRemovesA = op(B, 10, "owner.remove", A.id, {}, 0, NODES[1]);
    const t = foldOps(G, [...base, bRemovesA, aRemovesB]);
    expect([...t.owners.keys()]).toEqual([A.id]);
    expect(t.skipped.get(bRemovesA.id)).toBe("unauthorized");
  });

  it("a removed owner is not re-added under the same key", () => {
    const s = foldOps(G, [
      op(A, 0, "owner.add", B.id, { key: B.key }),
      op(A, 1, "owner.remove", B.id, {}),
      op(A, 2, "owner.add", B.id, { key: B.key }),
    ]);
    expect([...s.owners.keys()]).toEqual([A.id]);
    expect([...s.removedOwners]).toEqual([B.id]);
  });

  it("an admin's role revoked: their earlier changes stand, later ones and re-grants are refused", () => {
    const s = foldOps(G, [
      op(A, 0, "role.set", D.id, { role: "admin", key: D.key }),
      op(D, 1, "user.upsert", "before", { name: "Before" }),
      op(A, 5, "role.set", D.id, { role: null }),
      op(D, 6, "user.upsert", "after", { name: "After" }, 0, NODES[1]),
      op(A, 7, "role.set", D.id, { role: "admin", key: D.key }, 0, NODES[1]),
      op(D, 2, "owner.add", E.id, { key: E.key }),
      op(E, 3, "user.upsert", "e", { name: "E" }),
    ]);
    expect([...s.users.keys()]).toEqual(["before"]);
    expect(s.roles.size).toBe(0);
    expect([...s.skipped.values()].sort()).toEqual([
      "revoked",
      "unauthorized",
      "unauthorized",
      "unauthorized",
    ]);
  });

  it("a revoked key serial is never issued again; guest-code revocations accumulate", () => {
    const issue = { holder: E.id, rights: 1, nbf: NumericDate(1), exp: NumericDate(2_000_000_000) };
    const s = foldOps(G, [
      op(A, 0, "key.revoke", "0a0b", {}),
      op(A, 1, "key.issue", "0a0b", issue),
      op(A, 1, "key.issue", "0a0c", issue),
      op(A, 2, "guestcode.revoke", "00112233445566ff", { issuerId: "p", epoch: 1, dropAfter: 50 }),
      op(A, 3, "guestcode.revoke", "00112233445566ff", { issuerId: "p", epoch: 1, dropAfter: 10 }),
    ]);
    expect([...s.keys.keys()]).toEqual(["0a0c"]);
    expect(s.revokedGuestCodes.get(guestCodeKey("p", 1, "00112233445566ff"))?.dropAfter).toBe(50);
  });

  it("replicas of different locks do not merge", () => {
    const other = new OpLog(genesisOf(c, [B.key]));
    let err: unknown;
    try {
      new OpLog(G).merge(other);
    } catch (e) {
      err = e;
    }
    expect(isLatchkeyError(err, "LK_CONFLICT")).toBe(true);
  });
});

// ------------------------------------------------------------------ random operation sets

const USERS = ["u1", "u2", "u3"] as const;
const CREDS = ["c1", "c2", "c3", "c4"] as const;
const SERIALS = ["01", "02", "03"] as const;
const CODES = ["00000000000000c1", "00000000000000c2"] as const;
const OWNER_KINDS: readonly OpKind[] = ["owner.add", "owner.remove"];
const GRANT_KINDS: readonly OpKind[] = [
  "user.upsert",
  "user.remove",
  "credential.upsert",
  "credential.remove",
  "schedule.set",
  "mode.set",
  "key.issue",
  "key.revoke",
  "guestcode.revoke",
];
const ALL_KINDS: readonly OpKind[] = [...GRANT_KINDS, "role.set", ...OWNER_KINDS];

interface Spec {
  readonly kind: OpKind;
  readonly actor: number;
  readonly wall: number;
  readonly counter: number;
  readonly node: number;
  readonly target: number;
  readonly variant: number;
}

const arbSpec = (kinds: readonly OpKind[], actors: readonly number[]): fc.Arbitrary<Spec> =>
  fc.record({
    kind: fc.constantFrom(...kinds),
    actor: fc.constantFrom(...actors),
    wall: fc.integer({ min: 0, max: 12 }),
    counter: fc.integer({ min: 0, max: 2 }),
    node: fc.integer({ min: 0, max: 2 }),
    target: fc.nat({ max: 3 }),
    variant: fc.nat({ max: 15 }),
  });

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;

/** The operation a spec describes; deterministic, cached (the same spec is the same operation). */
const opCache = new Map<string, Operation>();
function opOf(s: Spec): Operation {
  const k = JSON.stringify(s);
  const hit = opCache.get(k);
  if (hit !== undefined) return hit;
  const v = s.variant;
  const user = pick(USERS, s.target);
  const owner = pick([A, B, C], s.target);
  let target: string;
  let payload: unknown;
  switch (s.kind) {
    case "user.upsert":
      target = user;
      payload = [
        { name: pick(["Ana", "Ben", "Cy"], v) },
        { userStatus: v % 2 ? "occupiedDisabled" : "occupiedEnabled" },
        { name: "Dee", userType: "nonAccess", expiringTimeout: v > 8 ? 3600 : null },
      ][v % 3];
      break;
    case "credential.upsert":
      target = pick(CREDS, s.target);
      payload =
        v % 2 === 0
          ? pinFor(pick(USERS, v >> 1))
          : { userId: pick(USERS, v >> 1), type: "fingerprint", locks: [LOCK], label: "Thumb", slot: v };
      break;
    case "schedule.set":
      target = user;
      payload = {
        weekDay: v % 2 ? [{ daysMask: v + 1, startHour: 8, startMinute: 0, endHour: 17, endMinute: 0 }] : [],
        yearDay: v % 3 ? [] : [{ start: "2026-01-01T00:00", end: "2026-02-01T00:00" }],
      };
      break;
    case "mode.set":
      target = LOCK;
      payload = { mode: pick(["normal", "vacation", "privacy", "passage"], v) };
      break;
    case "role.set": {
      const who = pick([D, E, B], s.target);
      const role = pick(["admin", "member", null, "admin"], v);
      target = who.id;
      payload = role === null ? { role } : { role, key: who.key };
      break;
    }
    case "key.issue":
      target = pick(SERIALS, s.target);
      payload = { holder: E.id, rights: (v % 15) + 1, nbf: 1, exp: 2_000_000_000 };
      break;
    case "guestcode.revoke":
      target = pick(CODES, s.target);
      payload = { issuerId: "phone", epoch: v % 2, dropAfter: 1000 + v };
      break;
    case "owner.add":
      target = owner.id;
      payload = { key: owner.key };
      break;
    case "user.remove":
      target = user;
      payload = {};
      break;
    case "credential.remove":
      target = pick(CREDS, s.target);
      payload = {};
      break;
    default: // key.revoke, owner.remove
      target = s.kind === "key.revoke" ? pick(SERIALS, s.target) : owner.id;
      payload = {};
  }
  const o = makeOperation(c, {
    hlc: hlc(T0 + s.wall, s.counter, NODES[s.node]!),
    actor: KEYS[s.actor]!.id,
    scope: { kind: "lock", id: LOCK },
    kind: s.kind,
    target,
    payload,
  } as OperationBody);
  opCache.set(k, o);
  return o;
}

/** A seeded Fisher-Yates shuffle (a copy). */
function shuffled<T>(xs: readonly T[], rand: () => number): T[] {
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Feed `ops` to `log` in random batches (so both the append and the re-fold paths run). */
function feed(log: OpLog, ops: readonly Operation[], rand: () => number): void {
  let i = 0;
  while (i < ops.length) {
    const n = 1 + Math.floor(rand() * 4);
    log.add(ops.slice(i, i + n));
    i += n;
  }
}

describe("merge properties", () => {
  it("converges: any permutation, duplication and partition into 3 gossiping replicas gives one state", () => {
    const REPLICAS = 3;
    let sets = 0;
    let opsTotal = 0;
    let divergent = 0;
    const reasons = new Map<string, number>();
    fc.assert(
      fc.property(
        fc.array(arbSpec(ALL_KINDS, [0, 0, 0, 1, 2, 3, 3, 4]), { minLength: 1, maxLength: 40 }),
        fc.integer(),
        (specs, seed) => {
          const rand = mulberry32(seed);
          // B starts as a second owner and D as an admin, so most operations have authority.
          const prelude = [
            op(A, -1, "owner.add", B.id, { key: B.key }),
            op(A, -1, "role.set", D.id, { role: "admin", key: D.key }, 1),
          ];
          const ops = [...prelude, ...specs.map(opOf)];
          const reference = hexState(foldOps(G, ops));
          // Any permutation and duplication of one set folds alike.
          const dup = shuffled([...ops, ...ops.filter(() => rand() < 0.3)], rand);
          expect(hexState(foldOps(G, dup))).toBe(reference);
          // Partition: each operation starts at one or more replicas.
          const replicas = Array.from({ length: REPLICAS }, () => new OpLog(G));
          const initial: Operation[][] = replicas.map(() => []);
          for (const o of ops) {
            initial[Math.floor(rand() * REPLICAS)]!.push(o);
            if (rand() < 0.2) initial[Math.floor(rand() * REPLICAS)]!.push(o);
          }
          for (const [i, r] of replicas.entries()) feed(r, shuffled(initial[i]!, rand), rand);
          // Gossip: random replicas send random subsets of what they hold, in random order.
          const rounds = Math.floor(rand() * 8);
          for (let k = 0; k < rounds; k++) {
            const from = replicas[Math.floor(rand() * REPLICAS)]!;
            const to = replicas[Math.floor(rand() * REPLICAS)]!;
            feed(
              to,
              shuffled(
                from.ops().filter(() => rand() < 0.6),
                rand,
              ),
              rand,
            );
          }
          // Mid-gossip, each replica's incremental state is the fold of what it holds.
          for (const r of replicas) expect(hexState(r.state())).toBe(hexState(foldOps(G, r.ops())));
          // Reconnect: every replica eventually hears from every other, in a random order.
          for (const [i, j] of shuffled(
            [0, 1, 2].flatMap((i) => [0, 1, 2].filter((j) => j !== i).map((j) => [i, j] as const)),
            rand,
          )) {
            replicas[j]!.merge(replicas[i]!);
          }
          for (const [i, j] of [
            [0, 1],
            [1, 2],
            [2, 0],
            [0, 1],
          ] as const)
            replicas[j]!.merge(replicas[i]!);
          sets++;
          opsTotal += ops.length;
          for (const r of replicas) {
            expect(r.size).toBe(new Set(ops.map((o) => o.id)).size);
            if (hexState(r.state()) !== reference) divergent++;
            // Idempotent: adding what is held changes nothing.
            expect(r.add(shuffled(ops, rand))).toBe(0);
          }
          expect(divergent).toBe(0);
          for (const why of replicas[0]!.state().skipped.values())
            reasons.set(why, (reasons.get(why) ?? 0) + 1);
          // The state never lacks an owner.
          expect(replicas[0]!.state().owners.size).toBeGreaterThan(0);
        },
      ),
      { ...RUN, numRuns: 1500 },
    );
    console.log(
      `merge: ${sets} op sets × ${REPLICAS} replicas (${opsTotal} ops), ${divergent} divergent; skipped ${JSON.stringify(Object.fromEntries(reasons))}`,
    );
  });

  it("removal and revocation win over concurrent and later grants", () => {
    let sets = 0;
    let blocked = 0;
    fc.assert(
      fc.property(fc.array(arbSpec(GRANT_KINDS, [0, 3]), { minLength: 1, maxLength: 40 }), (specs) => {
        // The admin D is granted before anything else happens, and never loses the role here.
        const grant = op(A, -1, "role.set", D.id, { role: "admin", key: D.key });
        const ops = [grant, ...specs.map(opOf)];
        const s = foldOps(G, ops);
        sets++;
        for (const o of ops) {
          if (o.kind === "user.remove") {
            expect(s.users.has(o.target)).toBe(false);
            expect(s.schedules.has(o.target)).toBe(false);
          }
          if (o.kind === "credential.remove") expect(s.credentials.has(o.target)).toBe(false);
          if (o.kind === "key.revoke") expect(s.keys.has(o.target)).toBe(false);
        }
        for (const cr of s.credentials.values()) expect(s.removedUsers.has(cr.userId)).toBe(false);
        // Count the grants plain last-writer-wins would have let through: a write to an entity after
        // (by HLC) a remove of that same entity.
        const family = (k: OpKind): string => k.split(".")[0]!.replace("schedule", "user");
        for (const o of ops) {
          if (o.kind.endsWith(".remove") || o.kind === "key.revoke") continue;
          const later = ops.some(
            (r) =>
              (r.kind.endsWith(".remove") || r.kind === "key.revoke") &&
              family(r.kind) === family(o.kind) &&
              r.target === o.target &&
              compareHlc(r.hlc, o.hlc) < 0,
          );
          if (!later) continue;
          expect(s.skipped.get(o.id)).toMatch(/^(removed|revoked)$/);
          blocked++;
        }
      }),
      { ...RUN, numRuns: 1500 },
    );
    console.log(
      `removal wins: ${sets} op sets, ${blocked} later or concurrent grants refused, 0 resurrected`,
    );
  });

  it("the last owner is never removed, at any point of the order", () => {
    let sets = 0;
    let saved = 0;
    fc.assert(
      fc.property(
        fc.array(arbSpec([...OWNER_KINDS, ...OWNER_KINDS, "user.upsert"], [0, 1, 2]), {
          minLength: 1,
          maxLength: 30,
        }),
        (specs) => {
          const ops = mergeOpSets(specs.map(opOf), []);
          const log = new OpLog(G);
          for (const o of ops) {
            log.add([o]);
            expect(log.state().owners.size).toBeGreaterThan(0);
          }
          sets++;
          for (const why of log.state().skipped.values()) if (why === "last_owner") saved++;
          expect(hexState(log.state())).toBe(hexState(foldOps(G, shuffled(ops, mulberry32(ops.length)))));
        },
      ),
      { ...RUN, numRuns: 1500 },
    );
    console.log(`owners: ${sets} op sets, ${saved} removals of the last owner refused, 0 stranded locks`);
  });
});
