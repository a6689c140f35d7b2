/**
 * The printable recovery kit: the recovery code (shown once by the hub) and the site's emergency access
 * policy. Printing hides everything but the kit (styles.css, @media print).
 */
import { useState } from "preact/hooks";
import type { Api } from "../api/client.ts";
import { Checkbox, downloadText, ErrorBox, Loading, useLoad } from "../ui/common.tsx";

export interface KitProps {
  api: Api;
  deviceId: string;
  ownerName: string;
  recoveryCode: string | null;
  /** Shown under the kit; when given, a "saved it" confirmation gates it. */
  onContinue?: () => void;
}

export function RecoveryKit({ api, deviceId, ownerName, recoveryCode, onContinue }: KitProps) {
  const policy = useLoad((signal) => api.get<{ lines: string[] }>("/api/v1/recovery/policy", signal), []);
  const [saved, setSaved] = useState(false);
  const made = new Date().toLocaleString();
  const lines = policy.data?.lines ?? [];
  const asText = () =>
    [
      "LATCHKEY RECOVERY KIT",
      `Hub: ${deviceId}`,
      `Owner: ${ownerName}`,
      `Made: ${made}`,
      "",
      `Recovery code: ${recoveryCode ?? "(not issued)"}`,
      "",
      "Emergency access policy:",
      ...lines.map((l) => `- ${l}`),
      "",
    ].join("\n");
  return (
    <div>
      <section class="card print-area kit" aria-labelledby="kit-h">
        <h2 id="kit-h">Recovery kit</h2>
        <dl class="facts">
          <dt>Hub</dt>
          <dd>
            <code>{deviceId}</code>
          </dd>
          <dt>Owner</dt>
          <dd>{ownerName}</dd>
          <dt>Made</dt>
          <dd>{made}</dd>
        </dl>
        {recoveryCode ? (
          <>
            <p>
              <strong>Recovery code</strong> — shown this once. Whoever holds it can become an owner of this
              hub: keep it on paper, somewhere safe, away from the door.
            </p>
            <p class="secret" data-testid="recovery-code">
              {recoveryCode}
            </p>
          </>
        ) : (
          <p class="warn-text">
            The hub did not return a recovery code. Make one on the Recovery kit page once you are signed in.
          </p>
        )}
        <h3>Emergency access policy</h3>
        {policy.loading && !policy.data ? <Loading what="the policy" /> : null}
        <ErrorBox error={policy.error} title="Policy not loaded" />
        <ol class="policy">
          {lines.map((l) => (
            <li key={l}>{l}</li>
          ))}
        </ol>
      </section>
      <div class="row no-print">
        <button type="button" class="btn btn-primary" onClick={() => window.print()}>
          Print the kit
        </button>
        <button
          type="button"
          class="btn"
          onClick={() => downloadText(`latchkey-recovery-kit-${deviceId}.txt`, asText(), "text/plain")}
        >
          Save as a text file
        </button>
      </div>
      {onContinue ? (
        <div class="no-print stack">
          <Checkbox label="I have printed or saved the recovery kit" checked={saved} onChecked={setSaved} />
          <button
            type="button"
            class="btn btn-primary"
            disabled={!saved && recoveryCode !== null}
            onClick={onContinue}
          >
            Continue to the console
          </button>
        </div>
      ) : null}
    </div>
  );
}
