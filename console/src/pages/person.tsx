/** One person: their details, every credential (add and remove), phone keys, API tokens, offboarding. */
import { useState } from "preact/hooks";
import { seg } from "../api/client.ts";
import type {
  Credential,
  OffboardResult,
  PhoneKey,
  TotpEnrolment,
  User,
  UserType,
  UserWithCredentials,
} from "../api/types.ts";
import { USER_TYPES } from "../api/types.ts";
import { useSession } from "../context.ts";
import {
  credentialSummary,
  fmtDate,
  fmtDateTime,
  fmtRelative,
  PERSON_KINDS,
  type PersonKind,
  personKindOf,
  USER_TYPE_LABELS,
} from "../lib/format.ts";
import { href, navigate } from "../lib/router.ts";
import {
  Badge,
  Card,
  Checkbox,
  ConfirmButton,
  copyText,
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
import { offboardSummary } from "./people.tsx";

export function PersonPage({ userId }: { userId: string }) {
  const { api } = useSession();
  const person = useLoad(
    (signal) => api.get<UserWithCredentials>(`/api/v1/users/${seg(userId)}`, signal),
    [userId],
  );
  const keys = useLoad(
    (signal) =>
      api.get<PhoneKey[]>("/api/v1/keys", signal).then((ks) => ks.filter((k) => k.userId === userId)),
    [userId],
  );
  const [notice, setNotice] = useState<string | null>(null);
  const act = useAction();
  const u = person.data;

  if (!u)
    return (
      <div>
        <PageTitle>Person</PageTitle>
        {person.loading ? <Loading what="this person" /> : null}
        <ErrorBox error={person.error} />
        <p>
          <a href="#/people">Back to people</a>
        </p>
      </div>
    );

  const suspended = u.userStatus === "occupiedDisabled";
  const changed = (msg: string) => {
    setNotice(msg);
    person.reload();
    keys.reload();
  };
  const setStatus = (enabled: boolean) =>
    void act.run(async () => {
      await api.patch(`/api/v1/users/${seg(u.id)}`, {
        userStatus: enabled ? "occupiedEnabled" : "occupiedDisabled",
      });
      changed(enabled ? `${u.name} can open the door again.` : `${u.name} is suspended.`);
    });
  const offboard = (remove: boolean) =>
    void act.run(async () => {
      const r = await api.post<OffboardResult>(`/api/v1/users/${seg(u.id)}/offboard`, { remove });
      if (r.removed) {
        navigate("people");
        return;
      }
      changed(offboardSummary(u.name, r));
    });

  return (
    <div>
      <PageTitle sub={<a href="#/people">← All people</a>} docTitle={u.name}>
        {u.name} {suspended ? <Badge tone="warn">suspended</Badge> : null}
      </PageTitle>
      <Notice>{notice}</Notice>
      <ErrorBox error={act.error} />
      <div class="grid">
        <Details user={u} onSaved={changed} />
        <Card title="Credentials" id="credentials">
          <CredentialList credentials={u.credentials} onRemoved={changed} />
          <AddCredential user={u} onAdded={changed} />
        </Card>
        <Card title="Phone keys" id="phone-keys">
          <PhoneKeys keys={keys.data ?? []} loading={keys.loading} onRevoked={changed} />
        </Card>
        <Tokens user={u} />
        <Card title="Suspend or offboard" id="offboard">
          <p class="muted">
            Suspending keeps everything but nothing opens. Offboarding revokes every PIN, card, fingerprint,
            authenticator, phone key and API token in one step (a former roommate, a contractor who finished).
          </p>
          <div class="row">
            {suspended ? (
              <button type="button" class="btn" disabled={act.busy} onClick={() => setStatus(true)}>
                Resume
              </button>
            ) : (
              <ConfirmButton
                question={`Suspend ${u.name}? Nothing of theirs opens until you resume them.`}
                title={`Suspend ${u.name}`}
                confirmLabel="Suspend"
                onConfirm={() => setStatus(false)}
                busy={act.busy}
                tone="plain"
              >
                Suspend
              </ConfirmButton>
            )}
            <ConfirmButton
              question={`Revoke everything ${u.name} has?`}
              title={`Offboard ${u.name}`}
              confirmLabel="Revoke everything"
              onConfirm={() => offboard(false)}
              busy={act.busy}
            >
              Offboard (revoke everything)
            </ConfirmButton>
            <ConfirmButton
              question={`Revoke everything and remove ${u.name}? The audit log keeps their history.`}
              title={`Offboard and remove ${u.name}`}
              confirmLabel="Revoke and remove"
              onConfirm={() => offboard(true)}
              busy={act.busy}
            >
              Offboard and remove
            </ConfirmButton>
          </div>
        </Card>
      </div>
    </div>
  );
}

function Details({ user, onSaved }: { user: User; onSaved: (msg: string) => void }) {
  const { api } = useSession();
  const [name, setName] = useState(user.name);
  const [kind, setKind] = useState<PersonKind>(personKindOf(user));
  const [userType, setUserType] = useState<UserType>(user.userType);
  const act = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    const preset = PERSON_KINDS.find((k) => k.id === kind);
    void act.run(async () => {
      const body: Record<string, unknown> = { name: name.trim(), userType };
      if (preset) {
        body.role = preset.role;
        if (kind === "delivery" && userType !== "disposable" && userType !== "expiringDisposable")
          body.userType = "disposable";
      }
      await api.patch(`/api/v1/users/${seg(user.id)}`, body);
      onSaved(`${name.trim()} saved.`);
    });
  };
  return (
    <Card title="Details" id="details">
      <form class="stack" onSubmit={submit}>
        <Field label="Name" value={name} onValue={setName} required maxLength={100} />
        <SelectField
          label="Role"
          value={kind}
          onValue={setKind}
          options={PERSON_KINDS.map((k) => ({ value: k.id, label: k.label }))}
        />
        <SelectField
          label="When they may open"
          value={userType}
          onValue={setUserType}
          options={USER_TYPES.map((t) => ({ value: t, label: USER_TYPE_LABELS[t] }))}
          hint={
            <>
              Schedules:{" "}
              <a href={`#/schedules?person=${encodeURIComponent(user.id)}`}>edit {user.name}'s week grid</a>
            </>
          }
        />
        <p class="muted">
          Added {fmtDate(user.createdAt)}
          {user.firstUsedAt ? ` · first entry ${fmtDateTime(user.firstUsedAt)}` : ""}
        </p>
        <ErrorBox error={act.error} title="Not saved" />
        <div>
          <button type="submit" class="btn btn-primary" disabled={act.busy}>
            Save
          </button>
        </div>
      </form>
    </Card>
  );
}

