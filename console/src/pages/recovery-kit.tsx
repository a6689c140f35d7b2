/**
 * The printable recovery kit: the recovery code (shown once by the hub) and the site's emergency access
 * policy. Printing hides everything but the kit (styles.css, @media print).
 */
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { Api } from "../api/client.ts";
import type { PendingKit } from "../lib/kit.ts";
import { Checkbox, downloadText, ErrorBox, Loading, PageTitle, useLoad } from "../ui/common.tsx";

export interface KitProps {
  api: Api;
  deviceId: string;
  ownerName: string;
  /** The code, when this console holds one (it is shown only when it is made). */
  recoveryCode: string | null;
  /** When the code was made (ms); with no code, no date is shown. */
  madeAt?: number | null;
  /** What the kit says in place of the code when there is none. */
  noCode?: ComponentChildren;
  /** Shown under the kit; when given, a "saved it" confirmation gates it. */
  onContinue?: () => void;
  continueLabel?: string;
}

export function RecoveryKit({
  api,
  deviceId,
  ownerName,
  recoveryCode,
  madeAt = null,
  noCode,
  onContinue,
  continueLabel = "Continue to the console",
}: KitProps) {
  const policy = useLoad((signal) => api.get<{ lines: string[] }>("/api/v1/recovery/policy", signal), []);
  const [saved, setSaved] = useState(false);
  const made = recoveryCode && madeAt !== null ? new Date(madeAt).toLocaleString() : null;
  const lines = policy.data?.lines ?? [];
  const asText = () =>
    [
      "LATCHKEY RECOVERY KIT",
      `Hub: ${deviceId}`,
      `Owner: ${ownerName}`,
      ...(made ? [`Made: ${made}`] : []),
      "",
      `Recovery code: ${recoveryCode ?? "(none)"}`,
      "",
      "Emergency access policy:",
      ...lines.map((l) => `- ${l}`),
      "",
    ].join("\n");
  return (
    <div>
      <section class="card print-area kit" aria-labelledby="kit-h">
        <h2 id="kit-h" tabIndex={-1}>
          Recovery kit
        </h2>
        <dl class="facts">
          <dt>Hub</dt>
          <dd>
            <code>{deviceId}</code>
          </dd>
          <dt>Owner</dt>
          <dd>{ownerName}</dd>
          {made ? (
            <>
              <dt>Made</dt>
              <dd>{made}</dd>
            </>
          ) : null}
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
          <p class="warn-text" data-testid="no-recovery-code">
            {noCode ?? "No recovery code is shown: the hub shows it only once, when it is made."}
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
        <button type="button" class="btn btn-primary" disabled={!recoveryCode} onClick={() => window.print()}>
          Print the kit
        </button>
        <button
          type="button"
          class="btn"
          disabled={!recoveryCode}
          onClick={() => downloadText(`latchkey-recovery-kit-${deviceId}.txt`, asText(), "text/plain")}
        >
          Save as a text file
        </button>
      </div>
      {onContinue ? (
        <div class="no-print stack">
          <Checkbox label="I have printed or saved the recovery kit" checked={saved} onChecked={setSaved} />
          <div>
            <button
              type="button"
              class="btn btn-primary"
              disabled={!saved && recoveryCode !== null}
              onClick={onContinue}
            >
              {continueLabel}
            </button>
          </div>
        </div>
      ) : null}
    </div>
  );
}

const GATE_TEXT: Record<PendingKit["reason"], { title: string; sub: (name: string) => string }> = {
  claim: {
    title: "Save your recovery kit",
    sub: (name) => `Welcome, ${name}. You are the first owner of this hub.`,
  },
  recover: {
    title: "New recovery kit",
    sub: () => "Your old recovery code is spent. This is the new one: save it before you go on.",
  },
  rotate: {
    title: "New recovery kit",
    sub: () => "The old recovery code no longer works. Save this one before you go on.",
  },
};

/**
 * A just-made kit, before the console: the owner confirms they printed or saved it. Focus lands on its
 * heading (PageTitle), so a screen reader starts with what to do.
 */
export function KitGate({ api, kit, onContinue }: { api: Api; kit: PendingKit; onContinue: () => void }) {
  const text = GATE_TEXT[kit.reason];
  return (
    <div>
      <PageTitle sub={text.sub(kit.ownerName)}>{text.title}</PageTitle>
      <RecoveryKit
        api={api}
        deviceId={kit.deviceId}
        ownerName={kit.ownerName}
        recoveryCode={kit.recoveryCode}
        madeAt={kit.madeAt}
        onContinue={onContinue}
      />
    </div>
  );
}
