/** First run: claim the hub with its one-time setup code, create the owner, save the recovery kit. */
import { useState } from "preact/hooks";
import type { Api } from "../api/client.ts";
import type { ClaimResult, HubInfo } from "../api/types.ts";
import { ErrorBox, Field, PageTitle, useAction } from "../ui/common.tsx";
import { RecoveryKit } from "./recovery-kit.tsx";

export function SetupPage({ api, hub, onDone }: { api: Api; hub: HubInfo; onDone: () => void }) {
  const [code, setCode] = useState("");
  const [name, setName] = useState("");
  const [claimed, setClaimed] = useState<ClaimResult | null>(null);
  const act = useAction();

  if (claimed)
    return (
      <div>
        <PageTitle sub={`Welcome, ${claimed.user.name}. You are the first owner of this hub.`}>
          Save your recovery kit
        </PageTitle>
        <RecoveryKit
          api={api}
          deviceId={hub.deviceId}
          ownerName={claimed.user.name}
          recoveryCode={claimed.recoveryCode ?? null}
          onContinue={onDone}
        />
      </div>
    );

  const submit = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const r = await api.request<ClaimResult>("POST", "/api/v1/claim", {
        body: { setupCode: code.trim(), ownerName: name.trim() },
        anonymous: true,
      });
      api.setToken(r.token);
      setClaimed(r);
    });
  };

  return (
    <div>
      <PageTitle sub="This hub has no owner yet. Nothing here needs the internet.">
        Set up your lock
      </PageTitle>
      <form class="card stack" onSubmit={submit} aria-describedby="setup-help">
        <p id="setup-help">
          The one-time setup code was printed when the hub first started (and is in the file{" "}
          <code>latchkey-data/setup-code</code> until it is used).
        </p>
        <Field
          label="Setup code"
          value={code}
          onValue={setCode}
          autocomplete="off"
          spellcheck={false}
          placeholder="XXXX-XXXX-XXXX"
          required
        />
        <Field
          label="Your name"
          value={name}
          onValue={setName}
          autocomplete="name"
          required
          maxLength={100}
        />
        <ErrorBox error={act.error} title="Not claimed" />
        <button type="submit" class="btn btn-primary" disabled={act.busy}>
          Claim the lock
        </button>
      </form>
    </div>
  );
}
