/**
 * Access review: ghost users, credentials that never worked, shared codes, keys near expiry, admins and
 * their grants — each with its cleanup one click away.
 */
import { useState } from "preact/hooks";
import { seg } from "../api/client.ts";
import type { AccessReview, OffboardResult } from "../api/types.ts";
import { useSession } from "../context.ts";
import { CREDENTIAL_LABELS, fmtDate, personKindLabel } from "../lib/format.ts";
import { usePeople } from "../lib/people.ts";
import { href } from "../lib/router.ts";
import {
  Card,
  ConfirmButton,
  ErrorBox,
  Loading,
  Notice,
  PageTitle,
  SelectField,
  useAction,
  useLoad,
} from "../ui/common.tsx";
import { offboardSummary } from "./people.tsx";

const PERIODS = ["7", "30", "60", "90", "180", "365"] as const;

export function ReviewPage() {
  const { api, me } = useSession();
  const [days, setDays] = useState<(typeof PERIODS)[number]>("30");
  const review = useLoad((signal) => api.get<AccessReview>(`/api/v1/review?days=${days}`, signal), [days]);
  const people = usePeople();
  const [notice, setNotice] = useState<string | null>(null);
  const act = useAction();
  const r = review.data;

  const done = (msg: string) => {
    setNotice(msg);
    review.reload();
    people.reload();
  };
  const offboard = (userId: string, name: string) =>
    act.run(async () => {
      const res = await api.post<OffboardResult>(`/api/v1/users/${seg(userId)}/offboard`, {});
      done(offboardSummary(name, res));
    });
  const removeCredential = (id: string, what: string) =>
    act.run(async () => {
      await api.del(`/api/v1/credentials/${seg(id)}`);
      done(`${what} removed.`);
    });
  const revokeKey = (serial: string) =>
    act.run(async () => {
      await api.post(`/api/v1/keys/${seg(serial)}/revoke`);
      done(`Phone key ${serial} revoked.`);
    });
  const cleanAllGhosts = () =>
    void act.run(async () => {
      if (!r) return;
      let n = 0;
      for (const g of r.ghostUsers) {
        if (g.userId === me.id) continue;
        await api.post<OffboardResult>(`/api/v1/users/${seg(g.userId)}/offboard`, {});
        n++;
      }
      done(`${n} ghost user(s) offboarded.`);
    });
  const cleanAllNeverWorked = () =>
    void act.run(async () => {
      if (!r) return;
      for (const c of r.neverWorked) await api.del(`/api/v1/credentials/${seg(c.credentialId)}`);
      done(`${r.neverWorked.length} unused credential(s) removed.`);
    });

  const name = (id: string) => people.names.get(id) ?? id;

  return (
    <div>
      <PageTitle sub="Who still has access that they do not use, and what to clean up.">
        Access review
      </PageTitle>
      <div class="row">
        <SelectField
          label="No entry in"
          value={days}
          onValue={setDays}
          options={PERIODS.map((p) => ({ value: p, label: `${p} days` }))}
        />
      </div>
      <Notice>{notice}</Notice>
      <ErrorBox error={act.error} title="Cleanup refused" />
      {review.loading && !r ? <Loading what="the review" /> : null}
      <ErrorBox error={review.error} />
      {r ? (
        <div class="grid">
          <Card
            title={`Ghost users (${r.ghostUsers.length})`}
            id="ghosts"
            actions={
              r.ghostUsers.length > 1 ? (
                <ConfirmButton
                  question="Offboard all of them?"
                  title="Offboard every ghost user"
                  confirmLabel="Offboard all"
                  onConfirm={cleanAllGhosts}
                  busy={act.busy}
                >
                  Offboard all
                </ConfirmButton>
              ) : null
            }
          >
            <p class="muted small">No entry in {r.days} days.</p>
            {r.ghostUsers.length === 0 ? <p class="muted">None: everyone with access uses it.</p> : null}
            <ul class="list">
              {r.ghostUsers.map((g) => (
                <li key={g.userId} class="list-row">
                  <div>
                    <a href={href("people", g.userId)}>{g.name}</a>{" "}
                    <span class="muted">({personKindLabel({ role: g.role, userType: "unrestricted" })})</span>
                    <div class="muted small">
                      {g.lastEntryAt
                        ? `last entry ${fmtDate(g.lastEntryAt)} (${g.daysSinceEntry} days ago)`
                        : "never entered"}
                    </div>
                  </div>
                  {g.userId !== me.id ? (
                    <ConfirmButton
                      question={`Revoke everything ${g.name} has?`}
                      title={`Offboard ${g.name}`}
                      confirmLabel="Offboard"
                      onConfirm={() => void offboard(g.userId, g.name)}
                      busy={act.busy}
                    >
                      Offboard<span class="visually-hidden"> {g.name}</span>
                    </ConfirmButton>
                  ) : (
                    <span class="muted small">you</span>
                  )}
                </li>
              ))}
            </ul>
          </Card>
          <Card
            title={`Credentials that never worked (${r.neverWorked.length})`}
            id="never"
            actions={
              r.neverWorked.length > 1 ? (
                <ConfirmButton
                  question="Remove all of them?"
                  confirmLabel="Remove all"
                  onConfirm={cleanAllNeverWorked}
                  busy={act.busy}
                >
                  Remove all
                </ConfirmButton>
              ) : null
            }
          >
            {r.neverWorked.length === 0 ? <p class="muted">None.</p> : null}
            <ul class="list">
              {r.neverWorked.map((c) => {
                const what = `${c.userName}'s ${CREDENTIAL_LABELS[c.kind] ?? c.kind}`;
                return (
                  <li key={c.credentialId} class="list-row">
                    <div>
                      {what}
                      {c.label ? ` (${c.label})` : ""}
                      <div class="muted small">
                        added {fmtDate(c.createdAt)}, never opened
                        {c.refusals ? `, refused ${c.refusals} time(s)` : ""}
                      </div>
                    </div>
                    <ConfirmButton
                      question="Remove it?"
                      confirmLabel="Remove"
                      onConfirm={() => void removeCredential(c.credentialId, what)}
                      busy={act.busy}
                    >
                      Remove<span class="visually-hidden"> {what}</span>
                    </ConfirmButton>
                  </li>
                );
              })}
            </ul>
          </Card>
          <Card title={`Shared codes (${r.sharedCodes.length})`} id="shared">
            {r.sharedCodes.length === 0 ? <p class="muted">None: every code belongs to one person.</p> : null}
            <ul class="list">
              {r.sharedCodes.map((s) => (
                <li key={s.credentialIds.join(",")} class="list-row">
                  <div>
                    {CREDENTIAL_LABELS[s.kind] ?? s.kind} shared by {s.userIds.map(name).join(", ")}
                    <div class="muted small">{s.note}</div>
                  </div>
                  <span class="row">
                    {s.credentialIds.map((id, i) => {
                      const owner = name(s.userIds[i] ?? "");
                      return (
                        <ConfirmButton
                          key={id}
                          question={`Remove ${owner}'s?`}
                          confirmLabel="Remove"
                          onConfirm={() => void removeCredential(id, `${owner}'s ${s.kind}`)}
                          busy={act.busy}
                        >
                          Remove {owner}'s
                        </ConfirmButton>
                      );
                    })}
                  </span>
                </li>
              ))}
            </ul>
          </Card>
          <Card title={`Near expiry (${r.keysNearExpiry.length})`} id="expiry">
            {r.keysNearExpiry.length === 0 ? <p class="muted">Nothing expires soon.</p> : null}
            <ul class="list">
              {r.keysNearExpiry.map((k) => (
                <li key={`${k.kind}-${k.id}`} class="list-row">
                  <div>
                    {k.kind === "phoneKey" ? "Phone key" : k.kind === "guestCode" ? "Guest code" : "Access"}{" "}
                    {k.id}
                    {k.userName ? ` of ${k.userName}` : ""}
                    <div class="muted small">
                      ends {fmtDate(k.expiresAt)} ({k.daysLeft} day{k.daysLeft === 1 ? "" : "s"} left)
                    </div>
                  </div>
                  {k.kind === "phoneKey" ? (
                    <ConfirmButton
                      question="Revoke it now?"
                      confirmLabel="Revoke"
                      onConfirm={() => void revokeKey(k.id)}
                      busy={act.busy}
                    >
                      Revoke now
                    </ConfirmButton>
                  ) : k.userId ? (
                    <a class="btn btn-small" href={href("people", k.userId)}>
                      Extend or remove
                    </a>
                  ) : (
                    <a class="btn btn-small" href="#/guests">
                      Guest codes
                    </a>
                  )}
                </li>
              ))}
            </ul>
          </Card>
          <Card title={`Admins and owners (${r.admins.length})`} id="admins">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Person</th>
                  <th scope="col">Role</th>
                  <th scope="col">Grants</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {r.admins.map((a) => (
                  <tr key={a.userId}>
                    <th scope="row" data-label="Person">
                      <a href={href("people", a.userId)}>{a.name}</a>
                    </th>
                    <td data-label="Role">{a.role}</td>
                    <td data-label="Grants">
                      {a.credentials} credential(s), {a.phoneKeys} phone key(s), {a.tokens} API token(s) ·
                      since {fmtDate(a.createdAt)}
                    </td>
                    <td class="actions" data-label="Actions">
                      {a.userId !== me.id ? (
                        <ConfirmButton
                          question={`Revoke everything ${a.name} has?`}
                          title={`Offboard ${a.name}`}
                          confirmLabel="Offboard"
                          onConfirm={() => void offboard(a.userId, a.name)}
                          busy={act.busy}
                        >
                          Offboard<span class="visually-hidden"> {a.name}</span>
                        </ConfirmButton>
                      ) : (
                        <span class="muted small">you</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p class="muted small">Several owners keep the door from depending on one person's phone.</p>
          </Card>
        </div>
      ) : null}
    </div>
  );
}
