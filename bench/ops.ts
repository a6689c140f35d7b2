/**
 * Merge of management operations (issue 5 groundwork; docs/protocol/operations.md), part of
 * `npm run bench`:
 *
 *   ops.merge   10,000 concurrent operations from 3 replicas (a lock, a hub admin, the cloud: interleaved
 *               HLC stamps over the same hour; user upserts and removals, card credentials and their
 *               removal, mode changes, on 300 users), folded into one replica state from a shuffled,
 *               duplicated set: operations per second (median of 5 runs). Every run must give the same
 *               state as the others.
 *
 * Operations are built (ids computed) before timing: the figure is the merge, not the encoding.
 */
import { toHex } from "../src/core/crypto.ts";
import { CoseAlg } from "../src/core/envelope/cose-sign1.ts";
import { keyId, type PublicKey } from "../src/core/keys/digital-key.ts";
import { hlc } from "../src/core/ops/hlc.ts";
import { encodeReplicaState, foldOps, genesisOf } from "../src/core/ops/merge.ts";
import { makeOperation, type Operation, type OperationBody } from "../src/core/ops/operation.ts";
import { nodeCrypto as c } from "../src/platform/node-crypto.ts";
import { mulberry32 } from "../test/support/prng.ts";
import type { ThroughputMetric } from "./stats.ts";

const N = 10_000;
const RUNS = 5;

export function benchOps(): ThroughputMetric[] {
  const owner: PublicKey = { alg: CoseAlg.EdDSA, key: c.ed25519PublicKey(new Uint8Array(32).fill(7)) };
  const actor = toHex(keyId(c, owner));
  const genesis = genesisOf(c, [owner]);
  const rnd = mulberry32(20261122);
  const nodes = ["00000000000000a1", "00000000000000b2", "00000000000000c3"];
  const T0 = Date.UTC(2026, 10, 22, 12, 0);
  const ops: Operation[] = [];
  for (let i = 0; i < N; i++) {
    const node = nodes[i % 3]!;
    const stamp = hlc(T0 + Math.floor(rnd() * 3_600_000), Math.floor(rnd() * 4), node);
    const user = `usr_${Math.floor(rnd() * 300)}`;
    const base = { hlc: stamp, actor, scope: { kind: "lock", id: "front-door" } } as const;
    const r = rnd();
    let body: OperationBody;
    if (r < 0.45) {
      body = {
        ...base,
        kind: "user.upsert",
        target: user,
        payload: {
          name: `User ${user}`,
          userType: "unrestricted",
          userStatus: "occupiedEnabled",
          expiringTimeout: null,
        },
      };
    } else if (r < 0.8) {
      body = {
        ...base,
        kind: "credential.upsert",
        target: `crd_${i}`,
        payload: {
          userId: user,
          type: "rfid",
          locks: "all",
          label: null,
          cardId: `uid:${(i + 0x10000000).toString(16)}`,
        },
      };
    } else if (r < 0.9) {
      body = { ...base, kind: "credential.remove", target: `crd_${Math.floor(rnd() * i)}`, payload: {} };
    } else if (r < 0.97) {
      body = { ...base, kind: "user.remove", target: user, payload: {} };
    } else {
      body = {
        ...base,
        kind: "mode.set",
        target: "front-door",
        payload: { mode: rnd() < 0.5 ? "normal" : "vacation" },
      };
    }
    ops.push(makeOperation(c, body));
  }
  const rates: number[] = [];
  let expected: string | null = null;
  for (let run = 0; run < RUNS; run++) {
    // Each replica's ops in its own order, plus 10 % duplicates, shuffled together.
    const input = [...ops, ...ops.filter(() => rnd() < 0.1)];
    for (let i = input.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [input[i], input[j]] = [input[j]!, input[i]!];
    }
    const t = process.hrtime.bigint();
    const state = foldOps(genesis, input);
    const s = Number(process.hrtime.bigint() - t) / 1e9;
    rates.push(N / s);
    const bytes = toHex(encodeReplicaState(state));
    if (expected !== null && bytes !== expected) throw new Error("ops.merge: runs disagree");
    expected = bytes;
  }
  rates.sort((a, b) => a - b);
  return [{ name: "ops.merge", unit: "ops/s", value: Math.round(rates[Math.floor(RUNS / 2)]!), n: N }];
}
