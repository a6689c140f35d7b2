/** The OperatingMode switch (Matter § 5.2.6.13), with what each mode means at the door. */
import { seg } from "../api/client.ts";
import { OPERATING_MODES } from "../api/types.ts";
import { useSession } from "../context.ts";
import { MODE_TEXT } from "../lib/format.ts";
import { ErrorBox, PageTitle, useAction } from "../ui/common.tsx";

export function ModePage() {
  const { api, lock, reloadLocks } = useSession();
  const current = lock.status.operatingMode;
  const act = useAction();
  const set = (mode: string) =>
    void act.run(async () => {
      await api.put(`/api/v1/locks/${seg(lock.id)}/mode`, { mode });
      reloadLocks();
    });
  return (
    <div>
      <PageTitle sub={`${lock.name} is in ${MODE_TEXT[current].label} mode.`}>Mode</PageTitle>
      <ErrorBox error={act.error} title="Mode not changed" />
      <ul class="modes" aria-label="Operating modes">
        {OPERATING_MODES.map((m) => {
          const on = m === current;
          return (
            <li key={m} class={on ? "mode on" : "mode"} aria-current={on ? "true" : undefined}>
              <h2>
                {MODE_TEXT[m].label}
                {on ? (
                  <>
                    {" "}
                    <span class="badge badge-ok">current</span>
                  </>
                ) : null}
              </h2>
              <p>{MODE_TEXT[m].means}</p>
              {on ? null : (
                <button type="button" class="btn" disabled={act.busy} onClick={() => set(m)}>
                  Switch to {MODE_TEXT[m].label}
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}