function CredentialList({
  credentials,
  onRemoved,
}: {
  credentials: Credential[];
  onRemoved: (msg: string) => void;
}) {
  const { api } = useSession();
  const act = useAction();
  if (credentials.length === 0) return <p class="muted">No credentials yet.</p>;
  return (
    <>
      <ul class="list">
        {credentials.map((c) => (
          <li key={c.id} class="list-row">
            <div>
              <strong>{credentialSummary(c)}</strong>
              {c.label ? <span> · {c.label}</span> : null}
              <div class="muted small">
                {c.locks === "all" ? "all doors" : c.locks.join(", ")} · added {fmtDate(c.createdAt)} · last
                used {fmtRelative(c.lastUsedAt)}
              </div>
            </div>
            <ConfirmButton
              question="Remove it?"
              confirmLabel="Remove"
              busy={act.busy}
              onConfirm={() =>
                void act.run(async () => {
                  await api.del(`/api/v1/credentials/${seg(c.id)}`);
                  onRemoved(`${credentialSummary(c)} removed.`);
                })
              }
            >
              Remove<span class="visually-hidden"> {credentialSummary(c)}</span>
            </ConfirmButton>
          </li>
        ))}
      </ul>
      <ErrorBox error={act.error} />
    </>
  );
}

type NewKind = "pin" | "rfid" | "fingerprint" | "totp";

