/**
 * Guest codes (docs/protocol/guest-codes.md): issue one-time, window, use-limited, first-use and recurring
 * codes through the hub (no internet involved), share the message, revoke one code or all of them.
 */
import { useState } from "preact/hooks";
import { seg } from "../api/client.ts";
import type { GuestCodeEntry, GuestCodeRequest, IssuedGuestCode } from "../api/types.ts";
import { useSession } from "../context.ts";
import { daysOfMask, lockLocal } from "../lib/format.ts";
import {
  Badge,
  Card,
  ConfirmButton,
  copyText,
  ErrorBox,
  Field,
  Loading,
  Notice,
  PageTitle,
  SelectField,
  useAction,
  useLoad,
} from "../ui/common.tsx";

type Kind = GuestCodeRequest["kind"];

const KINDS: readonly { value: Kind; label: string; means: string }[] = [
  { value: "oneTime", label: "One-time", means: "Opens once inside its window (a delivery, a plumber)." },
  {
    value: "window",
    label: "Window",
    means: "Opens any number of times between two dates (a weekend guest).",
  },
  {
    value: "uses",
    label: "Limited uses",
    means: "Opens 2, 3, 5 or 10 times inside a window of up to 31 days.",
  },
  {
    value: "firstUse",
    label: "From first use",
    means: "Valid for a while after it is first used; the first use must fall in the window.",
  },
  {
    value: "recurring",
    label: "Recurring",
    means: "Opens on set days and hours for whole months (a cleaner every Tuesday 9–12).",
  },
];

/** LK-GC1 day sets (guest-codes.md § 3). */
const DAY_SETS = [
  0x7f, 0x3e, 0x41, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x2a, 0x14, 0x7e, 0x12, 0x24, 0x1f,
];
const LENGTHS = [1, 2, 3, 4, 6, 8, 10, 12];
const USES = [2, 3, 5, 10];
const DURATIONS = [
  { minutes: 60, label: "1 hour" },
  { minutes: 240, label: "4 hours" },
  { minutes: 1440, label: "24 hours" },
  { minutes: 10080, label: "7 days" },
];

