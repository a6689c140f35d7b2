/** Week-day and date-range schedules per person, on a visual week grid. */
import { useEffect, useState } from "preact/hooks";
import { seg } from "../api/client.ts";
import type { User, UserType, WeekDaySchedule, YearDaySchedule } from "../api/types.ts";
import { useSession } from "../context.ts";
import { daysOfMask, hhmm, lockLocal, personKindLabel, USER_TYPE_LABELS } from "../lib/format.ts";
import { usePeople } from "../lib/people.ts";
import { href, navigate } from "../lib/router.ts";
import {
  Card,
  Checkbox,
  ErrorBox,
  Field,
  Loading,
  Notice,
  PageTitle,
  SelectField,
  useAction,
} from "../ui/common.tsx";
import { WeekGrid } from "../ui/week-grid.tsx";
import { DaysAndHours, parseWindow } from "./people.tsx";

const SCHEDULED: readonly UserType[] = ["weekDaySchedule", "yearDaySchedule", "scheduleRestricted"];

export function SchedulesPage({ selected }: { selected: string | null }) {
  const people = usePeople();
  const list = people.data ?? [];
  const person = list.find((u) => u.id === selected) ?? null;
  return (
    <div>
      <PageTitle sub="When each person may open the door, in the lock's time zone.">Schedules</PageTitle>
      {people.loading && !people.data ? <Loading what="people" /> : null}
      <ErrorBox error={people.error} />
      <div class="grid">
        <Card title="People" id="who">
          <SelectField
            label="Person"
            value={person?.id ?? ""}
            onValue={(id) => navigate2(id)}
            options={[
              { value: "", label: "Choose a person…" },
              ...list.map((u) => ({ value: u.id, label: `${u.name} (${personKindLabel(u)})` })),
            ]}
          />
          <ul class="list">
            {list
              .filter(
                (u) =>
                  SCHEDULED.includes(u.userType) || u.weekDaySchedules.length + u.yearDaySchedules.length > 0,
              )
              .map((u) => (
                <li key={u.id} class="list-row">
                  <div>
                    <a href={`#/schedules?person=${encodeURIComponent(u.id)}`}>{u.name}</a>
                    <div class="muted small">
                      {USER_TYPE_LABELS[u.userType]} ·{" "}
                      {u.weekDaySchedules
                        .map(
                          (w) =>
                            `${daysOfMask(w.daysMask)} ${hhmm(w.startHour, w.startMinute)}–${hhmm(w.endHour, w.endMinute)}`,
                        )
                        .join("; ") || "no week windows"}
                      {u.yearDaySchedules.length ? ` · ${u.yearDaySchedules.length} date range(s)` : ""}
                    </div>
                  </div>
                </li>
              ))}
          </ul>
        </Card>
        {person ? <Editor key={person.id} user={person} onSaved={people.reload} /> : null}
      </div>
    </div>
  );
}

function navigate2(id: string) {
  if (id === "") navigate("schedules");
  else location.hash = `#/schedules?person=${encodeURIComponent(id)}`;
}