function AddCredential({ user, onAdded }: { user: User; onAdded: (msg: string) => void }) {
  const { api } = useSession();
  const [kind, setKind] = useState<NewKind>("pin");
  const [pin, setPin] = useState("");
  const [duress, setDuress] = useState(false);
  const [replace, setReplace] = useState(false);
  const [card, setCard] = useState("");
  const [slot, setSlot] = useState("");
  const [alone, setAlone] = useState(false);
  const [label, setLabel] = useState("");
  const [totp, setTotp] = useState<TotpEnrolment | null>(null);
  const act = useAction();
  const base = `/api/v1/users/${seg(user.id)}`;
  const lab = label.trim() === "" ? {} : { label: label.trim() };

  const submit = (e: Event) => {
    e.preventDefault();
    setTotp(null);
    void act.run(async () => {
      switch (kind) {
        case "pin":
          await api.post(`${base}/pin`, { pin: pin.trim(), duress, replace, ...lab });
          setPin("");
          onAdded(duress ? "Duress PIN set." : "PIN set.");
          break;
        case "rfid": {
          const v = card.trim();
          // A normalised card id names its format first ("h10301:123:45678", "uid:04a1..."); else a UID in hex.
          const isCardId = /^[a-z][a-z0-9]{2,}:/i.test(v);
          await api.post(`${base}/cards`, isCardId ? { cardId: v, ...lab } : { uid: v, ...lab });
          setCard("");
          onAdded("Card enrolled.");
          break;
        }
        case "fingerprint":
          await api.post(`${base}/fingerprints`, { slot: Number(slot), ...lab });
          setSlot("");
          onAdded("Fingerprint enrolled.");
          break;
        case "totp": {
          const r = await api.post<TotpEnrolment>(`${base}/totp`, { requirePin: !alone, ...lab });
          setTotp(r);
          onAdded("Authenticator enrolled: scan the code now, it is shown once.");
          break;
        }
      }
      setLabel("");
    });
  };

  return (
    <form class="stack add-credential" onSubmit={submit}>
      <h3>Add a credential</h3>
      <SelectField
        label="Kind"
        value={kind}
        onValue={setKind}
        options={[
          { value: "pin", label: "PIN" },
          { value: "rfid", label: "RFID card" },
          { value: "fingerprint", label: "Fingerprint" },
          { value: "totp", label: "Authenticator app" },
        ]}
      />
      {kind === "pin" ? (
        <>
          <PinField
            label="New PIN"
            value={pin}
            onValue={(v) => {
              setPin(v);
              act.clear();
            }}
            required
            hint="6 to 12 digits. Sequences, repeats, common PINs and PINs someone else has are refused."
            error={act.error}
          />
          <Checkbox label="Replace their current PIN" checked={replace} onChecked={setReplace} />
          <Checkbox
            label="Duress PIN (opens and raises a silent alarm)"
            checked={duress}
            onChecked={setDuress}
          />
        </>
      ) : null}
      {kind === "rfid" ? (
        <Field
          label="Card"
          value={card}
          onValue={setCard}
          required
          autocomplete="off"
          spellcheck={false}
          hint="ISO 14443 UID in hex (04:A1:B2:C3) or a Wiegand card id (h10301:123:45678)."
        />
      ) : null}
      {kind === "fingerprint" ? (
        <Field
          label="Sensor slot"
          type="number"
          min={1}
          max={1000}
          value={slot}
          onValue={setSlot}
          required
          hint="The sensor keeps the fingerprint; the hub only knows the slot it matched."
        />
      ) : null}
      {kind === "totp" ? (
        <Checkbox
          label="The app's code alone opens (owners and admins only; otherwise PIN then code)"
          checked={alone}
          onChecked={setAlone}
        />
      ) : null}
      <Field label="Label (optional)" value={label} onValue={setLabel} maxLength={100} />
      {kind === "pin" ? null : <ErrorBox error={act.error} title="Refused" />}
      <div>
        <button type="submit" class="btn btn-primary" disabled={act.busy}>
          Add
        </button>
      </div>
      {totp ? (
        <div class="totp" aria-live="polite">
          <img
            src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(totp.qrSvg)}`}
            alt="QR code for the authenticator app"
            width={200}
            height={200}
          />
          <p class="small">
            Or type this into the app: <code class="wrap">{totp.otpauthUri}</code>
          </p>
        </div>
      ) : null}
    </form>
  );
}

function PhoneKeys({
  keys,
  loading,
  onRevoked,
}: {
  keys: PhoneKey[];
  loading: boolean;
  onRevoked: (msg: string) => void;
}) {
  const { api } = useSession();
  const act = useAction();
  if (loading && keys.length === 0) return <Loading what="phone keys" />;
  if (keys.length === 0)
    return (
      <p class="muted">
        No phone keys. Issue them with the CLI (<code>npx latchkey key issue</code>): the phone's key stays on
        the phone.
      </p>
    );
  return (
    <>
      <ul class="list">
        {keys.map((k) => (
          <li key={k.serial} class="list-row">
            <div>
              <strong>{k.name}</strong> {k.revokedAt !== null ? <Badge tone="warn">revoked</Badge> : null}
              <div class="muted small">
                {k.rights.join(", ")} · until {fmtDateTime(k.exp)}
                {k.lease ? ` · lease ${Math.round(k.lease / 3600)} h` : ""} · serial {k.serial}
              </div>
            </div>
            {k.revokedAt === null ? (
              <ConfirmButton
                question="Revoke this phone key?"
                confirmLabel="Revoke"
                busy={act.busy}
                onConfirm={() =>
                  void act.run(async () => {
                    await api.post(`/api/v1/keys/${seg(k.serial)}/revoke`);
                    onRevoked(`Phone key ${k.name} revoked.`);
                  })
                }
              >
                Revoke
              </ConfirmButton>
            ) : null}
          </li>
        ))}
      </ul>
      <ErrorBox error={act.error} />
    </>
  );
}

interface TokenRecord {
  id: string;
  label: string;
  createdAt: number;
}

function Tokens({ user }: { user: User }) {
  const { api, me } = useSession();
  const list = useLoad(
    (signal) => api.get<TokenRecord[]>(`/api/v1/users/${seg(user.id)}/tokens`, signal),
    [user.id],
  );
  const [label, setLabel] = useState("");
  const [shown, setShown] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const act = useAction();
  const mayIssue = me.id === user.id || me.role === "owner";
  // The token this console signs in with, when it knows (it made it: claim or recover).
  const current = api.tokenId;
  return (
    <Card title="API tokens" id="tokens">
      <p class="muted small">For the CLI, scripts and other consoles. Each is shown once when it is made.</p>
      <ErrorBox error={list.error} />
      <ul class="list">
        {(list.data ?? []).map((t) => (
          <li key={t.id} class="list-row">
            <div>
              <strong>{t.label}</strong> {t.id === current ? <Badge tone="info">this console</Badge> : null}
              <div class="muted small">made {fmtDateTime(t.createdAt)}</div>
            </div>
            <ConfirmButton
              question={
                t.id === current ? "Revoke the token this console uses? It signs out." : "Revoke this token?"
              }
              confirmLabel="Revoke"
              busy={act.busy}
              onConfirm={() =>
                void act.run(async () => {
                  await api.del(`/api/v1/tokens/${seg(t.id)}`);
                  list.reload();
                })
              }
            >
              Revoke<span class="visually-hidden"> token {t.label}</span>
            </ConfirmButton>
          </li>
        ))}
      </ul>
      {list.data && list.data.length === 0 ? <p class="muted">None.</p> : null}
      {mayIssue ? (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            void act.run(async () => {
              const r = await api.post<{ token: string }>(`/api/v1/users/${seg(user.id)}/tokens`, {
                label: label.trim(),
              });
              setShown(r.token);
              setCopied(false);
              setLabel("");
              list.reload();
            });
          }}
        >
          <Field label="New token label" value={label} onValue={setLabel} required maxLength={100} />
          <button type="submit" class="btn" disabled={act.busy}>
            Make a token
          </button>
        </form>
      ) : null}
      {shown ? (
        <div class="stack">
          <p>
            New token (shown once): <code class="wrap">{shown}</code>
          </p>
          <div>
            <button type="button" class="btn btn-small" onClick={() => void copyText(shown).then(setCopied)}>
              {copied ? "Copied" : "Copy"}
            </button>
          </div>
        </div>
      ) : null}
      <ErrorBox error={act.error} />
      <p class="small">
        <a href={href("activity")}>Activity</a> shows what this person did.
      </p>
    </Card>
  );
}
