/** Sign in to a claimed hub: with an API token, or with the recovery code when every owner device is lost. */
import { useState } from "preact/hooks";
import type { Api, ApiError } from "../api/client.ts";
import type { ClaimResult, HubInfo, User } from "../api/types.ts";
import { ErrorBox, Field, PageTitle, useAction } from "../ui/common.tsx";
import { RecoveryKit } from "./recovery-kit.tsx";

export function SignInPage({
  api,
  hub,
  error,
  onDone,
}: {
  api: Api;
  hub: HubInfo;
  error: ApiError | null;
  onDone: () => void;
}) {
  const [token, setToken] = useState("");
  const [recovery, setRecovery] = useState("");
  const [recovered, setRecovered] = useState<ClaimResult | null>(null);
  const tokenAct = useAction();
  const recoverAct = useAction();

  if (recovered)
    return (
      <div>
        <PageTitle sub="Your old recovery code is spent. This is the new one: save it before you go on.">
          New recovery kit
        </PageTitle>
        <RecoveryKit
          api={api}
          deviceId={hub.deviceId}
          ownerName={recovered.user.name}
          recoveryCode={recovered.recoveryCode ?? null}
          onContinue={onDone}
        />
      </div>
    );

  const signIn = (e: Event) => {
    e.preventDefault();
    void tokenAct.run(async () => {
      const t = token.trim();
      const prev = api.token;
      api.setToken(t);
      try {
        await api.request<User>("GET", "/api/v1/me");
      } catch (err) {
        api.setToken(prev);
        throw err;
      }
      onDone();
    });
  };
  const recover = (e: Event) => {
    e.preventDefault();
    void recoverAct.run(async () => {
      const r = await api.request<ClaimResult>("POST", "/api/v1/recover", {
        body: { recoveryCode: recovery.trim(), label: "console (recovery)" },
        anonymous: true,
      });
      api.setToken(r.token);
      setRecovered(r);
    });
  };

  return (
    <div>
      <PageTitle sub={`Hub ${hub.deviceId}`}>Sign in</PageTitle>
      <ErrorBox error={error} title="Signed out" />
      <form class="card stack" onSubmit={signIn}>
        <h2>With an API token</h2>
        <p class="muted">
          Make one on a signed-in device (People → a person → API tokens) or with the CLI:{" "}
          <code>npx latchkey token create --label console</code>.
        </p>
        <Field
          label="API token"
          type="password"
          value={token}
          onValue={setToken}
          autocomplete="off"
          spellcheck={false}
          required
        />
        <ErrorBox error={tokenAct.error} title="Not signed in" />
        <button type="submit" class="btn btn-primary" disabled={tokenAct.busy}>
          Sign in
        </button>
      </form>
      <form class="card stack" onSubmit={recover}>
        <h2>With the recovery code</h2>
        <p class="muted">
          From the printed recovery kit, when no owner can sign in any more. It makes you an owner and
          replaces the code.
        </p>
        <Field
          label="Recovery code"
          value={recovery}
          onValue={setRecovery}
          autocomplete="off"
          spellcheck={false}
          required
        />
        <ErrorBox error={recoverAct.error} title="Not recovered" />
        <button type="submit" class="btn" disabled={recoverAct.busy}>
          Recover access
        </button>
      </form>
    </div>
  );
}
