/** What every page of a signed-in console shares: the API, the caller, the site's locks and the chosen one. */
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Api } from "./api/client.ts";
import type { HubInfo, LockRecord, User } from "./api/types.ts";
import type { PendingKit } from "./lib/kit.ts";

export interface Session {
  readonly api: Api;
  readonly hub: HubInfo;
  readonly me: User;
  readonly locks: readonly LockRecord[];
  /** The lock the pages act on (a site may have several). */
  readonly lock: LockRecord;
  selectLock(id: string): void;
  /** Fetch the locks' status again (after a mode change, a door operation...). */
  reloadLocks(): void;
  /** Revoke the token at the hub, then forget it here. */
  signOut(): void;
  /** A just-made recovery kit the owner has not yet confirmed saving (kept across reloads). */
  readonly kit: PendingKit | null;
  holdKit(kit: PendingKit): void;
  /** The owner printed or saved it: forget the code. */
  confirmKit(): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in console");
  return s;
}

export const isAdmin = (u: User): boolean => u.role === "owner" || u.role === "admin";
