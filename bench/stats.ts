/** Shared helpers of the benchmarks: the metric shape bench/run.ts writes, and percentiles. */

/** One latency metric. */
export type Metric = { name: string; unit: "ms"; p50: number; p99: number; n: number };

/** One throughput metric: `value` in its `unit` (issue 5: throughput metrics carry "value"). */
export type ThroughputMetric = { name: string; unit: "ops/s" | "events/s"; value: number; n: number };

/** Round to 0.1 µs (in ms). */
export const round = (x: number): number => Math.round(x * 10_000) / 10_000;

/** p50 and p99 in ms of samples in ns (nearest rank). */
export function percentiles(samplesNs: number[]): { p50: number; p99: number } {
  const s = [...samplesNs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]! / 1e6;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}
