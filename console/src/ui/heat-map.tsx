/** Entries by weekday and hour (a 7 × 24 table, darker = more), in the lock's time zone. */
import { DAY_NAMES } from "../lib/format.ts";

export function HeatMap({ counts, caption }: { counts: readonly (readonly number[])[]; caption: string }) {
  const max = Math.max(1, ...counts.flat());
  const total = counts.flat().reduce((a, b) => a + b, 0);
  let busiest = { d: 0, h: 0, n: 0 };
  counts.forEach((row, d) => {
    row.forEach((n, h) => {
      if (n > busiest.n) busiest = { d, h, n };
    });
  });
  return (
    <figure class="heat">
      <table class="heat-table">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col" class="heat-label">
              <span class="visually-hidden">Day</span>
            </th>
            {Array.from({ length: 24 }, (_, h) => (
              <th scope="col" key={h} class="heat-label">
                {h % 3 === 0 ? h : <span class="visually-hidden">{h}</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {counts.map((row, d) => (
            <tr key={DAY_NAMES[d]}>
              <th scope="row" class="heat-label heat-day">
                {DAY_NAMES[d]}
              </th>
              {row.map((n, h) => {
                const level = n === 0 ? 0 : Math.min(4, Math.ceil((n / max) * 4));
                return (
                  <td
                    key={`${d}-${h}`}
                    class={`heat-cell l${level}`}
                    title={`${DAY_NAMES[d]} ${h}:00 — ${n} entries`}
                  >
                    <span class="visually-hidden">{n}</span>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <figcaption class="muted small">
        {total} entries.{" "}
        {busiest.n > 0
          ? `Busiest: ${DAY_NAMES[busiest.d]} ${busiest.h}:00–${busiest.h + 1}:00 (${busiest.n}).`
          : ""}
      </figcaption>
    </figure>
  );
}
