/**
 * A week grid (7 days × 24 hours) of week-day schedules (Matter DaysMaskMap, bit 0 Sunday). A window
 * whose end is not after its start crosses midnight and belongs to the day it starts on. Editable grids
 * are one tab stop: arrow keys move, Space or Enter toggles an hour.
 */
import { useRef, useState } from "preact/hooks";
import type { WeekDaySchedule } from "../api/types.ts";
import { DAY_NAMES } from "../lib/format.ts";

/** `cells[day][hour]`: does any window cover part of that hour? */
export function coverage(windows: readonly WeekDaySchedule[]): boolean[][] {
  const cells = DAY_NAMES.map(() => Array.from({ length: 24 }, () => false));
  const mark = (day: number, fromMin: number, toMin: number) => {
    const row = cells[day % 7];
    if (!row) return;
    for (let h = Math.floor(fromMin / 60); h < Math.ceil(toMin / 60) && h < 24; h++) row[h] = true;
  };
  for (const w of windows) {
    const start = w.startHour * 60 + w.startMinute;
    const end = w.endHour * 60 + w.endMinute;
    for (let d = 0; d < 7; d++) {
      if ((w.daysMask & (1 << d)) === 0) continue;
      if (end > start) mark(d, start, end);
      else {
        mark(d, start, 24 * 60);
        mark(d + 1, 0, end);
      }
    }
  }
  return cells;
}

/** Whole-hour windows from a grid: each day's runs of hours, runs shared by several days merged into one mask. */
export function windowsOf(cells: readonly (readonly boolean[])[]): WeekDaySchedule[] {
  const byRun = new Map<string, number>();
  cells.forEach((row, d) => {
    let h = 0;
    while (h < 24) {
      if (!row[h]) {
        h++;
        continue;
      }
      const a = h;
      while (h < 24 && row[h]) h++;
      const key = `${a}-${h}`;
      byRun.set(key, (byRun.get(key) ?? 0) | (1 << d));
    }
  });
  return [...byRun.entries()].map(([key, mask]) => {
    const [a = 0, b = 24] = key.split("-").map(Number);
    return { daysMask: mask, startHour: a, startMinute: 0, endHour: b, endMinute: 0 };
  });
}

export function WeekGrid({
  windows,
  onChange,
  label,
}: {
  windows: readonly WeekDaySchedule[];
  onChange?: (w: WeekDaySchedule[]) => void;
  label: string;
}) {
  const cells = coverage(windows);
  const [focus, setFocus] = useState({ d: 1, h: 9 });
  const table = useRef<HTMLTableElement>(null);
  const editable = onChange !== undefined;
  const hours = cells.reduce((n, row) => n + row.filter(Boolean).length, 0);

  const toggle = (d: number, h: number) => {
    if (!onChange) return;
    const next = cells.map((row) => [...row]);
    const row = next[d];
    if (!row) return;
    row[h] = !row[h];
    onChange(windowsOf(next));
  };
  /** Arrow keys move between the hour buttons (one tab stop for the whole week); Space/Enter toggle. */
  const move = (e: KeyboardEvent) => {
    let { d, h } = focus;
    switch (e.key) {
      case "ArrowRight":
        h = Math.min(23, h + 1);
        break;
      case "ArrowLeft":
        h = Math.max(0, h - 1);
        break;
      case "ArrowDown":
        d = Math.min(6, d + 1);
        break;
      case "ArrowUp":
        d = Math.max(0, d - 1);
        break;
      case "Home":
        h = 0;
        break;
      case "End":
        h = 23;
        break;
      default:
        return;
    }
    e.preventDefault();
    setFocus({ d, h });
    table.current?.querySelector<HTMLElement>(`[data-cell="${d}-${h}"]`)?.focus();
  };

  return (
    <div class="week">
      <table class="week-grid" ref={table}>
        <caption class="visually-hidden">
          {label}: {hours} hours a week.{editable ? " Arrow keys move between hours; Space toggles one." : ""}
        </caption>
        <thead>
          <tr>
            <th scope="col" class="week-label">
              <span class="visually-hidden">Day</span>
            </th>
            {Array.from({ length: 24 }, (_, h) => (
              <th scope="col" key={h} class="week-label">
                {h % 3 === 0 ? h : <span class="visually-hidden">{h}</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {cells.map((row, d) => (
            <tr key={DAY_NAMES[d]}>
              <th scope="row" class="week-label">
                {DAY_NAMES[d]}
              </th>
              {row.map((on, h) => {
                const name = `${DAY_NAMES[d]} ${String(h).padStart(2, "0")}:00`;
                return (
                  <td key={name} class="week-td">
                    {editable ? (
                      <button
                        type="button"
                        data-cell={`${d}-${h}`}
                        class={on ? "cell on" : "cell"}
                        aria-pressed={on}
                        aria-label={name}
                        tabIndex={focus.d === d && focus.h === h ? 0 : -1}
                        onKeyDown={move}
                        onClick={() => {
                          setFocus({ d, h });
                          toggle(d, h);
                        }}
                      />
                    ) : (
                      <span class={on ? "cell on" : "cell"}>
                        <span class="visually-hidden">
                          {name} {on ? "open" : "closed"}
                        </span>
                      </span>
                    )}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