function Editor({ user, onSaved }: { user: User; onSaved: () => void }) {
  const { api, lock } = useSession();
  const [weeks, setWeeks] = useState<WeekDaySchedule[]>(user.weekDaySchedules);
  const [ranges, setRanges] = useState<YearDaySchedule[]>(user.yearDaySchedules);
  // Only these user types follow schedules; the others (opens once, programming...) keep their type.
  const schedulable = user.userType === "unrestricted" || SCHEDULED.includes(user.userType);
  const [restrict, setRestrict] = useState(schedulable);
  const [days, setDays] = useState(0b0111110);
  const [from, setFrom] = useState("09:00");
  const [to, setTo] = useState("17:00");
  const now = lock.status.clock.now;
  const [rStart, setRStart] = useState(() => `${lockLocal(now, lock.timeZone).slice(0, 11)}00:00`);
  const [rEnd, setREnd] = useState(
    () => `${lockLocal(now + 7 * 86_400_000, lock.timeZone).slice(0, 11)}00:00`,
  );
  const [notice, setNotice] = useState<string | null>(null);
  const act = useAction();
  useEffect(() => setNotice(null), [weeks, ranges]);

  const userType = (): UserType => {
    if (!schedulable) return user.userType;
    if (!restrict || (weeks.length === 0 && ranges.length === 0)) return "unrestricted";
    if (weeks.length > 0 && ranges.length > 0) return "scheduleRestricted";
    if (ranges.length > 0) return "yearDaySchedule";
    return "weekDaySchedule";
  };
  const save = () =>
    void act.run(async () => {
      await api.patch(`/api/v1/users/${seg(user.id)}`, {
        weekDaySchedules: weeks,
        yearDaySchedules: ranges,
        userType: userType(),
      });
      setNotice(`${user.name}'s schedule saved.`);
      onSaved();
    });

  return (
    <Card
      title={
        <>
          Schedule of <a href={href("people", user.id)}>{user.name}</a>
        </>
      }
      id="editor"
    >
      <WeekGrid windows={weeks} onChange={setWeeks} label={`${user.name}'s week`} />
      <h3>Week-day windows</h3>
      {weeks.length === 0 ? <p class="muted">None.</p> : null}
      <ul class="list">
        {weeks.map((w, i) => {
          const text = `${daysOfMask(w.daysMask)} ${hhmm(w.startHour, w.startMinute)}–${hhmm(w.endHour, w.endMinute)}`;
          return (
            <li key={text} class="list-row">
              <span>{text}</span>
              <button
                type="button"
                class="btn btn-small"
                onClick={() => setWeeks(weeks.filter((_, j) => j !== i))}
              >
                Remove<span class="visually-hidden"> {text}</span>
              </button>
            </li>
          );
        })}
      </ul>
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          setWeeks([...weeks, parseWindow(days, from, to)]);
        }}
      >
        <DaysAndHours days={days} setDays={setDays} from={from} setFrom={setFrom} to={to} setTo={setTo} />
        <div>
          <button type="submit" class="btn">
            Add window
          </button>
        </div>
      </form>
      <h3>Date ranges</h3>
      {ranges.length === 0 ? <p class="muted">None.</p> : null}
      <ul class="list">
        {ranges.map((r, i) => {
          const text = `${r.start.replace("T", " ")} → ${r.end.replace("T", " ")}`;
          return (
            <li key={text} class="list-row">
              <span>{text}</span>
              <button
                type="button"
                class="btn btn-small"
                onClick={() => setRanges(ranges.filter((_, j) => j !== i))}
              >
                Remove<span class="visually-hidden"> {text}</span>
              </button>
            </li>
          );
        })}
      </ul>
      <form
        class="two"
        onSubmit={(e) => {
          e.preventDefault();
          setRanges([...ranges, { start: rStart, end: rEnd }]);
        }}
      >
        <Field label="From" type="datetime-local" value={rStart} onValue={setRStart} required />
        <Field label="Until" type="datetime-local" value={rEnd} onValue={setREnd} required />
        <div class="form-actions">
          <button type="submit" class="btn">
            Add date range
          </button>
        </div>
      </form>
      {schedulable ? (
        <Checkbox
          label="Only within these schedules (otherwise they are kept but not enforced)"
          checked={restrict}
          onChecked={setRestrict}
        />
      ) : (
        <p class="warn-text">
          {user.name} is set to “{USER_TYPE_LABELS[user.userType]}”, which schedules do not limit.
        </p>
      )}
      <p class="muted small">
        Applies as: {USER_TYPE_LABELS[userType()]}. Times are the lock's ({lock.timeZone}).
      </p>
      <ErrorBox error={act.error} title="Not saved" />
      <Notice>{notice}</Notice>
      <div>
        <button type="button" class="btn btn-primary" onClick={save} disabled={act.busy}>
          Save schedule
        </button>
      </div>
    </Card>
  );
}
