/**
 * The audit timeline: filters, live updates (server-sent events), who opened the door at a glance, a heat
 * map of entries, the hash chain's verification, and an encrypted export.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { type ApiError, asApiError } from "../api/client.ts";
import type { AuditEvent, AuditPage, ChainVerification } from "../api/types.ts";
import { useSession } from "../context.ts";
import {
  CREDENTIAL_LABELS,
  describeEvent,
  fmtDateTime,
  fmtRelative,
  fmtTime,
  hubNow,
  isAlarm,
  whoOf,
  zonedParts,
} from "../lib/format.ts";
import { isReadinessEvent, usePeople, withLoggedNames } from "../lib/people.ts";
import {
  Badge,
  Card,
  Checkbox,
  downloadText,
  ErrorBox,
  Field,
  Loading,
  Notice,
  PageTitle,
  SelectField,
  useAction,
  useLoad,
} from "../ui/common.tsx";
import { HeatMap } from "../ui/heat-map.tsx";

interface Filters {
  userId: string;
  credential: string;
  result: "" | "granted" | "denied";
  alarms: boolean;
  from: string;
  to: string;
}

const NO_FILTERS: Filters = { userId: "", credential: "", result: "", alarms: false, from: "", to: "" };

function matches(e: AuditEvent, f: Filters): boolean {
  if (f.userId && e.data.userId !== f.userId && e.data.actorId !== f.userId) return false;
  if (f.credential && e.data.credentialType !== f.credential) return false;
  if (f.result === "granted" && e.kind !== "access.granted") return false;
  if (f.result === "denied" && e.kind !== "access.denied") return false;
  if (f.alarms && !isAlarm(e.kind)) return false;
  if (f.from && e.at < Date.parse(f.from)) return false;
  if (f.to && e.at >= Date.parse(f.to)) return false;
  return true;
}

function queryOf(f: Filters, before: number | null): string {
  const q = new URLSearchParams({ order: "desc", limit: "200" });
  if (f.userId) q.set("userId", f.userId);
  if (f.result) q.set("kind", f.result === "granted" ? "access.granted" : "access.denied");
  if (f.from && Number.isFinite(Date.parse(f.from))) q.set("from", new Date(f.from).toISOString());
  if (f.to && Number.isFinite(Date.parse(f.to))) q.set("to", new Date(f.to).toISOString());
  if (before !== null) q.set("before", String(before));
  return q.toString();
}

type Live = "connecting" | "live" | "retrying";

export function ActivityPage() {
  const { api, lock, locks } = useSession();
  const people = usePeople();
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [older, setOlder] = useState<number | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  // Which filters the timeline shows: while it differs from `filters`, the page is loading (derived in
  // the same render as the change, so "busy" never lags the filter).
  const [loadedFor, setLoadedFor] = useState<Filters | null>(null);
  const loading = loadedFor !== filters;
  const [live, setLive] = useState<Live>("connecting");
  const [liveError, setLiveError] = useState<ApiError | null>(null);
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set());
  const [announce, setAnnounce] = useState("");
  const [heat, setHeat] = useState<number[][] | null>(null);
  // The readiness check's own events (its test person, codes and openings): tagged, hidden by default.
  const [hideChecks, setHideChecks] = useState(true);
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  const lastSeq = useRef(0);
  const names = useMemo(() => withLoggedNames(people.names, events), [people.names, events]);
  const namesRef = useRef(names);
  namesRef.current = names;
  const hideChecksRef = useRef(hideChecks);
  hideChecksRef.current = hideChecks;

  // The page of events under the filters.
  useEffect(() => {
    const ac = new AbortController();
    api.get<AuditPage>(`/api/v1/audit?${queryOf(filters, null)}`, ac.signal).then(
      (p) => {
        // Live events newer than this page (arrived while it loaded) stay on top of it.
        const top = p.events[0]?.seq ?? 0;
        const page = p.events.filter((e) => matches(e, filters));
        setEvents((prev) => [...prev.filter((e) => e.seq > top && matches(e, filters)), ...page]);
        setOlder(p.next);
        setLoadError(null);
        setLoadedFor(filters);
        lastSeq.current = Math.max(lastSeq.current, p.events[0]?.seq ?? 0);
      },
      (e: unknown) => {
        if (ac.signal.aborted) return;
        setLoadError(asApiError(e));
        setLoadedFor(filters);
      },
    );
    return () => ac.abort();
  }, [api, filters]);

  // The heat map: granted entries of the last 30 days, by weekday and hour in the lock's zone.
  useEffect(() => {
    const ac = new AbortController();
    void (async () => {
      const counts = Array.from({ length: 7 }, () => Array.from({ length: 24 }, () => 0));
      const from = new Date(hubNow() - 30 * 86_400_000).toISOString();
      let before: number | null = null;
      for (let page = 0; page < 5; page++) {
        const q = new URLSearchParams({ order: "desc", limit: "1000", kind: "access.granted", from });
        if (before !== null) q.set("before", String(before));
        let p: AuditPage;
        try {
          p = await api.get<AuditPage>(`/api/v1/audit?${q}`, ac.signal);
        } catch {
          return;
        }
        for (const e of p.events) {
          if (isReadinessEvent(e, namesRef.current)) continue;
          const z = zonedParts(e.at, lock.timeZone);
          const row = counts[z.weekday];
          if (row) row[z.hour] = (row[z.hour] ?? 0) + 1;
        }
        if (p.next === null) break;
        before = p.next;
      }
      if (!ac.signal.aborted) setHeat(counts);
    })();
    return () => ac.abort();
  }, [api, lock.timeZone]);

  // Live updates; after a broken stream, events missed meanwhile are fetched before following again.
  useEffect(() => {
    const ac = new AbortController();
    const add = (e: AuditEvent) => {
      if (e.seq <= lastSeq.current) return;
      lastSeq.current = e.seq;
      const check = isReadinessEvent(e, namesRef.current);
      if (e.kind === "access.granted" && !check) {
        const z = zonedParts(e.at, lock.timeZone);
        setHeat((h) => {
          if (!h) return h;
          const next = h.map((r) => [...r]);
          const row = next[z.weekday];
          if (row) row[z.hour] = (row[z.hour] ?? 0) + 1;
          return next;
        });
      }
      if (!matches(e, filtersRef.current)) return;
      setEvents((list) => [e, ...list]);
      setFresh((s) => new Set(s).add(e.seq));
      if (!check || !hideChecksRef.current) setAnnounce(describeEvent(e, namesRef.current));
    };
    void (async () => {
      let wait = 1000;
      while (!ac.signal.aborted) {
        try {
          // The hub subscribes the stream before it answers: what happened before is fetched once it is open.
          await api.followAudit(add, ac.signal, async () => {
            if (lastSeq.current > 0) {
              const missed = await api.get<AuditPage>(
                `/api/v1/audit?after=${lastSeq.current}&limit=1000`,
                ac.signal,
              );
              for (const e of missed.events) add(e);
            }
            setLive("live");
            setLiveError(null);
          });
          wait = 1000;
        } catch (e) {
          if (ac.signal.aborted) return;
          setLiveError(asApiError(e));
        }
        if (ac.signal.aborted) return;
        setLive("retrying");
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 15_000);
      }
    })();
    return () => ac.abort();
  }, [api, lock.timeZone]);

  const loadOlder = () => {
    if (older === null) return;
    void api.get<AuditPage>(`/api/v1/audit?${queryOf(filters, older)}`).then(
      (p) => {
        setEvents((list) => [...list, ...p.events.filter((e) => matches(e, filters))]);
        setOlder(p.next);
      },
      (e: unknown) => setLoadError(asApiError(e)),
    );
  };

  const lockNames = useMemo(() => new Map(locks.map((l) => [l.id, l.name])), [locks]);
  const checkSeqs = useMemo(
    () => new Set(events.filter((e) => isReadinessEvent(e, names)).map((e) => e.seq)),
    [events, names],
  );
  const shown = hideChecks ? events.filter((e) => !checkSeqs.has(e.seq)) : events;
  const lastEntries = events.filter((e) => e.kind === "access.granted" && !checkSeqs.has(e.seq)).slice(0, 5);
  const set =
    <K extends keyof Filters>(k: K) =>
    (v: Filters[K]) =>
      setFilters((f) => ({ ...f, [k]: v }));

  return (
    <div>
      <PageTitle
        sub={
          <>
            Every attempt, state change and admin action, from the hash-chained log.{" "}
            <span class={`live live-${live}`} role="status">
              {live === "live" ? "● Live" : live === "connecting" ? "Connecting…" : "Reconnecting…"}
            </span>
          </>
        }
      >
        Activity
      </PageTitle>
      <ErrorBox error={liveError} title="Live updates interrupted" />
      <p class="visually-hidden" aria-live="polite">
        {announce}
      </p>
      <div class="grid">
        <Card title="Who opened the door" id="glance">
          {lastEntries.length === 0 ? <p class="muted">No entries under these filters.</p> : null}
          <ul class="entries">
            {lastEntries.map((e) => {
              return (
                <li key={e.seq}>
                  <span class="who">{whoOf(e, names) ?? describeEvent(e, names)}</span>
                  <span class="muted">
                    {CREDENTIAL_LABELS[String(e.data.credentialType ?? "")] ?? ""} · {fmtTime(e.at)} (
                    {fmtRelative(e.at)})
                  </span>
                </li>
              );
            })}
          </ul>
        </Card>
        <ChainCard />
      </div>
      <Card title="Filters" id="filters">
        <form class="filters" onSubmit={(e) => e.preventDefault()}>
          <SelectField
            label="Person"
            value={filters.userId}
            onValue={set("userId")}
            options={[
              { value: "", label: "Everyone" },
              ...(people.data ?? []).map((u) => ({ value: u.id, label: u.name })),
            ]}
          />
          <SelectField
            label="Credential"
            value={filters.credential}
            onValue={set("credential")}
            options={[
              { value: "", label: "Any" },
              ...Object.entries(CREDENTIAL_LABELS).map(([value, label]) => ({ value, label })),
            ]}
          />
          <SelectField
            label="Result"
            value={filters.result}
            onValue={set("result")}
            options={[
              { value: "", label: "Any" },
              { value: "granted", label: "Opened" },
              { value: "denied", label: "Refused" },
            ]}
          />
          <Field label="From" type="datetime-local" value={filters.from} onValue={set("from")} />
          <Field label="Until" type="datetime-local" value={filters.to} onValue={set("to")} />
          <div class="filter-checks">
            <Checkbox label="Alarms only" checked={filters.alarms} onChecked={set("alarms")} />
            <Checkbox label="hide readiness checks" checked={hideChecks} onChecked={setHideChecks} />
            <button
              type="button"
              class="btn btn-small"
              onClick={() => {
                setFilters(NO_FILTERS);
                setHideChecks(true);
              }}
            >
              Clear filters
            </button>
          </div>
        </form>
      </Card>
      <Card title="Timeline" id="timeline">
        {loading && events.length === 0 ? <Loading what="events" /> : null}
        <ErrorBox error={loadError} />
        {!loading && shown.length === 0 ? <p class="muted">No events under these filters.</p> : null}
        <ol class="timeline" aria-label="Audit events, newest first" aria-busy={loading}>
          {shown.map((e) => (
            <li
              key={e.seq}
              class={`ev ev-${e.kind.split(".")[0]} ${fresh.has(e.seq) ? "fresh" : ""} ${e.kind === "access.denied" ? "ev-denied" : ""}`}
              data-kind={e.kind}
            >
              <time dateTime={new Date(e.at).toISOString()}>{fmtDateTime(e.at)}</time>
              <span class="ev-text">
                {checkSeqs.has(e.seq) ? <Badge tone="info">readiness check</Badge> : null}{" "}
                {isAlarm(e.kind) ? <Badge tone="bad">alarm</Badge> : null}{" "}
                {e.kind === "access.granted" ? <Badge tone="ok">opened</Badge> : null}
                {e.kind === "access.denied" ? <Badge tone="warn">refused</Badge> : null}{" "}
                {describeEvent(e, names)}
              </span>
              <span class="muted small">
                #{e.seq}
                {e.lockId && locks.length > 1 ? ` · ${lockNames.get(e.lockId) ?? e.lockId}` : ""}
              </span>
            </li>
          ))}
        </ol>
        {older !== null ? (
          <button type="button" class="btn" onClick={loadOlder}>
            Load older events
          </button>
        ) : null}
      </Card>
      <div class="grid">
        <Card title="Entries by hour and weekday" id="heat">
          <p class="muted small">The last 30 days, in the lock's time ({lock.timeZone}).</p>
          {heat ? (
            <HeatMap counts={heat} caption="Entries by weekday and hour" />
          ) : (
            <Loading what="the heat map" />
          )}
        </Card>
        <ExportCard />
      </div>
    </div>
  );
}

function ChainCard() {
  const { api } = useSession();
  const v = useLoad((signal) => api.get<ChainVerification>("/api/v1/audit/verify", signal), []);
  return (
    <Card
      title="Chain verification"
      id="chain"
      actions={
        <button type="button" class="btn btn-small" onClick={v.reload} disabled={v.loading}>
          Verify again
        </button>
      }
    >
      {v.loading && !v.data ? <Loading what="the verification" /> : null}
      <ErrorBox error={v.error} />
      {v.data ? (
        <div>
          <p data-testid="chain-status">
            {v.data.ok ? <Badge tone="ok">intact</Badge> : <Badge tone="bad">broken</Badge>}{" "}
            {v.data.ok
              ? `Events ${v.data.firstSeq ?? 0}–${v.data.lastSeq ?? 0} verified: ${v.data.checkpointsChecked} signed checkpoint(s), ${v.data.unsignedTail} event(s) after the last one.`
              : v.data.problem}
          </p>
          <p class="muted small">
            Device key <code class="wrap">{v.data.publicKey}</code>. Write it down:{" "}
            <code>latchkey log verify --offline --public-key KEY</code> checks a copy against it.
          </p>
        </div>
      ) : null}
    </Card>
  );
}

/**
 * The encrypted export (`POST /api/v1/audit/export`): the hub seals a range of events to a passphrase
 * (scrypt + AES-256-GCM); the range is given by seq, so a chosen time range is first turned into the seqs
 * of its first and last events.
 */
