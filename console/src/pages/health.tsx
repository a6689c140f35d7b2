/**
 * Health of the door: lock and door state, battery with its history and the replacement forecast, alarms,
 * clock trust and drift, the cloud sync, and the revocation horizon of phone keys.
 */
import { seg } from "../api/client.ts";
import type { LockHealth, LockRecord, SyncStatus } from "../api/types.ts";
import { useSession } from "../context.ts";
import { fmtDate, fmtDateTime, fmtDuration, fmtRelative, setHubClock, toMs } from "../lib/format.ts";
import { BatteryChart } from "../ui/battery-chart.tsx";
import { Badge, Card, ErrorBox, Loading, PageTitle, useLoad } from "../ui/common.tsx";

export function HealthPage() {
  const { api, lock } = useSession();
  const status = useLoad(
    async (signal) => {
      const l = await api.get<LockRecord>(`/api/v1/locks/${seg(lock.id)}`, signal);
      setHubClock(l.status.clock.now);
      return l;
    },
    [lock.id],
  );
  const health = useLoad(
    (signal) => api.get<LockHealth>(`/api/v1/locks/${seg(lock.id)}/health`, signal),
    [lock.id],
  );
  const sync = useLoad((signal) => api.get<SyncStatus>("/api/v1/sync", signal), []);
  const st = status.data?.status ?? lock.status;
  const h = health.data;
  const reload = () => {
    status.reload();
    health.reload();
    sync.reload();
  };
  const drift = st.clock.rtc - st.clock.now;
  const lockouts = Object.entries(st.lockouts).filter(([, l]) => l.disabledUntil !== null || l.failures > 0);
  const horizon = h?.revocationHorizon ?? st.phoneKeys;
  const syncData = h?.sync ?? sync.data;

  return (
    <div>
      <PageTitle sub={lock.name}>Health</PageTitle>
      <div class="row">
        <button type="button" class="btn" onClick={reload}>
          Refresh
        </button>
      </div>
      <ErrorBox error={status.error} />
      <ErrorBox error={health.error} title="Health details unavailable" />
      <div class="grid">
        <Card title="Lock and door" id="state">
          <dl class="facts">
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
            <dt>Tamper switch</dt>
            <dd>{st.tampered ? <Badge tone="bad">open</Badge> : "closed"}</dd>
            <dt>Keypad and readers</dt>
            <dd>
              {lockouts.length === 0
                ? "no wrong attempts"
                : lockouts.map(([input, l]) => (
                    <div key={input}>
                      {input}: {l.failures} wrong
                      {l.disabledUntil !== null ? (
                        <>
                          {" "}
                          <Badge tone="bad">locked out until {fmtDateTime(l.disabledUntil)}</Badge>
                        </>
                      ) : null}
                    </div>
                  ))}
            </dd>
            <dt>Auto-relock</dt>
            <dd>{st.autoRelockTime ? `${st.autoRelockTime} s` : "off"}</dd>
          </dl>
        </Card>
        <Card title="Battery" id="battery">
          <p class="big-number">
            {Math.round(st.battery.percent)} %{" "}
            <Badge tone={st.battery.level === "ok" ? "ok" : "bad"}>{st.battery.level}</Badge>{" "}
            <span class="muted small">{(st.battery.millivolts / 1000).toFixed(2)} V</span>
          </p>
          {health.loading && !h ? <Loading what="the battery history" /> : null}
          {h ? (
            <>
              <BatteryChart
                history={h.battery.history}
                replaceAt={h.battery.forecast.replaceAt}
                thresholdPercent={h.battery.forecast.thresholdPercent}
                now={st.clock.now}
              />
              <p data-testid="battery-forecast">
                {h.battery.forecast.replaceAt !== null ? (
                  <>
                    Replace the batteries around <strong>{fmtDate(h.battery.forecast.replaceAt)}</strong> (
                    {fmtRelative(h.battery.forecast.replaceAt)})
                  </>
                ) : (
                  "No replacement date yet: not enough drain measured."
                )}
                {h.battery.forecast.percentPerDay !== null
                  ? ` · ${h.battery.forecast.percentPerDay.toFixed(2)} % a day`
                  : ""}
              </p>
              <p class="muted small">{h.battery.forecast.basis}</p>
            </>
          ) : null}
        </Card>
        <Card title="Alarms (last 7 days)" id="alarms">
          {h && h.alarms.length === 0 ? <p class="muted">No tamper, jam, lockout or other alarm.</p> : null}
          <ul class="list">
            {(h?.alarms ?? []).map((a) => (
              <li key={a.seq} class="list-row">
                <span>
                  <Badge tone="bad">{a.kind.replace(/^alarm\./, "").replaceAll("_", " ")}</Badge>{" "}
                  {fmtDateTime(a.at)}
                </span>
                <span class="muted small">#{a.seq}</span>
              </li>
            ))}
          </ul>
        </Card>
        <Card title="Clock" id="clock">
          <dl class="facts">
            <dt>Trust</dt>
            <dd>
              {st.clock.trusted ? <Badge tone="ok">trusted</Badge> : <Badge tone="bad">not trusted</Badge>}
              {st.clock.distrust ? ` — ${st.clock.distrust}` : ""}
            </dd>
            <dt>Lock time</dt>
            <dd>{fmtDateTime(h ? toMs(h.clock.rtc) : st.clock.rtc)}</dd>
            <dt>Drift from the hub</dt>
            <dd>
              {Math.abs(drift) < 1000
                ? "under a second"
                : `${fmtDuration(drift)} ${drift > 0 ? "ahead" : "behind"}`}
            </dd>
            <dt>Drift from this device</dt>
            <dd>{driftFromDevice(st.clock.rtc, status.data ? Date.now() : null)}</dd>
          </dl>
          {!st.clock.trusted ? (
            <p class="warn-text">
              Time-limited people and guest codes are refused until an owner sets the time (
              <code>latchkey clock set</code>).
            </p>
          ) : null}
        </Card>
        <Card title="Cloud sync" id="sync">
          {!syncData && sync.loading ? <Loading what="the sync status" /> : null}
          <ErrorBox error={sync.error} />
          {syncData ? <SyncFacts sync={syncData} /> : null}
        </Card>
        <Card title="Revocation horizon" id="horizon">
          {!horizon?.ready ? (
            <p class="muted">Phone keys are not set up on this hub, so there is nothing to revoke offline.</p>
          ) : horizon.revocationHorizon === null ? (
            <p>No revocation list yet: no phone key has been revoked.</p>
          ) : (
            <p>
              The lock's newest revocation list is <strong>{fmtDuration(horizon.revocationHorizon)}</strong>{" "}
              old. A phone key revoked since then may still open until a phone or the hub brings the new list.
            </p>
          )}
          {horizon && horizon.refusedObjects > 0 ? (
            <p class="warn-text">{horizon.refusedObjects} carried object(s) refused since start.</p>
          ) : null}
        </Card>
      </div>
    </div>
  );
}

