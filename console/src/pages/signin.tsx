/** Sign in to a claimed hub: with an API token, or with the recovery code when every owner device is lost. */
import { useState } from "preact/hooks";
import type { Api, ApiError } from "../api/client.ts";
import type { ClaimResult, HubInfo, User } from "../api/types.ts";
import { learnTokenId, type PendingKit } from "../lib/kit.ts";
import { ErrorBox, Field, PageTitle, useAction } from "../ui/common.tsx";

const RECOVERY_LABEL = "console (recovery)";

export function SignInPage({
  api,
  hub,
  error,
  revokeError,
  onDone,
  onRecovered,
}: {
  api: Api;
  hub: HubInfo;
  error: ApiError | null;
  /** Signed out, but the hub did not revoke the token. */
  revokeError: ApiError | null;
  onDone: () => void;
  /** Recovered: the token is set; the new kit is to be saved before going on. */
  onRecovered: (kit: PendingKit) => void;
}) {
  const [token, setToken] = useState("");
  const [recovery, setRecovery] = useState("");
  const tokenAct = useAction();
  const recoverAct = useAction();

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
        body: { recoveryCode: recovery.trim(), label: RECOVERY_LABEL },
        anonymous: true,
      });
      api.setToken(r.token);
      await learnTokenId(api, r.user.id, RECOVERY_LABEL);
      onRecovered({
        deviceId: hub.deviceId,
        ownerName: r.user.name,
        recoveryCode: r.recoveryCode ?? "",
        madeAt: Date.now(),
        reason: "recover",
      });
    });
  };

  return (
    <div>
      <PageTitle sub={`Hub ${hub.deviceId}`}>Sign in</PageTitle>
      <ErrorBox error={error} title="Signed out" />
      <ErrorBox
        error={revokeError}
        title="Signed out on this device, but the hub did not revoke the token: revoke it under People → you → API tokens."
      />
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
