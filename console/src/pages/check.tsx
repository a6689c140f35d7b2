/**
 * The offline readiness check (the router-unplugged test on demand, POST /api/v1/check) on the live hub,
 * with its dated report to view, print or save.
 */
import { useEffect, useState } from "preact/hooks";
import { seg } from "../api/client.ts";
import type { ReadinessReport, ReadinessSummary } from "../api/types.ts";
import { useSession } from "../context.ts";
import { fmtDateTime, fmtDuration } from "../lib/format.ts";
import {
  Badge,
  Card,
  downloadText,
  ErrorBox,
  Loading,
  PageTitle,
  useAction,
  useLoad,
} from "../ui/common.tsx";

export function CheckPage() {
  const { api } = useSession();
  const past = useLoad((signal) => api.get<ReadinessSummary[]>("/api/v1/checks", signal), []);
  const [report, setReport] = useState<ReadinessReport | null>(null);
  const run = useAction();
  const open = useAction();
  // Opening the page shows the latest report (the list is newest first) without a click.
  const latest = past.data?.[0]?.id ?? null;
  const [shownLatest, setShownLatest] = useState(false);
  useEffect(() => {
    if (shownLatest || latest === null) return;
    setShownLatest(true);
    if (report === null) show(latest);
  }, [latest, shownLatest]);

  const start = () =>
    void run.run(async () => {
      setReport(null);
      setReport(await api.post<ReadinessReport>("/api/v1/check", {}));
      past.reload();
    });
  const show = (id: string) =>
    void open.run(async () => {
      setReport(await api.get<ReadinessReport>(`/api/v1/checks/${seg(id)}`));
    });

  return (
    <div>
      <PageTitle sub="Proves the door keeps working with the internet gone: it really cuts the hub's uplink for a moment.">
        Offline readiness check
      </PageTitle>
      <Card id="run">
        <p>
          With the cloud link cut, the check adds a test person, opens the door with each kind of credential
          this site uses, removes the person and sees them refused, and verifies the local audit log; it also
          looks at the clock, the battery, a backup way in and pending revocations. Then it restores the link
          and removes what it added.
        </p>
        <button type="button" class="btn btn-primary" onClick={start} disabled={run.busy}>
          {run.busy ? "Checking…" : "Run the readiness check"}
        </button>
        {run.busy ? (
          <p class="muted" role="status" aria-busy="true">
            Running: this takes a few seconds.
          </p>
        ) : null}
        <ErrorBox error={run.error} title="Check not run" />
      </Card>
      {report ? (
        <ReportView key={report.id} report={report} latest={report.id === latest} />
      ) : open.busy ? (
        <Loading what="the latest report" />
      ) : null}
      <ErrorBox error={open.error} />
      <Card title="Earlier checks" id="past">
        {past.loading && !past.data ? <Loading what="earlier checks" /> : null}
        <ErrorBox error={past.error} />
        {past.data && past.data.length === 0 ? <p class="muted">None yet.</p> : null}
        <ul class="list">
          {(past.data ?? []).map((c) => (
            <li key={c.id} class="list-row">
              <span>
                {c.passed ? <Badge tone="ok">passed</Badge> : <Badge tone="bad">failed</Badge>}{" "}
                {fmtDateTime(c.startedAt)}
              </span>
              {report?.id === c.id ? (
                <span class="muted small">shown above</span>
              ) : (
                <button type="button" class="btn btn-small" onClick={() => show(c.id)}>
                  Show<span class="visually-hidden"> the check of {fmtDateTime(c.startedAt)}</span>
                </button>
              )}
            </li>
          ))}
        </ul>
      </Card>
    </div>
  );
}

