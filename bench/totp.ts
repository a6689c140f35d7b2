/**
 * Authenticator-code (TOTP) benchmark, to be wired into `npm run bench` (bench/run.ts):
 *
 *   totp.validate          our verifyTotp (src/core/credentials/totp.ts) on the node:crypto port: window 1
 *                          (3 HMACs, all computed), SHA-1, 6 digits, 30 s step, a valid code of the middle
 *                          step, no replay state (lastAcceptedCounter null, so every attempt is accepted)
 *   baseline.totp_library  otplib's verifySync on the same secret bytes, code, instant and one-step window
 *                          (epochTolerance 30 s), with its default plugins (noble hashes, pure JS); it stops
 *                          at the first matching step
 *
 * The two alternate one-for-one (and swap which goes first each round), so both see the same CPU
 * conditions. Each attempt's result is checked; a refused code aborts the bench.
 *
 * Alone: node --import tsx -e "const m = await import('./bench/totp.ts'); console.log(await m.benchTotp())"
 */
import { verifySync } from "otplib";
import { totpAt, verifyTotp } from "../src/core/credentials/totp.ts";
import { EpochMs } from "../src/core/units.ts";
import { nodeCrypto } from "../src/platform/node-crypto.ts";

import { type Metric, percentiles } from "./stats.ts";

const N = Number(process.env.BENCH_TOTP_N ?? 20_000);
const WARMUP = 2_000;

const now = () => process.hrtime.bigint();

export async function benchTotp(): Promise<Metric[]> {
  const secret = nodeCrypto.randomBytes(20);
  // 12 s into a 30 s step: the code of this step is the middle of the window [T - 1, T, T + 1].
  const at = EpochMs(Date.UTC(2026, 5, 3, 10, 0, 12));
  const code = totpAt(nodeCrypto, secret, at);
  const epochSeconds = at / 1000;

  const ours = (): boolean =>
    verifyTotp(nodeCrypto, secret, code, at, {
      step: 30,
      digits: 6,
      alg: "SHA-1",
      window: 1,
      lastAcceptedCounter: null,
    }).ok;
  const theirs = (): boolean =>
    verifySync({
      secret,
      token: code,
      epoch: epochSeconds,
      epochTolerance: 30,
      period: 30,
      digits: 6,
      algorithm: "sha1",
    }).valid;

  const oursNs: number[] = [];
  const theirsNs: number[] = [];
  let accepted = 0;
  for (let k = 0; k < WARMUP + N; k++) {
    const warm = k < WARMUP;
    let a = 0n;
    let b = 0n;
    let okA = false;
    let okB = false;
    if (k % 2 === 0) {
      const t0 = now();
      okA = ours();
      const t1 = now();
      okB = theirs();
      const t2 = now();
      a = t1 - t0;
      b = t2 - t1;
    } else {
      const t0 = now();
      okB = theirs();
      const t1 = now();
      okA = ours();
      const t2 = now();
      b = t1 - t0;
      a = t2 - t1;
    }
    if (!okA || !okB) throw new Error(`totp bench: a valid code was refused (ours ${okA}, otplib ${okB})`);
    if (!warm) {
      oursNs.push(Number(a));
      theirsNs.push(Number(b));
      accepted++;
    }
  }
  if (accepted !== N) throw new Error(`totp bench: expected ${N} accepted attempts, got ${accepted}`);
  return [
    { name: "totp.validate", unit: "ms", ...percentiles(oursNs), n: oursNs.length },
    { name: "baseline.totp_library", unit: "ms", ...percentiles(theirsNs), n: theirsNs.length },
  ];
}
