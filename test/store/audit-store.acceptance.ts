/**
 * The one acceptance suite of the AuditStore port. Every adapter runs it:
 *   runAuditStoreTests("sqlite", () => new SqliteEdgeStore(...))
 */
import { describe, expect, it } from "vitest";
import {
  AuditKind,
  GENESIS_HASH,
  signAnchor,
  signCheckpoint,
  verifyChain,
} from "../../src/core/audit/chain.ts";
import { EpochMs } from "../../src/core/units.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import type { AuditStore } from "../../src/store/audit-store.ts";

const seed = new Uint8Array(32).fill(3);
const pub = nodeCrypto.ed25519PublicKey(seed);

const ev = (i: number, lockId = "front-door", userId = `u${i % 2}`) => ({
  at: EpochMs(1_000_000 + i * 1000),
  lockId,
  kind: i % 3 === 0 ? AuditKind.AccessDenied : AuditKind.AccessGranted,
  data: { userId, i },
});

export function runAuditStoreTests(name: string, open: () => AuditStore & { close?: () => void }): void {
  describe(`AuditStore acceptance: ${name}`, () => {
    it("starts empty at the genesis head", () => {
      const s = open();
      expect(s.head()).toEqual({ seq: 0, hash: GENESIS_HASH });
      expect(s.count()).toBe(0);
      expect(s.anchor()).toBeNull();
    });

    it("appends with gapless seq and a verifying chain", () => {
      const s = open();
      const a = s.append([ev(1), ev(2)]);
      const b = s.append([ev(3)]);
      expect([...a, ...b].map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(b[0]!.prevHash).toBe(a[1]!.hash);
      expect(s.head()).toEqual({ seq: 3, hash: b[0]!.hash });
      expect(verifyChain(nodeCrypto, "d", pub, null, s.iterate(), new Map()).ok).toBe(true);
    });

    it("queries by lock, user, kind, time and seq, in both orders", () => {
      const s = open();
      s.append(Array.from({ length: 30 }, (_, i) => ev(i + 1, i % 2 ? "front-door" : "back-door")));
      expect(s.query({ limit: 100, lockId: "back-door" }).every((e) => e.lockId === "back-door")).toBe(true);
      expect(s.query({ limit: 100, userId: "u1" }).every((e) => e.data.userId === "u1")).toBe(true);
      expect(s.query({ limit: 100, kinds: [AuditKind.AccessDenied] })).toHaveLength(10);
      expect(s.query({ limit: 5, afterSeq: 10 }).map((e) => e.seq)).toEqual([11, 12, 13, 14, 15]);
      expect(s.query({ limit: 3, descending: true }).map((e) => e.seq)).toEqual([30, 29, 28]);
      expect(s.query({ limit: 100, from: 1_005_000, to: 1_008_000 }).map((e) => e.seq)).toEqual([5, 6, 7]);
    });

    it("pages through every event with iterate()", () => {
      const s = open();
      s.append(Array.from({ length: 2500 }, (_, i) => ev(i)));
      expect([...s.iterate()].length).toBe(2500);
      expect([...s.iterate(2400)].map((e) => e.seq)[0]).toBe(2400);
    });

    it("keeps checkpoints and finds the latest", () => {
      const s = open();
      const e = s.append([ev(1), ev(2)]);
      s.putCheckpoint(signCheckpoint(nodeCrypto, "d", seed, e[0]!, EpochMs(0)));
      s.putCheckpoint(signCheckpoint(nodeCrypto, "d", seed, e[1]!, EpochMs(0)));
      expect(s.latestCheckpoint()?.seq).toBe(2);
      expect([...s.checkpoints().keys()]).toEqual([1, 2]);
    });

    it("trims behind a signed anchor; the rest still verifies and seq continues", () => {
      const s = open();
      const e = s.append(Array.from({ length: 10 }, (_, i) => ev(i)));
      s.putCheckpoint(signCheckpoint(nodeCrypto, "d", seed, e[3]!, EpochMs(0)));
      const anchor = signAnchor(nodeCrypto, "d", seed, e[5]!, EpochMs(0));
      s.trim(anchor);
      expect(s.count()).toBe(4);
      expect(s.anchor()).toEqual(anchor);
      expect(s.checkpoints().size).toBe(0);
      const more = s.append([ev(11)]);
      expect(more[0]!.seq).toBe(11);
      const v = verifyChain(nodeCrypto, "d", pub, s.anchor(), s.iterate(), s.checkpoints());
      expect(v).toMatchObject({ ok: true, firstSeq: 7, lastSeq: 11 });
    });
  });
}
