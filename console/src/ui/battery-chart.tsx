/** Battery history and its forecast, hand-drawn SVG: percent over time, the replacement threshold dashed. */
import { fmtDate, toMs } from "../lib/format.ts";

const W = 560;
const H = 200;
const PAD = { l: 36, r: 12, t: 12, b: 28 };

export function BatteryChart({
  history,
  replaceAt,
  thresholdPercent,
  now,
}: {
  history: readonly { at: string | number; percent: number }[];
  replaceAt: string | number | null;
  thresholdPercent: number;
  now: number;
}) {
  const pts = history
    .map((p) => ({ t: toMs(p.at), v: p.percent }))
    .filter((p) => Number.isFinite(p.t))
    .sort((a, b) => a.t - b.t);
  const forecastT = toMs(replaceAt);
  const t0 = pts[0]?.t ?? now - 86_400_000;
  const t1 = Math.max(now, pts.at(-1)?.t ?? now, Number.isFinite(forecastT) ? forecastT : now) || now;
  const span = Math.max(1, t1 - t0);
  const x = (t: number) => PAD.l + ((t - t0) / span) * (W - PAD.l - PAD.r);
  const y = (v: number) => PAD.t + (1 - Math.max(0, Math.min(100, v)) / 100) * (H - PAD.t - PAD.b);
  const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  const last = pts.at(-1);
  const summary =
    pts.length === 0
      ? "No battery readings yet."
      : `Battery from ${Math.round(pts[0]?.v ?? 0)} % on ${fmtDate(t0)} to ${Math.round(last?.v ?? 0)} % now${
          Number.isFinite(forecastT)
            ? `; forecast to reach ${thresholdPercent} % on ${fmtDate(forecastT)}`
            : ""
        }.`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary} preserveAspectRatio="xMidYMid meet">
        {[0, 25, 50, 75, 100].map((v) => (
          <g key={v}>
            <line x1={PAD.l} x2={W - PAD.r} y1={y(v)} y2={y(v)} class="grid-line" />
            <text x={PAD.l - 6} y={y(v) + 4} text-anchor="end" class="axis">
              {v}
            </text>
          </g>
        ))}
        <line x1={PAD.l} x2={W - PAD.r} y1={y(thresholdPercent)} y2={y(thresholdPercent)} class="threshold" />
        <text x={W - PAD.r} y={y(thresholdPercent) - 4} text-anchor="end" class="axis">
          replace at {thresholdPercent} %
        </text>
        {pts.length > 1 ? <polyline points={line} class="series" /> : null}
        {pts.map((p) => (
          <circle key={p.t} cx={x(p.t)} cy={y(p.v)} r={pts.length > 40 ? 1.5 : 3} class="dot" />
        ))}
        {last && Number.isFinite(forecastT) ? (
          <line x1={x(last.t)} y1={y(last.v)} x2={x(forecastT)} y2={y(thresholdPercent)} class="forecast" />
        ) : null}
        <text x={PAD.l} y={H - 8} class="axis">
          {fmtDate(t0)}
        </text>
        <text x={W - PAD.r} y={H - 8} text-anchor="end" class="axis">
          {fmtDate(t1)}
        </text>
      </svg>
      <figcaption class="muted small">{summary}</figcaption>
    </figure>
  );
}
