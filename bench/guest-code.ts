/**
 * Guest-code benchmark (docs/protocol/guest-codes.md), part of `npm run bench` (bench/run.ts):
 *
 *   guestcode.validate          worst case at the lock: 8 issuer keys (the maximum; 16 tag HMACs, all
 *                               computed), a recurring code matched by the last key, typed one minute before
 *                               its occurrence ends at the edge of the drift tolerance, then the state check
 *                               (evaluateGuestCode). Every attempt must come out valid.
 *   guestcode.validate.reject   a random 12-digit guess against the same 8 keys (the attacker's path)
 *   baseline.hmac_sha256        one HMAC-SHA-256 of a 19-byte message on the same port, measured in the
 *                               same loop, so the ratio to it holds on a noisy machine
 *
 * Alone: node --import tsx -e "const m = await import('./bench/guest-code.ts'); console.log(m.benchGuestCode())"
 */
import {
  decodeGuestCode,
  deriveIssuerKey,
  evaluateGuestCode,
  issueGuestCode,
  tagInput,
} from "../src/core/credentials/guest-code.ts";
import { parseLocalDateTime } from "../src/core/schedule.ts";
import { EpochMs } from "../src/core/units.ts";
import { nodeCrypto } from "../src/platform/node-crypto.ts";
import { type Metric, percentiles } from "./stats.ts";

const N = Number(process.env.BENCH_GUESTCODE_N ?? 20_000);
const WARMUP = 2_000;
const now = () => process.hrtime.bigint();

export function benchGuestCode(): Metric[] {
  const secret = nodeCrypto.randomBytes(32);
  const keys = Array.from({ length: 8 }, (_, i) => ({
    issuerId: `iss_${i}`,
    epoch: i,
    key: deriveIssuerKey(nodeCrypto, secret, "lock-bench", `iss_${i}`, i),
  }));
  const last = keys[7]!;
  // Mon–Fri 22:00 for 4 h (crossing midnight), December 2026 to February 2027.
  const issued = issueGuestCode(nodeCrypto, last.key, {
    kind: "recurring",
    daysMask: 0x3e,
    startHour: 22,
    lengthHours: 4,
    fromDate: "2026-12-01",
    toDate: "2027-02-28",
  });
  // Tuesday 2027-01-12 02:01 local: one minute past the occurrence's end, inside the 2-minute drift.
  const edge = parseLocalDateTime("2027-01-12T02:01");
  const edgeMs = EpochMs(Date.UTC(2027, 0, 12, 2, 1));
  const guesses = Array.from({ length: 1024 }, (_, i) =>
    String((i * 977_676_413 + 12_345) % 1e12).padStart(12, "0"),
  );
  const msg = tagInput(12, 123_456, 29_000_000);

  const valid: number[] = [];
  const reject: number[] = [];
  const hmac: number[] = [];
  for (let k = 0; k < WARMUP + N; k++) {
    const t0 = now();
    const d = decodeGuestCode(nodeCrypto, keys, issued.code, edge);
    if (d.status !== "match" || d.phase !== "valid") throw new Error("bench code not valid");
    const e = evaluateGuestCode(d, undefined, edgeMs, edge, 2, 0);
    const t1 = now();
    if (!e.ok) throw new Error("bench code refused");
    const r = decodeGuestCode(nodeCrypto, keys, guesses[k % guesses.length]!, edge);
    const t2 = now();
    nodeCrypto.hmacSha256(last.key, msg);
    const t3 = now();
    if (r.status === "match" && r.phase === "valid") throw new Error("a random guess was accepted");
    if (k >= WARMUP) {
      valid.push(Number(t1 - t0));
      reject.push(Number(t2 - t1));
      hmac.push(Number(t3 - t2));
    }
  }
  return [
    { name: "guestcode.validate", unit: "ms", ...percentiles(valid), n: valid.length },
    { name: "guestcode.validate.reject", unit: "ms", ...percentiles(reject), n: reject.length },
    { name: "baseline.hmac_sha256", unit: "ms", ...percentiles(hmac), n: hmac.length },
  ];
}
