/**
 * When will the lock's battery need replacing? A least-squares line through the current pack's
 * samples (percent against time), extended to the replacement threshold. The samples already reflect
 * the observed usage: a busy door drains faster, and the line follows it.
 *
 * The current pack starts after the last rise of more than {@link NEW_PACK_RISE} points (a battery
 * change). The forecast is withheld — `replaceAt: null`, with the reason in `basis` — when the samples
 * span less than {@link MIN_SPAN_MS}, when there are fewer than 2, or when no drain is measurable.
 *
 * Pure: no clock, no I/O. Units: `at` and `now` in ms since the epoch, percent 0–100.
 */

/** One reading. */
export interface BatteryPoint {
  readonly at: number;
  readonly percent: number;
}

export interface BatteryForecast {
  /** ISO 8601 UTC instant at which the line reaches the threshold, or null (see `basis`). */
  readonly replaceAt: string | null;
  /** Drain in percent per day (positive), or null when not measurable. */
  readonly percentPerDay: number | null;
  /** The percent at which the pack should be replaced. */
  readonly thresholdPercent: number;
  /** How the forecast was made, or why there is none, in words. */
  readonly basis: string;
}

/** A rise larger than this between two samples means a new pack. */
export const NEW_PACK_RISE = 5;
/** Samples must span at least this long (1 hour) before a line is fitted. */
export const MIN_SPAN_MS = 3_600_000;
/** The default replacement threshold: the "low" band. */
export const DEFAULT_REPLACE_PERCENT = 15;
/** Forecasts further than this (10 years) are reported as "no measurable drain". */
const MAX_HORIZON_MS = 10 * 365 * 86_400_000;
const DAY_MS = 86_400_000;

/**
 * Forecast the replacement date from `samples` (any order) as seen at `now`.
 * Throws nothing; bad inputs (non-finite numbers) are ignored.
 */
export function forecastBattery(
  samples: readonly BatteryPoint[],
  now: number,
  thresholdPercent: number = DEFAULT_REPLACE_PERCENT,
): BatteryForecast {
  const pts = samples
    .filter((s) => Number.isFinite(s.at) && Number.isFinite(s.percent))
    .slice()
    .sort((a, b) => a.at - b.at);
  let start = 0;
  for (let i = 1; i < pts.length; i++) {
    if (pts[i]!.percent - pts[i - 1]!.percent > NEW_PACK_RISE) start = i;
  }
  const pack = pts.slice(start);
  const none = (basis: string): BatteryForecast => ({
    replaceAt: null,
    percentPerDay: null,
    thresholdPercent,
    basis,
  });
  const last = pack.at(-1);
  if (!last || pack.length < 2) return none("not enough readings yet (the hub records one each hour)");
  if (last.percent <= thresholdPercent)
    return {
      replaceAt: new Date(last.at).toISOString(),
      percentPerDay: null,
      thresholdPercent,
      basis: `at ${last.percent}%: replace the batteries now`,
    };
  const span = last.at - pack[0]!.at;
  if (span < MIN_SPAN_MS) return none("the readings span less than an hour");
  // Least squares, time relative to the first sample (in days) to keep the numbers small.
  const t0 = pack[0]!.at;
  let sx = 0;
  let sy = 0;
  for (const p of pack) {
    sx += (p.at - t0) / DAY_MS;
    sy += p.percent;
  }
  const n = pack.length;
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of pack) {
    const dx = (p.at - t0) / DAY_MS - mx;
    sxy += dx * (p.percent - my);
    sxx += dx * dx;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx; // percent per day
  if (!(slope < 0)) return none("no measurable drain yet");
  const days = (thresholdPercent - my) / slope + mx; // days after t0 when the line meets the threshold
  const at = t0 + days * DAY_MS;
  if (!Number.isFinite(at) || at - now > MAX_HORIZON_MS) return none("no measurable drain yet");
  const spanDays = span / DAY_MS;
  const spanText = spanDays >= 1 ? `${spanDays.toFixed(1)} days` : `${(span / 3_600_000).toFixed(1)} hours`;
  return {
    replaceAt: new Date(Math.max(at, last.at)).toISOString(),
    percentPerDay: Math.round(-slope * 1000) / 1000,
    thresholdPercent,
    basis: `straight line through ${n} readings over ${spanText} of this pack, to ${thresholdPercent}%`,
  };
}
