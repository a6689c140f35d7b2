/** The recovery kit of a signed-in owner: the emergency policy, and a fresh recovery code on demand. */
import { useState } from "preact/hooks";
import { useSession } from "../context.ts";
import { ConfirmButton, ErrorBox, Notice, PageTitle, useAction } from "../ui/common.tsx";
import { RecoveryKit } from "./recovery-kit.tsx";

export function RecoveryPage() {
  const { api, hub, me } = useSession();
  const [code, setCode] = useState<string | null>(null);
  const act = useAction();
  return (
    <div>
      <PageTitle sub="What to do when a phone is lost, the hub is gone, or nobody can sign in.">
        Recovery kit
      </PageTitle>
      {me.role === "owner" ? (
        <div class="card stack no-print">
          <p>
            The recovery code is shown only when it is made. If you lost the printed kit, make a new code: the
            old one stops working at once.
          </p>
          <div>
            <ConfirmButton
              question="The old recovery code stops working."
              confirmLabel="Make a new code"
              onConfirm={() =>
                void act.run(async () => {
                  const r = await api.post<{ recoveryCode: string }>("/api/v1/recovery/rotate");
                  setCode(r.recoveryCode);
                })
              }
              busy={act.busy}
              tone="plain"
            >
              Make a new recovery code
            </ConfirmButton>
          </div>
          <ErrorBox error={act.error} />
          <Notice>{code ? "New recovery code made: print or save the kit below now." : null}</Notice>
        </div>
      ) : (
        <p class="muted">Only owners make recovery codes.</p>
      )}
      <RecoveryKit api={api} deviceId={hub.deviceId} ownerName={me.name} recoveryCode={code} />
    </div>
  );
}
