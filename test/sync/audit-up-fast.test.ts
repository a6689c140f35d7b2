/**
 * The ingest's hand-written `audit/up` check (src/sync/messages.ts `isAuditUp`) must be at least as
 * strict as the schema: whatever it accepts, the schema accepts too (fuzzed with mutations of real
 * batches), and it accepts every well-formed batch (so the fast path is really taken).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AuditUpSchema, isAuditUp } from "../../src/sync/messages.ts";
import { newHub, TestChain } from "../cloud/cloud-fixtures.ts";

const chain = new TestChain(newHub("fast"), { every: 5 }).add(40);
const good = () => JSON.parse(JSON.stringify(chain.batch(1, 20))) as Record<string, unknown>;

const VALUES: unknown[] = [null, true, 0, -1, 1.5, 2 ** 53, "x", "", [], {}, "0".repeat(64), "g".repeat(64)];

/** Set, delete or add one key somewhere in a batch (top level, an event, a checkpoint, the data). */
function mutate(doc: Record<string, unknown>, r: { where: number; key: number; value: number; op: number }) {
  const events = doc.events as Record<string, unknown>[];
  const cps = doc.checkpoints as Record<string, unknown>[];
  const targets: Record<string, unknown>[] = [
    doc,
    events[r.where % events.length]!,
    ...(cps.length ? [cps[0]!] : []),
  ];
  const t = targets[r.where % targets.length]!;
  const keys = Object.keys(t);
  const key = r.op === 2 ? `extra${r.key}` : keys[r.key % keys.length]!;
  if (r.op === 1) delete t[key];
  else t[key] = VALUES[r.value % VALUES.length];
  return doc;
}

describe("isAuditUp (the ingest fast path)", () => {
  it("accepts well-formed batches", () => {
    expect(isAuditUp(good())).toBe(true);
    expect(AuditUpSchema.safeParse(good()).success).toBe(true);
  });

  it("never accepts what the schema refuses (5,000 mutated batches)", () => {
    let refusedByBoth = 0;
    fc.assert(
      fc.property(
        fc.record({ where: fc.nat(), key: fc.nat(), value: fc.nat(), op: fc.integer({ min: 0, max: 2 }) }),
        (r) => {
          const doc = mutate(good(), r);
          const fast = isAuditUp(doc);
          const schema = AuditUpSchema.safeParse(doc).success;
          if (fast) expect(schema).toBe(true);
          if (!fast && !schema) refusedByBoth++;
        },
      ),
      { numRuns: 5000, seed: 515 },
    );
    expect(refusedByBoth).toBeGreaterThan(1000);
  });

  it("refuses non-contiguous sequence numbers, like the schema", () => {
    const doc = good();
    (doc.events as { seq: number }[])[3]!.seq += 1;
    expect(isAuditUp(doc)).toBe(false);
    expect(AuditUpSchema.safeParse(doc).success).toBe(false);
  });
});
