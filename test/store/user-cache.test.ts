/**
 * The edge store keeps users and credentials in memory and patches them row by row on commit. Whatever
 * sequence of writes, commits, rollbacks and failed savepoints happens, what it serves must equal what a
 * fresh read of the database gives.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { SqliteEdgeStore } from "../../src/store/sqlite/edge-store.ts";
import { card, user } from "../support/builders.ts";

type Op =
  | { k: "user"; u: number; t: number }
  | { k: "delUser"; u: number }
  | { k: "card"; c: number; u: number; t: number }
  | { k: "delCard"; c: number }
  | { k: "used"; c: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant("user" as const), u: fc.nat(5), t: fc.nat(3) }),
  fc.record({ k: fc.constant("delUser" as const), u: fc.nat(5) }),
  fc.record({ k: fc.constant("card" as const), c: fc.nat(8), u: fc.nat(5), t: fc.nat(3) }),
  fc.record({ k: fc.constant("delCard" as const), c: fc.nat(8) }),
  fc.record({ k: fc.constant("used" as const), c: fc.nat(8) }),
);

/** A step: some writes, alone (autocommit), in a transaction that commits or fails, or in a failing savepoint. */
const stepArb = fc.record({
  mode: fc.constantFrom("auto", "commit", "rollback", "savepoint"),
  ops: fc.array(opArb, { maxLength: 4 }),
  read: fc.boolean(),
});

function apply(s: SqliteEdgeStore, op: Op): void {
  const uid = `usr_${op.k === "card" ? op.u : "u" in op ? op.u : 0}`;
  try {
    switch (op.k) {
      case "user":
        s.upsertUser(
          user({ id: `usr_${op.u}`, name: `User ${op.u} v${op.t}`, createdAt: EpochMs(1000 + op.t) }),
        );
        break;
      case "delUser":
        s.deleteUser(uid);
        break;
      case "card":
        s.insertCredential({
          ...card(`cred_${op.c}`, uid, `04${String(op.c).padStart(6, "0")}`),
          createdAt: EpochMs(2000 + op.t),
        });
        break;
      case "delCard":
        s.deleteCredential(`cred_${op.c}`);
        break;
      case "used":
        s.markCredentialUsed(`cred_${op.c}`, EpochMs(5000));
        break;
    }
  } catch {
    // Constraint errors (a card for a missing user, a duplicate id) are part of the game.
  }
}

describe("edge store: users and credentials served from memory", () => {
  it("always equal a fresh read, through commits, rollbacks and failed savepoints", () => {
    const dir = mkdtempSync(join(tmpdir(), "latchkey-cache-"));
    try {
      let n = 0;
      fc.assert(
        fc.property(fc.array(stepArb, { maxLength: 12 }), (steps) => {
          const path = join(dir, `db${n++}.sqlite`);
          const s = new SqliteEdgeStore({ path, crypto: nodeCrypto });
          try {
            for (const st of steps) {
              if (st.mode === "auto") for (const op of st.ops) apply(s, op);
              else {
                try {
                  s.transaction(() => {
                    for (const op of st.ops) apply(s, op);
                    if (st.mode === "savepoint") {
                      try {
                        s.transaction(() => {
                          apply(s, { k: "user", u: 9, t: 0 });
                          throw new Error("savepoint fails");
                        });
                      } catch {
                        // the outer transaction goes on
                      }
                    }
                    if (st.read) {
                      s.users();
                      s.credentials();
                    }
                    if (st.mode === "rollback") throw new Error("roll back");
                  });
                } catch {
                  // rolled back
                }
              }
              if (st.read || st.mode !== "auto") {
                const fresh = new SqliteEdgeStore({ path, crypto: nodeCrypto, readonly: true });
                try {
                  expect(s.users()).toEqual(fresh.users());
                  expect(s.credentials()).toEqual(fresh.credentials());
                } finally {
                  fresh.close();
                }
              }
            }
          } finally {
            s.close();
          }
        }),
        {
          numRuns: 400,
          // Found by this test: a user removed (its cards cascade) and re-created in one transaction.
          examples: [
            [
              [
                { mode: "savepoint", ops: [{ k: "user", u: 3, t: 0 }], read: false },
                { mode: "auto", ops: [{ k: "card", c: 0, u: 3, t: 0 }], read: false },
                {
                  mode: "commit",
                  ops: [
                    { k: "delUser", u: 3 },
                    { k: "user", u: 3, t: 0 },
                  ],
                  read: false,
                },
              ],
            ],
          ],
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