function driftFromDevice(rtc: number, fetchedAt: number | null): string {
  if (fetchedAt === null) return "—";
  const d = rtc - fetchedAt;
  return Math.abs(d) < 2000 ? "within 2 s" : `${fmtDuration(d)} ${d > 0 ? "ahead" : "behind"}`;
}

function SyncFacts({ sync }: { sync: SyncStatus }) {
  const c = sync.cloud;
  return (
    <dl class="facts">
      <dt>Cloud</dt>
      <dd>
        {c === null ? (
          <>
            <Badge>none</Badge> This hub has no cloud: it works fully offline.
          </>
        ) : c.connected ? (
          <Badge tone="ok">connected</Badge>
        ) : c.paused ? (
          <Badge tone="warn">paused (offline check)</Badge>
        ) : (
          <Badge tone="warn">not connected</Badge>
        )}
      </dd>
      {c ? (
        <>
          <dt>Last sync</dt>
          <dd>{c.lastAckAt ? `${fmtDateTime(c.lastAckAt)} (${fmtRelative(c.lastAckAt)})` : "never"}</dd>
          <dt>Events not yet in the cloud</dt>
          <dd>{c.pendingEvents}</dd>
          <dt>Operations not acknowledged</dt>
          <dd>{c.pendingOps}</dd>
          {c.problem ? (
            <>
              <dt>Problem</dt>
              <dd class="warn-text">{c.problem}</dd>
            </>
          ) : null}
        </>
      ) : (
        <>
          <dt>Operations held</dt>
          <dd>
            {sync.ops.total} ({sync.ops.unacked} not acknowledged by a cloud)
          </dd>
        </>
      )}
    </dl>
  );
}
