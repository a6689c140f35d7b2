/**
 * People, not slots: one row per person with every credential they hold and their role; add, suspend,
 * and offboard ("revoke everything this person has") in one step.
 */
import { useState } from "preact/hooks";
import { type ApiError, asApiError, seg } from "../api/client.ts";
import type {
  Credential,
  OffboardResult,
  PhoneKey,
  User,
  UserWithCredentials,
  WeekDaySchedule,
} from "../api/types.ts";
import { useSession } from "../context.ts";
import {
  CREDENTIAL_LABELS,
  credentialSummary,
  DAY_NAMES,
  PERSON_KINDS,
  type PersonKind,
  personKindLabel,
} from "../lib/format.ts";
import { href } from "../lib/router.ts";
import {
  Badge,
  Card,
  ConfirmButton,
  ErrorBox,
  Field,
  Loading,
  Notice,
  PageTitle,
  PinField,
  SelectField,
  useAction,
  useLoad,
} from "../ui/common.tsx";

interface Row {
  user: User;
  credentials: Credential[];
  phoneKeys: PhoneKey[];
}

export function PeoplePage() {
  const { api } = useSession();
  const list = useLoad(async (signal) => {
    const users = await api.get<User[]>("/api/v1/users", signal);
    const [full, keys] = await Promise.all([
      Promise.all(users.map((u) => api.get<UserWithCredentials>(`/api/v1/users/${seg(u.id)}`, signal))),
      api.get<PhoneKey[]>("/api/v1/keys", signal).catch(() => [] as PhoneKey[]),
    ]);
    return full.map<Row>((u) => ({
      user: u,
      credentials: u.credentials,
      phoneKeys: keys.filter((k) => k.userId === u.id && k.revokedAt === null),
    }));
  }, []);
  const [notice, setNotice] = useState<string | null>(null);
  const act = useAction();

  const setStatus = (u: User, enabled: boolean) =>
    void act.run(async () => {
      await api.patch(`/api/v1/users/${seg(u.id)}`, {
        userStatus: enabled ? "occupiedEnabled" : "occupiedDisabled",
      });
      setNotice(
        enabled ? `${u.name} can open the door again.` : `${u.name} is suspended: nothing of theirs opens.`,
      );
      list.reload();
    });
  const offboard = (u: User) =>
    void act.run(async () => {
      const r = await api.post<OffboardResult>(`/api/v1/users/${seg(u.id)}/offboard`, {});
      setNotice(offboardSummary(u.name, r));
      list.reload();
    });

  return (
    <div>
      <PageTitle sub="Everyone who can open the door, with everything they open it with.">People</PageTitle>
      <AddPerson
        onAdded={(msg) => {
          setNotice(msg);
          list.reload();
        }}
      />
      <Notice>{notice}</Notice>
      <ErrorBox error={act.error} />
      <Card title={`Everyone${list.data ? ` (${list.data.length})` : ""}`} id="people">
        {list.loading && !list.data ? <Loading what="people" /> : null}
        <ErrorBox error={list.error} />
        <table class="table people">
          <thead>
            <tr>
              <th scope="col">Person</th>
              <th scope="col">Role</th>
              <th scope="col">Opens with</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(list.data ?? []).map((r) => {
              const u = r.user;
              const suspended = u.userStatus === "occupiedDisabled";
              return (
                <tr key={u.id} data-person={u.name}>
                  <th scope="row" data-label="Person">
                    <a href={href("people", u.id)}>{u.name}</a>{" "}
                    {suspended ? <Badge tone="warn">suspended</Badge> : null}
                  </th>
                  <td data-label="Role">{personKindLabel(u)}</td>
                  <td data-label="Opens with">
                    <CredentialChips credentials={r.credentials} phoneKeys={r.phoneKeys} />
                  </td>
                  <td class="actions" data-label="Actions">
                    <div class="actions-in">
                      <a class="btn btn-small" href={href("people", u.id)} aria-label={`Edit ${u.name}`}>
                        Edit
                      </a>
                      {suspended ? (
                        <button
                          type="button"
                          class="btn btn-small"
                          disabled={act.busy}
                          onClick={() => setStatus(u, true)}
                          aria-label={`Resume ${u.name}`}
                        >
                          Resume
                        </button>
                      ) : (
                        <ConfirmButton
                          question={`Suspend ${u.name}? Nothing of theirs opens until you resume them.`}
                          title={`Suspend ${u.name}`}
                          confirmLabel="Suspend"
                          onConfirm={() => setStatus(u, false)}
                          busy={act.busy}
                          tone="plain"
                        >
                          Suspend<span class="visually-hidden"> {u.name}</span>
                        </ConfirmButton>
                      )}
                      <ConfirmButton
                        question={`Revoke every PIN, card, fingerprint, phone key and token of ${u.name}?`}
                        title={`Offboard ${u.name}`}
                        confirmLabel="Revoke everything"
                        onConfirm={() => offboard(u)}
                        busy={act.busy}
                      >
                        Offboard<span class="visually-hidden"> {u.name}</span>
                      </ConfirmButton>
                    </div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Card>
    </div>
  );
}

export function offboardSummary(name: string, r: OffboardResult): string {
  const parts = [
    `${r.credentials} credential${r.credentials === 1 ? "" : "s"}`,
    `${r.phoneKeys} phone key${r.phoneKeys === 1 ? "" : "s"}`,
    `${r.tokens} API token${r.tokens === 1 ? "" : "s"}`,
  ];
  if (r.guestCodeIssuers > 0)
    parts.push(`${r.guestCodeIssuers} guest-code issuer${r.guestCodeIssuers === 1 ? "" : "s"}`);
  return `${name} offboarded: revoked ${parts.join(", ")}; ${r.removed ? "removed" : "kept as suspended for the record"}.`;
}

export function CredentialChips({
  credentials,
  phoneKeys,
}: {
  credentials: Credential[];
  phoneKeys: PhoneKey[];
}) {
  if (credentials.length === 0 && phoneKeys.length === 0) return <span class="muted">nothing</span>;
  return (
    <ul class="chips" aria-label="Credentials">
      {credentials.map((c) => (
        <li key={c.id} class={`chip chip-${c.type}`} title={credentialSummary(c)}>
          {CREDENTIAL_LABELS[c.type]}
          {c.type === "pin" && c.duress ? " (duress)" : ""}
        </li>
      ))}
      {phoneKeys.map((k) => (
        <li key={k.serial} class="chip chip-phone" title={`Phone key ${k.name}`}>
          Phone key
        </li>
      ))}
    </ul>
  );
}

/**
 * The add form: a person, their role, optionally a PIN and (for service people) working hours. A refused
 * PIN adds nobody: the person just created is removed again and the form stays as it was, with the hub's
 * reason next to the PIN, so only the PIN needs changing.
 */
function AddPerson({ onAdded }: { onAdded: (msg: string) => void }) {
  const { api } = useSession();
  const [name, setName] = useState("");
  const [kind, setKind] = useState<PersonKind>("member");
  const [pin, setPin] = useState("");
  const [days, setDays] = useState(0b0111110);
  const [from, setFrom] = useState("09:00");
  const [to, setTo] = useState("17:00");
  const [scheduled, setScheduled] = useState(false);
  // Until the box is ticked or unticked by hand, it follows the role (cleaners and service people work hours).
  const [scheduleTouched, setScheduleTouched] = useState(false);
  const create = useAction();
  const [pinError, setPinError] = useState<ApiError | null>(null);
  // The person was created but the PIN refused and the person could not be removed again.
  const [stranded, setStranded] = useState<User | null>(null);
  const preset = PERSON_KINDS.find((k) => k.id === kind) ?? PERSON_KINDS[2];

  const pickKind = (k: PersonKind) => {
    setKind(k);
    if (!scheduleTouched) setScheduled(k === "service");
  };

  const submit = (e: Event) => {
    e.preventDefault();
    setPinError(null);
    setStranded(null);
    void create.run(async () => {
      const body: Record<string, unknown> = { name: name.trim(), role: preset.role };
      if (preset.userType) body.userType = preset.userType;
      if (scheduled && kind !== "delivery") {
        const w = parseWindow(days, from, to);
        body.userType = "weekDaySchedule";
        body.weekDaySchedules = [w];
      }
      const u = await api.post<User>("/api/v1/users", body);
      if (pin.trim() !== "") {
        try {
          await api.post(`/api/v1/users/${seg(u.id)}/pin`, { pin: pin.trim() });
        } catch (err) {
          setPinError(asApiError(err));
          try {
            await api.del(`/api/v1/users/${seg(u.id)}`);
          } catch {
            setStranded(u);
            onAdded(`${u.name} added, without a PIN (see why below).`);
          }
          return;
        }
      }
      onAdded(`${u.name} added${pin.trim() ? " with a PIN" : ""}.`);
      setName("");
      setPin("");
      setScheduleTouched(false);
      setScheduled(kind === "service");
    });
  };

  return (
    <Card title="Add a person" id="add-person">
      <form class="form-grid" onSubmit={submit}>
        <Field label="Name" value={name} onValue={setName} required maxLength={100} autocomplete="off" />
        <SelectField
          label="Role"
          value={kind}
          onValue={pickKind}
          options={PERSON_KINDS.map((k) => ({ value: k.id, label: k.label }))}
          hint={preset.hint}
        />
        <PinField
          label="PIN (optional)"
          value={pin}
          onValue={(v) => {
            setPin(v);
            setPinError(null);
          }}
          hint="6 to 12 digits. Easy or shared PINs are refused."
          error={pinError}
          errorTitle={stranded ? "PIN refused" : "Not added: PIN refused"}
        />
        {kind !== "delivery" ? (
          <fieldset class="fieldset">
            <legend>
              <label class="check">
                <input
                  type="checkbox"
                  checked={scheduled}
                  onChange={(e) => {
                    setScheduled(e.currentTarget.checked);
                    setScheduleTouched(true);
                  }}
                />{" "}
                Only on certain days and hours
              </label>
            </legend>
            {scheduled ? (
              <DaysAndHours
                days={days}
                setDays={setDays}
                from={from}
                setFrom={setFrom}
                to={to}
                setTo={setTo}
              />
            ) : null}
          </fieldset>
        ) : null}
        <div class="form-actions">
          <button type="submit" class="btn btn-primary" disabled={create.busy}>
            Add person
          </button>
        </div>
      </form>
      <ErrorBox error={create.error} title="Not added" />
      {stranded ? (
        <p>
          <a href={href("people", stranded.id)}>Give {stranded.name} another PIN</a>
        </p>
      ) : null}
    </Card>
  );
}

export function DaysAndHours({
  days,
  setDays,
  from,
  setFrom,
  to,
  setTo,
}: {
  days: number;
  setDays: (d: number) => void;
  from: string;
  setFrom: (v: string) => void;
  to: string;
  setTo: (v: string) => void;
}) {
  return (
    <div class="days-hours">
      <fieldset class="days">
        <legend class="visually-hidden">Days</legend>
        {DAY_NAMES.map((d, i) => (
          <label key={d} class="day">
            <input
              type="checkbox"
              checked={(days & (1 << i)) !== 0}
              onChange={(e) => setDays(e.currentTarget.checked ? days | (1 << i) : days & ~(1 << i))}
            />
            {d}
          </label>
        ))}
      </fieldset>
      <Field label="From" type="time" value={from} onValue={setFrom} required />
      <Field
        label="Until"
        type="time"
        value={to}
        onValue={setTo}
        required
        hint="Before the start: ends the next day."
      />
    </div>
  );
}

/** A week-day window from the form's days and times (`24:00` is not an input value: `00:00` end = midnight). */
export function parseWindow(daysMask: number, from: string, to: string): WeekDaySchedule {
  const [sh = 0, sm = 0] = from.split(":").map(Number);
  let [eh = 0, em = 0] = to.split(":").map(Number);
  if (eh === 0 && em === 0) eh = 24;
  return { daysMask: daysMask || 1, startHour: sh, startMinute: sm, endHour: eh, endMinute: em };
}
