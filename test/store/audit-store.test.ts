import { describe, expect, it } from "vitest";
import { verifyChain } from "../../src/core/audit/chain.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { MemoryAuditStore } from "../../src/store/memory/memory-audit-store.ts";
import { SqliteEdgeStore } from "../../src/store/sqlite/edge-store.ts";
import { runAuditStoreTests } from "./audit-store.acceptance.ts";

runAuditStoreTests("in-memory", () => new MemoryAuditStore(nodeCrypto));
runAuditStoreTests("sqlite", () => new SqliteEdgeStore({ path: ":memory:", crypto: nodeCrypto }));

describe("SQLite edge store transactions", () => {
  it("a rolled-back outer transaction leaves the chain head where the disk is", () => {
    const s = new SqliteEdgeStore({ path: ":memory:", crypto: nodeCrypto });
    s.append([{ at: EpochMs(1), lockId: null, kind: "power.up", data: {} }]);
    const head = s.head();
    expect(() =>
      s.transaction(() => {
        s.appendInTransaction([{ at: EpochMs(2), lockId: null, kind: "power.up", data: {} }]);
        throw new Error("rollback");
      }),
    ).toThrow("rollback");
    expect(s.head()).toEqual(head);
    s.append([{ at: EpochMs(3), lockId: null, kind: "power.up", data: {} }]);
    const seed = new Uint8Array(32).fill(1);
    expect(
      verifyChain(nodeCrypto, "d", nodeCrypto.ed25519PublicKey(seed), null, s.iterate(), new Map()).ok,
    ).toBe(true);
  });
});
