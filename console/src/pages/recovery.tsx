/**
 * The recovery kit of a signed-in owner: the emergency policy, and a fresh recovery code on demand (the
 * hub shows a code only when it makes it, so a lost one is replaced, never shown again).
 */
import { useEffect } from "preact/hooks";
import { useSession } from "../context.ts";
import { ConfirmButton, ErrorBox, PageTitle, useAction } from "../ui/common.tsx";
import { RecoveryKit } from "./recovery-kit.tsx";

export function RecoveryPage() {
  const { api, hub, me, kit, holdKit, confirmKit } = useSession();
  const act = useAction();
  // A new code this console made and the owner has not confirmed saving (kept across reloads).
  const held = kit && kit.reason === "rotate" ? kit : null;
  // The new kit replaces the button that made it: the keyboard goes to the kit.
  useEffect(() => {
    if (held) document.getElementById("kit-h")?.focus();
  }, [held?.recoveryCode]);
  const make = () =>
    void act.run(async () => {
      const r = await api.post<{ recoveryCode: string }>("/api/v1/recovery/rotate");
      holdKit({
        deviceId: hub.deviceId,
        ownerName: me.name,
        recoveryCode: r.recoveryCode,
        madeAt: Date.now(),
        reason: "rotate",
      });
    });
  return (
    <div>
      <PageTitle sub="What to do when a phone is lost, the hub is gone, or nobody can sign in.">
        Recovery kit
      </PageTitle>
      {held ? (
        <div class="card no-print" role="status">
          <p>
            <strong>New recovery code made.</strong> The old one no longer works. Print or save the kit below
            now: this code is shown only until you confirm.
          </p>
        </div>
      ) : me.role === "owner" ? (
        <div class="card stack no-print">
          <p>
            The recovery code is shown only once, when it is made: the hub keeps only a fingerprint of it and
            cannot show it again. If you did not save it, or lost the printed kit, make a new code — the old
            one stops working at once — and print the kit with it.
          </p>
          <div>
            <ConfirmButton
              question="The old recovery code stops working."
              title="Make a new recovery code"
              confirmLabel="Make a new code"
              onConfirm={make}
              busy={act.busy}
              tone="plain"
            >
              Make a new recovery code
            </ConfirmButton>
          </div>
          <ErrorBox error={act.error} />
        </div>
      ) : (
        <p class="muted">Only owners make recovery codes: ask one to print the kit.</p>
      )}
      <RecoveryKit
        key={held?.recoveryCode ?? "none"}
        api={api}
        deviceId={hub.deviceId}
        ownerName={held?.ownerName ?? me.name}
        recoveryCode={held?.recoveryCode ?? null}
        madeAt={held?.madeAt ?? null}
        noCode={
          me.role === "owner"
            ? "No recovery code here: it is shown only when it is made. Make a new one above to print a complete kit."
            : "No recovery code here: it is shown only to the owner who makes it."
        }
        {...(held ? { onContinue: confirmKit, continueLabel: "Done: forget the code here" } : {})}
      />
    </div>
  );
}
