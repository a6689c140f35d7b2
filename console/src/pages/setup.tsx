/** First run: claim the hub with its one-time setup code, create the owner; the app then shows the kit. */
import { useState } from "preact/hooks";
import type { Api } from "../api/client.ts";
import type { ClaimResult, HubInfo } from "../api/types.ts";
import { learnTokenId, type PendingKit } from "../lib/kit.ts";
import { ErrorBox, Field, PageTitle, useAction } from "../ui/common.tsx";

export function SetupPage({
  api,
  hub,
  onClaimed,
}: {
  api: Api;
  hub: HubInfo;
  /** Claimed: the token is set; the kit (with the code, shown once) is to be saved before going on. */
  onClaimed: (kit: PendingKit) => void;
}) {
  const [code, setCode] = useState("");
  const [name, setName] = useState("");
  const act = useAction();

  const submit = (e: Event) => {
    e.preventDefault();
    void act.run(async () => {
      const r = await api.request<ClaimResult>("POST", "/api/v1/claim", {
        body: { setupCode: code.trim(), ownerName: name.trim() },
        anonymous: true,
      });
      api.setToken(r.token);
      // A just-claimed owner has one token: this console's (marked in their token list).
      await learnTokenId(api, r.user.id, null);
      onClaimed({
        deviceId: hub.deviceId,
        ownerName: r.user.name,
        recoveryCode: r.recoveryCode ?? "",
        madeAt: Date.now(),
        reason: "claim",
      });
    });
  };

  return (
    <div>
      <PageTitle sub="This hub has no owner yet. Nothing here needs the internet.">
        Set up your lock
      </PageTitle>
      <form class="card stack" onSubmit={submit} aria-describedby="setup-help">
        <p id="setup-help">
          The one-time setup code was printed when the hub first started. Until it is used it is also in the{" "}
          <code>setup-code</code> file in the hub's data directory (printed by <code>npm start</code>).
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
        <div>
          <button type="submit" class="btn btn-primary" disabled={act.busy}>
            Claim the lock
          </button>
        </div>
      </form>
    </div>
  );
}
