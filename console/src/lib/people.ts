/** The names the pages show for ids: people, and guest codes by the name they were issued for. */
import { useMemo } from "preact/hooks";
import { seg } from "../api/client.ts";
import type { AuditEvent, GuestCodeEntry, User } from "../api/types.ts";
import { useSession } from "../context.ts";
import { type Loaded, useLoad } from "../ui/common.tsx";

/** Names by id: a user id, or `code:<codeId>` for a guest code issued through the hub. */
export type Names = ReadonlyMap<string, string>;

export function usePeople(): Loaded<User[]> & { names: Names } {
  const { api, lock } = useSession();
  const people = useLoad((signal) => api.get<User[]>("/api/v1/users", signal), []);
  const codes = useLoad(
    (signal) =>
      api.get<GuestCodeEntry[]>(`/api/v1/locks/${seg(lock.id)}/guest-codes`, signal).catch(() => []),
    [lock.id],
  );
  const names = useMemo(() => {
    const m = new Map<string, string>();
    for (const c of codes.data ?? []) m.set(`code:${c.codeId}`, c.name);
    for (const u of people.data ?? []) m.set(u.id, u.name);
    return m;
  }, [people.data, codes.data]);
  return { ...people, names };
}

/**
 * Names of people removed since, from the log's own admin events (`user.add` names the person), and of
 * guest codes no longer listed (`guestCode.issue` names the code).
 */
export function withLoggedNames(names: Names, events: readonly AuditEvent[]): Names {
  let m: Map<string, string> | null = null;
  for (const e of events) {
    if (e.kind !== "admin.change") continue;
    const name = e.data.name;
    if (typeof name !== "string") continue;
    const code = e.data.action === "guestCode.issue" ? e.data.codeId : null;
    const key = typeof code === "string" ? `code:${code}` : e.data.userId;
    if (typeof key === "string" && !names.has(key) && !m?.has(key)) {
      m ??= new Map(names);
      m.set(key, name);
    }
  }
  return m ?? names;
}

/** The readiness check names what it adds "Readiness check <id>" (its temporary person, its guest code). */
const CHECK_NAME = /^readiness check /i;

/**
 * An event of the offline readiness check rather than of real use: its access events carry
 * `data.readinessCheck` (the report's id); its admin events name its temporary person or guest code.
 */
export function isReadinessEvent(e: AuditEvent, names: Names): boolean {
  const d = e.data;
  if (typeof d.readinessCheck === "string") return true;
  if (typeof d.name === "string" && CHECK_NAME.test(d.name)) return true;
  const user = typeof d.userId === "string" ? names.get(d.userId) : undefined;
  if (user !== undefined && CHECK_NAME.test(user)) return true;
  const code = typeof d.codeId === "string" ? names.get(`code:${d.codeId}`) : undefined;
  return code !== undefined && CHECK_NAME.test(code);
}