export function GuestCodesPage() {
  const { api, lock } = useSession();
  const base = `/api/v1/locks/${seg(lock.id)}/guest-codes`;
  const ledger = useLoad((signal) => api.get<GuestCodeEntry[]>(base, signal), [base]);
  const [issued, setIssued] = useState<IssuedGuestCode | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const act = useAction();

  const revoke = (c: GuestCodeEntry) =>
    void act.run(async () => {
      const r = await api.post<{ status: string }>(`${base}/revocations`, {
        issuerId: c.issuerId,
        epoch: c.epoch,
        codeId: c.codeId,
        dropAfter: c.dropAfter,
      });
      setNotice(
        r.status === "alreadyRevoked" ? `${c.name}'s code was already revoked.` : `${c.name}'s code revoked.`,
      );
      ledger.reload();
    });
  const revokeAll = () =>
    void act.run(async () => {
      await api.post(`${base}/revoke-all`);
      setNotice("Every guest code issued on this door so far is revoked.");
      ledger.reload();
    });

  const now = lock.status.clock.now;
  return (
    <div>
      <PageTitle
        sub={`Codes for ${lock.name}. The lock checks them on its own, with no internet, in its time zone (${lock.timeZone}).`}
      >
        Guest codes
      </PageTitle>
      <div class="grid">
        <IssueForm
          onIssued={(c) => {
            setIssued(c);
            ledger.reload();
          }}
        />
        {issued ? <IssuedCard code={issued} /> : null}
      </div>
      <Notice>{notice}</Notice>
      <ErrorBox error={act.error} />
      <Card
        title="Codes issued here"
        id="codes"
        actions={
          <ConfirmButton
            question="Every code issued on this door so far stops working."
            confirmLabel="Revoke all"
            onConfirm={revokeAll}
            busy={act.busy}
          >
            Revoke all codes
          </ConfirmButton>
        }
      >
        {ledger.loading && !ledger.data ? <Loading what="codes" /> : null}
        <ErrorBox error={ledger.error} />
        {ledger.data && ledger.data.length === 0 ? (
          <p class="muted">No codes issued through the hub yet.</p>
        ) : null}
        <table class="table" hidden={!ledger.data || ledger.data.length === 0}>
          <thead>
            <tr>
              <th scope="col">For</th>
              <th scope="col">Kind</th>
              <th scope="col">Valid (lock time)</th>
              <th scope="col">Used</th>
              <th scope="col">State</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {[...(ledger.data ?? [])].reverse().map((c) => {
              const over = c.validTo < lockLocal(now, lock.timeZone) && c.kind !== "firstUse";
              return (
                <tr key={`${c.issuerId}-${c.epoch}-${c.codeId}`} data-code={c.codeId}>
                  <th scope="row" data-label="For">
                    {c.name}
                  </th>
                  <td data-label="Kind">{KINDS.find((k) => k.value === c.kind)?.label ?? c.kind}</td>
                  <td data-label="Valid">
                    {c.validFrom.replace("T", " ")} → {c.validTo.replace("T", " ")}
                  </td>
                  <td data-label="Used">{c.uses}</td>
                  <td data-label="State">
                    {c.revoked ? (
                      <Badge tone="warn">revoked</Badge>
                    ) : over ? (
                      <Badge>expired</Badge>
                    ) : (
                      <Badge tone="ok">valid</Badge>
                    )}
                  </td>
                  <td class="actions" data-label="Actions">
                    {!c.revoked ? (
                      <ConfirmButton
                        question={`Revoke ${c.name}'s code?`}
                        title={`Revoke ${c.name}'s code`}
                        confirmLabel="Revoke"
                        onConfirm={() => revoke(c)}
                        busy={act.busy}
                      >
                        Revoke<span class="visually-hidden"> {c.name}'s code</span>
                      </ConfirmButton>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <p class="muted small">
          Codes issued offline with the CLI (<code>npx latchkey code issue</code>) are in that machine's
          ledger, not here.
        </p>
      </Card>
    </div>
  );
}

function IssueForm({ onIssued }: { onIssued: (c: IssuedGuestCode) => void }) {
  const { api, lock } = useSession();
  const tz = lock.timeZone;
  const now = lock.status.clock.now;
  const [name, setName] = useState("");
  const [kind, setKind] = useState<Kind>("oneTime");
  const [from, setFrom] = useState(() => lockLocal(now - (now % 3_600_000), tz));
  const [to, setTo] = useState(() => lockLocal(now - (now % 3_600_000) + 86_400_000, tz));
  const [uses, setUses] = useState("3");
  const [duration, setDuration] = useState("240");
  const [mask, setMask] = useState(String(0x04));
  const [startHour, setStartHour] = useState("9");
  const [length, setLength] = useState("3");
  const [fromDate, setFromDate] = useState(() => lockLocal(now, tz).slice(0, 10));
  const [toDate, setToDate] = useState(() => lockLocal(now + 60 * 86_400_000, tz).slice(0, 10));
  const act = useAction();
  const means = KINDS.find((k) => k.value === kind)?.means;

  const request = (): GuestCodeRequest => {
    const n = name.trim();
    switch (kind) {
      case "recurring":
        return {
          kind,
          name: n,
          daysMask: Number(mask),
          startHour: Number(startHour),
          lengthHours: Number(length),
          fromDate,
          toDate,
        };
      case "uses":
        return { kind, name: n, from, to, uses: Number(uses) };
      case "firstUse":
        return { kind, name: n, from, to, durationMinutes: Number(duration) };
      default:
        return { kind, name: n, from, to };
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    void act.run(async () =>
      onIssued(await api.post<IssuedGuestCode>(`/api/v1/locks/${seg(lock.id)}/guest-codes`, request())),
    );
  };

  return (
    <Card title="Issue a code" id="issue">
      <form class="stack" onSubmit={submit}>
        <Field
          label="Who it is for"
          value={name}
          onValue={setName}
          required
          maxLength={100}
          hint="Named in the log and the message."
        />
        <fieldset class="fieldset">
          <legend>Kind</legend>
          <div class="radios">
            {KINDS.map((k) => (
              <label key={k.value} class="radio">
                <input
                  type="radio"
                  name="kind"
                  value={k.value}
                  checked={kind === k.value}
                  onChange={() => setKind(k.value)}
                />{" "}
                {k.label}
              </label>
            ))}
          </div>
          <p class="hint">{means}</p>
        </fieldset>
        {kind !== "recurring" ? (
          <div class="two">
            <Field
              label={kind === "firstUse" ? "First use from" : "Valid from"}
              type="datetime-local"
              value={from}
              onValue={setFrom}
              required
            />
            <Field
              label={kind === "firstUse" ? "First use until" : "Valid until"}
              type="datetime-local"
              value={to}
              onValue={setTo}
              required
            />
          </div>
        ) : null}
        {kind === "uses" ? (
          <SelectField
            label="Number of uses"
            value={uses}
            onValue={setUses}
            options={USES.map((u) => ({ value: String(u), label: String(u) }))}
          />
        ) : null}
        {kind === "firstUse" ? (
          <SelectField
            label="Valid after first use for"
            value={duration}
            onValue={setDuration}
            options={DURATIONS.map((d) => ({ value: String(d.minutes), label: d.label }))}
          />
        ) : null}
        {kind === "recurring" ? (
          <>
            <SelectField
              label="Days"
              value={mask}
              onValue={setMask}
              options={DAY_SETS.map((m) => ({ value: String(m), label: daysOfMask(m) }))}
            />
            <div class="two">
              <SelectField
                label="From"
                value={startHour}
                onValue={setStartHour}
                options={Array.from({ length: 24 }, (_, h) => ({
                  value: String(h),
                  label: `${String(h).padStart(2, "0")}:00`,
                }))}
              />
              <SelectField
                label="For"
                value={length}
                onValue={setLength}
                options={LENGTHS.map((l) => ({ value: String(l), label: `${l} hour${l === 1 ? "" : "s"}` }))}
              />
            </div>
            <div class="two">
              <Field label="First month" type="date" value={fromDate} onValue={setFromDate} required />
              <Field
                label="Last month"
                type="date"
                value={toDate}
                onValue={setToDate}
                required
                hint="Whole months."
              />
            </div>
          </>
        ) : null}
        <p class="muted small">
          Times are the lock's ({tz}). The window may be widened to the code format's grid; the result says
          what was granted.
        </p>
        <ErrorBox error={act.error} title="Not issued" />
        <div>
          <button type="submit" class="btn btn-primary" disabled={act.busy}>
            Issue code
          </button>
        </div>
      </form>
    </Card>
  );
}

function IssuedCard({ code }: { code: IssuedGuestCode }) {
  const [copied, setCopied] = useState<string | null>(null);
  const grouped = code.code.replace(/(\d{4})(?=\d)/g, "$1 ");
  const share = async () => {
    if (typeof navigator.share === "function") {
      try {
        await navigator.share({ text: code.shareText });
        return;
      } catch {
        // cancelled or unsupported: fall back to copying
      }
    }
    setCopied((await copyText(code.shareText)) ? "Message copied." : "Copy it by hand.");
  };
  return (
    <Card title="New code" id="issued">
      <p class="secret" data-testid="guest-code">
        {grouped}
      </p>
      <p>{code.description}</p>
      {!code.exact ? (
        <p class="warn-text">Wider than asked: the code format rounds windows outward.</p>
      ) : null}
      <p class="muted small">
        Shown once: the hub keeps only its id ({code.codeId}), never the digits. Valid{" "}
        {code.validFrom.replace("T", " ")} → {code.validTo.replace("T", " ")} (lock time).
      </p>
      <label for="share-text">Message to send</label>
      <textarea id="share-text" readOnly rows={4} value={code.shareText} />
      <div class="row">
        <button type="button" class="btn btn-primary" onClick={() => void share()}>
          Share
        </button>
        <button
          type="button"
          class="btn"
          onClick={() =>
            void copyText(code.shareText).then((ok) => setCopied(ok ? "Message copied." : "Copy it by hand."))
          }
        >
          Copy message
        </button>
        <a class="btn" href={`sms:?&body=${encodeURIComponent(code.shareText)}`}>
          Text message
        </a>
      </div>
      <Notice>{copied}</Notice>
    </Card>
  );
}
