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

/** Names of people removed since, from the log's own admin events (`user.add` names the person). */
export function withLoggedNames(names: Names, events: readonly AuditEvent[]): Names {
  let m: Map<string, string> | null = null;
  for (const e of events) {
    if (e.kind !== "admin.change") continue;
    const id = e.data.userId;
    const name = e.data.name;
    if (typeof id === "string" && typeof name === "string" && !names.has(id)) {
      m ??= new Map(names);
      m.set(id, name);
    }
  }
  return m ?? names;
}
