/** The door at a glance: bolt and door, mode, battery, who came in last, remote lock and unlock. */

import { seg } from "../api/client.ts";
import type { AuditPage } from "../api/types.ts";
import { useSession } from "../context.ts";
import {
  CREDENTIAL_LABELS,
  describeEvent,
  fmtRelative,
  fmtTime,
  isAlarm,
  MODE_TEXT,
  whoOf,
} from "../lib/format.ts";
import { isReadinessEvent, usePeople, withLoggedNames } from "../lib/people.ts";
import { Badge, Card, ErrorBox, Loading, PageTitle, useAction, useLoad } from "../ui/common.tsx";

export function OverviewPage() {
  const { api, lock, reloadLocks } = useSession();
  const st = lock.status;
  const people = usePeople();
  // The whole site's recent log: this door's entries, and the hub's admin events that name people since removed.
  const recent = useLoad((signal) => api.get<AuditPage>("/api/v1/audit?order=desc&limit=300", signal), []);
  const act = useAction();
  const door = (what: "unlock" | "lock") =>
    void act.run(async () => {
      await api.post(`/api/v1/locks/${seg(lock.id)}/${what}`);
      reloadLocks();
      recent.reload();
    });
  const events = recent.data?.events ?? [];
  const names = withLoggedNames(people.names, events);
  const here = events.filter((e) => e.lockId === lock.id);
  // Real entries only: the readiness check's test openings are in Activity, tagged.
  const entries = here.filter((e) => e.kind === "access.granted" && !isReadinessEvent(e, names)).slice(0, 6);
  const alarms = here.filter((e) => isAlarm(e.kind)).slice(0, 3);
  return (
    <div>
      <PageTitle sub={`${lock.name} · time zone ${lock.timeZone}`}>Overview</PageTitle>
      <div class="grid">
        <Card title="The door" id="door">
          <dl class="facts big">
            <dt>Bolt</dt>
            <dd>
              <Badge tone={st.lockState === "locked" ? "ok" : st.lockState === "jammed" ? "bad" : "warn"}>
                {st.lockState}
              </Badge>
            </dd>
            <dt>Door</dt>
            <dd>
              <Badge tone={st.doorState === "closed" ? "ok" : st.doorState === "open" ? "info" : "bad"}>
                {st.doorState}
              </Badge>
            </dd>
            <dt>Mode</dt>
            <dd>
              <a href="#/mode">{MODE_TEXT[st.operatingMode].label}</a>
            </dd>
            <dt>Battery</dt>
            <dd>
              <a href="#/health">{Math.round(st.battery.percent)} %</a>{" "}
              {st.battery.level !== "ok" ? <Badge tone="bad">{st.battery.level}</Badge> : null}
            </dd>
            <dt>Clock</dt>
            <dd>{st.clock.trusted ? "trusted" : <Badge tone="bad">not trusted</Badge>}</dd>
            {st.tampered ? (
              <>
                <dt>Tamper</dt>
                <dd>
                  <Badge tone="bad">cover open</Badge>
                </dd>
              </>
            ) : null}
          </dl>
          <div class="row">
            <button type="button" class="btn btn-primary" onClick={() => door("unlock")} disabled={act.busy}>
              Unlock
            </button>
            <button type="button" class="btn" onClick={() => door("lock")} disabled={act.busy}>
              Lock
            </button>
            <button type="button" class="btn btn-link" onClick={() => reloadLocks()}>
              Refresh
            </button>
          </div>
          <ErrorBox error={act.error} />
        </Card>
        <Card title="Who opened the door" id="who" actions={<a href="#/activity">All activity</a>}>
          {recent.loading && !recent.data ? <Loading what="entries" /> : null}
          <ErrorBox error={recent.error} />
          {recent.data && entries.length === 0 ? <p class="muted">No one has opened it yet.</p> : null}
          <ul class="entries">
            {entries.map((e) => {
              const kind =
                CREDENTIAL_LABELS[String(e.data.credentialType ?? "")] ?? String(e.data.source ?? "");
              return (
                <li key={e.seq}>
                  <span class="who">{whoOf(e, names) ?? describeEvent(e, names)}</span>
                  <span class="muted">
                    {kind} · <time dateTime={new Date(e.at).toISOString()}>{fmtTime(e.at)}</time> (
                    {fmtRelative(e.at)})
                  </span>
                </li>
              );
            })}
          </ul>
        </Card>
        {alarms.length > 0 ? (
          <Card title="Recent alarms" id="alarms">
            <ul class="plain">
              {alarms.map((e) => (
                <li key={e.seq}>
                  <Badge tone="bad">{e.kind.slice(6).replaceAll("_", " ")}</Badge> {fmtRelative(e.at)}
                </li>
              ))}
            </ul>
          </Card>
        ) : null}
        <Card title="Day to day" id="todo">
          <ul class="plain links">
            <li>
              <a href="#/people">Add a person or give someone a PIN</a>
            </li>
            <li>
              <a href="#/guests">Make a code for a guest or a cleaner</a>
            </li>
            <li>
              <a href="#/review">Review who still has access</a>
            </li>
            <li>
              <a href="#/check">Run the offline readiness check</a>
            </li>
          </ul>
        </Card>
      </div>
    </div>
  );
}