function ReportView({ report, latest }: { report: ReadinessReport; latest: boolean }) {
  const { api, hub } = useSession();
  const [html, setHtml] = useState<string | null>(null);
  const act = useAction();
  // The printable page is fetched with the report, so opening it is part of the click (no pop-up block).
  useEffect(() => {
    void act.run(async () => setHtml(await api.text(`/api/v1/checks/${seg(report.id)}/report.html`)));
  }, [report.id]);
  const name = `latchkey-readiness-${hub.deviceId}-${new Date(toMsSafe(report.startedAt)).toISOString().slice(0, 10)}.html`;
  /** The report is a full page: it opens in its own tab from a blob URL (nothing leaves this device). */
  const openPage = (print: boolean) => {
    if (html === null) return;
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    const w = window.open(url, "_blank");
    if (w && print) w.addEventListener("load", () => w.print(), { once: true });
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  };
  return (
    <Card
      title={
        <>
          {latest ? "Latest report" : "Report"} of {fmtDateTime(report.startedAt)}{" "}
          {report.passed ? <Badge tone="ok">passed</Badge> : <Badge tone="bad">failed</Badge>}
        </>
      }
      id="report"
    >
      <p data-testid="check-result" role="status">
        {report.passed
          ? "Ready: the door works with the internet gone."
          : "Not ready: see the failed steps below."}
      </p>
      <ol class="steps">
        {report.steps.map((s) => (
          <li key={s.id} class={s.ok ? "step ok" : "step bad"}>
            <span class="step-mark" aria-hidden="true">
              {s.ok ? "✓" : "✗"}
            </span>
            <span>
              <strong>{s.title}</strong> <span class="visually-hidden">{s.ok ? "passed" : "failed"}</span>
              <br />
              <span class="muted small">{s.detail}</span>
            </span>
          </li>
        ))}
      </ol>
      {report.facts ? <Facts facts={report.facts} /> : null}
      <div class="row">
        <button type="button" class="btn" disabled={html === null} onClick={() => openPage(false)}>
          Show the printable report
        </button>
        <button type="button" class="btn" disabled={html === null} onClick={() => openPage(true)}>
          Print the report
        </button>
        <button
          type="button"
          class="btn"
          disabled={html === null}
          onClick={() => html !== null && downloadText(name, html, "text/html")}
        >
          Save the report
        </button>
      </div>
      <ErrorBox error={act.error} title="Printable report not loaded" />
    </Card>
  );
}

function toMsSafe(t: string | number): number {
  const ms = typeof t === "number" ? t : Date.parse(t);
  return Number.isFinite(ms) ? ms : Date.now();
}

interface LockFact {
  name?: string;
  lockState?: string;
  doorState?: string;
  operatingMode?: string;
  clock?: { trusted?: boolean; driftMs?: number | null };
  battery?: { percent?: number; level?: string; replaceAt?: string | null };
  revocationHorizonMs?: number | null;
}

/** The report's facts: per lock, then the site-wide ones; unknown facts as plain text. */
function Facts({ facts }: { facts: Record<string, unknown> }) {
  const { locks, ...rest } = facts;
  return (
    <div>
      {Array.isArray(locks)
        ? (locks as LockFact[]).map((l) => (
            <p key={l.name}>
              <strong>{l.name}</strong>: {l.lockState}, door {l.doorState}, mode {l.operatingMode}; clock{" "}
              {l.clock?.trusted ? "trusted" : "NOT trusted"}
              {typeof l.clock?.driftMs === "number" ? ` (drift ${l.clock.driftMs} ms)` : ""}; battery{" "}
              {l.battery?.percent !== undefined ? `${Math.round(l.battery.percent)} %` : "?"}
              {l.battery?.replaceAt ? `, replace around ${fmtDateTime(l.battery.replaceAt)}` : ""}
              {typeof l.revocationHorizonMs === "number"
                ? `; revocation list ${fmtDuration(l.revocationHorizonMs)} old`
                : ""}
            </p>
          ))
        : null}
      <dl class="facts">
        {Object.entries(rest).map(([k, v]) => (
          <div key={k} class="fact-row">
            <dt>{k.replace(/([A-Z])/g, " $1").toLowerCase()}</dt>
            <dd>{k === "backupEntry" && isBackupEntry(v) ? <BackupEntry entry={v} /> : factText(v)}</dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

interface BackupFact {
  ok: boolean;
  methods: string[];
}

function isBackupEntry(v: unknown): v is BackupFact {
  return (
    typeof v === "object" &&
    v !== null &&
    Array.isArray((v as BackupFact).methods) &&
    (v as BackupFact).methods.every((m) => typeof m === "string")
  );
}

/** The ways in besides the everyday ones: one per line. */
function BackupEntry({ entry }: { entry: BackupFact }) {
  return (
    <>
      {entry.ok ? null : <Badge tone="bad">none</Badge>}
      <ul class="plain methods">
        {entry.methods.map((m) => (
          <li key={m}>{m}</li>
        ))}
      </ul>
    </>
  );
}

function factText(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return v.length === 0 ? "none" : v.map(factText).join(", ");
  return Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `${k}: ${factText(x)}`)
    .join("; ");
}