function ExportCard() {
  const { api, hub } = useSession();
  const [pass, setPass] = useState("");
  const [again, setAgain] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [done, setDone] = useState<string | null>(null);
  const act = useAction();
  const mismatch = again !== "" && pass !== again;
  const seqAt = async (edge: "from" | "to", local: string): Promise<number | null> => {
    const q = new URLSearchParams({ limit: "1", order: edge === "from" ? "asc" : "desc" });
    q.set(edge, new Date(local).toISOString());
    const p = await api.get<AuditPage>(`/api/v1/audit?${q}`);
    return p.events[0]?.seq ?? null;
  };
  const submit = (e: Event) => {
    e.preventDefault();
    if (pass !== again) return;
    setDone(null);
    void act.run(async () => {
      const body: Record<string, string | number> = { passphrase: pass };
      const fromSeq = from ? await seqAt("from", from) : null;
      const toSeq = to ? await seqAt("to", to) : null;
      if ((from && fromSeq === null) || (to && toSeq === null) || (fromSeq && toSeq && fromSeq > toSeq)) {
        setDone("No events in that time range: nothing exported.");
        return;
      }
      if (fromSeq) body.fromSeq = fromSeq;
      if (toSeq) body.toSeq = toSeq;
      const doc = await api.postDocument("/api/v1/audit/export", body);
      const name = `latchkey-audit-${hub.deviceId}-${new Date(hubNow()).toISOString().slice(0, 10)}.json`;
      downloadText(name, JSON.stringify(doc, null, 2));
      setPass("");
      setAgain("");
      setDone(`Saved ${name}, encrypted to your passphrase (open it with latchkey audit open).`);
    });
  };
  return (
    <Card title="Encrypted export" id="export">
      <form class="stack" onSubmit={submit}>
        <p class="muted small">
          The log, with its checkpoints, as a file only your passphrase opens (scrypt, AES-256-GCM): for an
          insurer, a landlord, your own backup.
        </p>
        <Field
          label="Passphrase"
          type="password"
          value={pass}
          onValue={setPass}
          required
          minLength={12}
          autocomplete="new-password"
          hint="12 characters or more."
        />
        <Field
          label="Passphrase again"
          type="password"
          value={again}
          onValue={setAgain}
          required
          autocomplete="new-password"
          aria-invalid={mismatch}
          hint={mismatch ? "The two passphrases differ." : undefined}
        />
        <div class="two">
          <Field label="From (optional)" type="datetime-local" value={from} onValue={setFrom} />
          <Field label="Until (optional)" type="datetime-local" value={to} onValue={setTo} />
        </div>
        <ErrorBox error={act.error} title="Not exported" />
        <Notice>{done}</Notice>
        <div>
          <button type="submit" class="btn" disabled={act.busy || mismatch}>
            Export and download
          </button>
        </div>
      </form>
    </Card>
  );
}
